/*
 * floor_spawn.c - the C floor for "spawn + wait of /bin/true".
 *
 * A bare posix_spawn + waitpid loop: no language runtime, no argument
 * handling, nothing the peers could do less of.  benchmarks/compare
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
 * Output and exit status: _floor_common.h's (a failed op is a child that did
 * not exit with status 0).
 */
#include "_floor_common.h" /* first: it defines _GNU_SOURCE; main() and the batch loop */

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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
/* compare also builds this file as a shared library (-DFLOOR_LIBRARY) and
 * calls spawn_once through ctypes from a Python worker: the same C op, in a
 * process the size and shape of the Python peers' (see pyops.c_floor). */
__attribute__((visibility("default"))) int floor_spawn_op(char **argv) {
    return spawn_once(argv);
}
#endif

/* The runner's op: one spawn + wait of ARGS (default /bin/true); 0 when
 * the child exited with status 0. */
static int op(char **args) {
    static char *true_argv[] = {"/bin/true", NULL};
    return spawn_once(args[0] ? args : true_argv);
}
