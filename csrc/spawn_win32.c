/*
 * spawn_win32.c - process creation on Windows: cp_spawn, cp_wait, cp_kill.
 *
 * The same contract as spawn_posix.c (childproc.h), built on CreateProcessW
 * the way libuv's src/win/process.c does it, so a Python program sees what a
 * Node program sees on Windows:
 *  - argv is quoted into one UTF-16 command line with the MSVCRT rules
 *    (libuv's quote_cmd_arg), unless CP_SPAWN_VERBATIM_ARGS (Node's
 *    windowsVerbatimArguments, forced for `cmd.exe /d /s /c "..."`);
 *  - env becomes a case-insensitively sorted UTF-16 block, with the
 *    variables Windows cannot run without copied in from the parent;
 *  - the executable is searched as libuv does (cwd first, then PATH; the
 *    exact name only if it has an extension, then name.com, then name.exe);
 *  - .bat/.cmd files are refused with EINVAL (CVE-2024-27980): CreateProcess
 *    would run them through cmd.exe, whose parsing is not MSVCRT's, so our
 *    quoting could not protect the arguments.  Shell mode goes through
 *    cmd.exe explicitly and is not affected;
 *  - only the child's stdio handles are inherited
 *    (PROC_THREAD_ATTRIBUTE_HANDLE_LIST), so concurrent spawns from other
 *    threads never leak pipe ends into each other's children.
 *
 * What goes where in the shared structs on Windows:
 *  - cp_child.pid is the process id; cp_child.pidfd holds the process HANDLE
 *    cast to int.  Kernel handles are small, 4-aligned table indices, and
 *    Windows guarantees they can be truncated to 32 bits and sign-extended
 *    back (that is how 32- and 64-bit processes share them), so the int
 *    round-trips; (HANDLE)(intptr_t)pidfd gives it back.  Python can wait on
 *    it (WaitForSingleObject, RegisterWaitForSingleObject) like a pidfd.
 *  - a pipe slot's cp_stdio.fd is a CRT file descriptor made with
 *    _open_osfhandle(_O_BINARY | _O_NOINHERIT) over the parent's end, so the
 *    Python side gets an int as on POSIX, msvcrt.get_osfhandle(fd) gives the
 *    HANDLE and os.close(fd) closes it (CPython and a cffi module built by
 *    MSVC share the one UCRT, so the fd tables are the same).  That end is
 *    OVERLAPPED: read and write it with overlapped I/O (e.g.
 *    _winapi.ReadFile(h, n, overlapped=True), or asyncio's proactor).  Plain
 *    os.read/os.write happen to work on it (kernel32 waits on the file
 *    object when no OVERLAPPED is given) but Microsoft does not promise it.
 *  - cp_wait's *status is the raw 32-bit exit code (GetExitCodeProcess),
 *    e.g. 0xC0000005 for an access violation; decode with
 *    `status & 0xFFFFFFFF`.  A process ended by cp_kill exits with code 1,
 *    as libuv's do: the caller records the signal it sent and reports
 *    (None, signal) as Node does (libuv's process->exit_signal).
 */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601 /* Windows 7: PROC_THREAD_ATTRIBUTE_HANDLE_LIST */
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "childproc.h"

/* CP_SPAWN_NONBLOCK needs nothing here: our pipe ends are always
 * overlapped, Windows' form of non-blocking, and the child's never are. */

/* Node's signal numbers on Windows (libuv's, the POSIX values). */
#define CP_SIGINT 2
#define CP_SIGQUIT 3
#define CP_SIGKILL 9
#define CP_SIGTERM 15

/* pipe_win32.c */
int cp__win_error(DWORD err);
int cp__utf8_to_utf16(const char *s, WCHAR **out, size_t *len);
void cp__close_handle(HANDLE *h);
int cp__pipe_pair(int child_reads, HANDLE *parent, HANDLE *child);
HANDLE cp__fd_handle(int fd);

/* Defined here, used by run_sync_win32.c. */
int cp__spawn(cp_spawn_req *req, cp_child *child, HANDLE *process,
              HANDLE *ends);
int cp__kill_handle(HANDLE process, int sig);

/* CreateProcessW's lpCommandLine limit, counting the terminating NUL. */
#define CP_CMDLINE_MAX 32767

/* ---- argv -> command line ---------------------------------------------- */

/* Append `arg` (n units) to `out` quoted so that CommandLineToArgvW and the
 * MSVCRT startup code give back exactly `arg`.  Same rules and output as
 * libuv's quote_cmd_arg, written forwards instead of reversed:
 *  - empty -> ""
 *  - nothing to protect (no space, tab or quote) -> as is, backslashes
 *    included (they are literal unless they precede a quote)
 *  - no quote and no backslash -> wrapped in quotes
 *  - else wrapped, each quote becomes \", and a run of backslashes is
 *    doubled when it precedes a quote or the closing quote. */
static WCHAR *quote_arg(const WCHAR *arg, size_t n, WCHAR *out)
{
    size_t i;
    int needs_quotes = 0, has_special = 0;

    if (n == 0) {
        *out++ = L'"';
        *out++ = L'"';
        return out;
    }
    for (i = 0; i < n; i++) {
        if (arg[i] == L' ' || arg[i] == L'\t' || arg[i] == L'"')
            needs_quotes = 1;
        if (arg[i] == L'"' || arg[i] == L'\\')
            has_special = 1;
    }
    if (!needs_quotes) {
        memcpy(out, arg, n * sizeof(WCHAR));
        return out + n;
    }
    *out++ = L'"';
    if (!has_special) {
        memcpy(out, arg, n * sizeof(WCHAR));
        out += n;
    } else {
        size_t backslashes = 0;
        for (i = 0; i < n; i++) {
            if (arg[i] == L'\\') {
                backslashes++;
                continue;
            }
            if (arg[i] == L'"') {
                /* 2k+1 backslashes: k literal ones, then an escaped quote. */
                for (size_t k = 0; k < 2 * backslashes + 1; k++)
                    *out++ = L'\\';
            } else {
                for (size_t k = 0; k < backslashes; k++)
                    *out++ = L'\\';
            }
            backslashes = 0;
            *out++ = arg[i];
        }
        /* Before the closing quote a run must be doubled, or it would
         * escape the quote. */
        for (size_t k = 0; k < 2 * backslashes; k++)
            *out++ = L'\\';
    }
    *out++ = L'"';
    return out;
}

