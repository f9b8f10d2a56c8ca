/*
 * run_sync_win32.c - the whole *_sync loop on Windows: spawn, feed input,
 * collect every output pipe, honour timeout and max_buffer, reap.
 *
 * Node's spawnSync rules (docs/architecture.md, "The sync run"), as run_sync.c has them on POSIX:
 *  - `input` goes to stdio[0] when it is a pipe, which is then closed; every
 *    other pipe the child reads is closed at once (EOF), so a child reading
 *    stdin never waits for input that will not come;
 *  - every output pipe is read to EOF into a malloc'd buffer; the call ends
 *    when the child has exited AND every pipe is closed, so a grandchild
 *    holding a pipe keeps it going (unless a timeout fires);
 *  - max_buffer counts all outputs together and truncates nothing: the read
 *    that crosses it is kept whole, then ENOBUFS, kill, close the pipes;
 *  - timeout: ETIMEDOUT, kill the child if it has not exited, close the
 *    pipes even if a grandchild still holds them, then wait for the exit;
 *  - the first error wins; a kill that went through reports the signal
 *    (exit_code -1, term_signal = the signal), as libuv's exit_signal does;
 *    a child that had already exited keeps its exit code.
 *
 * One thread, no thread per pipe: each pipe has one overlapped operation in
 * flight with its own event, and one WaitForMultipleObjects waits on those
 * events, the process handle and the deadline together.
 *
 * Windows exit codes are 32-bit: result->exit_code holds the DWORD's bits
 * (0xC0000005 reads as a negative int).  Whether a signal ended the child is
 * term_signal != 0, never exit_code == -1 (ExitProcess(-1) is a real code).
 */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "childproc.h"
#include "cp_internal.h"

/* Python's errno module on Windows names the Winsock values (see
 * pipe_win32.c): errno.ENOBUFS == 10055, errno.ETIMEDOUT == 10060. */
#define CP_ENOBUFS 10055  /* WSAENOBUFS */
#define CP_ETIMEDOUT 10060 /* WSAETIMEDOUT */
#define CP_SIGKILL 9

/* Node reads 64 KiB (CP_READ_CHUNK) at a time, and its maxBuffer rule ("whole chunks are
 * kept") is stated in those chunks; with max_buffer set we read no more at
 * once.  Without it, larger reads into the free end of the buffer cut the
 * number of round trips when the child writes big blocks (a named pipe
 * hands a pending large write straight to a large enough read). */
#define CP_READ_MAX (1024 * 1024)
/* Input goes in bounded writes: a pending pipe write beyond the pipe's
 * buffer holds kernel memory for the part not yet read. */
#define CP_WRITE_MAX (256 * 1024)

/* pipe_win32.c */
int cp__win_error(DWORD err);
void cp__close_handle(HANDLE *h);
DWORD cp__cancel_io(HANDLE h, OVERLAPPED *ov);
/* spawn_win32.c */
int cp__spawn(cp_spawn_req *req, cp_child *child, HANDLE *process,
              HANDLE *ends);
int cp__kill_handle(HANDLE process, int sig);

typedef struct {
    HANDLE h;       /* our end; INVALID_HANDLE_VALUE once closed         */
    HANDLE ev;      /* manual-reset event of `ov`                        */
    OVERLAPPED ov;
    int input;      /* 1: we write (the child reads)                     */
    int pending;    /* an operation on `ov` is in flight                 */
    cp_output *out; /* output pipes: where the bytes go (out->cap: the
                       size allocated)                                   */
    const char *wbuf; /* input pipes: what is left to write              */
    size_t wleft;
} sync_pipe;

typedef struct {
    sync_pipe *pipes;
    int npipes;
    HANDLE process;
    HANDLE job;     /* kill_tree: the child's job (cp_child.job), else NULL */
    int exited;
    DWORD exit_code;
    int kill_tried;
    int killed_sig; /* the signal of a kill that went through, else 0  */
    int kill_signal;
    int error;
    uint64_t total; /* bytes collected over all output pipes           */
    uint64_t max_buffer;
} sync_run;

static void set_error(sync_run *run, int err)
{
    if (run->error == 0)
        run->error = err;
}

