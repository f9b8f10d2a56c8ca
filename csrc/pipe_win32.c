/*
 * pipe_win32.c - pipes and the small helpers the Windows core shares:
 * Win32 error -> errno, WTF-8 -> UTF-16, CRT fd -> HANDLE, the stdio pipe
 * pair; and cp_pump, the fd-to-fd byte mover of childproc.h.
 *
 * Why named pipes: anonymous pipes (CreatePipe) cannot do overlapped I/O
 * ("Anonymous Pipe Operations" in Microsoft's docs), and the sync loop in
 * run_sync_win32.c (and any event loop on the Python side) needs to wait on
 * several pipes and the process at once without a thread per pipe.  So, as
 * libuv, CPython's asyncio and Rust do, the parent's end is the server end of
 * a uniquely named pipe opened with FILE_FLAG_OVERLAPPED, and the child's end
 * is a synchronous client handle: most programs do not expect an overlapped
 * stdio handle (a synchronous ReadFile on one can report completion early).
 *
 * Internal functions here are prefixed cp__ and declared at the top of the
 * files that use them; Python never calls them, so they stay out of
 * childproc.h (which cffi reads).
 */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601 /* Windows 7: PROC_THREAD_ATTRIBUTE_HANDLE_LIST */
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <errno.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "childproc.h"
#include "cp_internal.h"

/* CPython's errno module on Windows deliberately maps these names to the
 * Winsock values (errno.ETIMEDOUT == 10060, errno.ENOBUFS == 10055), not to
 * the CRT's errno.h values (138, 119), and errno.errorcode has no entry for
 * the CRT ones.  The C core returns what Python's errno module calls them so
 * the facade can decode every platform with errno.errorcode[-err]. */
#ifndef ERROR_ELEVATION_REQUIRED /* missing from older mingw-w64 headers */
#define ERROR_ELEVATION_REQUIRED 740
#endif

#ifndef CP_ETIMEDOUT
#define CP_ETIMEDOUT 10060 /* WSAETIMEDOUT */
#endif

/* Win32 error code -> negative errno, following libuv's
 * uv_translate_sys_error for the codes process creation and pipes can
 * produce.  Deliberate differences from libuv:
 *  - ERROR_ACCESS_DENIED is EACCES (libuv says EPERM): it is what POSIX
 *    spawn gives for a file that is not executable, what CPython's
 *    winerror_to_errno gives, and the facade treats EACCES as a runtime
 *    spawn failure ('error' event) as Node does;
 *  - ERROR_BAD_EXE_FORMAT is ENOEXEC (libuv has its own UV_EFTYPE);
 *  - ERROR_BROKEN_PIPE is EPIPE (libuv's UV_EOF is not an errno);
 *  - unknown codes are EINVAL (CPython's default), there is no UV_UNKNOWN. */
int cp__win_error(DWORD err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_BAD_PATHNAME:
    case ERROR_DIRECTORY:
    case ERROR_ENVVAR_NOT_FOUND:
    case ERROR_INVALID_NAME:
    case ERROR_INVALID_DRIVE:
    case ERROR_INVALID_REPARSE_DATA:
    case ERROR_MOD_NOT_FOUND:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
        return -ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_ELEVATION_REQUIRED:
    case ERROR_CANT_ACCESS_FILE:
    case ERROR_NETWORK_ACCESS_DENIED:
        return -EACCES;
    case ERROR_PRIVILEGE_NOT_HELD:
        return -EPERM;
    case ERROR_TOO_MANY_OPEN_FILES:
        return -EMFILE;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_NO_SYSTEM_RESOURCES:
        return -ENOMEM;
    case ERROR_NO_PROC_SLOTS:
    case ERROR_MAX_THRDS_REACHED:
    case ERROR_NOT_ENOUGH_QUOTA:
        return -EAGAIN;
    case ERROR_BAD_EXE_FORMAT:
    case ERROR_EXE_MACHINE_TYPE_MISMATCH:
    case ERROR_BAD_FORMAT:
        return -ENOEXEC;
    case ERROR_FILENAME_EXCED_RANGE:
    case ERROR_BUFFER_OVERFLOW:
        return -ENAMETOOLONG;
    case ERROR_META_EXPANSION_TOO_LONG:
        return -E2BIG;
    case ERROR_INVALID_HANDLE:
    case ERROR_INVALID_FLAGS:
        return -EBADF;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_BAD_PIPE:
    case ERROR_PIPE_NOT_CONNECTED:
        return -EPIPE;
    case ERROR_PIPE_BUSY:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
        return -EBUSY;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
        return -EEXIST;
    case ERROR_NOT_SUPPORTED:
        return -ENOTSUP;
    case ERROR_OPERATION_ABORTED:
        return -ECANCELED;
    case ERROR_NO_UNICODE_TRANSLATION:
        return -EILSEQ;
    case ERROR_NOACCESS:
        return -EFAULT;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return -ENOSPC;
    case ERROR_WRITE_PROTECT:
        return -EROFS;
    case ERROR_SEM_TIMEOUT:
        return -CP_ETIMEDOUT;
    case ERROR_INVALID_FUNCTION:
        return -EISDIR;
    default:
        return -EINVAL;
    }
}

