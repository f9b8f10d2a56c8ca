/*
 * spawn_posix.c - process creation on Linux and macOS.
 *
 * Two paths, and never fork() of the interpreter (its page-table copy grows
 * with the parent's memory: 25 ms at 1 GiB, see docs/architecture.md, "Why not fork"):
 *
 *  - clone(CLONE_VM | CLONE_VFORK) with our own child function: the Linux
 *    default.  It does what glibc's posix_spawn does, plus what posix_spawn
 *    cannot express: uid/gid with setgroups (glibc's set*id wrappers must
 *    not run in a vfork child: they signal every thread of the parent to
 *    keep credentials in sync, bpo-35823, so raw syscalls are used).  It is
 *    also cheaper: the child's stack is kept for the next spawn instead of
 *    being mapped and unmapped each time (see take_stack), and the parent
 *    skips glibc's getrlimit per file action.  On macOS, vfork() with an
 *    error pipe.
 *  - posix_spawn: the macOS default, and on Linux when asked for
 *    (CP_SPAWN_USE_POSIX_SPAWN; the tests run both paths).  glibc >= 2.24
 *    implements it with clone(CLONE_VM | CLONE_VFORK), so its cost does not
 *    depend on the parent's size either.  File actions place the stdio fds,
 *    addchdir_np does cwd, SETSID/SETPGROUP the session, SETSIGDEF/
 *    SETSIGMASK give the child default dispositions and an empty mask, as
 *    libuv does.
 *
 * Both paths search PATH the way glibc's execvp does in Node's child (PATH
 * from the child's env, EACCES remembered while searching on, ENOEXEC run
 * through /bin/sh), and report errors as a negative errno plus the stage
 * that failed.  The child of the clone path reports through memory it
 * shares with the suspended parent; no pipe is needed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <paths.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h> /* setgroups where there are no raw syscalls */
#ifdef __linux__
#include <dlfcn.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "cp_internal.h"

extern char **environ;

#ifndef _PATH_DEFPATH
#define _PATH_DEFPATH "/usr/bin:/bin"
#endif
#ifndef _PATH_BSHELL
#define _PATH_BSHELL "/bin/sh"
#endif
#if defined(__linux__) && !defined(POSIX_SPAWN_SETSID)
#define POSIX_SPAWN_SETSID 0x80 /* glibc 2.26; older headers lack the name */
#endif
/* Numbers the build machine's headers may lack (manylinux_2_28's are from
 * before these calls); they are the same on every architecture, and a
 * kernel without the call answers ENOSYS, which every caller handles. */
#ifdef __linux__
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* ------------------------------------------------------------------ */
/* argv / envp: Python hands over NUL-separated blobs; one malloc turns  */
/* them into the pointer arrays execve wants.  Two spare slots in front   */
/* let the ENOEXEC fallback build ["/bin/sh", path, argv[1:]...] without  */
/* allocating in the child.                                               */
/* ------------------------------------------------------------------ */

typedef struct {
    char **argv;      /* argc entries + NULL                       */
    char **sh_argv;   /* argv - 1: sh_argv[0], [1] filled on ENOEXEC */
    char **envp;      /* envc entries + NULL, or environ            */
    char **block;     /* the one allocation behind argv and envp    */
} exec_arrays;

static int fill_ptrs(char **dst, const char *blob, int n)
{
    const char *p = blob;
    for (int i = 0; i < n; i++) {
        dst[i] = (char *)p;
        p += strlen(p) + 1;
    }
    dst[n] = NULL;
    return 0;
}