static int make_cmdline(const cp_spawn_req *req, int verbatim, WCHAR **out)
{
    const char *a = req->argv;
    size_t total = 1, i;
    WCHAR *line, *pos;
    WCHAR **wargs;
    size_t *lens;
    int r = 0;

    if (req->argc < 0 || (req->argc > 0 && req->argv == NULL))
        return -EINVAL;
    wargs = calloc((size_t)req->argc + 1, sizeof *wargs);
    lens = calloc((size_t)req->argc + 1, sizeof *lens);
    if (wargs == NULL || lens == NULL) {
        r = -ENOMEM;
        goto out;
    }
    for (i = 0; i < (size_t)req->argc; i++) {
        r = cp__utf8_to_utf16(a, &wargs[i], &lens[i]);
        if (r < 0)
            goto out;
        a += strlen(a) + 1;
        /* Worst case: every unit escaped (2x), two quotes, a separator. */
        total += 2 * lens[i] + 3;
    }
    line = malloc(total * sizeof(WCHAR));
    if (line == NULL) {
        r = -ENOMEM;
        goto out;
    }
    pos = line;
    for (i = 0; i < (size_t)req->argc; i++) {
        if (i > 0)
            *pos++ = L' ';
        if (verbatim) {
            memcpy(pos, wargs[i], lens[i] * sizeof(WCHAR));
            pos += lens[i];
        } else {
            pos = quote_arg(wargs[i], lens[i], pos);
        }
    }
    *pos = 0;
    /* Checked here rather than left to CreateProcessW, which reports it as
     * an unrelated-looking ERROR_INVALID_PARAMETER / FILENAME_EXCED_RANGE;
     * E2BIG is what the same argv gives on POSIX. */
    if ((size_t)(pos - line) + 1 > CP_CMDLINE_MAX) {
        free(line);
        r = -E2BIG;
        goto out;
    }
    *out = line;
out:
    if (wargs) {
        for (i = 0; i < (size_t)req->argc; i++)
            free(wargs[i]);
    }
    free(wargs);
    free(lens);
    return r;
}

/* ---- env -> sorted UTF-16 block ---------------------------------------- */

/* Variables Windows programs cannot do without; copied from the parent when
 * the given env lacks them, as libuv does ("winsock will fail to initialize
 * if SYSTEMROOT is not defined"; Cygwin needs the rest).  Sorted. */
static const WCHAR *const required_vars[] = {
    L"HOMEDRIVE", L"HOMEPATH",   L"LOGONSERVER", L"PATH",
    L"SYSTEMDRIVE", L"SYSTEMROOT", L"TEMP",      L"USERDOMAIN",
    L"USERNAME",  L"USERPROFILE", L"WINDIR",
};
#define N_REQUIRED (sizeof required_vars / sizeof required_vars[0])

typedef struct {
    WCHAR *s;      /* "KEY=VALUE", owned                           */
    int keylen;    /* units before the '=' that ends the key       */
    int idx;       /* original position, the last sort key         */
} env_entry;

/* The key ends at the first '=' after the first unit: Windows keeps
 * per-drive cwds in variables named "=C:", whose name starts with '='. */
static int env_key_len(const WCHAR *s)
{
    const WCHAR *eq = s[0] ? wcschr(s + 1, L'=') : NULL;
    if (eq == NULL)
        return s[0] == L'=' ? 0 : -1;
    return (int)(eq - s);
}

static int env_cmp(const void *pa, const void *pb)
{
    const env_entry *a = pa, *b = pb;
    /* The order Windows requires: names compared ordinally, ignoring case. */
    int r = CompareStringOrdinal(a->s, a->keylen, b->s, b->keylen, TRUE);
    if (r != CSTR_EQUAL)
        return r - CSTR_EQUAL;
    /* Names equal but for case: only one can be kept.  Node keeps the first
     * in JavaScript's sort order (UTF-16 code units, case-sensitive), so
     * sort that one first; then the caller's order. */
    r = CompareStringOrdinal(a->s, a->keylen, b->s, b->keylen, FALSE);
    if (r != CSTR_EQUAL)
        return r - CSTR_EQUAL;
    return a->idx - b->idx;
}

