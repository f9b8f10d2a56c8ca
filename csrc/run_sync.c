/*
 * run_sync.c - the whole *_sync loop: spawn, feed input, collect every
 * output pipe, enforce timeout and max_buffer, reap.  cffi calls it with
 * the GIL released and nothing in here touches Python.
 *
 * The rules are Node's spawnSync (docs/architecture.md, "The sync run"):
 *  - the call returns when the child has exited AND every output pipe has
 *    reached EOF (a grandchild holding a pipe keeps it waiting);
 *  - stdin gets `input` and is then closed; with no input it is closed at
 *    once, so `cat` sees EOF;
 *  - max_buffer counts all output pipes together; going over it is ENOBUFS,
 *    the output is kept whole (chunks of up to 64 KiB, not truncated);
 *  - on timeout or ENOBUFS the child is signalled with kill_signal, then
 *    every pipe is closed (so a grandchild that holds one cannot make the
 *    call hang) and the child is reaped.  A child that has already exited
 *    is still unreaped then, so the signal reaches nothing else and its
 *    status stays; with kill_tree its process group still gets it.
 *
 *  - a signal that interrupts a wait is handed to the caller
 *    (opts->interrupted, which runs Python's signal handlers); when one of
 *    them raised (Ctrl-C: KeyboardInterrupt) the run ends as
 *    subprocess.run's does: the child gets a quarter of a second to end on
 *    its own (a terminal's Ctrl-C reached it too, unless it leads its own
 *    group), then SIGKILL, to its group when it leads one; it is reaped,
 *    and the error is -EINTR.
 *
 * So the loop has two phases.  First the pipes alone are polled until every
 * one is done (the child's exit changes nothing while a pipe is open).
 * Then the child is waited for: a plain blocking waitpid when there is no
 * deadline, as the C floor does; with one, a pidfd opened only then (or,
 * where the kernel has none, a short growing sleep) bounds the wait.  An
 * untimed run therefore costs no pidfd at all.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cp_internal.h"

#define NO_DEADLINE INT64_MAX
/* subprocess.run's grace for a child after Ctrl-C (_sigint_wait_secs). */
#define SIGINT_GRACE_NS 250000000

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* now + ns, saturating: a timeout of centuries (sys.maxsize seconds) is no
 * deadline, never one that wrapped into the past. */
static int64_t deadline_after(int64_t ns)
{
    int64_t now = now_ns();
    return ns >= NO_DEADLINE - now ? NO_DEADLINE : now + ns;
}

/* poll()'s timeout for `left` ns, rounded up (never wake early) and capped
 * at INT_MAX ms (about 24.8 days; the caller loops and waits again). */