/* Close one pipe, first taking back whatever operation is in flight: the
 * kernel must be done with `ov` and the buffer before either goes away.  A
 * read that completes meanwhile keeps its bytes. */
static void pipe_close(sync_pipe *p)
{
    if (p->h == INVALID_HANDLE_VALUE)
        return;
    if (p->pending) {
        DWORD n = cp__cancel_io(p->h, &p->ov);
        if (!p->input)
            p->out->len += n;
        p->pending = 0;
    }
    cp__close_handle(&p->h);
}

static void close_all(sync_run *run)
{
    for (int i = 0; i < run->npipes; i++)
        pipe_close(&run->pipes[i]);
}

/* Node's SyncProcessRunner::Kill: once; signal only a child whose exit we
 * have not seen; an unsupported signal is an error (if none yet) and SIGKILL
 * goes instead; then close every pipe so nothing can keep us waiting but the
 * child's own exit. */
static void kill_and_close(sync_run *run)
{
    if (!run->kill_tried) {
        run->kill_tried = 1;
        if (run->job != NULL) {
            /* kill_tree: the whole job, also after the child itself has
             * exited (its descendants may hold the pipes). */
            if (TerminateJobObject(run->job, 1) && !run->exited)
                run->killed_sig = run->kill_signal;
        } else if (!run->exited) {
            int r = cp__kill_handle(run->process, run->kill_signal);
            if (r == 0) {
                run->killed_sig = run->kill_signal;
            } else if (r != -ESRCH) {
                set_error(run, r);
                if (cp__kill_handle(run->process, CP_SIGKILL) == 0)
                    run->killed_sig = CP_SIGKILL;
            }
        }
    }
    close_all(run);
}

static int grow(sync_pipe *p)
{
    cp_output *o = p->out;
    return cp__grow(&o->data, &o->cap, o->len, CP_READ_CHUNK);
}

/* Put the next operation of `p` in flight, or close it when it is done. */
static void start_io(sync_run *run, sync_pipe *p)
{
    BOOL ok;
    DWORD want;

    if (p->h == INVALID_HANDLE_VALUE)
        return;
    memset(&p->ov, 0, sizeof p->ov);
    p->ov.hEvent = p->ev;
    if (p->input) {
        if (p->wleft == 0) {
            pipe_close(p); /* all written: EOF for the child */
            return;
        }
        want = (DWORD)(p->wleft < CP_WRITE_MAX ? p->wleft : CP_WRITE_MAX);
        ok = WriteFile(p->h, p->wbuf, want, NULL, &p->ov);
    } else {
        int r = grow(p);
        if (r < 0) {
            set_error(run, r);
            kill_and_close(run);
            return;
        }
        size_t room = p->out->cap - p->out->len;
        size_t max = run->max_buffer ? CP_READ_CHUNK : CP_READ_MAX;
        want = (DWORD)(room < max ? room : max);
        ok = ReadFile(p->h, p->out->data + p->out->len, want, NULL, &p->ov);
    }
    /* Done at once or later, the event is set on completion either way, so
     * both are handled when the loop sees it. */
    if (ok || GetLastError() == ERROR_IO_PENDING) {
        p->pending = 1;
        return;
    }
    DWORD err = GetLastError();
    /* The child closed its end: EOF for a read; for a write, the child
     * stopped reading, which Node ignores (EPIPE is not an error here). */
    if (err != ERROR_BROKEN_PIPE && err != ERROR_NO_DATA &&
        err != ERROR_PIPE_NOT_CONNECTED)
        set_error(run, cp__win_error(err));
    pipe_close(p);
}