static int make_env_block(const cp_spawn_req *req, WCHAR **out)
{
    env_entry *e;
    size_t n = 0, total = 0, i, j;
    const char *p = req->envp;
    WCHAR *block, *pos;
    int r = 0;

    if (req->envc < 0 || (req->envc > 0 && req->envp == NULL))
        return -EINVAL;
    e = calloc((size_t)req->envc + N_REQUIRED, sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    for (i = 0; i < (size_t)req->envc; i++) {
        WCHAR *w;
        r = cp__utf8_to_utf16(p, &w, NULL);
        if (r < 0)
            goto out;
        p += strlen(p) + 1;
        int k = env_key_len(w);
        if (k < 0) { /* no '=': libuv skips such entries */
            free(w);
            continue;
        }
        e[n].s = w;
        e[n].keylen = k;
        e[n].idx = (int)n;
        n++;
    }
    for (j = 0; j < N_REQUIRED; j++) {
        int klen = (int)wcslen(required_vars[j]), found = 0;
        for (i = 0; i < n && !found; i++)
            found = CompareStringOrdinal(e[i].s, e[i].keylen, required_vars[j],
                                         klen, TRUE) == CSTR_EQUAL;
        if (found)
            continue;
        DWORD need = GetEnvironmentVariableW(required_vars[j], NULL, 0);
        if (need == 0)
            continue; /* the parent has none either */
        WCHAR *w = malloc(((size_t)klen + 1 + need) * sizeof(WCHAR));
        if (w == NULL) {
            r = -ENOMEM;
            goto out;
        }
        memcpy(w, required_vars[j], (size_t)klen * sizeof(WCHAR));
        w[klen] = L'=';
        DWORD got = GetEnvironmentVariableW(required_vars[j], w + klen + 1,
                                            need);
        if (got == 0 || got >= need) { /* vanished or grew meanwhile */
            free(w);
            continue;
        }
        e[n].s = w;
        e[n].keylen = klen;
        e[n].idx = (int)n;
        n++;
    }
    qsort(e, n, sizeof *e, env_cmp);
    for (i = 0; i < n; i++)
        total += wcslen(e[i].s) + 1;
    /* An empty block still needs its two NULs. */
    block = malloc((total + 2) * sizeof(WCHAR));
    if (block == NULL) {
        r = -ENOMEM;
        goto out;
    }
    pos = block;
    for (i = 0; i < n; i++) {
        if (i > 0 && CompareStringOrdinal(e[i].s, e[i].keylen, e[i - 1].s,
                                          e[i - 1].keylen,
                                          TRUE) == CSTR_EQUAL)
            continue; /* a case-insensitive duplicate: Windows keeps one */
        size_t len = wcslen(e[i].s) + 1;
        memcpy(pos, e[i].s, len * sizeof(WCHAR));
        pos += len;
    }
    *pos++ = 0;
    if (pos == block + 1)
        *pos++ = 0;
    *out = block;
out:
    for (i = 0; i < n; i++)
        free(e[i].s);
    free(e);
    return r;
}

/* The value of PATH in a block made by make_env_block, or NULL. */
static const WCHAR *block_path(const WCHAR *block)
{
    for (; block && *block; block += wcslen(block) + 1) {
        if (CompareStringOrdinal(block, 5, L"PATH=", 5, TRUE) == CSTR_EQUAL)
            return block + 5;
    }
    return NULL;
}

/* ---- executable search (libuv's search_path) --------------------------- */

/* Is `p` a regular file (or anything but a directory)? */
static int is_file(const WCHAR *p)
{
    DWORD attrs = GetFileAttributesW(p);
    return attrs != INVALID_FILE_ATTRIBUTES &&
           !(attrs & FILE_ATTRIBUTE_DIRECTORY);
}

/* cwd + dir + name + ext joined as cmd.exe would resolve them; returns the
 * malloc'd path if it names a file, else NULL (*oom set on malloc failure). */
static WCHAR *join_test(const WCHAR *dir, size_t dir_len, const WCHAR *name,
                        size_t name_len, const WCHAR *ext, size_t ext_len,
                        const WCHAR *cwd, size_t cwd_len, int *oom)
{
    WCHAR *res, *pos;

    if (dir_len > 2 && (dir[0] == L'\\' || dir[0] == L'/') &&
        (dir[1] == L'\\' || dir[1] == L'/')) {
        cwd_len = 0; /* UNC path: the cwd plays no part */
    } else if (dir_len >= 1 && (dir[0] == L'/' || dir[0] == L'\\')) {
        cwd_len = cwd_len < 2 ? cwd_len : 2; /* rooted: only cwd's drive */
    } else if (dir_len >= 2 && dir[1] == L':' &&
               (dir_len < 3 || (dir[2] != L'/' && dir[2] != L'\\'))) {
        /* Drive-relative ("D:sub"): relative to cwd only on cwd's drive. */
        if (cwd_len < 2 || _wcsnicmp(cwd, dir, 2) != 0) {
            cwd_len = 0;
        } else {
            dir += 2;
            dir_len -= 2;
        }
    } else if (dir_len > 2 && dir[1] == L':') {
        cwd_len = 0; /* absolute with a drive */
    }

    res = pos = malloc((cwd_len + 1 + dir_len + 1 + name_len + 1 + ext_len +
                        1) * sizeof(WCHAR));
    if (res == NULL) {
        *oom = 1;
        return NULL;
    }
    memcpy(pos, cwd, cwd_len * sizeof(WCHAR));
    pos += cwd_len;
    if (cwd_len && wcschr(L"\\/:", pos[-1]) == NULL)
        *pos++ = L'\\';
    memcpy(pos, dir, dir_len * sizeof(WCHAR));
    pos += dir_len;
    if (dir_len && wcschr(L"\\/:", pos[-1]) == NULL)
        *pos++ = L'\\';
    memcpy(pos, name, name_len * sizeof(WCHAR));
    pos += name_len;
    if (ext_len) {
        if (name_len && pos[-1] != L'.')
            *pos++ = L'.';
        memcpy(pos, ext, ext_len * sizeof(WCHAR));
        pos += ext_len;
    }
    *pos = 0;
    if (is_file(res))
        return res;
    free(res);
    return NULL;
}

/* In one directory: the exact name if it has an extension, then name.com,
 * then name.exe.  PATHEXT is not used: CreateProcess can only start .com and
 * .exe files (the same rule as MSVCRT's spawn functions and libuv). */
static WCHAR *walk_ext(const WCHAR *dir, size_t dir_len, const WCHAR *name,
                       size_t name_len, const WCHAR *cwd, size_t cwd_len,
                       int name_has_ext, int *oom)
{
    WCHAR *r;
    if (name_has_ext) {
        r = join_test(dir, dir_len, name, name_len, L"", 0, cwd, cwd_len, oom);
        if (r || *oom)
            return r;
    }
    r = join_test(dir, dir_len, name, name_len, L"com", 3, cwd, cwd_len, oom);
    if (r || *oom)
        return r;
    return join_test(dir, dir_len, name, name_len, L"exe", 3, cwd, cwd_len,
                     oom);
}

/* cmd.exe's search minus PATHEXT, as libuv's search_path: a name with a
 * directory part is resolved against cwd only; a bare name is looked up in
 * cwd first (unless NoDefaultCurrentDirectoryInExePath is set), then in
 * each PATH entry (entries may be quoted, relative, or end in a slash).
 * Returns the malloc'd path, or NULL with -ENOENT / -ENOMEM in *err. */
static WCHAR *search_path(const WCHAR *file, const WCHAR *cwd,
                          const WCHAR *path, int *err)
{
    size_t file_len = wcslen(file), cwd_len = wcslen(cwd);
    const WCHAR *name, *dot, *dir_end, *dir_start;
    WCHAR *result = NULL;
    int oom = 0, name_has_ext;

    *err = -ENOENT;
    if (file_len == 0 || (file_len == 1 && file[0] == L'.'))
        return NULL;
    for (name = file + file_len;
         name > file && name[-1] != L'\\' && name[-1] != L'/' &&
         name[-1] != L':';
         name--)
        ;
    dot = wcschr(name, L'.');
    name_has_ext = dot != NULL && dot[1] != 0;

    if (name != file) {
        result = walk_ext(file, (size_t)(name - file), name,
                          file_len - (size_t)(name - file), cwd, cwd_len,
                          name_has_ext, &oom);
    } else {
        if (NeedCurrentDirectoryForExePathW(L""))
            result = walk_ext(L"", 0, file, file_len, cwd, cwd_len,
                              name_has_ext, &oom);
        dir_end = path;
        while (result == NULL && !oom && dir_end != NULL && *dir_end) {
            size_t dir_len;
            const WCHAR *dir;
            if (dir_end != path || *path == L';')
                dir_end++; /* skip the ';' */
            dir_start = dir_end;
            if (*dir_start == L'"' || *dir_start == L'\'') {
                dir_end = wcschr(dir_start + 1, *dir_start);
                if (dir_end == NULL)
                    dir_end = dir_start + wcslen(dir_start);
            }
            dir_end = wcschr(dir_end, L';');
            if (dir_end == NULL)
                dir_end = dir_start + wcslen(dir_start);
            if (dir_end == dir_start)
                continue;
            dir = dir_start;
            dir_len = (size_t)(dir_end - dir_start);
            if (dir[0] == L'"' || dir[0] == L'\'') {
                dir++;
                dir_len--;
            }
            if (dir_len && (dir[dir_len - 1] == L'"' ||
                            dir[dir_len - 1] == L'\''))
                dir_len--;
            if (dir_len == 0)
                continue;
            result = walk_ext(dir, dir_len, file, file_len, cwd, cwd_len,
                              name_has_ext, &oom);
        }
    }
    if (oom)
        *err = -ENOMEM;
    return result;
}

/* Would CreateProcess hand this file to cmd.exe?  Its extension is .bat or
 * .cmd in any case, once the trailing dots and spaces that Windows strips
 * from file names are ignored ("x.bat. ." runs x.bat; that bypass was
 * CVE-2024-36138, the follow-up to CVE-2024-27980). */
static int is_batch_file(const WCHAR *p)
{
    size_t n = wcslen(p);
    while (n > 0 && (p[n - 1] == L'.' || p[n - 1] == L' '))
        n--;
    if (n < 4 || p[n - 4] != L'.')
        return 0;
    return _wcsnicmp(p + n - 3, L"bat", 3) == 0 ||
           _wcsnicmp(p + n - 3, L"cmd", 3) == 0;
}

/* ---- stdio --------------------------------------------------------------- */

/* The lpReserved2 blob through which the MSVCRT/UCRT startup code of the
 * child learns its fds (libuv's child_stdio_buffer, the CRT's own format
 * for _spawn): int count; unsigned char flags[count]; HANDLE h[count].
 * Without it a child sees only fds 0-2 (from hStdInput...); with it,
 * stdio[3] and up arrive as CRT fds 3 and up, as they do on POSIX. */
#define CRT_FOPEN 0x01
#define CRT_FPIPE 0x08
#define CRT_FDEV 0x40
#define CP_MAX_STDIO 255 /* libuv's limit; cbReserved2 is a WORD */

typedef struct {
    int count;           /* >= 3 */
    HANDLE *child;       /* the child's end of each slot, or INVALID       */
    unsigned char *crt;  /* CRT flags of each slot                         */
    HANDLE *parent;      /* our end of each pipe slot, or INVALID          */
} stdio_plan;

static void plan_free(stdio_plan *sp)
{
    int i;
    for (i = 0; i < sp->count; i++) {
        if (sp->child)
            cp__close_handle(&sp->child[i]);
        if (sp->parent)
            cp__close_handle(&sp->parent[i]);
    }
    free(sp->child);
    free(sp->crt);
    free(sp->parent);
    memset(sp, 0, sizeof *sp);
}

static int nul_handle(int writable, HANDLE *out)
{
    SECURITY_ATTRIBUTES sa;
    sa.nLength = sizeof sa;
    sa.lpSecurityDescriptor = NULL;
    sa.bInheritHandle = TRUE;
    *out = CreateFileW(L"NUL",
                       writable ? (FILE_GENERIC_WRITE | FILE_READ_ATTRIBUTES)
                                : FILE_GENERIC_READ,
                       FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING,
                       0, NULL);
    if (*out == INVALID_HANDLE_VALUE)
        return cp__win_error(GetLastError());
    return 0;
}

static int make_stdio(const cp_spawn_req *req, stdio_plan *sp, int *stage)
{
    int i, r;

    sp->count = req->nstdio < 3 ? 3 : req->nstdio;
    sp->child = malloc((size_t)sp->count * sizeof(HANDLE));
    sp->parent = malloc((size_t)sp->count * sizeof(HANDLE));
    sp->crt = calloc((size_t)sp->count, 1);
    if (!sp->child || !sp->parent || !sp->crt) {
        sp->count = 0; /* nothing to close yet */
        plan_free(sp);
        return -ENOMEM;
    }
    for (i = 0; i < sp->count; i++)
        sp->child[i] = sp->parent[i] = INVALID_HANDLE_VALUE;

    for (i = 0; i < sp->count; i++) {
        int kind = i < req->nstdio ? req->stdio[i].kind : CP_STDIO_IGNORE;
        switch (kind) {
        case CP_STDIO_IGNORE:
            /* 0-2 get NUL, as Node: a program started with no stdin or
             * stdout at all can misbehave.  3 and up stay closed. */
            if (i <= 2) {
                r = nul_handle(i != 0, &sp->child[i]);
                if (r < 0) {
                    *stage = CP_STAGE_STDIO;
                    return r;
                }
                sp->crt[i] = CRT_FOPEN | CRT_FDEV;
            }
            break;
        case CP_STDIO_PIPE_IN:
        case CP_STDIO_PIPE_OUT:
        case CP_STDIO_IPC:
            /* IPC: a duplex named pipe, handed over as a CRT fd as libuv
             * does (the child's NODE_CHANNEL_FD names it); the bytes on it
             * are libuv's IPC frames, written and read by Python. */
            r = cp__pipe_pair(kind == CP_STDIO_IPC ? 2 : kind == CP_STDIO_PIPE_IN,
                              &sp->parent[i], &sp->child[i]);
            if (r < 0) {
                *stage = CP_STAGE_PIPE;
                return r;
            }
            sp->crt[i] = CRT_FOPEN | CRT_FPIPE;
            break;
        case CP_STDIO_FD: {
            HANDLE h = cp__fd_handle(req->stdio[i].fd);
            if (h == INVALID_HANDLE_VALUE) {
                /* libuv: a parent without a std handle passes none on. */
                if (req->stdio[i].fd >= 0 && req->stdio[i].fd <= 2)
                    break;
                *stage = CP_STAGE_STDIO;
                return -EBADF;
            }
            /* An inheritable duplicate, so the parent's own handle keeps
             * its flags and the handle list holds only handles we made. */
            if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(),
                                 &sp->child[i], 0, TRUE,
                                 DUPLICATE_SAME_ACCESS)) {
                sp->child[i] = INVALID_HANDLE_VALUE;
                *stage = CP_STAGE_STDIO;
                return cp__win_error(GetLastError());
            }
            switch (GetFileType(sp->child[i])) {
            case FILE_TYPE_DISK:
                sp->crt[i] = CRT_FOPEN;
                break;
            case FILE_TYPE_PIPE:
                sp->crt[i] = CRT_FOPEN | CRT_FPIPE;
                break;
            default:
                sp->crt[i] = CRT_FOPEN | CRT_FDEV;
                break;
            }
            break;
        }
        case CP_STDIO_DUP: {
            /* The earlier slot's handle again (2>&1), as a handle of its own
             * so that every child[] entry is closed once. */
            int j = req->stdio[i].fd;
            if (j < 0 || j >= i) {
                *stage = CP_STAGE_STDIO;
                return -EINVAL;
            }
            if (sp->child[j] == INVALID_HANDLE_VALUE)
                break;
            if (!DuplicateHandle(GetCurrentProcess(), sp->child[j],
                                 GetCurrentProcess(), &sp->child[i], 0, TRUE,
                                 DUPLICATE_SAME_ACCESS)) {
                sp->child[i] = INVALID_HANDLE_VALUE;
                *stage = CP_STAGE_STDIO;
                return cp__win_error(GetLastError());
            }
            sp->crt[i] = sp->crt[j];
            break;
        }
        default:
            *stage = CP_STAGE_STDIO;
            return -EINVAL;
        }
    }
    return 0;
}

