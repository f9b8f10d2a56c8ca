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
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cp_internal.h"
#ifdef __linux__
#include <fcntl.h>
#endif

int cp__pipe(int fds[2])
{
#if CP_LINUX || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
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

/* ------------------------------------------------------------------ */
/* What a forked copy of the process must not keep.                      */
/* ------------------------------------------------------------------ */

/* os.fork() in another thread (multiprocessing's 'fork' workers, say)
 * copies every fd, close-on-exec or not.  The fds that only C knows -- a
 * spawn's pipes while the child gets its ends (both ends, and the lifted
 * dups), a *_sync run's ends until they close -- would keep a child's
 * stdin open in the copy: the child never sees EOF, and the run waits for
 * the copy to exit.  So they are "held": made and closed under a lock that
 * fork's prepare handler takes too, so the set is exact at the fork, and
 * the copy closes every held fd at once (no code in the copy knows these
 * numbers: the C frames that did are the parent's).  Python's own fds are
 * let go of in src/childproc/_runtime/forksafe.py.  fds above CP__HELD_MAX are not tracked. */
#define CP__HELD_MAX 65536
static uint64_t held[CP__HELD_MAX / 64];
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t held_once = PTHREAD_ONCE_INIT;

static void held_before_fork(void) { pthread_mutex_lock(&held_lock); }
static void held_after_fork_parent(void) { pthread_mutex_unlock(&held_lock); }

static void held_after_fork_child(void)
{
    /* Only close(), a syscall: safe in the child of a fork. */
    for (int w = 0; w < CP__HELD_MAX / 64; w++) {
        uint64_t bits = held[w];
        while (bits) {
            int b = __builtin_ctzll(bits);
            close(w * 64 + b);
            bits &= bits - 1;
        }
        held[w] = 0;
    }
    pthread_mutex_unlock(&held_lock); /* taken by this thread, before the fork */
}

static void held_init(void)
{
    pthread_atfork(held_before_fork, held_after_fork_parent, held_after_fork_child);
}

static void held_enter(void)
{
    pthread_once(&held_once, held_init);
    pthread_mutex_lock(&held_lock);
}

static void held_mark(int fd, int on)
{
    if (fd < 0 || fd >= CP__HELD_MAX)
        return;
    /* Atomic, for cp__close's look without the lock. */
    if (on)
        __atomic_fetch_or(&held[fd / 64], UINT64_C(1) << (fd % 64), __ATOMIC_RELAXED);
    else
        __atomic_fetch_and(&held[fd / 64], ~(UINT64_C(1) << (fd % 64)), __ATOMIC_RELAXED);
}

static int make_held(int (*make)(int[2]), int fds[2])
{
    held_enter();
    int rc = make(fds);
    if (rc == 0) {
        held_mark(fds[0], 1);
        held_mark(fds[1], 1);
    }
    pthread_mutex_unlock(&held_lock);
    return rc;
}

int cp__pipe_held(int fds[2]) { return make_held(cp__pipe, fds); }
int cp__socketpair_held(int fds[2]) { return make_held(cp__socketpair, fds); }

int cp__dup_held(int fd, int min_fd)
{
    held_enter();
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, min_fd);
    int rc = dup < 0 ? -errno : dup;
    held_mark(dup, 1);
    pthread_mutex_unlock(&held_lock);
    return rc;
}

void cp__let_go(int fd)
{
    held_enter();
    held_mark(fd, 0);
    pthread_mutex_unlock(&held_lock);
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
        /* Under the lock when held: a fork between the close and the mark
         * would have the copy close a number reused meanwhile. */
        int was_held = *fd < CP__HELD_MAX &&
                       (__atomic_load_n(&held[*fd / 64], __ATOMIC_RELAXED) >> (*fd % 64) & 1);
        if (was_held)
            held_enter();
        close(*fd);
        if (was_held) {
            held_mark(*fd, 0);
            pthread_mutex_unlock(&held_lock);
        }
        errno = saved;
        *fd = -1;
    }
}