static void complete_io(sync_run *run, sync_pipe *p)
{
    DWORD n = 0;
    BOOL ok = GetOverlappedResult(p->h, &p->ov, &n, FALSE);
    if (!ok && GetLastError() == ERROR_IO_INCOMPLETE)
        return; /* not yet after all */
    p->pending = 0;
    if (!ok) {
        DWORD err = GetLastError();
        if (!p->input) {
            /* A read can end with bytes and an error (the writer gone):
             * they count against max_buffer like any others. */
            p->out->len += n;
            run->total += n;
            if (run->max_buffer && run->total > run->max_buffer) {
                set_error(run, -CP_ENOBUFS);
                pipe_close(p);
                kill_and_close(run);
                return;
            }
        }
        if (err != ERROR_BROKEN_PIPE && err != ERROR_NO_DATA &&
            err != ERROR_PIPE_NOT_CONNECTED && err != ERROR_OPERATION_ABORTED)
            set_error(run, cp__win_error(err));
        pipe_close(p);
        return;
    }
    if (p->input) {
        p->wbuf += n;
        p->wleft -= n;
    } else {
        /* n == 0 is not EOF on a named pipe: a zero-byte WriteFile by the
         * child arrives as a zero-byte read.  EOF is ERROR_BROKEN_PIPE. */
        p->out->len += n;
        run->total += n;
        if (run->max_buffer && run->total > run->max_buffer) {
            set_error(run, -CP_ENOBUFS);
            kill_and_close(run);
            return;
        }
    }
    start_io(run, p);
}

static int64_t now_ns(LARGE_INTEGER freq)
{
    LARGE_INTEGER c;
    QueryPerformanceCounter(&c);
    /* Split to keep the multiplication from overflowing. */
    return (int64_t)(c.QuadPart / freq.QuadPart) * 1000000000 +
           (int64_t)(c.QuadPart % freq.QuadPart) * 1000000000 / freq.QuadPart;
}

static void note_exit(sync_run *run)
{
    if (!run->exited && WaitForSingleObject(run->process, 0) == WAIT_OBJECT_0) {
        run->exited = 1;
        if (!GetExitCodeProcess(run->process, &run->exit_code))
            run->exit_code = 1;
    }
}