static int wait_ms_for(int64_t left)
{
    int64_t ms = left / 1000000 + (left % 1000000 != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

typedef struct {
    cp_child child;
    int exited;
    int wstatus;
    int64_t deadline;
    int no_pidfd_sleep_ms; /* the fallback's current poll interval */
    int killed;            /* we signalled it (timeout, max_buffer)  */
    int interrupted;       /* the caller's signal handler raised     */
} sync_state;

/* A wait returned EINTR: does the caller want the run to end? */
static int caller_interrupted(sync_state *st, const cp_sync_opts *opts)
{
    if (!st->interrupted && opts->interrupted != NULL && opts->interrupted())
        st->interrupted = 1;
    return st->interrupted;
}

static void record_status(sync_state *st, int wstatus)
{
    st->exited = 1;
    st->wstatus = wstatus;
    cp__close(&st->child.pidfd);
}

/* Reap if the child is gone; never blocks. */
static void try_reap(sync_state *st)
{
    int wstatus;
    pid_t r;
    do {
        r = waitpid(st->child.pid, &wstatus, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == st->child.pid)
        record_status(st, wstatus);
    else if (r < 0 && errno == ECHILD)
        /* Someone else reaped it (SIGCHLD set to SIG_IGN, or a stray
         * waitpid(-1)): there is no status to be had.  Report exit 0, as
         * CPython's subprocess does. */
        record_status(st, 0);
}

static void kill_child(sync_state *st, const cp_sync_opts *opts, int sig)
{
    if (st->exited)
        return;
    /* Not yet reaped, so the pid cannot have been reused.  With kill_tree
     * the child leads its own group, and the whole group gets the signal. */
    pid_t target = opts->kill_group ? -st->child.pid : st->child.pid;
    if (kill(target, sig) < 0 && errno != ESRCH)
        kill(target, SIGKILL); /* Node falls back the same way */
    st->killed = 1;
}

/* Wait for the exit until `deadline`; returns with st->exited set, or
 * unset once the deadline has passed.  The pidfd is opened on the first
 * call (the child is unreaped, so its pid cannot have been reused). */
static void wait_until(sync_state *st, const cp_sync_opts *opts,
                       int64_t deadline, int interruptible)
{
    if (st->child.pidfd < 0)
        st->child.pidfd = cp__open_pidfd(st->child.pid);
    try_reap(st);
    while (!st->exited) {
        int64_t left = deadline - now_ns();
        if (left <= 0)
            return;
        int wait_ms = wait_ms_for(left);
        if (st->child.pidfd >= 0) {
            struct pollfd pfd = {st->child.pidfd, POLLIN, 0};
            if (poll(&pfd, 1, wait_ms) < 0 && errno == EINTR && interruptible &&
                caller_interrupted(st, opts))
                return;
        } else {
            /* No pidfd (kernels before 5.3, macOS): sleep in short,
             * growing steps and ask waitpid. */
            if (wait_ms > st->no_pidfd_sleep_ms)
                wait_ms = st->no_pidfd_sleep_ms;
            if (st->no_pidfd_sleep_ms < 50)
                st->no_pidfd_sleep_ms *= 2;
            struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000};
            if (nanosleep(&ts, NULL) < 0 && errno == EINTR && interruptible &&
                caller_interrupted(st, opts))
                return;
        }
        try_reap(st);
    }
}

/* After a kill: wait for the exit, sending SIGKILL once force_kill_after
 * has passed (if asked to). */
static void reap_after_kill(sync_state *st, const cp_sync_opts *opts)
{
    if (st->exited || !st->killed || opts->force_kill_after_ns <= 0)
        return;
    wait_until(st, opts, deadline_after(opts->force_kill_after_ns), 0);
    if (!st->exited)
        kill_child(st, opts, SIGKILL);
}

/* The caller's signal handler raised: end as subprocess.run does (see the
 * top).  The group, when the child leads one, goes down with it. */
static void end_interrupted(sync_state *st, const cp_sync_opts *opts,
                            const cp_spawn_req *req)
{
    int own_group = (req->flags & (CP_SPAWN_SETSID | CP_SPAWN_SETPGROUP)) != 0;
    if (!own_group)
        wait_until(st, opts, now_ns() + SIGINT_GRACE_NS, 0);
    if (own_group || !st->exited) {
        /* Unreaped until cp_wait below, so neither the pid nor the group
         * id can have been reused. */
        if (own_group)
            kill(-st->child.pid, SIGKILL);
        if (!st->exited)
            kill(st->child.pid, SIGKILL);
        st->killed = 1;
    }
}

static void close_pipes(cp_spawn_req *req)
{
    for (int i = 0; i < req->nstdio; i++) {
        int k = req->stdio[i].kind;
        if (k == CP_STDIO_PIPE_IN || k == CP_STDIO_PIPE_OUT)
            cp__close(&req->stdio[i].fd);
    }
}

int cp_run_sync(cp_spawn_req *req, const cp_sync_opts *opts,
                cp_sync_result *res)
{
    sync_state st = {.exited = 0, .deadline = NO_DEADLINE,
                     .no_pidfd_sleep_ms = 1};
    int n = req->nstdio;
    struct pollfd small[8], *pfds = small;
    int slot_small[8], *slot = slot_small;
    size_t input_off = 0, total = 0;
    int rc, over_limit = 0;

    res->pid = 0;
    res->stage = CP_STAGE_NONE;
    res->spawned = 0;
    res->exit_code = -1;
    res->term_signal = 0;
    res->error = 0;
    res->collected = 0;
    for (int i = 0; i < n; i++)
        res->outputs[i] = (cp_output){NULL, 0, 0};

    /* One pollfd per stdio slot plus the pidfd. */
    if (n + 1 > 8) {
        pfds = malloc(sizeof *pfds * (size_t)(n + 1));
        slot = malloc(sizeof *slot * (size_t)(n + 1));
        if (pfds == NULL || slot == NULL) {
            free(pfds);
            free(slot);
            res->error = -ENOMEM;
            res->stage = CP_STAGE_PIPE;
            return res->error;
        }
    }

    /* The pidfd is wanted only for a bounded wait (see the top). */
    int untimed = opts->timeout_ns <= 0 && opts->force_kill_after_ns <= 0;
    int flags = req->flags;
    if (untimed)
        req->flags |= CP__SPAWN_NO_PIDFD;
    rc = cp__spawn_held(req, &st.child);
    req->flags = flags;
    if (rc < 0) {
        res->error = rc;
        res->stage = st.child.stage;
        goto out;
    }
    res->pid = st.child.pid;
    res->spawned = 1;
    if (opts->spawned != NULL)
        opts->spawned(st.child.pid);
    if (opts->timeout_ns > 0)
        st.deadline = deadline_after(opts->timeout_ns);

    /* stdin: input goes to slot 0 only (Node places it in stdio[0]); any
     * other pipe the child reads gets EOF at once. */
    for (int i = 0; i < n; i++) {
        cp_stdio *s = &req->stdio[i];
        if (s->kind != CP_STDIO_PIPE_IN)
            continue;
        if (i == 0 && opts->input_len > 0)
            cp__set_nonblock(s->fd, 1); /* write what fits, keep reading */
        else
            cp__close(&s->fd);
    }

    for (;;) {
        int np = 0, open_pipes = 0;
        for (int i = 0; i < n; i++) {
            cp_stdio *s = &req->stdio[i];
            if (s->fd < 0 || (s->kind != CP_STDIO_PIPE_IN && s->kind != CP_STDIO_PIPE_OUT))
                continue;
            pfds[np].fd = s->fd;
            pfds[np].events = s->kind == CP_STDIO_PIPE_IN ? POLLOUT : POLLIN;
            pfds[np].revents = 0;
            slot[np++] = i;
            open_pipes++;
        }
        if (open_pipes == 0)
            break;

        int wait_ms = -1;
        if (st.deadline != NO_DEADLINE) {
            int64_t left = st.deadline - now_ns();
            wait_ms = left <= 0 ? 0 : wait_ms_for(left);
        }

        int ready = poll(pfds, (nfds_t)np, wait_ms);
        if (ready < 0) {
            if (errno == EINTR) {
                if (caller_interrupted(&st, opts)) {
                    close_pipes(req);
                    break;
                }
                continue;
            }
            res->error = -errno;
            kill_child(&st, opts, SIGKILL);
            close_pipes(req);
            break;
        }
        if (st.deadline != NO_DEADLINE && now_ns() >= st.deadline) {
            res->error = -ETIMEDOUT;
            kill_child(&st, opts, opts->kill_signal);
            close_pipes(req);
            break;
        }

        for (int k = 0; k < np && ready > 0; k++) {
            if (pfds[k].revents == 0)
                continue;
            cp_stdio *s = &req->stdio[slot[k]];
            if (s->kind == CP_STDIO_PIPE_IN) {
                ssize_t w = write(s->fd, opts->input + input_off,
                                  opts->input_len - input_off);
                if (w > 0)
                    input_off += (size_t)w;
                /* EAGAIN: try again on the next POLLOUT.  Any other failure
                 * (EPIPE: the child closed its stdin or exited with input
                 * unread) is reported, as Node's spawnSync does, but the run
                 * goes on: output is still collected and the child reaped. */
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    if (res->error == 0)
                        res->error = -errno;
                    cp__close(&s->fd);
                } else if (input_off == opts->input_len) {
                    cp__close(&s->fd);
                }
                continue;
            }
            long got = cp__read_append(s->fd, &res->outputs[slot[k]]);
            if (got == -EAGAIN || got == -EINTR)
                continue;
            if (got <= 0) {
                /* EOF, or a read error that ends this pipe. */
                if (got == -ENOMEM)
                    res->error = -ENOMEM;
                cp__close(&s->fd);
                continue;
            }
            total += (size_t)got;
            if (opts->max_buffer > 0 && total > opts->max_buffer) {
                over_limit = 1;
                if (res->error == 0) /* Node keeps the first error */
                    res->error = -ENOBUFS;
                break;
            }
        }
        if (over_limit || res->error == -ENOMEM) {
            kill_child(&st, opts, over_limit ? opts->kill_signal : SIGKILL);
            close_pipes(req);
            break;
        }
    }

    /* Every pipe is done.  A deadline still bounds the wait for the exit
     * (sh -c 'exec >&- 2>&-; exec sleep 9' closes its pipes early). */
    if (!st.killed && !st.interrupted && st.deadline != NO_DEADLINE) {
        wait_until(&st, opts, st.deadline, 1);
        if (!st.exited && !st.interrupted) {
            res->error = -ETIMEDOUT;
            kill_child(&st, opts, opts->kill_signal);
        }
    }
    if (!st.interrupted)
        reap_after_kill(&st, opts);
    /* The untimed wait: a blocking waitpid, which a signal interrupts. */
    while (!st.exited && !st.interrupted) {
        int wstatus = 0;
        pid_t r = waitpid(st.child.pid, &wstatus, 0);
        if (r == st.child.pid)
            record_status(&st, wstatus);
        else if (r < 0 && errno == EINTR)
            caller_interrupted(&st, opts);
        else
            record_status(&st, 0); /* ECHILD: see try_reap */
    }
    if (st.interrupted) {
        end_interrupted(&st, opts, req);
        res->error = -EINTR;
        if (!st.exited) {
            int wstatus = 0;
            record_status(&st, cp_wait(&st.child, &wstatus) == 0 ? wstatus : 0);
        }
    }
    if (WIFSIGNALED(st.wstatus)) {
        res->exit_code = -1;
        res->term_signal = WTERMSIG(st.wstatus);
    } else {
        res->exit_code = WEXITSTATUS(st.wstatus);
        res->term_signal = 0;
    }

out:
    /* An output that stayed empty gives its read buffer back now, so a
     * result holds memory exactly where it holds bytes and the caller can
     * skip cp_sync_result_free for a run that printed nothing. */
    for (int i = 0; i < n; i++) {
        res->collected += res->outputs[i].len;
        if (res->outputs[i].len == 0 && res->outputs[i].data != NULL) {
            free(res->outputs[i].data);
            res->outputs[i] = (cp_output){NULL, 0, 0};
        }
    }
    close_pipes(req);
    cp__close(&st.child.pidfd);
    if (pfds != small) {
        free(pfds);
        free(slot);
    }
    return res->error;
}

void cp_sync_result_free(cp_sync_result *res, int nstdio)
{
    for (int i = 0; i < nstdio; i++) {
        free(res->outputs[i].data);
        res->outputs[i] = (cp_output){NULL, 0, 0};
    }
}