static BYTE *crt_blob(const stdio_plan *sp, WORD *size)
{
    size_t n = 4 + (size_t)sp->count * (1 + sizeof(HANDLE));
    BYTE *b = malloc(n);
    int i;
    if (b == NULL)
        return NULL;
    memcpy(b, &sp->count, 4);
    memcpy(b + 4, sp->crt, (size_t)sp->count);
    /* The handles are unaligned in this format; memcpy, not stores. */
    for (i = 0; i < sp->count; i++)
        memcpy(b + 4 + sp->count + (size_t)i * sizeof(HANDLE), &sp->child[i],
               sizeof(HANDLE));
    *size = (WORD)n;
    return b;
}

/* ---- the kill-on-close job for CP_SPAWN_DIE_WITH_PARENT ----------------- */

/* One job for the whole process, never closed by us: when this process dies
 * the kernel closes the handle and JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE kills
 * every child in it (libuv puts every non-detached child in such a job;
 * that is Node's behaviour on Windows).  It has to be process-wide state:
 * a job per child would work too, but costs a handle per child. */
static INIT_ONCE job_once = INIT_ONCE_STATIC_INIT;
static HANDLE job_handle;

static BOOL CALLBACK job_init(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION info;
    HANDLE job = CreateJobObjectW(NULL, NULL);
    (void)once, (void)param, (void)ctx;
    if (job == NULL)
        return TRUE; /* no job: children just won't die with us */
    memset(&info, 0, sizeof info);
    /* BREAKAWAY_OK / SILENT_BREAKAWAY_OK: only the children we put in the
     * job are in it, not theirs, so grandchildren may use jobs of their
     * own and daemonize (libuv's reasoning). */
    info.BasicLimitInformation.LimitFlags =
        JOB_OBJECT_LIMIT_BREAKAWAY_OK | JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK |
        JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION |
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation,
                                 &info, sizeof info)) {
        CloseHandle(job);
        return TRUE;
    }
    job_handle = job;
    return TRUE;
}

