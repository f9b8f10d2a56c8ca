/*
 * pipe_posix.c - pipes and the byte-moving primitives of the POSIX core.
 *
 * 'pipe' stdio slots are pipe2() pairs, not socketpairs as in libuv: children
 * can open /dev/stdin, splice(2) works on them and their capacity can be
 * raised.  Every descriptor is close-on-exec from birth, so a concurrent
 * spawn in another thread can never inherit it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cp_internal.h"
#ifdef __linux__
#include <fcntl.h>
#endif

int cp__pipe(int fds[2])
{
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    return 0;
#else
    /* macOS has no pipe2: the flags are set right after, under no lock.  A
     * spawn racing in another thread between the two calls could inherit
     * these fds; POSIX_SPAWN_CLOEXEC_DEFAULT (used by spawn_posix.c on
     * Apple) is what closes that window there. */
    if (pipe(fds) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0) {
            int err = errno;
            close(fds[0]);
            close(fds[1]);
            return -err;
        }
    }
    return 0;
#endif
}

int cp__socketpair(int fds[2])
{
#ifdef SOCK_CLOEXEC
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    return 0;
#else
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0) {
            int err = errno;
            close(fds[0]);
            close(fds[1]);
            return -err;
        }
    }
    return 0;
#endif
}

int cp__set_nonblock(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (want != flags && fcntl(fd, F_SETFL, want) < 0)
        return -errno;
    return 0;
}

void cp__close(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
        *fd = -1;
    }
}

long cp__read_append(int fd, cp_output *out)
{
    /* Read straight into the growing result buffer: one copy from the
     * kernel, none through a bounce buffer.  The buffer doubles, so a
     * 100 MiB capture costs ~11 reallocs, most of them mremap'd by glibc. */
    static const size_t chunk = CP_READ_CHUNK;
    if (out->cap - out->len < chunk) {
        size_t cap = out->cap ? out->cap * 2 : chunk;
        while (cap - out->len < chunk)
            cap *= 2;
        char *data = realloc(out->data, cap);
        if (data == NULL)
            return -ENOMEM;
        out->data = data;
        out->cap = cap;
    }
    ssize_t n;
    do {
        n = read(fd, out->data + out->len, chunk);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    out->len += (size_t)n;
    return (long)n;
}

/* ------------------------------------------------------------------ */
/* The fd-to-fd pump (readable.pipe(dest) where both ends are fds).      */
/* ------------------------------------------------------------------ */

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

struct cp_pump {
    pthread_t thread;
    int in_fd, out_fd, wake_fd;
    int cancel[2]; /* cp_pump_cancel writes [1]; the thread polls [0] */
    uint64_t moved;
    int result;
};

/* Wait until fd is ready for `events` or the pump is cancelled. */
static int pump_wait(cp_pump *p, int fd, short events)
{
    struct pollfd pfd[2] = {{fd, events, 0}, {p->cancel[0], POLLIN, 0}};
    for (;;) {
        int n = poll(pfd, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (pfd[1].revents)
            return -ECANCELED;
        /* POLLHUP / POLLERR: let the next read or write report it. */
        return 0;
    }
}

/* read/write through one buffer: for what splice cannot do. */
static int pump_copy(cp_pump *p)
{
    char *buf = malloc(CP_READ_CHUNK);
    if (buf == NULL)
        return -ENOMEM;
    int rc = 0;
    for (;;) {
        ssize_t n = read(p->in_fd, buf, CP_READ_CHUNK);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN && (rc = pump_wait(p, p->in_fd, POLLIN)) == 0)
                continue;
            rc = rc ? rc : -errno;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(p->out_fd, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN && (rc = pump_wait(p, p->out_fd, POLLOUT)) == 0)
                    continue;
                rc = rc ? rc : -errno;
                goto out;
            }
            off += w;
            p->moved += (uint64_t)w;
        }
    }
out:
    free(buf);
    return rc;
}

static void *pump_main(void *arg)
{
    cp_pump *p = arg;
    sigset_t all;
    /* Signals stay with the interpreter's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    int rc = 0;
#ifdef __linux__
    int input_was_ready = 0;
    for (;;) {
        /* SPLICE_F_NONBLOCK makes the pipe side non-blocking whatever the
         * fd's flags, so a cancel is never stuck behind a blocked splice. */
        ssize_t n = splice(p->in_fd, NULL, p->out_fd, NULL, 1 << 20,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            p->moved += (uint64_t)n;
            input_was_ready = 0;
            continue;
        }
        if (n == 0)
            break; /* EOF */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            /* One poll per EAGAIN: the input is the usual reason (wait for
             * it); if the splice right after input became ready still
             * cannot move anything, the output is full (wait for that). */
            rc = input_was_ready ? pump_wait(p, p->out_fd, POLLOUT)
                                 : pump_wait(p, p->in_fd, POLLIN);
            if (rc < 0)
                break;
            input_was_ready = !input_was_ready;
            continue;
        }
        if (errno == EINVAL || errno == ENOSYS) {
            /* Neither end is a pipe, or an O_APPEND file: copy instead. */
            rc = pump_copy(p);
            break;
        }
        rc = -errno;
        break;
    }
#else
    rc = pump_copy(p);
#endif
    p->result = rc;
    /* Tell the owner's loop; the byte's value does not matter. */
    while (write(p->wake_fd, "p", 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

int cp_pump_start(int in_fd, int out_fd, int wake_fd, cp_pump **pump)
{
    cp_pump *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->in_fd = in_fd;
    p->out_fd = out_fd;
    p->wake_fd = wake_fd;
    int rc = cp__pipe(p->cancel);
    if (rc < 0) {
        free(p);
        return rc;
    }
    rc = pthread_create(&p->thread, NULL, pump_main, p);
    if (rc != 0) {
        close(p->cancel[0]);
        close(p->cancel[1]);
        free(p);
        return -rc;
    }
    *pump = p;
    return 0;
}

void cp_pump_cancel(cp_pump *pump)
{
    while (write(pump->cancel[1], "c", 1) < 0 && errno == EINTR)
        ;
}

int cp_pump_finish(cp_pump *pump, uint64_t *moved)
{
    pthread_join(pump->thread, NULL);
    int rc = pump->result;
    if (moved)
        *moved = pump->moved;
    close(pump->cancel[0]);
    close(pump->cancel[1]);
    free(pump);
    return rc;
}
