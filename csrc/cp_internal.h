/*
 * cp_internal.h - helpers shared between the C files of the core.  The
 * POSIX files use all of it; the Windows files the platform-neutral part
 * (CP_READ_CHUNK, cp__grow_cap, cp__grow, cp__ascii_prefix).  Not part of the cffi interface
 * (that is childproc.h alone).
 */
#ifndef CP_INTERNAL_H
#define CP_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "childproc.h"

/* Linux's extras -- pidfds, the clone child, clone3, close_range,
 * pidfd_spawn, splice, mremap -- are used where the kernel is Linux.  A
 * build with CP_PORTABLE_POSIX defined (CHILDPROC_PORTABLE_POSIX=1 at build
 * time, see csrc/build_cffi.py) leaves them out and takes the paths every
 * POSIX system has, the ones macOS runs: posix_spawn, vfork with an error
 * pipe, pipe() plus FD_CLOEXEC, a read/write pump.  It exists so those
 * paths are tested on Linux (scripts/portable_posix.sh); raw set*id calls
 * and PR_SET_PDEATHSIG stay, being how Linux must do those at all. */
#if defined(__linux__) && !defined(CP_PORTABLE_POSIX)
#define CP_LINUX 1
#else
#define CP_LINUX 0
#endif

/* A read chunk: Node's spawnSync reads 64 KiB at a time, and its maxBuffer
 * rule ("output is not truncated, whole chunks are kept") depends on it. */
#define CP_READ_CHUNK (64 * 1024)

/* The capacity that leaves room for `need` more bytes after `len`: `cap`
 * doubled until it does (`need` to start an empty buffer), so a large
 * output costs a logarithmic number of reallocs.  0 if it would overflow. */
static inline size_t cp__grow_cap(size_t cap, size_t len, size_t need)
{
    cap = cap ? cap * 2 : need;
    while (cap - len < need) {
        if (cap > SIZE_MAX / 4)
            return 0;
        cap *= 2;
    }
    return cap;
}

/* Room for `need` more bytes after `len` in the malloc'd *data of *cap
 * bytes.  0, or -ENOMEM with the buffer unchanged. */
static inline int cp__grow(char **data, size_t *cap, size_t len, size_t need)
{
    if (*cap - len >= need)
        return 0;
    size_t want = cp__grow_cap(*cap, len, need);
    char *p = want ? realloc(*data, want) : NULL;
    if (p == NULL)
        return -ENOMEM;
    *data = p;
    *cap = want;
    return 0;
}

/* How many bytes at the start of p[0..n) are ASCII (below 0x80): n when
 * all are.  Eight bytes at a time, in blocks the compiler vectorizes, so a
 * 100 MiB check runs at memory speed. */
static inline size_t cp__ascii_prefix(const char *p, size_t n)
{
    size_t i = 0;
    while (n - i >= 64) {
        uint64_t any = 0;
        for (size_t k = 0; k < 64; k += 8) {
            uint64_t word;
            memcpy(&word, p + i + k, 8);
            any |= word;
        }
        if (any & 0x8080808080808080ULL)
            break;
        i += 64;
    }
    while (i < n && !((unsigned char)p[i] & 0x80))
        i++;
    return i;
}

/* spawn_posix.c */
/* A cp_spawn_req flag of the C side only: the caller will not watch the
 * child through a pidfd, so cp_spawn need not open one (run_sync's untimed
 * runs, which end in a blocking waitpid).  Far from the public CP_SPAWN_*. */
#define CP__SPAWN_NO_PIDFD (1 << 30)
int cp__open_pidfd(int pid);               /* -1 where the kernel has none */
/* cp_spawn, with the parent's pipe ends still held (run_sync's). */
int cp__spawn_held(cp_spawn_req *req, cp_child *child);

/* pipe_posix.c */
int cp__pipe(int fds[2]);                  /* close-on-exec from birth   */
int cp__socketpair(int fds[2]);            /* AF_UNIX stream, likewise   */
int cp__set_nonblock(int fd, int on);
void cp__close(int *fd);                   /* close and mark -1, keeps errno */
/* The same, "held": a forked copy of the process closes them at once
 * (see pipe_posix.c).  Close them with cp__close, or cp__let_go them when
 * they pass to code that closes them otherwise (Python). */
int cp__pipe_held(int fds[2]);
int cp__socketpair_held(int fds[2]);
int cp__dup_held(int fd, int min_fd);      /* F_DUPFD_CLOEXEC: the new fd, or -errno */
void cp__let_go(int fd);
/* Read one chunk of at most CP_READ_CHUNK bytes from fd, appending to out.
 * Returns bytes read, 0 at EOF, or -errno (-EAGAIN when nothing is ready). */
long cp__read_append(int fd, cp_output *out);

#endif