/* Decode one WTF-8 string of `n` bytes into UTF-16; `out` NULL only counts.
 * WTF-8, not strict UTF-8, because that is what Python's filesystem encoding
 * on Windows (utf-8 with surrogatepass) produces for str arguments holding
 * lone surrogates, and Windows strings may hold them.  Returns the number of
 * UTF-16 units, or -1 on a byte sequence that is not WTF-8. */
static long wtf8_decode(const unsigned char *s, size_t n, WCHAR *out)
{
    long units = 0;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        unsigned cp, need, min;
        if (c < 0x80) {
            cp = c;
            need = 0;
            min = 0;
        } else if (c >= 0xC2 && c <= 0xDF) {
            cp = c & 0x1F;
            need = 1;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            cp = c & 0x0F;
            need = 2;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            cp = c & 0x07;
            need = 3;
            min = 0x10000;
        } else {
            return -1;
        }
        if (n - i - 1 < need)
            return -1;
        for (unsigned k = 1; k <= need; k++) {
            unsigned cc = s[i + k];
            if ((cc & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF)
            return -1; /* overlong or out of range */
        i += need + 1;
        if (cp >= 0x10000) {
            if (out) {
                cp -= 0x10000;
                out[units] = (WCHAR)(0xD800 + (cp >> 10));
                out[units + 1] = (WCHAR)(0xDC00 + (cp & 0x3FF));
            }
            units += 2;
        } else {
            if (out)
                out[units] = (WCHAR)cp;
            units += 1;
        }
    }
    return units;
}

/* NUL-terminated WTF-8 -> malloc'd NUL-terminated UTF-16.  *len (if not
 * NULL) gets the length in units without the NUL. */
int cp__utf8_to_utf16(const char *s, WCHAR **out, size_t *len)
{
    size_t n = strlen(s);
    long units = wtf8_decode((const unsigned char *)s, n, NULL);
    if (units < 0)
        return -EINVAL;
    WCHAR *w = malloc(((size_t)units + 1) * sizeof(WCHAR));
    if (w == NULL)
        return -ENOMEM;
    wtf8_decode((const unsigned char *)s, n, w);
    w[units] = 0;
    *out = w;
    if (len)
        *len = (size_t)units;
    return 0;
}

void cp__close_handle(HANDLE *h)
{
    if (*h != INVALID_HANDLE_VALUE && *h != NULL) {
        DWORD saved = GetLastError();
        CloseHandle(*h);
        SetLastError(saved);
    }
    *h = INVALID_HANDLE_VALUE;
}

/* Names only need to be unique within this machine for the instant between
 * CreateNamedPipeW and CreateFileW; pid + a process-wide counter does that,
 * and FILE_FLAG_FIRST_PIPE_INSTANCE turns a clash (or a squatter who created
 * the name first) into an error we retry instead of a shared pipe. */
static volatile LONG pipe_counter;

/* One stdio pipe: *parent gets the server end (overlapped, not inheritable),
 * *child the client end (synchronous, inheritable, for the handle list).
 * `child_reads`: 1 for CP_STDIO_PIPE_IN (the child reads, the parent
 * writes), 0 for CP_STDIO_PIPE_OUT, 2 for CP_STDIO_IPC (both ways; the
 * child's end is overlapped as well). */
int cp__pipe_pair(int child_reads, HANDLE *parent, HANDLE *child)
{
    WCHAR name[80];
    DWORD server_access, client_access;
    HANDLE server = INVALID_HANDLE_VALUE, client;
    SECURITY_ATTRIBUTES sa;
    int tries;

    *parent = INVALID_HANDLE_VALUE;
    *child = INVALID_HANDLE_VALUE;

    /* As libuv: a parent that writes also gets inbound access, because
     * CreateNamedPipe grants FILE_READ_ATTRIBUTES only with it and the
     * parent needs that to query the pipe (e.g. PeekNamedPipe-style probes
     * of the write side from Python). */
    if (child_reads == 2) {
        /* The IPC channel: duplex, and the child's end overlapped too, as
         * libuv makes it (its child side reads and writes at once). */
        server_access = PIPE_ACCESS_DUPLEX;
        client_access = GENERIC_READ | GENERIC_WRITE;
    } else if (child_reads) {
        server_access = PIPE_ACCESS_OUTBOUND | PIPE_ACCESS_INBOUND;
        client_access = GENERIC_READ | FILE_WRITE_ATTRIBUTES;
    } else {
        server_access = PIPE_ACCESS_INBOUND;
        client_access = GENERIC_WRITE | FILE_READ_ATTRIBUTES;
    }
    server_access |= FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE;

    for (tries = 0; tries < 64; tries++) {
        LONG n = InterlockedIncrement(&pipe_counter);
        _snwprintf(name, sizeof name / sizeof name[0],
                   L"\\\\.\\pipe\\childproc-%lu-%ld",
                   (unsigned long)GetCurrentProcessId(), (long)n);
        name[sizeof name / sizeof name[0] - 1] = 0;
        /* Byte mode both ways, one instance, 64 KiB buffers (libuv's and
         * Rust's choice, the usual Linux pipe size).  Remote clients are
         * refused: this pipe is only ever meant for our own child. */
        server = CreateNamedPipeW(name, server_access,
                                  PIPE_TYPE_BYTE | PIPE_READMODE_BYTE |
                                      PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                                  1, 65536, 65536, 0, NULL);
        if (server != INVALID_HANDLE_VALUE)
            break;
        DWORD err = GetLastError();
        if (err != ERROR_PIPE_BUSY && err != ERROR_ACCESS_DENIED)
            return cp__win_error(err);
    }
    if (server == INVALID_HANDLE_VALUE)
        return -EMFILE;

    sa.nLength = sizeof sa;
    sa.lpSecurityDescriptor = NULL;
    sa.bInheritHandle = TRUE;
    client = CreateFileW(name, client_access, 0, &sa, OPEN_EXISTING,
                         child_reads == 2 ? FILE_FLAG_OVERLAPPED : 0, NULL);
    if (client == INVALID_HANDLE_VALUE) {
        int r = cp__win_error(GetLastError());
        CloseHandle(server);
        return r;
    }

    /* Both ends exist, so this answers "already connected" at once.  An
     * overlapped handle still needs an OVERLAPPED; without an event the
     * handle itself would signal completion, were it ever to pend. */
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    if (!ConnectNamedPipe(server, &ov)) {
        DWORD err = GetLastError();
        DWORD ignored;
        if (err == ERROR_IO_PENDING)
            err = GetOverlappedResult(server, &ov, &ignored, TRUE)
                      ? ERROR_PIPE_CONNECTED
                      : GetLastError();
        if (err != ERROR_PIPE_CONNECTED) {
            CloseHandle(client);
            CloseHandle(server);
            return cp__win_error(err);
        }
    }

    *parent = server;
    *child = client;
    return 0;
}

/* Cancel whatever I/O `ov` has in flight on `h` and wait until the kernel is
 * done with `ov` and the buffer (it may still complete with data).  Returns
 * the bytes the operation transferred, 0 if it was cancelled or failed. */
DWORD cp__cancel_io(HANDLE h, OVERLAPPED *ov)
{
    DWORD n = 0;
    /* ERROR_NOT_FOUND means it completed already; the wait below then
     * returns at once with its result. */
    CancelIoEx(h, ov);
    if (!GetOverlappedResult(h, ov, &n, TRUE))
        n = 0;
    return n;
}

#ifdef _MSC_VER
/* The UCRT calls the invalid-parameter handler (by default: terminate the
 * process) when _get_osfhandle is given a closed fd; an error return is what
 * we want, so silence it around the call, for this thread only. */
static void __cdecl ignore_invalid_parameter(const wchar_t *e,
                                             const wchar_t *f,
                                             const wchar_t *file,
                                             unsigned int line, uintptr_t r)
{
    (void)e, (void)f, (void)file, (void)line, (void)r;
}
#endif

/* The HANDLE behind a CRT fd, or INVALID_HANDLE_VALUE. */
HANDLE cp__fd_handle(int fd)
{
    intptr_t h;
    if (fd < 0)
        return INVALID_HANDLE_VALUE;
#ifdef _MSC_VER
    _invalid_parameter_handler old =
        _set_thread_local_invalid_parameter_handler(ignore_invalid_parameter);
#endif
    h = _get_osfhandle(fd);
#ifdef _MSC_VER
    _set_thread_local_invalid_parameter_handler(old);
#endif
    /* -2 is what the CRT holds for 0-2 when the process has no such std
     * handle; DuplicateHandle would happily copy it (libuv's comment). */
    if (h == -1 || h == -2 || h == 0)
        return INVALID_HANDLE_VALUE;
    return (HANDLE)h;
}

/* ---- cp_collector: collecting a stream's output ---------------------------
 *
 * The buffer is malloc'd and cp_collector_move copies: Windows has no
 * mremap to hand pages over (page_offset, mapped and ready go unused).
 *
 * The POSIX contract of cp_read_append is a read on a non-blocking fd: bytes, 0 at EOF or
 * -EAGAIN.  Our pipe ends are overlapped and have no non-blocking mode, so
 * PeekNamedPipe stands in for it: nothing available is -EAGAIN, a broken
 * pipe is EOF, and otherwise the read asks for no more than is available,
 * so it completes at once.  Handles that are not pipes (a file) are read
 * as they are, at their current position as a CRT read would. */

long cp_read_append(int fd, cp_collector *out, size_t max)
{
    HANDLE h = cp__fd_handle(fd);
    DWORD avail = 0, got = 0, err;
    OVERLAPPED ov;
    BOOL ok;

    if (h == INVALID_HANDLE_VALUE)
        return -EBADF;
    if (max == 0)
        return -EINVAL;
    if (max > 0x7fffffff) /* one ReadFile takes a DWORD; keep it signed */
        max = 0x7fffffff;
    int is_pipe = GetFileType(h) == FILE_TYPE_PIPE;
    if (is_pipe) {
        if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL)) {
            err = GetLastError();
            if (err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED)
                return 0; /* the writer closed its end: EOF */
            return cp__win_error(err);
        }
        if (avail == 0)
            return -EAGAIN;
        if (avail < max)
            max = avail;
    }
    int grown = cp__grow(&out->data, &out->cap, out->len, max);
    if (grown < 0)
        return grown;
    /* An OVERLAPPED with its own event works on overlapped and synchronous
     * handles alike; on ours the data is there, so the wait is short. */
    memset(&ov, 0, sizeof ov);
    if (!is_pipe) {
        LARGE_INTEGER zero, pos;
        zero.QuadPart = 0;
        if (SetFilePointerEx(h, zero, &pos, FILE_CURRENT)) {
            ov.Offset = (DWORD)pos.QuadPart;
            ov.OffsetHigh = (DWORD)((ULONGLONG)pos.QuadPart >> 32);
        }
    }
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ov.hEvent == NULL)
        return cp__win_error(GetLastError());
    ok = ReadFile(h, out->data + out->len, (DWORD)max, NULL, &ov);
    if (ok || GetLastError() == ERROR_IO_PENDING)
        ok = GetOverlappedResult(h, &ov, &got, TRUE);
    err = ok ? 0 : GetLastError();
    CloseHandle(ov.hEvent);
    if (!ok) {
        if (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF)
            return 0;
        return cp__win_error(err);
    }
    if (got == 0 && is_pipe)
        return -EAGAIN; /* a zero-byte write by the child is not EOF */
    out->len += got;
    return (long)got;
}