static int exec_arrays_init(exec_arrays *a, const cp_spawn_req *req)
{
    int envn = req->envp ? req->envc + 1 : 0;
    a->block = malloc(sizeof(char *) * (size_t)(2 + req->argc + 1 + envn));
    if (a->block == NULL)
        return -ENOMEM;
    a->sh_argv = a->block + 1;
    a->argv = a->block + 2;
    fill_ptrs(a->argv, req->argv, req->argc);
    if (req->envp) {
        a->envp = a->argv + req->argc + 1;
        fill_ptrs(a->envp, req->envp, req->envc);
    } else {
        a->envp = environ;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The stdio plan, prepared in the parent so the child only dup2()s.     */
/* ------------------------------------------------------------------ */

typedef struct {
    int *src;     /* per slot: the fd to put at index i, or -1: close i  */
    int *owned;   /* fds the parent closes once the child has them       */
    int nowned;
    int *storage; /* src and owned live here                             */
} stdio_plan;

static void stdio_plan_release(stdio_plan *plan)
{
    for (int k = 0; k < plan->nowned; k++)
        cp__close(&plan->owned[k]);
    plan->nowned = 0;
    free(plan->storage);
    plan->storage = NULL;
}

/* Undo the parent's ends too: used when the spawn fails. */
static void stdio_plan_abort(stdio_plan *plan, cp_spawn_req *req)
{
    for (int i = 0; i < req->nstdio; i++) {
        cp_stdio *s = &req->stdio[i];
        if (s->kind == CP_STDIO_PIPE_IN || s->kind == CP_STDIO_PIPE_OUT ||
            s->kind == CP_STDIO_IPC)
            cp__close(&s->fd);
    }
    stdio_plan_release(plan);
}

static int stdio_plan_init(stdio_plan *plan, cp_spawn_req *req)
{
    int n = req->nstdio;
    plan->nowned = 0;
    /* Each slot owns at most: the child's pipe end and one lifted dup;
     * plus one /dev/null for all ignored slots. */
    plan->storage = malloc(sizeof(int) * (size_t)(n + 2 * n + 1));
    if (plan->storage == NULL)
        return -ENOMEM;
    plan->src = plan->storage;
    plan->owned = plan->storage + n;

    int devnull = -1;
    for (int i = 0; i < n; i++) {
        cp_stdio *s = &req->stdio[i];
        int fds[2], rc;
        switch (s->kind) {
        case CP_STDIO_PIPE_IN:
        case CP_STDIO_PIPE_OUT:
            s->fd = -1;
            if ((rc = cp__pipe_held(fds)) < 0)
                return rc;
            /* fds[0] is the read end: the child's for PIPE_IN. */
            s->fd = s->kind == CP_STDIO_PIPE_IN ? fds[1] : fds[0];
            plan->src[i] = s->kind == CP_STDIO_PIPE_IN ? fds[0] : fds[1];
            plan->owned[plan->nowned++] = plan->src[i];
            /* O_NONBLOCK for the parent's end: after the spawn (see
             * parent_ends_nonblocking). */
            break;
        case CP_STDIO_IPC:
            s->fd = -1;
            if ((rc = cp__socketpair_held(fds)) < 0)
                return rc;
            s->fd = fds[0];
            plan->src[i] = fds[1];
            plan->owned[plan->nowned++] = fds[1];
            break;
        case CP_STDIO_FD:
            plan->src[i] = s->fd;
            break;
        case CP_STDIO_DUP:
            /* The same source as the earlier slot: dup2 of one fd twice. */
            if (s->fd < 0 || s->fd >= i)
                return -EINVAL;
            plan->src[i] = plan->src[s->fd];
            break;
        case CP_STDIO_IGNORE:
            if (i > 2) {
                /* Node leaves an ignored fd >= 3 closed in the child. */
                plan->src[i] = -1;
                break;
            }
            if (devnull < 0) {
                devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull < 0)
                    return -errno;
                plan->owned[plan->nowned++] = devnull;
            }
            plan->src[i] = devnull;
            break;
        default:
            return -EINVAL;
        }
    }

    /* Clobber safety: the child dup2()s slot by slot, so a source that is
     * another slot's target (say stdio [0, 2, 1], or a pipe that got fd 1
     * because the parent's stdout is closed) would be overwritten before
     * it is read.  Lift every such source above all targets first, with
     * F_DUPFD_CLOEXEC, which picks a free fd: no open fd is ever hit.  What
     * is left is either at its own index or above every target. */
    for (int i = 0; i < n; i++) {
        int f = plan->src[i];
        if (f >= 0 && f < n && f != i) {
            int lifted = cp__dup_held(f, n);
            if (lifted < 0)
                return lifted;
            plan->owned[plan->nowned++] = lifted;
            plan->src[i] = lifted;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* PATH search, shared by both paths.                                    */
/* ------------------------------------------------------------------ */

/* Errors that mean "not here, try the next PATH entry" (glibc execvp). */
static int search_goes_on(int err)
{
    return err == ENOENT || err == ENOTDIR || err == ESTALE ||
           err == ENODEV || err == ETIMEDOUT || err == EACCES;
}

/* Writes dir + "/" + file into buf; returns -ENAMETOOLONG if it does not
 * fit.  Async-signal-safe: the clone child uses it too. */
/* strchrnul, which macOS lacks. */
static const char *element_end(const char *p)
{
    while (*p && *p != ':')
        p++;
    return p;
}

static int join_path(char *buf, size_t size, const char *dir, size_t dlen,
                     const char *file, size_t flen)
{
    if (dlen == 0) {
        /* An empty PATH element is the current directory. */
        dir = ".";
        dlen = 1;
    }
    if (dlen + 1 + flen + 1 > size)
        return -ENAMETOOLONG;
    memcpy(buf, dir, dlen);
    buf[dlen] = '/';
    memcpy(buf + dlen + 1, file, flen + 1);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Path 1: posix_spawn.                                                   */
/* ------------------------------------------------------------------ */

#if CP_LINUX
/* What the running glibc offers.  Wheels are built against an old glibc
 * (manylinux) and run on newer ones, so these are looked up at run time,
 * as libuv and Rust do; without them the clone path serves. */
typedef int (*addchdir_fn)(posix_spawn_file_actions_t *, const char *);
typedef int (*addclosefrom_fn)(posix_spawn_file_actions_t *, int);
typedef int (*pidfd_spawn_fn)(int *, const char *,
                              const posix_spawn_file_actions_t *,
                              const posix_spawnattr_t *, char *const[],
                              char *const[]);
typedef pid_t (*pidfd_getpid_fn)(int);

static struct {
    int posix_spawn_ok;            /* glibc >= 2.24: vfork-based, reports exec errors */
    addchdir_fn addchdir;          /* glibc 2.29 */
    addclosefrom_fn addclosefrom;  /* glibc 2.34 */
    pidfd_spawn_fn pidfd_spawn;    /* glibc 2.39, with pidfd_getpid */
    pidfd_getpid_fn pidfd_getpid;
} libc;

#include <gnu/libc-version.h>
static void libc_probe(void)
{
    static int probed;
    if (__atomic_load_n(&probed, __ATOMIC_ACQUIRE))
        return;
    /* Racing threads compute the same values; the flag only saves work. */
    int major = 0, minor = 0;
    sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor);
    libc.posix_spawn_ok = major > 2 || (major == 2 && minor >= 24);
    libc.addchdir = (addchdir_fn)dlsym(RTLD_DEFAULT, "posix_spawn_file_actions_addchdir_np");
    libc.addclosefrom = (addclosefrom_fn)dlsym(RTLD_DEFAULT, "posix_spawn_file_actions_addclosefrom_np");
    pidfd_spawn_fn spawn = (pidfd_spawn_fn)dlsym(RTLD_DEFAULT, "pidfd_spawn");
    pidfd_getpid_fn getpid_ = (pidfd_getpid_fn)dlsym(RTLD_DEFAULT, "pidfd_getpid");
    if (spawn && getpid_) {
        libc.pidfd_getpid = getpid_;
        libc.pidfd_spawn = spawn;
    }
    __atomic_store_n(&probed, 1, __ATOMIC_RELEASE);
}

/* Can posix_spawn do all of `req`?  If not, the clone path will. */
static int posix_spawn_serves(const cp_spawn_req *req)
{
    libc_probe();
    return libc.posix_spawn_ok && libc.addclosefrom &&
           (req->cwd == NULL || libc.addchdir);
}

int cp__open_pidfd(int pid)
{
    /* Safe from pid reuse: the child is ours and unreaped until cp_wait. */
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd >= 0 ? fd : -1; /* pidfds are close-on-exec from birth */
}
#else
int cp__open_pidfd(int pid) { (void)pid; return -1; }
static int posix_spawn_serves(const cp_spawn_req *req) { (void)req; return 1; }
#endif

typedef struct {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    int have_attr, have_fa;
    int want_pidfd;
} spawn_setup;

static void spawn_setup_release(spawn_setup *s)
{
    if (s->have_fa)
        posix_spawn_file_actions_destroy(&s->fa);
    if (s->have_attr)
        posix_spawnattr_destroy(&s->attr);
}

static int spawn_setup_init(spawn_setup *s, const cp_spawn_req *req,
                            const stdio_plan *plan)
{
    int rc;
    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    sigset_t all, none;

    s->have_attr = s->have_fa = 0;
    s->want_pidfd = !(req->flags & CP__SPAWN_NO_PIDFD);
    if ((rc = posix_spawnattr_init(&s->attr)) != 0)
        return -rc;
    s->have_attr = 1;
    /* Signals 1-31 back to SIG_DFL (Python ignores SIGPIPE and SIGXFSZ;
     * the child must not inherit that) and nothing blocked, as libuv does.
     * Above 31 (the real-time signals) an ignored one stays ignored, as in
     * Node; glibc's child resets any with a handler.  (glibc also leaves
     * its own two internal signals ignored, which Node's child does not
     * show: the clone path does not do that.) */
    sigemptyset(&all);
    for (int sig = 1; sig < 32; sig++)
        sigaddset(&all, sig);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&s->attr, &all);
    posix_spawnattr_setsigmask(&s->attr, &none);
    if (req->flags & CP_SPAWN_SETSID) {
#ifdef POSIX_SPAWN_SETSID
        flags |= POSIX_SPAWN_SETSID;
#else
        return -ENOSYS;
#endif
    } else if (req->flags & CP_SPAWN_SETPGROUP) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&s->attr, 0);
    }
#ifdef __APPLE__
    /* macOS has no pipe2; closing everything not named below is what keeps
     * fds from leaking across a concurrent spawn there. */
    flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
#endif
    if ((rc = posix_spawnattr_setflags(&s->attr, flags)) != 0)
        return -rc;

    if ((rc = posix_spawn_file_actions_init(&s->fa)) != 0)
        return -rc;
    s->have_fa = 1;
    for (int i = 0; i < req->nstdio; i++) {
        int f = plan->src[i];
        if (f < 0) {
            rc = posix_spawn_file_actions_addclose(&s->fa, i);
        } else if (f == i) {
#ifdef __APPLE__
            rc = posix_spawn_file_actions_addinherit_np(&s->fa, i);
#else
            /* Already in place.  When it is close-on-exec, dup2(i, i) clears
             * that in glibc >= 2.29 (Austin Group issue 411).  When it is not
             * (the parent's own stdio, as a rule), there is nothing to do:
             * one fcntl here saves glibc two getrlimit calls and the child
             * two fcntl calls while the parent is suspended. */
            int fdflags = fcntl(i, F_GETFD);
            if (fdflags < 0 || (fdflags & FD_CLOEXEC))
                rc = posix_spawn_file_actions_adddup2(&s->fa, i, i);
            else
                rc = 0;
#endif
        } else {
            rc = posix_spawn_file_actions_adddup2(&s->fa, f, i);
        }
        if (rc != 0)
            return -rc;
    }
#if CP_LINUX
    /* Only the stdio slots reach the child.  Our own fds are close-on-exec
     * already; this also stops fds the interpreter inherited as
     * inheritable (a leaked pipe write end is how callers hang forever).
     * Node passes such fds through; subprocess's close_fds=True does not. */
    if ((rc = libc.addclosefrom(&s->fa, req->nstdio)) != 0)
        return -rc;
    if (req->cwd && (rc = libc.addchdir(&s->fa, req->cwd)) != 0)
        return -rc;
#else
#if defined(__linux__)
    /* The portable build on Linux (CP_PORTABLE_POSIX, tests only): this
     * stands in for macOS's POSIX_SPAWN_CLOEXEC_DEFAULT above. */
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&s->fa, req->nstdio)) != 0)
        return -rc;