/* ---- spawn --------------------------------------------------------------- */

/* The spawn itself.  The parent's pipe ends go to ends[i] (HANDLEs, for
 * run_sync_win32.c) when `ends` is given, else into req->stdio[i].fd as CRT
 * fds (cp_spawn).  *process gets the process handle. */
int cp__spawn(cp_spawn_req *req, cp_child *child, HANDLE *process,
              HANDLE *ends)
{
    WCHAR *wfile = NULL, *cmdline = NULL, *envblock = NULL, *cwd = NULL;
    WCHAR *wpath = NULL, *app = NULL;
    const WCHAR *path = NULL;
    BYTE *blob = NULL;
    HANDLE *inherit = NULL;
    LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
    int attrs_ready = 0, stage = CP_STAGE_NONE, r = 0, i, ninherit = 0;
    int fds_made = 0;
    stdio_plan sp;
    STARTUPINFOEXW si;
    PROCESS_INFORMATION pi;
    DWORD flags;
    WORD blob_size = 0;

    memset(&sp, 0, sizeof sp);
    child->pid = 0;
    child->pidfd = -1;
    child->stage = CP_STAGE_NONE;
    child->job = 0;
    *process = INVALID_HANDLE_VALUE;

    if (req->nstdio < 0 || req->nstdio > CP_MAX_STDIO ||
        (req->nstdio > 0 && req->stdio == NULL) || req->file == NULL) {
        child->stage = CP_STAGE_EXEC;
        return req->nstdio > CP_MAX_STDIO ? -ENOTSUP : -EINVAL;
    }
    if (req->flags & (CP_SPAWN_SETUID | CP_SPAWN_SETGID)) {
        /* Windows has no uid/gid to switch to (libuv: UV_ENOTSUP). */
        child->stage = CP_STAGE_IDS;
        return -ENOTSUP;
    }

    stage = CP_STAGE_EXEC;
    r = cp__utf8_to_utf16(req->file, &wfile, NULL);
    if (r < 0)
        goto fail;
    /* Node refuses on the name it was given, before any search. */
    if (is_batch_file(wfile)) {
        r = -EINVAL;
        goto fail;
    }
    r = make_cmdline(req, (req->flags & CP_SPAWN_VERBATIM_ARGS) != 0,
                     &cmdline);
    if (r < 0)
        goto fail;
    if (req->envp != NULL) {
        r = make_env_block(req, &envblock);
        if (r < 0)
            goto fail;
    }

    /* cwd: checked here so that a bad one is reported as the chdir stage
     * (CreateProcessW would say ERROR_DIRECTORY, which libuv and we map to
     * ENOENT all the same). */
    stage = CP_STAGE_CHDIR;
    if (req->cwd != NULL) {
        size_t len;
        r = cp__utf8_to_utf16(req->cwd, &cwd, &len);
        if (r < 0)
            goto fail;
        DWORD attrs_ = GetFileAttributesW(cwd);
        if (attrs_ == INVALID_FILE_ATTRIBUTES) {
            r = cp__win_error(GetLastError());
            goto fail;
        }
        if (!(attrs_ & FILE_ATTRIBUTE_DIRECTORY)) {
            r = -ENOENT;
            goto fail;
        }
    } else {
        DWORD n = GetCurrentDirectoryW(0, NULL);
        cwd = n ? malloc(n * sizeof(WCHAR)) : NULL;
        if (cwd == NULL || GetCurrentDirectoryW(n, cwd) == 0) {
            r = n ? -ENOMEM : cp__win_error(GetLastError());
            goto fail;
        }
    }
    /* CreateProcessW refuses a cwd of MAX_PATH or more; the 8.3 form of a
     * long one may fit (libuv does the same). */
    if (wcslen(cwd) >= MAX_PATH) {
        DWORD n = GetShortPathNameW(cwd, cwd, (DWORD)wcslen(cwd) + 1);
        if (n == 0 || n >= MAX_PATH) {
            r = n == 0 ? cp__win_error(GetLastError()) : -ENAMETOOLONG;
            goto fail;
        }
    }

    /* The PATH to search: the one Python gives, else the child's, else
     * ours (libuv's order on Windows). */
    stage = CP_STAGE_EXEC;
    if (req->path != NULL) {
        r = cp__utf8_to_utf16(req->path, &wpath, NULL);
        if (r < 0)
            goto fail;
        path = wpath;
    } else if (envblock != NULL && block_path(envblock) != NULL) {
        path = block_path(envblock);
    } else {
        DWORD n = GetEnvironmentVariableW(L"PATH", NULL, 0);
        if (n > 0) {
            wpath = malloc(n * sizeof(WCHAR));
            if (wpath == NULL) {
                r = -ENOMEM;
                goto fail;
            }
            DWORD got = GetEnvironmentVariableW(L"PATH", wpath, n);
            if (got == 0 || got >= n)
                wpath[0] = 0;
            path = wpath;
        }
    }
    app = search_path(wfile, cwd, path, &r);
    if (app == NULL)
        goto fail;
    if (is_batch_file(app)) {
        r = -EINVAL;
        goto fail;
    }

    stage = CP_STAGE_PIPE;
    r = make_stdio(req, &sp, &stage);
    if (r < 0)
        goto fail;

    if (ends == NULL) {
        /* Made before the process exists, so that running out of CRT fds
         * (EMFILE) can never leave a child behind. */
        stage = CP_STAGE_PIPE;
        for (i = 0; i < req->nstdio; i++) {
            int kind = req->stdio[i].kind;
            if (kind != CP_STDIO_PIPE_IN && kind != CP_STDIO_PIPE_OUT &&
                kind != CP_STDIO_IPC)
                continue;
            int fd = _open_osfhandle((intptr_t)sp.parent[i],
                                     _O_BINARY | _O_NOINHERIT |
                                         (kind == CP_STDIO_IPC ? _O_RDWR
                                          : kind == CP_STDIO_PIPE_IN ? _O_WRONLY
                                                                     : _O_RDONLY));
            if (fd < 0) {
                r = errno == EMFILE ? -EMFILE : -ENOMEM;
                goto fail;
            }
            sp.parent[i] = INVALID_HANDLE_VALUE; /* the fd owns it now */
            req->stdio[i].fd = fd;
            fds_made = i + 1;
        }
    }

    stage = CP_STAGE_STDIO;
    blob = crt_blob(&sp, &blob_size);
    inherit = malloc((size_t)sp.count * sizeof(HANDLE));
    if (blob == NULL || inherit == NULL) {
        r = -ENOMEM;
        goto fail;
    }
    for (i = 0; i < sp.count; i++)
        if (sp.child[i] != INVALID_HANDLE_VALUE)
            inherit[ninherit++] = sp.child[i];

    memset(&si, 0, sizeof si);
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES | STARTF_USESHOWWINDOW;
    si.StartupInfo.hStdInput = sp.child[0];
    si.StartupInfo.hStdOutput = sp.child[1];
    si.StartupInfo.hStdError = sp.child[2];
    si.StartupInfo.cbReserved2 = blob_size;
    si.StartupInfo.lpReserved2 = blob;
    si.StartupInfo.wShowWindow =
        (req->flags & CP_SPAWN_HIDE) ? SW_HIDE : SW_SHOWDEFAULT;

    flags = CREATE_UNICODE_ENVIRONMENT;
    if (ninherit > 0) {
        /* Only these handles are inherited, whatever else in this process
         * is inheritable at this instant (another thread's pipe ends). */
        SIZE_T size = 0;
        InitializeProcThreadAttributeList(NULL, 1, 0, &size);
        attrs = malloc(size);
        if (attrs == NULL) {
            r = -ENOMEM;
            goto fail;
        }
        if (!InitializeProcThreadAttributeList(attrs, 1, 0, &size)) {
            r = cp__win_error(GetLastError());
            goto fail;
        }
        attrs_ready = 1;
        if (!UpdateProcThreadAttribute(attrs, 0,
                                       PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                       inherit,
                                       (SIZE_T)ninherit * sizeof(HANDLE),
                                       NULL, NULL)) {
            r = cp__win_error(GetLastError());
            goto fail;
        }
        si.lpAttributeList = attrs;
        flags |= EXTENDED_STARTUPINFO_PRESENT;
    }
    if (req->flags & CP_SPAWN_HIDE) {
        /* libuv: no console window either, unless a slot is one of the
         * parent's own handles (it may be the console we would hide). */
        int inherits_fd = 0;
        for (i = 0; i < req->nstdio; i++)
            inherits_fd |= req->stdio[i].kind == CP_STDIO_FD;
        if (!inherits_fd)
            flags |= CREATE_NO_WINDOW;
    }
    if (req->flags & CP_SPAWN_SETSID)
        flags |= DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP; /* detached */
    else if (req->flags & CP_SPAWN_SETPGROUP)
        flags |= CREATE_NEW_PROCESS_GROUP;
    if (req->flags & (CP_SPAWN_DIE_WITH_PARENT | CP_SPAWN_SETPGROUP))
        flags |= CREATE_SUSPENDED; /* into the job before it runs a line */
    child->job = 0;

    stage = CP_STAGE_EXEC;
    if (!CreateProcessW(app, cmdline, NULL, NULL, ninherit > 0, flags,
                        envblock, cwd, &si.StartupInfo, &pi)) {
        r = cp__win_error(GetLastError());
        if (r == -ENOMEM || r == -EAGAIN)
            stage = CP_STAGE_FORK;
        goto fail;
    }

    if (req->flags & CP_SPAWN_DIE_WITH_PARENT) {
        InitOnceExecuteOnce(&job_once, job_init, NULL, NULL);
        /* ERROR_ACCESS_DENIED: we run in a job that forbids nesting (before
         * Windows 8).  Then the child cannot be tied to us; run it anyway,
         * as libuv does, rather than make spawning impossible. */
        if (job_handle != NULL)
            AssignProcessToJobObject(job_handle, pi.hProcess);
    }
    if (req->flags & CP_SPAWN_SETPGROUP) {
        /* kill_tree: a job of the child's own, without breakaway, so every
         * process it starts is in it too and cp_kill_tree reaches them all
         * (what a process group is on POSIX).  Made after die_with_parent's
         * job took the child: an empty job nests under the process's job
         * (Windows 8 and up), the other way round fails. */
        HANDLE tree = CreateJobObjectW(NULL, NULL);
        if (tree == NULL || !AssignProcessToJobObject(tree, pi.hProcess)) {
            r = cp__win_error(GetLastError());
            if (tree != NULL)
                CloseHandle(tree);
            TerminateProcess(pi.hProcess, 1);
            WaitForSingleObject(pi.hProcess, INFINITE);
            CloseHandle(pi.hThread);
            CloseHandle(pi.hProcess);
            stage = CP_STAGE_SESSION;
            goto fail;
        }
        child->job = (int)(intptr_t)tree;
    }
    if (flags & CREATE_SUSPENDED) {
        if (ResumeThread(pi.hThread) == (DWORD)-1) {
            r = cp__win_error(GetLastError());
            TerminateProcess(pi.hProcess, 1);
            WaitForSingleObject(pi.hProcess, INFINITE);
            CloseHandle(pi.hThread);
            CloseHandle(pi.hProcess);
            if (child->job) {
                CloseHandle((HANDLE)(intptr_t)child->job);
                child->job = 0;
            }
            stage = CP_STAGE_FORK;
            goto fail;
        }
    }
    CloseHandle(pi.hThread);

    /* Success.  The child's ends are the child's now; ours stay open. */
    for (i = 0; i < sp.count; i++)
        cp__close_handle(&sp.child[i]);
    if (ends != NULL) {
        for (i = 0; i < req->nstdio; i++) {
            ends[i] = sp.parent[i];
            sp.parent[i] = INVALID_HANDLE_VALUE;
        }
    }
    *process = pi.hProcess;
    child->pid = (int)pi.dwProcessId;
    child->pidfd = (int)(intptr_t)pi.hProcess;
    child->stage = CP_STAGE_NONE;
    r = 0;
    goto out;

fail:
    child->stage = stage;
    for (i = 0; i < fds_made; i++) {
        int kind = req->stdio[i].kind;
        if ((kind == CP_STDIO_PIPE_IN || kind == CP_STDIO_PIPE_OUT ||
             kind == CP_STDIO_IPC) && req->stdio[i].fd >= 0) {
            _close(req->stdio[i].fd);
            req->stdio[i].fd = -1;
        }
    }
out:
    if (attrs_ready)
        DeleteProcThreadAttributeList(attrs);
    free(attrs);
    free(inherit);
    free(blob);
    plan_free(&sp);
    free(wfile);
    free(cmdline);
    free(envblock);
    free(cwd);
    free(wpath);
    free(app);
    return r;
}