void cp_collector_move(cp_collector *c, char *dst)
{
    if (c->len)
        memcpy(dst, c->data, c->len);
    cp_collector_free(c);
}

size_t cp_collector_ascii(const cp_collector *c)
{
    return c->len ? cp__ascii_prefix(c->data, c->len) : 0;
}

void cp_collector_free(cp_collector *c)
{
    free(c->data);
    c->data = NULL;
    c->len = 0;
    c->cap = 0;
    c->mapped = 0;
    c->ready = 0;
}

/* ---- cp_pump: fd to fd on a thread of its own ---------------------------
 *
 * Windows has no splice: the pump copies through one 64 KiB buffer, still
 * in C, without the GIL and without a Python object per chunk.  Every read
 * and write goes with an OVERLAPPED and its own event, which works for both
 * kinds of handle: on our overlapped pipe ends the pump waits on the event
 * and the cancel event together, so cp_pump_cancel stops it at once; on a
 * synchronous handle (a console, a file, a pipe someone else made) the call
 * blocks and cp_pump_cancel breaks it with CancelSynchronousIo.  Disk files
 * are read and written at their current position, which is carried along in
 * the OVERLAPPED (Windows then moves a synchronous file's pointer too). */

#define CP_PUMP_CHUNK (64 * 1024)

