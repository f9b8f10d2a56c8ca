/*
 * floor_read.c - the C floors for reading a child's stdout.
 *
 *   floor_read       "stdout throughput": a read() loop that counts and
 *                    drops the bytes (1 MiB buffer)
 *   floor_read_keep  -DKEEP, "exec capture": stdout and stderr are pipes,
 *                    polled and read to EOF into buffers that grow by
 *                    doubling (realloc), as a capture that hands the output
 *                    back must do; freed after the op
 *
 * Both grow the stdout pipe to 1 MiB first (F_SETPIPE_SZ), as childproc does
 * for bulk output; -DPLAIN_PIPE keeps the default 64 KiB pipe.
 *
 * Usage: floor_read OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB EXPECTED PROGRAM [ARGS...]
 *   One op: posix_spawnp(PROGRAM, ARGS) with a stdout pipe, read it to EOF,
 *   waitpid.  The op fails unless exactly EXPECTED bytes came (-1: any
 *   number) and the child exited 0.  The runner hands the exec workloads
 *   `/bin/sh -c COMMAND` as PROGRAM ARGS, like exec() does.
 * Protocol and output: see _floor_common.h.
 */
#include "_floor_common.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifdef KEEP
struct buf {
    char *p;
    size_t len, cap;
};

/* One read into b, growing it first if full.  Returns read()'s result. */
static ssize_t read_into(int fd, struct buf *b) {
    if (b->cap - b->len < 65536) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    return read(fd, b->p + b->len, b->cap - b->len);
}
#endif

static int op(char **args) {
    long long expected = atoll(args[0]);
    char **argv = args + 1;
    pid_t pid;
    int out[2], status = 0, rc;
    long long total = 0;
    posix_spawn_file_actions_t fa;
#ifdef KEEP
    int err[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        return -1;
    grow_pipe(out[0]);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    if (rc != 0)
        return -1;
    {
        struct buf bufs[2] = {{0}, {0}};
        struct pollfd pfd[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
        int open_fds = 2;
        while (open_fds > 0) {
            if (poll(pfd, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            for (int i = 0; i < 2; i++) {
                if (pfd[i].fd < 0 || !pfd[i].revents)
                    continue;
                ssize_t n = read_into(pfd[i].fd, &bufs[i]);
                if (n > 0) {
                    bufs[i].len += (size_t)n;
                    continue;
                }
                if (n < 0 && errno == EINTR)
                    continue;
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open_fds--;
            }
        }
        total = (long long)bufs[0].len;
        free(bufs[0].p);
        free(bufs[1].p);
    }
#else
    static char buf[1 << 20];
    if (pipe2(out, O_CLOEXEC))
        return -1;
    grow_pipe(out[0]);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0)
        return -1;
    for (;;) {
        ssize_t n = read(out[0], buf, sizeof buf);
        if (n > 0)
            total += n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    close(out[0]);
#endif
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (expected >= 0 && total != expected)
        return -2;
    return status;
}