int cp_run_sync(cp_spawn_req *req, const cp_sync_opts *opts,
                cp_sync_result *result)
{
    sync_run run;
    cp_child child;
    HANDLE *ends = NULL, *waits = NULL;
    LARGE_INTEGER freq;
    int64_t deadline = 0;
    int i, r, n = req->nstdio > 0 ? req->nstdio : 0;

    static const cp_sync_opts no_opts; /* all zero: no input, no limits */
    if (opts == NULL)
        opts = &no_opts;
    memset(&run, 0, sizeof run);
    run.process = INVALID_HANDLE_VALUE;
    run.kill_signal = opts->kill_signal;
    run.max_buffer = opts->max_buffer;

    result->pid = 0;
    result->stage = CP_STAGE_NONE;
    result->spawned = 0;
    result->exit_code = -1;
    result->term_signal = 0;
    result->error = 0;
    result->collected = 0;
    for (i = 0; i < n && result->outputs != NULL; i++)
        memset(&result->outputs[i], 0, sizeof result->outputs[i]);
    for (i = 0; i < n; i++) {
        if (req->stdio[i].kind == CP_STDIO_PIPE_OUT && result->outputs == NULL)
            return result->error = -EINVAL; /* nowhere to put the bytes */
    }

    ends = malloc((size_t)(n ? n : 1) * sizeof(HANDLE));
    run.pipes = calloc((size_t)(n ? n : 1), sizeof(sync_pipe));
    /* At most 63 pipe events and the process: WaitForMultipleObjects' 64. */
    waits = malloc(MAXIMUM_WAIT_OBJECTS * sizeof(HANDLE));
    if (ends == NULL || run.pipes == NULL || waits == NULL) {
        r = -ENOMEM;
        result->stage = CP_STAGE_PIPE;
        goto spawn_failed;
    }
    for (i = 0; i < n; i++)
        ends[i] = INVALID_HANDLE_VALUE;

    r = cp__spawn(req, &child, &run.process, ends);
    if (r < 0) {
        result->stage = child.stage;
        goto spawn_failed;
    }
    result->pid = child.pid;
    result->spawned = 1;
    if (child.job != 0) {
        if (opts->kill_group)
            run.job = (HANDLE)(intptr_t)child.job;
        else
            CloseHandle((HANDLE)(intptr_t)child.job);
    }

    for (i = 0; i < n; i++) {
        int kind = req->stdio[i].kind;
        if (kind != CP_STDIO_PIPE_IN && kind != CP_STDIO_PIPE_OUT)
            continue;
        sync_pipe *p = &run.pipes[run.npipes++];
        p->h = ends[i];
        p->input = kind == CP_STDIO_PIPE_IN;
        p->out = p->input ? NULL : &result->outputs[i];
        if (p->input && i == 0 && opts->input_len > 0) {
            p->wbuf = opts->input;
            p->wleft = opts->input_len;
        }
        p->ev = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (p->ev == NULL) {
            set_error(&run, cp__win_error(GetLastError()));
            pipe_close(p);
        }
    }
    if (run.error)
        kill_and_close(&run);
    for (i = 0; i < run.npipes; i++)
        start_io(&run, &run.pipes[i]);

    QueryPerformanceFrequency(&freq);
    if (opts->timeout_ns > 0) {
        int64_t now = now_ns(freq);
        /* A timeout past the end of int64 time is no timeout. */
        deadline = opts->timeout_ns < INT64_MAX - now ? now + opts->timeout_ns
                                                      : 0;
    }

    for (;;) {
        int nw = 0, left_out = 0;
        DWORD ms = INFINITE, w;

        for (i = 0; i < run.npipes; i++) {
            if (!run.pipes[i].pending)
                continue;
            if (nw < MAXIMUM_WAIT_OBJECTS - 1)
                waits[nw++] = run.pipes[i].ev;
            else
                left_out = 1;
        }
        if (!run.exited)
            waits[nw++] = run.process;
        if (nw == 0)
            break; /* exited, and every pipe is closed */

        if (deadline) {
            int64_t left = deadline - now_ns(freq);
            if (left <= 0) {
                deadline = 0;
                set_error(&run, -CP_ETIMEDOUT);
                note_exit(&run); /* an exit we have not seen yet counts */
                kill_and_close(&run);
                continue;
            }
            int64_t lms = (left + 999999) / 1000000;
            ms = lms >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)lms;
        }
        /* More than 63 pipes busy: the rest are polled every 10 ms. */
        if (left_out && ms > 10)
            ms = 10;

        w = WaitForMultipleObjects((DWORD)nw, waits, FALSE, ms);
        if (w == WAIT_FAILED) {
            set_error(&run, cp__win_error(GetLastError()));
            kill_and_close(&run);
            WaitForSingleObject(run.process, INFINITE);
            note_exit(&run);
            break;
        }
        /* Whatever woke us, take every completion there is: one busy pipe
         * must not starve the others. */
        note_exit(&run);
        for (i = 0; i < run.npipes; i++) {
            sync_pipe *p = &run.pipes[i];
            if (p->pending && HasOverlappedIoCompleted(&p->ov))
                complete_io(&run, p);
        }
    }

    if (!run.exited) { /* only after WAIT_FAILED on the process itself */
        WaitForSingleObject(run.process, INFINITE);
        note_exit(&run);
    }
    if (run.killed_sig) {
        result->exit_code = -1;
        result->term_signal = run.killed_sig;
    } else {
        result->exit_code = (int)run.exit_code;
        result->term_signal = 0;
    }
    result->error = run.error;
    r = run.error;
    goto out;

spawn_failed:
    result->error = r;
    result->pid = 0;
    result->spawned = 0;
out:
    /* As on POSIX: an output that stayed empty holds no memory. */
    for (i = 0; i < n && result->outputs != NULL; i++) {
        result->collected += result->outputs[i].len;
        if (result->outputs[i].len == 0 && result->outputs[i].data != NULL) {
            free(result->outputs[i].data);
            result->outputs[i].data = NULL;
            result->outputs[i].cap = 0;
        }
    }
    close_all(&run);
    for (i = 0; i < run.npipes; i++)
        if (run.pipes[i].ev != NULL)
            CloseHandle(run.pipes[i].ev);
    cp__close_handle(&run.process);
    if (run.job != NULL)
        CloseHandle(run.job);
    free(run.pipes);
    free(ends);
    free(waits);
    return r;
}

void cp_sync_result_free(cp_sync_result *result, int nstdio)
{
    if (result == NULL || result->outputs == NULL)
        return;
    for (int i = 0; i < nstdio; i++) {
        free(result->outputs[i].data);
        result->outputs[i].data = NULL;
        result->outputs[i].len = 0;
        result->outputs[i].cap = 0;
    }
}
