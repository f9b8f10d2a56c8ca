/*
 * floor_concurrent.c - the C floor for "N concurrent children": start them
 * all, then wait for all of them on one thread, through pidfds.
 *
 * One op: posix_spawnp(PROGRAM, ARGS) COUNT times, each child with stdin,
 * stdout and stderr on /dev/null (stdio 'ignore'), a pidfd_open(2) for each
 * child, all pidfds in one epoll set; then epoll_wait until every child has
 * exited, reaping each with waitpid as its pidfd turns readable.  No threads,
 * no SIGCHLD handler.
 *
 * Usage: floor_concurrent OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB COUNT PROGRAM [ARGS...]
 *   The op fails unless every child exited 0.  Protocol and output: see
 *   _floor_common.h (base_rss_kib and hwm_kib give the parent's memory per
 *   child).
 */
#include "_floor_common.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

extern char **environ;

static int op(char **args) {
    long count = atol(args[0]);
    char **argv = args + 1;
    pid_t *pids = calloc((size_t)count, sizeof *pids);
    int *pidfds = calloc((size_t)count, sizeof *pidfds);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int failures = 0;
    long started = 0, left;
    posix_spawn_file_actions_t fa;

    if (!pids || !pidfds || ep < 0 || devnull < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    posix_spawn_file_actions_adddup2(&fa, devnull, 1);
    posix_spawn_file_actions_adddup2(&fa, devnull, 2);
    for (long i = 0; i < count; i++) {
        if (posix_spawnp(&pids[i], argv[0], &fa, NULL, argv, environ) != 0) {
            failures++;
            break;
        }
        started++;
        pidfds[i] = (int)syscall(SYS_pidfd_open, pids[i], 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (pidfds[i] < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, pidfds[i], &ev) < 0)
            return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(devnull);

    left = started;
    while (left > 0) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (int k = 0; k < n; k++) {
            long i = (long)evs[k].data.u64;
            int status = 0;
            while (waitpid(pids[i], &status, 0) < 0)
                if (errno != EINTR)
                    return -1;
            if (status != 0)
                failures++;
            epoll_ctl(ep, EPOLL_CTL_DEL, pidfds[i], NULL);
            close(pidfds[i]);
            left--;
        }
    }
    close(ep);
    free(pids);
    free(pidfds);
    return failures;
}