int cp_spawn(cp_spawn_req *req, cp_child *child)
{
    HANDLE process;
    return cp__spawn(req, child, &process, NULL);
}

int cp_wait(cp_child *child, int *status)
{
    HANDLE h;
    DWORD code;

    if (child->pidfd == -1)
        return -ECHILD;
    h = (HANDLE)(intptr_t)child->pidfd;
    if (WaitForSingleObject(h, INFINITE) == WAIT_FAILED)
        return cp__win_error(GetLastError());
    if (!GetExitCodeProcess(h, &code))
        return cp__win_error(GetLastError());
    *status = (int)code; /* the raw 32-bit exit code, see the top */
    CloseHandle(h);
    child->pidfd = -1;
    return 0;
}

/* Windows has no signals to send to another process: as in libuv, SIGTERM,
 * SIGKILL, SIGINT and SIGQUIT all end it with TerminateProcess (exit code
 * 1), 0 asks whether it still runs, anything else is ENOSYS (Node then
 * throws).  A process that has already ended gives ESRCH. */
int cp__kill_handle(HANDLE process, int sig)
{
    DWORD status;

    switch (sig) {
    case CP_SIGTERM:
    case CP_SIGKILL:
    case CP_SIGINT:
    case CP_SIGQUIT:
        /* Never "kill" a process that has already ended: Windows refuses
         * (access denied, sorted out below) but not every implementation
         * does (wine says yes), and the exit must keep its own code. */
        if (WaitForSingleObject(process, 0) == WAIT_OBJECT_0)
            return -ESRCH;
        if (TerminateProcess(process, 1))
            return 0;
        /* TerminateProcess on a process that has ended fails with access
         * denied; tell that apart from a real lack of rights. */
        if (GetLastError() == ERROR_ACCESS_DENIED &&
            ((GetExitCodeProcess(process, &status) &&
              status != STILL_ACTIVE) ||
             WaitForSingleObject(process, 0) == WAIT_OBJECT_0))
            return -ESRCH;
        return cp__win_error(GetLastError());
    case 0:
        if (!GetExitCodeProcess(process, &status))
            return cp__win_error(GetLastError());
        if (status != STILL_ACTIVE)
            return -ESRCH;
        switch (WaitForSingleObject(process, 0)) {
        case WAIT_OBJECT_0:
            return -ESRCH;
        case WAIT_TIMEOUT:
            return 0;
        default:
            return cp__win_error(GetLastError());
        }
    default:
        return sig < 0 ? -EINVAL : -ENOSYS;
    }
}