struct cp_pump {
    HANDLE thread;
    HANDLE in, out, wake; /* the caller's; the pump never closes them */
    HANDLE io_ev;         /* completion of the pump's own operations   */
    HANDLE cancel_ev;     /* set by cp_pump_cancel                     */
    volatile LONG cancelled;
    uint64_t moved;
    int result;
};

typedef struct {
    int disk;       /* a file: offsets matter                      */
    int pipe;       /* a pipe: a zero-byte read is not EOF         */
    ULONGLONG pos;
} pump_end;

static void end_init(HANDLE h, pump_end *e)
{
    DWORD type = GetFileType(h);
    LARGE_INTEGER zero, pos;
    e->disk = type == FILE_TYPE_DISK;
    e->pipe = type == FILE_TYPE_PIPE;
    e->pos = 0;
    zero.QuadPart = 0;
    if (e->disk && SetFilePointerEx(h, zero, &pos, FILE_CURRENT))
        e->pos = (ULONGLONG)pos.QuadPart;
}

/* One read or write of up to `n` bytes.  0 and *got, or -errno; EOF of a
 * read is 0 with *got == 0 (pipes: ERROR_BROKEN_PIPE). */
static int pump_io(cp_pump *p, HANDLE h, pump_end *e, int writing, char *buf,
                   DWORD n, DWORD *got)
{
    OVERLAPPED ov;
    BOOL ok;
    DWORD err;

    *got = 0;
    if (p->cancelled)
        return -ECANCELED;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = p->io_ev;
    if (e->disk) {
        ov.Offset = (DWORD)e->pos;
        ov.OffsetHigh = (DWORD)(e->pos >> 32);
    }
    ok = writing ? WriteFile(h, buf, n, NULL, &ov)
                 : ReadFile(h, buf, n, NULL, &ov);
    if (!ok && (err = GetLastError()) != ERROR_IO_PENDING) {
        if (!writing && (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF))
            return 0;
        if (err == ERROR_OPERATION_ABORTED && p->cancelled)
            return -ECANCELED;
        return cp__win_error(err);
    }
    if (!ok) {
        HANDLE waits[2] = {p->io_ev, p->cancel_ev};
        if (WaitForMultipleObjects(2, waits, FALSE, INFINITE) !=
            WAIT_OBJECT_0)
            CancelIoEx(h, &ov); /* cancelled: take it back, then report */
    }
    if (!GetOverlappedResult(h, &ov, got, TRUE)) {
        err = GetLastError();
        if (!writing && (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF))
            return 0;
        if (err == ERROR_OPERATION_ABORTED)
            return -ECANCELED;
        return cp__win_error(err);
    }
    e->pos += *got;
    return 0;
}

