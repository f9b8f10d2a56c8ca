/*
 * childproc.h - the one header of the C core.
 *
 * cffi's cdef reads this file as it is, minus the lines that start with '#'
 * (see csrc/build_cffi.py), so everything between the include guard is
 * plain declarations: enums instead of #defines, fixed-width types.
 *
 * The split: Python validates arguments and builds argv/env; the C core does
 * everything from "here is argv, env and a stdio plan" to "here is a pid, a
 * pidfd and the parent's pipe ends", plus the whole *_sync loop.  Every
 * function returns 0 or a negative errno; nothing here calls into Python.
 */
#ifndef CHILDPROC_H
#define CHILDPROC_H

#include <stddef.h>
#include <stdint.h>

/* What goes at stdio index i in the child. */
enum {
    CP_STDIO_IGNORE = 0,   /* 0-2: /dev/null; 3 and up: left closed (Node)  */
    CP_STDIO_PIPE_IN = 1,  /* a pipe the child reads; the parent writes      */
    CP_STDIO_PIPE_OUT = 2, /* a pipe the child writes; the parent reads      */
    CP_STDIO_FD = 3,       /* the parent's descriptor `fd`, dup'd to index i */
    CP_STDIO_IPC = 4,      /* one end of an AF_UNIX SOCK_STREAM socketpair:
                              the message channel (SCM_RIGHTS needs a socket) */
    CP_STDIO_DUP = 5       /* whatever the child gets at the lower index `fd`
                              (subprocess.STDOUT in slot 2: 2>&1)           */
};

typedef struct {
    int kind; /* CP_STDIO_* */
    int fd;   /* CP_STDIO_FD: the parent's fd.  CP_STDIO_DUP: a child index
                 below this slot's.  Pipes and IPC: cp_spawn stores the
                 parent's end here (close-on-exec).  Else -1.               */
} cp_stdio;

enum {
    CP_SPAWN_SETSID = 1,      /* detached: the child leads a new session     */
    CP_SPAWN_SETPGROUP = 2,   /* the child leads its own process group       */
    CP_SPAWN_SETUID = 4,      /* switch to `uid` (forces the clone path)     */
    CP_SPAWN_SETGID = 8,      /* switch to `gid` (forces the clone path)     */
    CP_SPAWN_USE_CLONE = 16,  /* take the clone path (Linux: the default)    */
    CP_SPAWN_NONBLOCK = 32,   /* the parent's pipe ends are O_NONBLOCK (the
                                 child's ends always stay blocking); Windows:
                                 its pipe ends are always overlapped         */
    CP_SPAWN_VERBATIM_ARGS = 64, /* Windows: argv joined without quoting
                                    (Node's windowsVerbatimArguments)        */
    CP_SPAWN_HIDE = 128,      /* Windows: no console window (windowsHide)    */
    CP_SPAWN_DIE_WITH_PARENT = 256, /* the child dies with this process
                                      (Windows: a kill-on-close job)         */
    CP_SPAWN_USE_POSIX_SPAWN = 512 /* take the posix_spawn path where it can
                                      serve (macOS: the default; tests run
                                      both paths everywhere)                 */
};

/* Where a failed spawn stopped; Python turns (errno, stage) into an error. */
enum {
    CP_STAGE_NONE = 0,
    CP_STAGE_PIPE = 1,    /* creating the stdio pipes (EMFILE, ENFILE)      */
    CP_STAGE_FORK = 2,    /* creating the process (EAGAIN, ENOMEM)          */
    CP_STAGE_STDIO = 3,   /* placing the stdio fds in the child             */
    CP_STAGE_SESSION = 4, /* setsid / setpgid                               */
    CP_STAGE_CHDIR = 5,   /* cwd                                            */
    CP_STAGE_IDS = 6,     /* setgroups / setgid / setuid (EPERM)            */
    CP_STAGE_EXEC = 7     /* execve (ENOENT, EACCES, E2BIG, ...)            */
};

typedef struct {
    const char *file; /* executable; searched in `path` unless it has a '/' */
    const char *argv; /* argc NUL-terminated strings back to back           */
    int argc;
    const char *envp; /* envc "KEY=VALUE\0" strings back to back; NULL means
                         the parent's own environ, which Python's os.environ
                         writes through to                                  */
    int envc;
    const char *path; /* PATH to search; NULL: libuv's default list         */
    const char *cwd;  /* NULL: the parent's cwd                             */
    cp_stdio *stdio;
    int nstdio;
    int flags; /* CP_SPAWN_* */
    uint32_t uid;
    uint32_t gid;
} cp_spawn_req;

