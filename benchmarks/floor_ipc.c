/*
 * floor_ipc.c - the C floor for IPC: a socketpair between a parent and a
 * forked child, newline-delimited messages (the framing of Node's and
 * childproc's 'json' channel), no serialization at all: the syscalls a
 * channel cannot avoid.
 *
 *   roundtrip  one op = COUNT ping-pongs: the parent write()s one message
 *              and read()s until the child has echoed it back whole
 *   oneway     one op = COUNT messages, one write() each, then an "end"
 *              message; the child counts the messages and answers "end"
 *              with the count, which the parent reads and checks
 *   roundtrip-epoll
 *              roundtrip, but both sides wait in epoll_wait() before each
 *              read(), as any event loop does (libuv's, asyncio's,
 *              childproc's): the floor for a channel on an event loop.  On
 *              a VM whose idle vCPUs halt, a wake-up through epoll can cost
 *              far more than one straight into a blocked read().
 *
 * The child is forked once per batch (before the ballast, so it stays small)
 * and serves until the parent closes the socket.
 *
 * Usage: floor_ipc MODE OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB COUNT
 *   Protocol and output: see _floor_common.h.  (MODE comes first; main()
 *   below strips it and hands the rest to the common main.)
 */
#define main common_main
#include "_floor_common.h"
#undef main

#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char MSG[] = "{\"seq\":1,\"cmd\":\"ping\",\"ok\":true,\"data\":\"hello\"}\n";
static const char END[] = "\"end\"\n";
static int sock = -1;
static int oneway = 0;
static int epfd = -1; /* roundtrip-epoll: wait here before each read() */

/* Read until one whole line is in buf; returns its length (with '\n'). */
static ssize_t read_line(int fd, char *buf, size_t cap, size_t *have) {
    for (;;) {
        char *nl = memchr(buf, '\n', *have);
        if (nl)
            return nl - buf + 1;
        if (*have == cap)
            return -1;
        if (epfd >= 0) {
            struct epoll_event ev;
            if (epoll_wait(epfd, &ev, 1, -1) < 0 && errno != EINTR)
                return -1;
        }
        ssize_t n = read(fd, buf + *have, cap - *have);
        if (n > 0)
            *have += (size_t)n;
        else if (n == 0 || errno != EINTR)
            return -1;
    }
}

static void child_serve(int fd) {
    static char buf[1 << 16];
    size_t have = 0;
    long count = 0;
    for (;;) {
        ssize_t len = read_line(fd, buf, sizeof buf, &have);
        if (len < 0)
            _exit(0);
        if ((size_t)len == sizeof END - 1 && memcmp(buf, END, (size_t)len) == 0) {
            char reply[32];
            int r = snprintf(reply, sizeof reply, "%ld\n", count);
            count = 0;
            if (write(fd, reply, (size_t)r) != r)
                _exit(1);
        } else if (oneway) {
            count++;
        } else if (write(fd, buf, (size_t)len) != len) {
            _exit(1);
        }
        memmove(buf, buf + len, have - (size_t)len);
        have -= (size_t)len;
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int op(char **args) {
    long count = atol(args[0]);
    char buf[4096];
    size_t have = 0;
    if (oneway) {
        for (long i = 0; i < count; i++)
            if (write_all(sock, MSG, sizeof MSG - 1))
                return -1;
        if (write_all(sock, END, sizeof END - 1))
            return -1;
        if (read_line(sock, buf, sizeof buf, &have) < 0)
            return -1;
        return atol(buf) == count ? 0 : -2;
    }
    for (long i = 0; i < count; i++) {
        have = 0;
        if (write_all(sock, MSG, sizeof MSG - 1))
            return -1;
        ssize_t len = read_line(sock, buf, sizeof buf, &have);
        if (len != (ssize_t)(sizeof MSG - 1) || memcmp(buf, MSG, (size_t)len) != 0)
            return -2;
    }
    return 0;
}

/* One epoll instance per process (made after the fork), watching fd. */
static int watch(int fd) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epfd = epoll_create1(EPOLL_CLOEXEC);
    return epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0;
}

int main(int argc, char **argv) {
    int sv[2];
    if (argc < 2) {
        fprintf(stderr, "usage: %s roundtrip|roundtrip-epoll|oneway OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB COUNT\n", argv[0]);
        return 2;
    }
    oneway = strcmp(argv[1], "oneway") == 0;
    int use_epoll = strcmp(argv[1], "roundtrip-epoll") == 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return 2;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        /* compare's two-CPU workloads: the child on its own CPU. */
        const char *cpu = getenv("BENCH_CHILD_CPU");
        if (cpu != NULL) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(atoi(cpu), &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        close(sv[0]);
        if (use_epoll && watch(sv[1]))
            _exit(2);
        child_serve(sv[1]);
    }
    close(sv[1]);
    sock = sv[0];
    if (use_epoll && watch(sock))
        return 2;
    argv[1] = argv[0];
    int rc = common_main(argc - 1, argv + 1);
    close(sock); /* the child sees EOF and exits */
    int status = 0;
    waitpid(pid, &status, 0);
    return rc ? rc : (status != 0);
}