static DWORD WINAPI pump_main(LPVOID arg)
{
    cp_pump *p = arg;
    pump_end in, out;
    char *buf = malloc(CP_PUMP_CHUNK);
    int rc = buf ? 0 : -ENOMEM;

    end_init(p->in, &in);
    end_init(p->out, &out);
    while (rc == 0) {
        DWORD n, w;
        rc = pump_io(p, p->in, &in, 0, buf, CP_PUMP_CHUNK, &n);
        if (rc < 0)
            break;
        if (n == 0) {
            if (in.pipe && !p->cancelled) {
                /* A zero-byte write on the other end, or a real EOF that a
                 * second read will report as ERROR_BROKEN_PIPE. */
                DWORD avail = 0;
                if (PeekNamedPipe(p->in, NULL, 0, NULL, &avail, NULL) ||
                    GetLastError() != ERROR_BROKEN_PIPE)
                    continue;
            }
            break; /* EOF */
        }
        for (DWORD off = 0; off < n && rc == 0; off += w) {
            rc = pump_io(p, p->out, &out, 1, buf + off, n - off, &w);
            p->moved += w;
        }
    }
    if (rc == 0 && p->cancelled)
        rc = -ECANCELED;
    free(buf);
    p->result = rc;

    /* Tell the owner's loop; the byte's value does not matter. */
    OVERLAPPED ov;
    DWORD ignored;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = p->io_ev;
    if (WriteFile(p->wake, "p", 1, NULL, &ov) ||
        GetLastError() == ERROR_IO_PENDING)
        GetOverlappedResult(p->wake, &ov, &ignored, TRUE);
    return 0;
}