#endif
    if (req->cwd &&
        (rc = posix_spawn_file_actions_addchdir_np(&s->fa, req->cwd)) != 0)
        return -rc;
#endif
    return 0;
}

static int spawn_one(const char *path, const spawn_setup *s, char **argv,
                     char **envp, cp_child *child)
{
    int pid = -1, rc;
#if CP_LINUX
    if (libc.pidfd_spawn) {
        /* The pidfd is born with the child: no window for pid reuse. */
        int pidfd = -1;
        rc = libc.pidfd_spawn(&pidfd, path, &s->fa, &s->attr, argv, envp);
        if (rc != 0)
            return -rc;
        child->pidfd = pidfd;
        child->pid = libc.pidfd_getpid(pidfd);
        return 0;
    }
#endif
    rc = posix_spawn(&pid, path, &s->fa, &s->attr, argv, envp);
    if (rc != 0)
        return -rc;
    child->pid = pid;
    child->pidfd = s->want_pidfd ? cp__open_pidfd(pid) : -1;
    return 0;
}

/* Run `path`; on ENOEXEC run it through /bin/sh as glibc's execvp does. */
static int spawn_path(const char *path, const spawn_setup *s,
                      exec_arrays *a, cp_child *child)
{
    int rc = spawn_one(path, s, a->argv, a->envp, child);
    if (rc == -ENOEXEC) {
        a->sh_argv[0] = (char *)_PATH_BSHELL;
        char *saved = a->argv[0];
        a->argv[0] = (char *)path; /* sh_argv[1] aliases argv[0] */
        rc = spawn_one(_PATH_BSHELL, s, a->sh_argv, a->envp, child);
        a->argv[0] = saved;
    }
    return rc;
}

