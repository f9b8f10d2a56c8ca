/*
 * floor_spawn.c - the C floor for "spawn + wait of /bin/true".
 *
 * A bare posix_spawn + waitpid loop: no language runtime, no argument
 * handling, nothing the peers could do less of.  benchmarks/compare.py
 * compiles it twice with `cc -O2` into benchmarks/.build/:
 *
 *   floor_spawn        the child inherits the parent's stdio (as
 *                      subprocess.run(['/bin/true']) and os.posix_spawn do)
 *   floor_spawn_pipes  -DWITH_PIPES: three pipes as the child's stdio; the
 *                      parent closes stdin's write end, polls stdout and
 *                      stderr to EOF, then waits (what spawnSync with its
 *                      default stdio does, in childproc and in Node)
 *
 * and twice more for "async spawn + exit" (-DWITH_PIDFD): the parent opens a
 * pidfd for the child (pidfd_open(2)), polls it (with the pipes, if any)
 * until the child has exited and the outputs are at EOF, then reaps it with
 * waitpid -- what an event loop that watches exits through pidfds does, with
 * nothing else on the loop:
 *
 *   floor_spawn_pidfd        inherited stdio
 *   floor_spawn_pidfd_pipes  -DWITH_PIPES: three pipes
 *
 * floor_spawn (no pidfd) also times a whole command for other workloads,
 * e.g. `/bin/sh -c 'head -c 1G /dev/zero | cat > /dev/null'`, the shell-pipe
 * reference of the throughput workloads.
 *
 * Usage: floor_spawn OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB [PROGRAM [ARGS...]]
 *   Runs WARMUP_OPS untimed spawns (or WARMUP_MS, whichever ends first), then
 *   up to OPS timed spawns, stopping early once MAX_MS have passed (at least
 *   one timed op always runs).  With BALLAST_MIB > 0 the parent first
 *   mallocs and memsets that much memory so it is resident.
 *
 * Prints one line of JSON on stdout:
 *   {"samples_ns":[...],"rss_kib":N,"ballast_mib":M,"failures":0}
 * and exits 1 if any child did not exit with status 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* One spawn + wait.  Returns the child's wait status, or -1 on an error. */
static int spawn_once(char **argv) {
    const char *program = argv[0];
    pid_t pid;
    int status = 0, rc;
#ifdef WITH_PIPES
    int in[2], out[2], err[2];
    posix_spawn_file_actions_t fa;
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    rc = posix_spawnp(&pid, program, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    close(in[1]); /* no input: the child sees EOF on stdin */
    if (rc != 0) {
        close(out[0]);
        close(err[0]);
        return -1;
    }
    {
        /* stdout, stderr and (WITH_PIDFD) the pidfd, until all are done */
        struct pollfd pfd[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {-1, POLLIN, 0}};
        int open_fds = 2;
        char buf[65536];
#ifdef WITH_PIDFD
        pfd[2].fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pfd[2].fd < 0)
            return -1;
        open_fds = 3;
#endif
        while (open_fds > 0) {
            if (poll(pfd, 3, -1) < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            for (int i = 0; i < 3; i++) {
                if (pfd[i].fd < 0 || !pfd[i].revents)
                    continue;
                if (i == 2) { /* the pidfd: the child has exited */
                    close(pfd[i].fd);
                    pfd[i].fd = -1;
                    open_fds--;
                    continue;
                }
                ssize_t n = read(pfd[i].fd, buf, sizeof buf);
                if (n > 0)
                    continue; /* a real peer would keep these bytes */
                if (n < 0 && errno == EINTR)
                    continue;
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open_fds--;
            }
        }
    }
#else
    rc = posix_spawnp(&pid, program, NULL, NULL, argv, environ);
    if (rc != 0)
        return -1;
#ifdef WITH_PIDFD
    {
        struct pollfd pfd = {(int)syscall(SYS_pidfd_open, pid, 0), POLLIN, 0};
        if (pfd.fd < 0)
            return -1;
        while (poll(&pfd, 1, -1) < 0)
            if (errno != EINTR)
                break;
        close(pfd.fd);
    }
#endif
#endif
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

#ifdef FLOOR_LIBRARY
/* compare.py also builds this file as a shared library (-DFLOOR_LIBRARY) and
 * calls spawn_once through ctypes from a Python worker: the same C op, in a
 * process the size and shape of the Python peers' (see pyops.c_floor). */
__attribute__((visibility("default"))) int floor_spawn_op(char **argv) {
    return spawn_once(argv);
}
#endif

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB [PROGRAM]\n", argv[0]);
        return 2;
    }
    long ops = atol(argv[1]);
    int64_t max_ns = (int64_t)(atof(argv[2]) * 1e6);
    long warmup = atol(argv[3]);
    int64_t warmup_ns = (int64_t)(atof(argv[4]) * 1e6);
    long ballast_mib = atol(argv[5]);
    char *true_argv[] = {"/bin/true", NULL};
    char **program = argc > 6 ? argv + 6 : true_argv;
    if (ops < 1)
        ops = 1;

    char *ballast = NULL;
    if (ballast_mib > 0) {
        size_t n = (size_t)ballast_mib << 20;
        ballast = malloc(n);
        if (!ballast) {
            fprintf(stderr, "cannot allocate %ld MiB\n", ballast_mib);
            return 2;
        }
        memset(ballast, 1, n);
    }

    long failures = 0;
    int64_t t_end = now_ns() + warmup_ns;
    for (long i = 0; i < warmup && now_ns() < t_end; i++)
        if (spawn_once(program) != 0)
            failures++;

    int64_t *samples = malloc(sizeof *samples * (size_t)ops);
    long n = 0;
    int64_t t_stop = now_ns() + max_ns;
    while (n < ops) {
        int64_t t0 = now_ns();
        int st = spawn_once(program);
        int64_t t1 = now_ns();
        if (st != 0)
            failures++;
        samples[n++] = t1 - t0;
        if (t1 >= t_stop)
            break;
    }

    printf("{\"samples_ns\":[");
    for (long i = 0; i < n; i++)
        printf(i ? ",%lld" : "%lld", (long long)samples[i]);
    printf("],\"rss_kib\":%ld,\"ballast_mib\":%ld,\"failures\":%ld}\n",
           rss_kib(), ballast_mib, failures);
    /* Read the ballast once more so the compiler cannot drop it. */
    if (ballast && ballast[((size_t)ballast_mib << 20) - 1] != 1)
        return 3;
    free(samples);
    free(ballast);
    return failures ? 1 : 0;
}