int cp_pump_start(int in_fd, int out_fd, int wake_fd, cp_pump **pump)
{
    cp_pump *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->in = cp__fd_handle(in_fd);
    p->out = cp__fd_handle(out_fd);
    p->wake = cp__fd_handle(wake_fd);
    if (p->in == INVALID_HANDLE_VALUE || p->out == INVALID_HANDLE_VALUE ||
        p->wake == INVALID_HANDLE_VALUE) {
        free(p);
        return -EBADF;
    }
    p->io_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    p->cancel_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (p->io_ev == NULL || p->cancel_ev == NULL) {
        int rc = cp__win_error(GetLastError());
        if (p->io_ev)
            CloseHandle(p->io_ev);
        if (p->cancel_ev)
            CloseHandle(p->cancel_ev);
        free(p);
        return rc;
    }
    p->thread = CreateThread(NULL, 64 * 1024, pump_main, p,
                             STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (p->thread == NULL) {
        int rc = cp__win_error(GetLastError());
        CloseHandle(p->io_ev);
        CloseHandle(p->cancel_ev);
        free(p);
        return rc;
    }
    *pump = p;
    return 0;
}

void cp_pump_cancel(cp_pump *pump)
{
    InterlockedExchange(&pump->cancelled, 1);
    SetEvent(pump->cancel_ev);
    /* A pump blocked in a synchronous handle's ReadFile/WriteFile sees
     * neither: break that call.  Between two calls it checks `cancelled`
     * before the next; only a cancel landing in the instant between that
     * check and a synchronous call's start is missed, and then the call
     * ends with its handle's next data or EOF as usual.  Our own pipe ends
     * are overlapped and never have that window. */
    CancelSynchronousIo(pump->thread);
}

int cp_pump_finish(cp_pump *pump, uint64_t *moved)
{
    int rc;
    WaitForSingleObject(pump->thread, INFINITE);
    rc = pump->result;
    if (moved)
        *moved = pump->moved;
    CloseHandle(pump->thread);
    CloseHandle(pump->io_ev);
    CloseHandle(pump->cancel_ev);
    free(pump);
    return rc;
}

/* Spinning before a wait is for the POSIX loop's epoll (childproc.h). */
int cp_spin_wait(int epfd, int64_t max_ns)
{
    (void)epfd;
    (void)max_ns;
    return -ENOSYS;
}
