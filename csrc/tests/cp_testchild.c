/*
 * cp_testchild.c - the child that csrc/tests/test_win32.c spawns.
 *
 * Runs its arguments as a little program, left to right:
 *   args A B ...      print every remaining argument as UTF-8, each followed
 *                     by a NUL byte, and stop (the quoting round trip)
 *   env NAME          print NAME's value, or "<unset>"
 *   envblock          print the environment block, one entry per line
 *   cwd               print the current directory
 *   cat               copy stdin to stdout until EOF
 *   count             read stdin to EOF and print how many bytes came
 *   write N / ewrite N  write N pattern bytes (i % 251) to stdout / stderr
 *   both N            N pattern bytes to stdout AND to stderr, interleaved
 *                     4 KiB at a time (a parent reading one pipe at a time
 *                     deadlocks)
 *   print T / eprint T  write T to stdout / stderr
 *   write0            a zero-byte WriteFile to stdout
 *   fdwrite FD T      write T to CRT fd FD (passed through lpReserved2)
 *   handle HEX        print "valid" if HEX is an open handle here
 *   sleep MS          Sleep(MS)
 *   grandchild MS     start `cp_testchild sleep MS` inheriting our stdio,
 *                     and do not wait for it
 *   dwp MS            cp_spawn `cp_testchild sleep MS` with
 *                     CP_SPAWN_DIE_WITH_PARENT, print its pid, do not wait
 *   nodwp MS          the same without the flag (the control)
 *   exit CODE         ExitProcess(CODE), CODE a 32-bit unsigned number
 * and exits 0 when it runs out of commands.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "childproc.h"

#ifndef CP_SPAWN_DIE_WITH_PARENT
#define CP_SPAWN_DIE_WITH_PARENT 256
#endif

static void out_bytes(DWORD which, const void *p, size_t n)
{
    HANDLE h = GetStdHandle(which);
    const char *c = p;
    while (n > 0) {
        DWORD w = 0;
        if (!WriteFile(h, c, (DWORD)(n > 65536 ? 65536 : n), &w, NULL))
            ExitProcess(99);
        c += w;
        n -= w;
    }
}

static void out_w(DWORD which, const WCHAR *s, int len_with_nul)
{
    char buf[65536];
    int n = WideCharToMultiByte(CP_UTF8, 0, s, len_with_nul, buf, sizeof buf,
                                NULL, NULL);
    if (n > 0)
        out_bytes(which, buf, (size_t)n);
}

static char *utf8(const WCHAR *s)
{
    static char buf[65536];
    WideCharToMultiByte(CP_UTF8, 0, s, -1, buf, sizeof buf, NULL, NULL);
    return buf;
}

static void pattern(DWORD which, unsigned long long n)
{
    static char buf[65536];
    unsigned long long off = 0;
    while (off < n) {
        size_t chunk = n - off > sizeof buf ? sizeof buf : (size_t)(n - off);
        for (size_t i = 0; i < chunk; i++)
            buf[i] = (char)((off + i) % 251);
        out_bytes(which, buf, chunk);
        off += chunk;
    }
}

int wmain(int argc, wchar_t **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        const wchar_t *c = argv[i];
        const wchar_t *a1 = i + 1 < argc ? argv[i + 1] : L"";
        if (!wcscmp(c, L"args")) {
            for (i = i + 1; i < argc; i++)
                out_w(STD_OUTPUT_HANDLE, argv[i], -1); /* with its NUL */
            return 0;
        } else if (!wcscmp(c, L"env")) {
            WCHAR v[32768];
            DWORD n = GetEnvironmentVariableW(a1, v, 32768);
            if (n == 0 && GetLastError() == ERROR_ENVVAR_NOT_FOUND)
                out_bytes(STD_OUTPUT_HANDLE, "<unset>", 7);
            else
                out_w(STD_OUTPUT_HANDLE, v, (int)n);
            i++;
        } else if (!wcscmp(c, L"envblock")) {
            WCHAR *b = GetEnvironmentStringsW(), *p;
            for (p = b; *p; p += wcslen(p) + 1) {
                out_w(STD_OUTPUT_HANDLE, p, (int)wcslen(p));
                out_bytes(STD_OUTPUT_HANDLE, "\n", 1);
            }
            FreeEnvironmentStringsW(b);
        } else if (!wcscmp(c, L"cwd")) {
            WCHAR d[32768];
            DWORD n = GetCurrentDirectoryW(32768, d);
            out_w(STD_OUTPUT_HANDLE, d, (int)n);
        } else if (!wcscmp(c, L"cat") || !wcscmp(c, L"count")) {
            static char buf[65536];
            unsigned long long total = 0;
            DWORD n;
            HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
            while (ReadFile(in, buf, sizeof buf, &n, NULL) && n > 0) {
                if (!wcscmp(c, L"cat"))
                    out_bytes(STD_OUTPUT_HANDLE, buf, n);
                total += n;
            }
            if (!wcscmp(c, L"count")) {
                char s[32];
                int k = snprintf(s, sizeof s, "%llu", total);
                out_bytes(STD_OUTPUT_HANDLE, s, (size_t)k);
            }
        } else if (!wcscmp(c, L"write") || !wcscmp(c, L"ewrite")) {
            pattern(c[0] == L'e' ? STD_ERROR_HANDLE : STD_OUTPUT_HANDLE,
                    wcstoull(a1, NULL, 10));
            i++;
        } else if (!wcscmp(c, L"both")) {
            unsigned long long n = wcstoull(a1, NULL, 10), off = 0;
            static char buf[4096];
            while (off < n) {
                size_t chunk = n - off > sizeof buf ? sizeof buf
                                                    : (size_t)(n - off);
                for (size_t k = 0; k < chunk; k++)
                    buf[k] = (char)((off + k) % 251);
                out_bytes(STD_OUTPUT_HANDLE, buf, chunk);
                out_bytes(STD_ERROR_HANDLE, buf, chunk);
                off += chunk;
            }
            i++;
        } else if (!wcscmp(c, L"print") || !wcscmp(c, L"eprint")) {
            out_w(c[0] == L'e' ? STD_ERROR_HANDLE : STD_OUTPUT_HANDLE, a1,
                  (int)wcslen(a1));
            i++;
        } else if (!wcscmp(c, L"write0")) {
            DWORD w;
            WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), "", 0, &w, NULL);
        } else if (!wcscmp(c, L"fdwrite")) {
            int fd = _wtoi(a1);
            const char *t = utf8(i + 2 < argc ? argv[i + 2] : L"");
            if (_write(fd, t, (unsigned)strlen(t)) != (int)strlen(t))
                return 98;
            i += 2;
        } else if (!wcscmp(c, L"handle")) {
            HANDLE h = (HANDLE)(uintptr_t)wcstoull(a1, NULL, 16);
            DWORD flags;
            const char *s = GetHandleInformation(h, &flags) ? "valid"
                                                            : "invalid";
            out_bytes(STD_OUTPUT_HANDLE, s, strlen(s));
            i++;
        } else if (!wcscmp(c, L"sleep")) {
            Sleep((DWORD)wcstoul(a1, NULL, 10));
            i++;
        } else if (!wcscmp(c, L"grandchild")) {
            WCHAR self[MAX_PATH], line[MAX_PATH + 64];
            STARTUPINFOW si;
            PROCESS_INFORMATION pi;
            GetModuleFileNameW(NULL, self, MAX_PATH);
            _snwprintf(line, MAX_PATH + 64, L"\"%ls\" sleep %ls", self, a1);
            memset(&si, 0, sizeof si);
            si.cb = sizeof si;
            si.dwFlags = STARTF_USESTDHANDLES;
            si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
            si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
            si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
            if (!CreateProcessW(self, line, NULL, NULL, TRUE, 0, NULL, NULL,
                                &si, &pi))
                return 97;
            CloseHandle(pi.hThread);
            CloseHandle(pi.hProcess);
            i++;
        } else if (!wcscmp(c, L"dwp") || !wcscmp(c, L"nodwp")) {
            char self[MAX_PATH * 3], argvb[MAX_PATH * 3 + 64];
            cp_stdio st[3] = {{CP_STDIO_IGNORE, -1},
                              {CP_STDIO_IGNORE, -1},
                              {CP_STDIO_IGNORE, -1}};
            cp_spawn_req req;
            cp_child ch;
            WCHAR wself[MAX_PATH];
            GetModuleFileNameW(NULL, wself, MAX_PATH);
            strcpy(self, utf8(wself));
            size_t off = 0;
            off += (size_t)sprintf(argvb + off, "%s", self) + 1;
            off += (size_t)sprintf(argvb + off, "sleep") + 1;
            off += (size_t)sprintf(argvb + off, "%s", utf8(a1)) + 1;
            memset(&req, 0, sizeof req);
            req.file = self;
            req.argv = argvb;
            req.argc = 3;
            req.stdio = st;
            req.nstdio = 3;
            req.flags = c[0] == L'd' ? CP_SPAWN_DIE_WITH_PARENT : 0;
            if (cp_spawn(&req, &ch) != 0)
                return 96;
            char s[32];
            int k = snprintf(s, sizeof s, "%d", ch.pid);
            out_bytes(STD_OUTPUT_HANDLE, s, (size_t)k);
            i++;
        } else if (!wcscmp(c, L"exit")) {
            ExitProcess((UINT)wcstoul(a1, NULL, 0));
        } else {
            fprintf(stderr, "cp_testchild: unknown command %s\n", utf8(c));
            return 2;
        }
    }
    return 0;
}