typedef struct {
    int pid;   /* > 0 once spawned                                          */
    int pidfd; /* a pidfd for the child, or -1 where the kernel has none;
                  Windows: the process HANDLE (fits in 32 bits by contract) */
    int stage; /* CP_STAGE_* of a failure, CP_STAGE_NONE on success         */
    int job;   /* Windows with CP_SPAWN_SETPGROUP (kill_tree): a job object
                  HANDLE holding the child and every process it starts (no
                  breakaway), for cp_kill_tree; the caller closes it.  Else
                  0 (POSIX: the process group is the child's pid)          */
} cp_child;

/* Spawn per `req`.  On success the parent's pipe ends are in req->stdio[i].fd
 * and the child's ends are closed.  On failure nothing is left open, no
 * process is left behind, and child->stage says where it stopped. */
int cp_spawn(cp_spawn_req *req, cp_child *child);

/* Send `sig` to the child (0 tests).  Through the pidfd where there is one,
 * so a recycled pid is never hit; -ESRCH once the child is gone. */
int cp_kill(cp_child *child, int sig);

/* Send `sig` to the child's whole tree (kill_tree): POSIX: its process
 * group (the child leads it, CP_SPAWN_SETPGROUP); Windows: TerminateJobObject
 * on child->job for TERM/KILL/INT/QUIT, 0 probes for a live member.  -ESRCH
 * once nothing is left. */
int cp_kill_tree(cp_child *child, int sig);

/* Wait for the child to end, blocking; reaps it and closes its pidfd.
 * *status gets the raw wait status (WIFEXITED / WTERMSIG decode it). */
int cp_wait(cp_child *child, int *status);

/* How many stacks for the clone path's child are mapped now: the ones kept
 * for the next spawns (at most 4) plus those of spawns under way.  0 where
 * there is no clone path.  For tests and diagnostics. */
int cp_child_stacks_mapped(void);

/* The warm start (src/childproc/_warm): fork() of the calling process
 * whose child belongs to the caller's parent (clone(CLONE_PARENT |
 * SIGCHLD)).  The pid, 0 in the new process, or -errno; -ENOSYS off Linux.
 * Called through ctypes with the GIL held, never through cffi's lib. */
int cp_clone_parent(void);

/* ---- the *_sync loop (run_sync.c) ---------------------------------- */

typedef struct {
    char *data; /* collected bytes of an output pipe; malloc'd by C      */
    size_t len;
    size_t cap;
} cp_output;

typedef struct {
    const char *input; /* bytes written to stdio[0] when it is PIPE_IN     */
    size_t input_len;
    int64_t timeout_ns;  /* <= 0: none                                   */
    int kill_signal;     /* sent on timeout or max_buffer                */
    uint64_t max_buffer; /* all output pipes together; 0: unlimited      */
    int kill_group;      /* kill_tree: signal the child's process group  */
    int64_t force_kill_after_ns; /* > 0: SIGKILL if kill_signal did not
                                    end the child within this time       */
    int (*interrupted)(void); /* asked when a wait returns EINTR (a signal
                                 handler of the caller's is pending); nonzero
                                 ends the run: the child is killed (its
                                 group when it leads one) and reaped, and
                                 the result's error is -EINTR.  NULL: the
                                 wait goes on.                             */
    void (*spawned)(int pid); /* called once the child runs (NULL: none):
                                 die_with_parent's warden joins its group  */
} cp_sync_opts;

typedef struct {
    int pid;        /* 0 when the spawn failed                             */
    int stage;      /* CP_STAGE_* of a spawn failure                       */
    int spawned;    /* 1 once the child existed                            */
    int exit_code;  /* >= 0 when it exited, -1 when a signal ended it      */
    int term_signal;/* the signal that ended it, else 0                    */
    int error;      /* 0, a spawn -errno, -ETIMEDOUT, -ENOBUFS or -EINTR   */
    size_t collected; /* bytes in all outputs together: 0 lets the caller
                         skip looking at each one                          */
    cp_output *outputs; /* caller-provided, nstdio entries; filled for
                           PIPE_OUT slots                                  */
} cp_sync_result;