/* read(2), retried on EINTR; -errno, with EWOULDBLOCK as -EAGAIN. */
static long read_some(int fd, char *buf, size_t max)
{
    ssize_t n;
    do {
        n = read(fd, buf, max);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return (long)n;
}

long cp__read_append(int fd, cp_output *out)
{
    /* Read straight into the growing result buffer: one copy from the
     * kernel, none through a bounce buffer.  The buffer doubles, so a
     * 100 MiB capture costs ~11 reallocs, most of them mremap'd by glibc. */
    int rc = cp__grow(&out->data, &out->cap, out->len, CP_READ_CHUNK);
    if (rc < 0)
        return rc;
    long n = read_some(fd, out->data + out->len, CP_READ_CHUNK);
    if (n > 0)
        out->len += (size_t)n;
    return n;
}

/* ---- cp_collector: a stream's whole output --------------------------
 *
 * Where the time goes in capturing 100 MiB is not the copies themselves
 * but the page faults of the memory they land in: every fresh 4 KiB page
 * is a trap and a zeroing, and on a VM that costs as much as copying the
 * page several times over.  A read into a growing buffer pays that once,
 * as any capture must.  Copying the result into the bytes object Python
 * returns would pay it a second time, after EOF, when nothing else runs.
 * So a large collector lives in a mapping of its own, with its data at
 * the same offset within a page as the destination's (the caller says
 * which, page_offset), and cp_collector_move hands its pages over with
 * mremap: page-table entries change owner, nothing is copied or faulted.
 * Only the partial pages at either end are copied.
 *
 * The faults themselves cost more than the zeroing they do: a read into
 * fresh memory traps once per 4 KiB page.  So a mapped buffer asks for the
 * pages of each read in one call first (MADV_POPULATE_WRITE, Linux 5.14),
 * which does the same work without a trap per page: a quarter of the
 * parent's CPU time for a 100 MiB capture on a VM.  Where the kernel lacks
 * it, the reads fault as before. */

#if CP_LINUX
#include <sys/mman.h>
/* Below this a buffer stays malloc'd: moving pages is not worth a mapping. */
#define CP_COLLECT_MAP_MIN ((size_t)1 << 20)

static size_t page_size(void)
{
    static size_t page;
    if (page == 0)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}
#endif

/* Room for `max` more bytes in c: doubling, so the reads stay as large as
 * asked (a read never comes back short for want of room, which the caller
 * would take for an empty pipe). */
static int collect_grow(cp_collector *c, size_t max)
{
    if (c->cap - c->len >= max)
        return 0;
    size_t cap = cp__grow_cap(c->cap, c->len, max);
    if (cap == 0)
        return -ENOMEM;
#if CP_LINUX
    if (cap >= CP_COLLECT_MAP_MIN) {
        size_t page = page_size();
        /* Once mapped, the data keeps its offset: mremap moves whole pages. */
        size_t lead = c->mapped ? (uintptr_t)c->data % page : c->page_offset % page;
        size_t size = (lead + cap + page - 1) / page * page;
        char *map;
        if (c->mapped) {
            /* Grows in place or moves the page tables: no copy. */
            map = mremap(c->data - lead, c->mapped, size, MREMAP_MAYMOVE);
            if (map == MAP_FAILED)
                return -ENOMEM;
        } else {
            map = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (map == MAP_FAILED)
                return -ENOMEM;
            if (c->len)
                memcpy(map + lead, c->data, c->len);
            free(c->data);
        }
        c->data = map + lead;
        c->cap = size - lead;
        c->mapped = size;
        return 0;
    }
#endif
    return cp__grow(&c->data, &c->cap, c->len, max);
}

#if CP_LINUX
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* older headers; an older kernel says EINVAL */
#endif
static int populate_unsupported; /* atomic: collectors on several threads */

/* Put in place the pages of data[len..len+max) not yet there (see above).
 * Pages past ready were never touched; those before it were. */
static void collect_populate(cp_collector *c, size_t max)
{
    size_t page = page_size();
    size_t end = c->len + max;
    if (end <= c->ready || __atomic_load_n(&populate_unsupported, __ATOMIC_RELAXED))
        return;
    char *base = c->data - (uintptr_t)c->data % page; /* the mapping */
    char *from = c->data + (c->ready > c->len ? c->ready : c->len);
    from -= (uintptr_t)from % page;
    char *to = c->data + end;
    to += (page - (uintptr_t)to % page) % page;
    if (to > base + c->mapped)
        to = base + c->mapped;
    if (from >= to)
        return;
    if (madvise(from, (size_t)(to - from), MADV_POPULATE_WRITE) == 0)
        c->ready = (size_t)(to - c->data);
    else if (errno == EINVAL)
        __atomic_store_n(&populate_unsupported, 1, __ATOMIC_RELAXED);
    /* else (ENOMEM, EINTR...): the read faults its pages in, as it would */
}
#endif

long cp_read_append(int fd, cp_collector *c, size_t max)
{
    if (max == 0 || max > SSIZE_MAX)
        return -EINVAL;
    int rc = collect_grow(c, max);
    if (rc < 0)
        return rc;
#if CP_LINUX
    if (c->mapped)
        collect_populate(c, max);
#endif
    long n = read_some(fd, c->data + c->len, max);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

void cp_collector_move(cp_collector *c, char *dst)
{
    size_t n = c->len;
#if CP_LINUX
    size_t page = page_size();
    uintptr_t off = (uintptr_t)dst % page;
    if (c->mapped && n >= 2 * page && off == (uintptr_t)c->data % page) {
        size_t head = off ? page - off : 0;
        size_t body = (n - head) / page * page;
        /* Only pages wholly inside dst[0..n) are replaced, so whatever
         * shares dst's first or last page (the object's header, the
         * allocator's bookkeeping, the NUL after a bytes object's data)
         * is left alone; those ends are copied.  The pages put in place
         * are private anonymous memory, as malloc's own are; dst must be
         * fresh memory that nobody else looks at yet. */
        char *to = dst + head;
        if (mremap(c->data + head, body, body, MREMAP_MAYMOVE | MREMAP_FIXED,
                   to) == MAP_FAILED) {
            /* Linux unmaps the destination before it moves, so a move that
             * fails after that (ENOMEM: out of mappings) leaves a hole in
             * dst.  Put fresh memory there and copy.  If even that fails,
             * dst stays a hole in a live object: stopping is all that is
             * left (this takes a process at its map count limit). */
            if (mmap(to, body, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
                abort();
            memcpy(to, c->data + head, body);
        }
        memcpy(dst, c->data, head);
        memcpy(to + body, c->data + head + body, n - head - body);
        cp_collector_free(c); /* a moved range is a hole now: fine */
        return;
    }
#endif
    if (n)
        memcpy(dst, c->data, n);
    cp_collector_free(c);
}

size_t cp_collector_ascii(const cp_collector *c)
{
    return c->len ? cp__ascii_prefix(c->data, c->len) : 0;
}

void cp_collector_free(cp_collector *c)
{
#if CP_LINUX
    if (c->mapped)
        munmap(c->data - (uintptr_t)c->data % page_size(), c->mapped);
    else
#endif
        free(c->data);
    c->data = NULL;
    c->len = 0;
    c->cap = 0;
    c->mapped = 0;
    c->ready = 0;
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
#if CP_LINUX
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

/* ------------------------------------------------------------------ */
/* Spinning before a wait (childproc.h; docs/architecture.md, "Spinning
 * before a wait").  A zero-timeout poll() of the epoll fd per turn: the
 * kernel's own readiness test, which takes no event.  (An epoll_wait here
 * would take one: a one-shot fd's only report -- a pidfd's, the exit --
 * would be gone before the caller's epoll_wait.) */

#if CP_LINUX
#include <poll.h>
#include <sched.h>
#include <time.h>

int cp_spin_wait(int epfd, int64_t max_ns)
{
    struct timespec t0, now;
    struct pollfd pfd = {epfd, POLLIN, 0};
    if (clock_gettime(CLOCK_MONOTONIC, &t0) != 0)
        return -errno;
    for (;;) {
        int n = poll(&pfd, 1, 0);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -errno;
        if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
            return -errno;
        if ((int64_t)(now.tv_sec - t0.tv_sec) * 1000000000 + (now.tv_nsec - t0.tv_nsec) >= max_ns)
            return 0;
        /* Polite: a thread queued on this CPU -- the very process we wait
         * for, woken onto it -- runs first instead of after our slice. */
        sched_yield();
    }
}
#else
int cp_spin_wait(int epfd, int64_t max_ns)
{
    (void)epfd;
    (void)max_ns;
    return -ENOSYS;
}
#endif