/* Proposed for childproc.h: kill the child through its handle (so never a
 * recycled pid), or -ESRCH once cp_wait has reaped it. */
int cp_kill(cp_child *child, int sig)
{
    if (child->pidfd == -1)
        return -ESRCH;
    return cp__kill_handle((HANDLE)(intptr_t)child->pidfd, sig);
}

int cp_kill_tree(cp_child *child, int sig)
{
    HANDLE job = (HANDLE)(intptr_t)child->job;
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION info;

    if (child->job == 0)
        return cp_kill(child, sig); /* no job: the child alone */
    switch (sig) {
    case 0:
    case CP_SIGTERM:
    case CP_SIGKILL:
    case CP_SIGINT:
    case CP_SIGQUIT:
        break;
    default:
        return sig < 0 ? -EINVAL : -ENOSYS;
    }
    if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation,
                                   &info, sizeof info, NULL))
        return cp__win_error(GetLastError());
    if (info.ActiveProcesses == 0)
        return -ESRCH;
    if (sig == 0)
        return 0;
    return TerminateJobObject(job, 1) ? 0 : cp__win_error(GetLastError());
}

/* No clone path here: nothing is kept between spawns. */
int cp_child_stacks_mapped(void) { return 0; }

/* No warm start on Windows: there is no fork to make one from. */
int cp_clone_parent(void) { return -ENOSYS; }