/* Spawn, feed input, collect every output pipe, honour timeout and
 * max_buffer (Node's spawnSync rules), reap.  Runs without the GIL.
 * Returns result->error. */
int cp_run_sync(cp_spawn_req *req, const cp_sync_opts *opts,
                cp_sync_result *result);

/* Free what cp_run_sync allocated in result->outputs.  An output with
 * len 0 holds nothing (data is NULL), so a run whose outputs are all empty
 * needs no call. */
void cp_sync_result_free(cp_sync_result *result, int nstdio);

/* ---- collecting a stream's whole output (pipe_posix.c, pipe_win32.c) - */

/* exec() captures each output stream into one of these: the bytes go from
 * the kernel straight into one growing buffer, with no Python object per
 * chunk, and at the end into the result object, by moving whole pages
 * where the platform allows (cp_collector_move).  Zero it before use. */
typedef struct {
    char *data;  /* data[0..len) is what was read; NULL while empty      */
    size_t len;  /* may be lowered by the caller (truncation)            */
    size_t cap;  /* room at data                                          */
    size_t page_offset; /* set before the first read: where in a page the
                           data of a large buffer starts.  Matching the
                           destination's lets cp_collector_move move pages
                           instead of copying them.  Any value works.     */
    size_t mapped; /* C's own: the size of the mapping data lives in, 0
                      when it is malloc'd                                 */
    size_t ready;  /* C's own: data[0..ready) has its pages in place (a
                      mapped buffer populates ahead of its reads)         */
} cp_collector;

/* One read of at most `max` bytes (> 0) from the non-blocking fd, appended
 * to c; the buffer grows by doubling first when it has less than `max`
 * bytes free.  Returns the bytes read, 0 at EOF, -EAGAIN when nothing is
 * ready, or -errno (-ENOMEM when the buffer cannot grow; c is then as it
 * was). */
long cp_read_append(int fd, cp_collector *c, size_t max);

/* Put the c->len collected bytes at dst (which has room for them) and free
 * c's buffer.  Whole pages are moved, not copied, when c's buffer is large
 * and dst has the same offset within a page (Linux: mremap); else memcpy. */
void cp_collector_move(cp_collector *c, char *dst);

/* How many of c's first bytes are ASCII: c->len when all are.  A caller
 * that wants text can then take an all-ASCII buffer as it is (with
 * cp_collector_move) instead of decoding it. */
size_t cp_collector_ascii(const cp_collector *c);

/* Free c's buffer and zero it (a zeroed collector is empty and valid). */
void cp_collector_free(cp_collector *c);

/* ---- fd-to-fd pumping (pipe_posix.c) -------------------------------- */

/* A pump moves bytes from in_fd to out_fd with splice(2) on a thread of its
 * own, in C: no Python object per chunk and no GIL.  One side must be a
 * pipe (Linux's rule for splice); where splice cannot serve (EINVAL: e.g. a
 * regular file as the source, or not Linux) it falls back to read/write
 * through one buffer in the same thread.  When it stops (EOF on in_fd, an
 * error, or cp_pump_cancel) it writes one byte to wake_fd so the owner's
 * loop learns of it.  The fds stay the caller's: the pump never closes them. */
typedef struct cp_pump cp_pump;

int cp_pump_start(int in_fd, int out_fd, int wake_fd, cp_pump **pump);
/* Ask the pump to stop early (unpipe, destroy); returns at once. */
void cp_pump_cancel(cp_pump *pump);
/* After the wake-up: joins the thread, reports the bytes moved and how it
 * ended (0: EOF reached; -ECANCELED: cancelled; -errno: read or write
 * failed, -EPIPE when the reader went away), and frees the pump. */
int cp_pump_finish(cp_pump *pump, uint64_t *moved);

/* ---- spinning before a wait (pipe_posix.c) -------------------------- */

/* Poll the epoll instance epfd without sleeping until one of its fds is
 * ready or max_ns nanoseconds have passed: 1 when one is, 0 when none
 * became ready, -errno.  Nothing is consumed: the loop's fds are
 * level-triggered, so what was seen is still there for the caller's own
 * wait.  It runs without the GIL (cffi lets go of it around every call),
 * so the caller's other threads run meanwhile -- the reply a thread spins
 * for is often theirs to cause.  Linux only: -ENOSYS elsewhere. */
int cp_spin_wait(int epfd, int64_t max_ns);

#endif
