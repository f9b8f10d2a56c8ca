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
#include <unistd.h>

#include "cp_internal.h"

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