/* posix_spawn reports a failed chdir like a failed exec, so after a failed
 * attempt the parent looks at the cwd itself: the child's errno for it is
 * what Node reports (ENOTDIR for a file, not the search's ENOENT).  Only the
 * failure path pays for this. */
static int cwd_error(const char *cwd)
{
    struct stat st;
    if (stat(cwd, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (access(cwd, X_OK) < 0)
        return -errno;
    return 0;
}

static int spawn_posix_spawn(const cp_spawn_req *req, exec_arrays *a,
                             const stdio_plan *plan, cp_child *child)
{
    spawn_setup s;
    int cwd_rc;
    int rc = spawn_setup_init(&s, req, plan);
    if (rc < 0) {
        spawn_setup_release(&s);
        return rc;
    }
    if (strchr(req->file, '/')) {
        rc = spawn_path(req->file, &s, a, child);
        if (rc < 0 && req->cwd && (cwd_rc = cwd_error(req->cwd)) < 0) {
            child->stage = CP_STAGE_CHDIR;
            rc = cwd_rc;
        }
    } else {
        const char *list = req->path ? req->path : _PATH_DEFPATH;
        size_t flen = strlen(req->file);
        char buf[PATH_MAX];
        int seen_eacces = 0;
        rc = -ENOENT;
        for (const char *p = list;; p++) {
            const char *end = element_end(p);
            int jr = join_path(buf, sizeof buf, p, (size_t)(end - p),
                               req->file, flen);
            /* A cheap existence check skips the clone a missing candidate
             * would cost.  Relative entries resolve in the child's cwd, so
             * they are only checked when the cwd stays the same. */
            int absolute = buf[0] == '/';
            if (jr == 0 && (absolute || req->cwd == NULL) &&
                access(buf, F_OK) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
                jr = -ENOENT;
            }
            if (jr == 0) {
                rc = spawn_path(buf, &s, a, child);
                if (rc < 0 && req->cwd && (cwd_rc = cwd_error(req->cwd)) < 0) {
                    child->stage = CP_STAGE_CHDIR;
                    rc = cwd_rc;
                    break;
                }
                if (rc == 0 || !search_goes_on(-rc))
                    break;
                if (rc == -EACCES)
                    seen_eacces = 1;
            }
            if (*end == '\0')
                break;
            p = end;
        }
        if (rc < 0 && child->stage != CP_STAGE_CHDIR && search_goes_on(-rc))
            rc = seen_eacces ? -EACCES : -ENOENT;
    }
    spawn_setup_release(&s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Path 2: clone(CLONE_VM | CLONE_VFORK) and our own child.              */
/* ------------------------------------------------------------------ */

typedef struct {
    const cp_spawn_req *req;
    exec_arrays *arrays;
    const stdio_plan *plan;
    /* Written by the child, read by the parent once the child has exec'd
     * or exited; the parent is suspended in between (CLONE_VFORK). */
    volatile int err;
    volatile int stage;
#if !CP_LINUX
    int max_fd; /* bound for closing inherited fds */
#endif
    pid_t parent_pid; /* for the die_with_parent race check */
    int handlers_cleared; /* clone3's CLONE_CLEAR_SIGHAND did it already */
#if !CP_LINUX
    int errpipe; /* without CLONE_VM the child reports through a pipe */
#endif
} child_args;

/* The child side.  It runs on its own stack in the parent's memory, with
 * every signal blocked, until execve.  Only raw system calls from here on:
 * no malloc, no stdio, no locks, nothing that touches the parent's state
 * except the two result fields above. */
static void child_fail(child_args *c, int stage, int err)
{
    c->err = err;
    c->stage = stage;
#if !CP_LINUX
    int msg[2] = {err, stage};
    (void)!write(c->errpipe, msg, sizeof msg);
#endif
    _exit(127);
}

static void child_exec(child_args *c, const char *path)
{
    exec_arrays *a = c->arrays;
    execve(path, a->argv, a->envp);
    if (errno == ENOEXEC) {
        /* sh_argv is [sh, path, argv[1:]...]; argv[0] is sh_argv[1].
         * Writing into the parent's array is fine: it is rebuilt for every
         * spawn and the parent is suspended. */
        a->sh_argv[0] = (char *)_PATH_BSHELL;
        a->argv[0] = (char *)path;
        execve(_PATH_BSHELL, a->sh_argv, a->envp);
        errno = ENOEXEC;
    }
}

static int child_main(void *arg)
{
    child_args *c = arg;
    const cp_spawn_req *req = c->req;
    const stdio_plan *plan = c->plan;
    struct sigaction dfl;
    sigset_t none;

    /* 1. Dispositions, while everything is still blocked.  Signals 1-31
     *    go back to SIG_DFL, as libuv does for Node (SIGKILL and SIGSTOP
     *    fail, as expected).  Above that, a handler goes too: a parent's
     *    handler must never run here, on shared memory (exec would reset
     *    it anyway); an ignored real-time signal stays ignored, as in
     *    Node.  CLONE_CLEAR_SIGHAND has done that second part already, in
     *    the kernel; without it each of those signals is looked at here.
     *    libc's internal signals refuse both calls and keep their handlers,
     *    which exec resets. */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < (c->handlers_cleared ? 32 : NSIG); sig++) {
        struct sigaction cur;
        if (sig >= 32 && (sigaction(sig, NULL, &cur) < 0 ||
                          cur.sa_handler == SIG_IGN || cur.sa_handler == SIG_DFL))
            continue;
        sigaction(sig, &dfl, NULL);
    }

    /* 2. Session or group: before anything that could fail visibly. */
    if ((req->flags & CP_SPAWN_SETSID) && setsid() < 0)
        child_fail(c, CP_STAGE_SESSION, errno);
    if (!(req->flags & CP_SPAWN_SETSID) && (req->flags & CP_SPAWN_SETPGROUP) &&
        setpgid(0, 0) < 0)
        child_fail(c, CP_STAGE_SESSION, errno);

    /* 3. stdio: the plan guarantees no source is clobbered by an earlier
     *    dup2.  dup2 leaves the copy inheritable; an fd already in place
     *    has its close-on-exec flag cleared instead. */
    for (int i = 0; i < req->nstdio; i++) {
        int f = plan->src[i];
        if (f < 0)
            close(i);
        else if (f == i) {
            if (fcntl(i, F_SETFD, 0) < 0)
                child_fail(c, CP_STAGE_STDIO, errno);
        } else if (dup2(f, i) < 0)
            child_fail(c, CP_STAGE_STDIO, errno);
    }

    /* 3b. Nothing else reaches the new program (see spawn_setup_init). */
#if CP_LINUX
    if (syscall(SYS_close_range, (unsigned)req->nstdio, ~0U, 0) < 0) {
        /* Kernels before 5.9: close one by one up to the fd limit (a raw
         * prlimit64: getrlimit is not on the async-signal-safe list). */
        struct rlimit rl;
        int max_fd = 65536;
        if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 &&
            rl.rlim_cur < (rlim_t)max_fd)
            max_fd = (int)rl.rlim_cur;
        for (int fd = req->nstdio; fd < max_fd; fd++)
            close(fd);
    }
#else
    for (int fd = req->nstdio; fd < c->max_fd; fd++)
        if (fd != c->errpipe)
            close(fd);
#endif

    /* 4. cwd. */
    if (req->cwd && chdir(req->cwd) < 0)
        child_fail(c, CP_STAGE_CHDIR, errno);

    /* 5. Credentials, as libuv orders them: groups (errors ignored, as
     *    libuv does: an unprivileged parent may still switch to its own
     *    ids), gid, uid.  Raw syscalls: they change this task only. */
    if (req->flags & (CP_SPAWN_SETUID | CP_SPAWN_SETGID)) {
#ifdef __linux__
        syscall(SYS_setgroups, 0, NULL);
        if ((req->flags & CP_SPAWN_SETGID) && syscall(SYS_setgid, req->gid) < 0)
            child_fail(c, CP_STAGE_IDS, errno);
        if ((req->flags & CP_SPAWN_SETUID) && syscall(SYS_setuid, req->uid) < 0)
            child_fail(c, CP_STAGE_IDS, errno);
#else
        setgroups(0, NULL);
        if ((req->flags & CP_SPAWN_SETGID) && setgid(req->gid) < 0)
            child_fail(c, CP_STAGE_IDS, errno);
        if ((req->flags & CP_SPAWN_SETUID) && setuid(req->uid) < 0)
            child_fail(c, CP_STAGE_IDS, errno);
#endif
    }

    /* 5b. die_with_parent: the kernel sends SIGKILL when the thread that
     *     created us exits (Python runs these spawns on a thread that lives
     *     as long as the process).  If the parent died before prctl took
     *     effect we were reparented already: go now. */
#ifdef __linux__
    if (req->flags & CP_SPAWN_DIE_WITH_PARENT) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
            child_fail(c, CP_STAGE_SESSION, errno);
        if (getppid() != c->parent_pid)
            _exit(127);
    }
#endif

    /* 6. An empty mask for the new program; signals pending now are
     *    delivered with default dispositions. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* 7. exec, searching PATH like execvp: EACCES is remembered and the
     *    search goes on; another error ends it. */
    if (strchr(req->file, '/')) {
        child_exec(c, req->file);
        child_fail(c, CP_STAGE_EXEC, errno);
    }
    const char *list = req->path ? req->path : _PATH_DEFPATH;
    size_t flen = strlen(req->file);
    char buf[PATH_MAX];
    int seen_eacces = 0, err = ENOENT;
    for (const char *p = list;; p++) {
        const char *end = element_end(p);
        int jr = join_path(buf, sizeof buf, p, (size_t)(end - p), req->file, flen);
        if (jr == 0) {
            child_exec(c, buf);
            err = errno;
            if (err == EACCES)
                seen_eacces = 1;
            else if (!search_goes_on(err))
                child_fail(c, CP_STAGE_EXEC, err);
        }
        if (*end == '\0')
            break;
        p = end;
    }
    child_fail(c, CP_STAGE_EXEC, seen_eacces ? EACCES : ENOENT);
    return 127;
}

#if CP_LINUX
/* The child's stack: generous, since glibc's execve and the PATH buffer
 * live there.  A few are kept for the next spawns instead of being mapped
 * and unmapped each time: a fresh mapping costs two system calls, a page
 * fault for each page the child touches and, at the unmap, a TLB shootdown
 * on the CPU the child ran on (together about 2% of spawning /bin/true
 * here).  Slots are taken and given back with atomic exchanges, so
 * concurrent spawns never share a stack and a fork() at any moment leaves
 * the copy a consistent pool. */
#define CHILD_STACK_SIZE (64 * 1024 + PATH_MAX)
#define KEPT_STACKS 4
static char *kept_stacks[KEPT_STACKS];
static int stacks_mapped;

static char *take_stack(void)
{
    for (int i = 0; i < KEPT_STACKS; i++) {
        char *s = __atomic_exchange_n(&kept_stacks[i], NULL, __ATOMIC_ACQUIRE);
        if (s != NULL)
            return s;
    }
    char *s = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s == MAP_FAILED)
        return NULL;
    __atomic_add_fetch(&stacks_mapped, 1, __ATOMIC_RELAXED);
    return s;
}

