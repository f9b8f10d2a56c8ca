/*
 * floor_splice.c - the C floors for "fd -> fd pipe()": a splice(2) loop.
 *
 *   floor_splice      PROGRAM's stdout pipe -> /dev/null
 *   floor_splice_cat  -DTO_CAT: PROGRAM's stdout pipe -> a second pipe that
 *                     is `cat`'s stdin (cat's stdout is /dev/null): the
 *                     parent pumps between two children
 *
 * splice() moves the pages from pipe to pipe (or to /dev/null) inside the
 * kernel: no copy to user space.  1 MiB per call.  The pipes are grown to
 * 1 MiB first (F_SETPIPE_SZ), as childproc's pump grows pipes that stay full;
 * -DPLAIN_PIPE keeps the default 64 KiB.
 *
 * Usage: floor_splice OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB EXPECTED PROGRAM [ARGS...]
 *   The op fails unless EXPECTED bytes moved (-1: any number) and every child
 *   exited 0.  Protocol and output: see _floor_common.h.
 */
#include "_floor_common.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int reap(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

static int op(char **args) {
    long long expected = atoll(args[0]);
    char **argv = args + 1;
    pid_t pid;
    int out[2], rc, dest;
    long long total = 0;
    posix_spawn_file_actions_t fa;

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
#ifdef TO_CAT
    pid_t cat_pid;
    int in[2];
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    char *cat_argv[] = {"cat", NULL};
    if (devnull < 0 || pipe2(in, O_CLOEXEC))
        return -1;
    grow_pipe(in[1]);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, devnull, 1);
    rc = posix_spawnp(&cat_pid, "cat", &fa, NULL, cat_argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(devnull);
    if (rc != 0)
        return -1;
    dest = in[1];
#else
    dest = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (dest < 0)
        return -1;
#endif
    for (;;) {
        ssize_t n = splice(out[0], NULL, dest, NULL, 1 << 20, SPLICE_F_MOVE);
        if (n > 0)
            total += n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    close(out[0]);
    close(dest); /* cat sees EOF */
    rc = reap(pid);
#ifdef TO_CAT
    if (reap(cat_pid) != 0)
        rc = rc ? rc : -3;
#endif
    if (expected >= 0 && total != expected)
        return -2;
    return rc;
}