static void keep_stack(char *s)
{
    for (int i = 0; i < KEPT_STACKS; i++) {
        char *expected = NULL;
        if (__atomic_compare_exchange_n(&kept_stacks[i], &expected, s, 0,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            return;
    }
    munmap(s, CHILD_STACK_SIZE);
    __atomic_sub_fetch(&stacks_mapped, 1, __ATOMIC_RELAXED);
}

int cp_child_stacks_mapped(void)
{
    return __atomic_load_n(&stacks_mapped, __ATOMIC_RELAXED);
}
#else
int cp_child_stacks_mapped(void) { return 0; }
#endif

#if CP_LINUX && defined(__x86_64__)
/* clone3(2) with CLONE_CLEAR_SIGHAND (Linux >= 5.5): the kernel gives the
 * child default dispositions for every signal the parent handles, which
 * spares the child a sigaction call per real-time signal while the parent
 * waits (about 1% of spawning /bin/true).  glibc has no clone3 wrapper, and
 * a vfork-style child cannot return through C from a raw syscall, so this
 * small trampoline does what glibc's clone() does: the child, on its new
 * stack, calls fn(arg) and exits with what it returns.  x86_64 only, where
 * the tests run it; elsewhere glibc's clone() and the full loop serve. */
#define CP_HAVE_CLONE3 1
#define CP__STR2(x) #x
#define CP__STR(x) CP__STR2(x)
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

typedef struct { /* struct clone_args, CLONE_ARGS_SIZE_VER0 */
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
} cp_clone_args;

/* Returns the child's pid, or -errno.  r8 and r9 survive the syscall (only
 * rcx and r11 do not), so they carry fn and arg into the child. */
long cp__clone3(cp_clone_args *args, size_t size, int (*fn)(void *), void *arg);
__asm__(".text\n"
        ".globl cp__clone3\n"
        ".hidden cp__clone3\n"
        ".type cp__clone3, @function\n"
        "cp__clone3:\n"
        "    movq %rdx, %r8\n"
        "    movq %rcx, %r9\n"
        "    movl $" CP__STR(SYS_clone3) ", %eax\n"
        "    syscall\n"
        "    testq %rax, %rax\n"
        "    jnz 1f\n"
        "    xorl %ebp, %ebp\n" /* the child: the outermost frame */
        "    movq %r9, %rdi\n"
        "    callq *%r8\n"
        "    movl %eax, %edi\n"
        "    movl $" CP__STR(SYS_exit) ", %eax\n"
        "    syscall\n"
        "    hlt\n"
        "1:  ret\n"
        ".size cp__clone3, .-cp__clone3\n");

/* Set once clone3 with these flags is refused for good (an older kernel,
 * or a seccomp filter answering ENOSYS, as container runtimes do). */
static int clone3_refused;

/* The child through clone3: its pid, -errno for a real failure (EAGAIN,
 * ENOMEM), or -ENOSYS when clone3 cannot serve here and glibc's clone()
 * should (then c->handlers_cleared is 0 again).  EPERM is not remembered:
 * a filter may refuse one call and not the next. */
static long clone3_child(child_args *c, char *stack, size_t stack_size, int want_pidfd,
                         int *pidfd)
{
    if (__atomic_load_n(&clone3_refused, __ATOMIC_RELAXED))
        return -ENOSYS;
    cp_clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_VM | CLONE_VFORK | CLONE_CLEAR_SIGHAND | (want_pidfd ? CLONE_PIDFD : 0);
    ca.pidfd = (uint64_t)(uintptr_t)pidfd;
    ca.exit_signal = SIGCHLD;
    ca.stack = (uint64_t)(uintptr_t)stack;
    ca.stack_size = stack_size;
    c->handlers_cleared = 1;
    long r = cp__clone3(&ca, sizeof ca, child_main, c);
    if (r == -ENOSYS || r == -EINVAL || r == -E2BIG || r == -EPERM) {
        if (r != -EPERM)
            __atomic_store_n(&clone3_refused, 1, __ATOMIC_RELAXED);
        c->handlers_cleared = 0;
        return -ENOSYS;
    }
    return r;
}
#endif

static int spawn_clone(const cp_spawn_req *req, exec_arrays *a,
                       const stdio_plan *plan, cp_child *child)
{
    child_args c = {.req = req, .arrays = a, .plan = plan, .err = 0, .stage = 0};
    if (req->flags & CP_SPAWN_DIE_WITH_PARENT)
        c.parent_pid = getpid();
#if !CP_LINUX
    long open_max = sysconf(_SC_OPEN_MAX);
    c.max_fd = open_max < 0 || open_max > 65536 ? 65536 : (int)open_max;
#endif
    sigset_t all, old;
    int pid, saved_errno;

    /* Block everything so no handler of the parent's runs in the child
     * before it resets them; the parent's mask comes back right after. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);

#if CP_LINUX
    size_t stack_size = CHILD_STACK_SIZE;
    char *stack = take_stack();
    if (stack == NULL) {
        saved_errno = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        child->stage = CP_STAGE_FORK;
        return -saved_errno;
    }
    int pidfd = -1;
    int want_pidfd = !(req->flags & CP__SPAWN_NO_PIDFD);
    long r = -ENOSYS;
#ifdef CP_HAVE_CLONE3
    r = clone3_child(&c, stack, stack_size, want_pidfd, &pidfd);
#endif
    if (r != -ENOSYS) {
        pid = r < 0 ? -1 : (int)r;
        if (r < 0)
            errno = (int)-r;
    } else {
        pid = clone(child_main, stack + stack_size,
                    CLONE_VM | CLONE_VFORK | (want_pidfd ? CLONE_PIDFD : 0) | SIGCHLD, &c, &pidfd);
        if (pid < 0 && errno == EINVAL && want_pidfd) {
            /* Kernels before 5.2 have no CLONE_PIDFD. */
            pidfd = -1;
            pid = clone(child_main, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
            if (pid > 0)
                pidfd = cp__open_pidfd(pid);
        }
    }
    saved_errno = errno;
    keep_stack(stack);
#else
    int errpipe[2];
    int rc = cp__pipe(errpipe);
    if (rc < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        child->stage = CP_STAGE_PIPE;
        return rc;
    }
    c.errpipe = errpipe[1];
    /* macOS marks vfork deprecated ("use posix_spawn or fork") but keeps
     * it working.  This path serves only what posix_spawn cannot express
     * (uid/gid), and fork() would copy the interpreter's page tables. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
#endif
    pid = vfork();
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
    if (pid == 0)
        child_main(&c);
    saved_errno = errno;
    int pidfd = -1;
    close(errpipe[1]);
    if (pid > 0) {
        int msg[2];
        ssize_t n;
        do {
            n = read(errpipe[0], msg, sizeof msg);
        } while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof msg) {
            c.err = msg[0];
            c.stage = msg[1];
        }
    }
    close(errpipe[0]);
#endif
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (pid < 0) {
        child->stage = CP_STAGE_FORK;
        return -saved_errno;
    }
    if (c.err) {
        /* The child has _exit'ed (or is about to): reap it now so a failed
         * spawn leaves no zombie. */
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (pidfd >= 0)
            close(pidfd);
        child->stage = c.stage;
        return -c.err;
    }
    child->pid = pid;
    child->pidfd = pidfd;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The warm start's clone (src/childproc/_warm, docs/architecture.md,    */
/* "Warm start").                                                         */
/* ------------------------------------------------------------------ */

/* fork() of the calling (single-threaded) zygote, except that the new
 * process is a child of the zygote's parent: CLONE_PARENT.  The parent
 * that asked for it gets its SIGCHLD, can waitid()/pidfd_open() it, and
 * its pid cannot be recycled before that parent reaps it.  A NULL stack
 * makes it fork-like: the child runs on a copy-on-write copy of the
 * caller's stack and returns from here with 0.
 *
 * Python calls this through ctypes.PyDLL, which keeps the GIL across the
 * call, between PyOS_BeforeFork and PyOS_AfterFork_*, exactly as os.fork
 * does; a cffi call would release the GIL around the clone.  glibc's own
 * fork bookkeeping does not run (no pthread_atfork handlers, the thread
 * descriptor keeps the zygote's tid): glibc >= 2.34 asks the kernel for
 * the tid in raise() and pthread_kill() on the calling thread, so signals
 * a Python child raises at itself still reach it.  Returns the pid, 0 in
 * the child, or -errno; -ENOSYS off Linux. */
int cp_clone_parent(void)
{
#if CP_LINUX
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), NULL, NULL, NULL, NULL);
    return pid < 0 ? -errno : (int)pid;
#else
    return -ENOSYS;
#endif
}

/* ------------------------------------------------------------------ */

int cp_spawn(cp_spawn_req *req, cp_child *child)
{
    int rc = cp__spawn_held(req, child);
    if (rc == 0) {
        /* The parent's ends go to Python, which closes them itself. */
        for (int i = 0; i < req->nstdio; i++) {
            int k = req->stdio[i].kind;
            if (k == CP_STDIO_PIPE_IN || k == CP_STDIO_PIPE_OUT || k == CP_STDIO_IPC)
                cp__let_go(req->stdio[i].fd);
        }
    }
    return rc;
}

/* O_NONBLOCK on the parent's pipe and socket ends, once the child has
 * started: the flag lives on the open file description, so only the
 * parent's end may get it (the child's stays blocking), and the child never
 * uses the parent's end (close-on-exec).  Set before the spawn, these
 * F_SETFLs were on the path to the child's exec, the parent suspended in
 * vfork meanwhile; set here, they overlap the child's run.  A new pipe end
 * has no other status flag to keep, so one F_SETFL does it (no F_GETFL),
 * and on an fd of our own it cannot fail. */
static void parent_ends_nonblocking(const cp_spawn_req *req)
{
    for (int i = 0; i < req->nstdio; i++) {
        const cp_stdio *s = &req->stdio[i];
        if (s->kind == CP_STDIO_PIPE_IN || s->kind == CP_STDIO_PIPE_OUT || s->kind == CP_STDIO_IPC)
            (void)fcntl(s->fd, F_SETFL, O_NONBLOCK);
    }
}

int cp__spawn_held(cp_spawn_req *req, cp_child *child)
{
    exec_arrays arrays;
    stdio_plan plan = {0};
    int rc;

    child->pid = 0;
    child->pidfd = -1;
    child->stage = CP_STAGE_NONE;

    if ((rc = exec_arrays_init(&arrays, req)) < 0) {
        child->stage = CP_STAGE_FORK;
        return rc;
    }
    if ((rc = stdio_plan_init(&plan, req)) < 0) {
        child->stage = CP_STAGE_PIPE;
        stdio_plan_abort(&plan, req);
        free(arrays.block);
        return rc;
    }

#if CP_LINUX
    int clone_first = !(req->flags & CP_SPAWN_USE_POSIX_SPAWN); /* see the top */
#else
    int clone_first = 0;
#endif
    int use_clone = clone_first ||
                    (req->flags & (CP_SPAWN_SETUID | CP_SPAWN_SETGID | CP_SPAWN_USE_CLONE |
                                   CP_SPAWN_DIE_WITH_PARENT)) ||
                    !posix_spawn_serves(req);
    if (use_clone) {
        rc = spawn_clone(req, &arrays, &plan, child);
    } else {
        rc = spawn_posix_spawn(req, &arrays, &plan, child);
        if (rc < 0 && child->stage == CP_STAGE_NONE)
            child->stage = rc == -EAGAIN || rc == -ENOMEM ? CP_STAGE_FORK : CP_STAGE_EXEC;
    }
    free(arrays.block);
    if (rc < 0) {
        stdio_plan_abort(&plan, req);
        return rc;
    }
    stdio_plan_release(&plan);
    if (req->flags & CP_SPAWN_NONBLOCK)
        parent_ends_nonblocking(req);
    return 0;
}

int cp_kill(cp_child *child, int sig)
{
#if CP_LINUX
    if (child->pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, child->pidfd, sig, NULL, 0) == 0)
            return 0;
        if (errno != ENOSYS)
            return -errno;
    }
#endif
    if (child->pid <= 0)
        return -ESRCH;
    return kill(child->pid, sig) < 0 ? -errno : 0;
}

int cp_wait(cp_child *child, int *status)
{
    int rc = 0;
    /* waitpid on our own pid only: never waitpid(-1), which would steal
     * other libraries' children. */
    while (waitpid(child->pid, status, 0) < 0) {
        if (errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    cp__close(&child->pidfd);
    return rc;
}

int cp_kill_tree(cp_child *child, int sig)
{
    /* The child leads its own process group (CP_SPAWN_SETPGROUP). */
    if (child->pid <= 0)
        return -ESRCH;
    return killpg(child->pid, sig) < 0 ? -errno : 0;
}
