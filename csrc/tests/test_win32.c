/*
 * test_win32.c - C-level tests of the Windows core (spawn_win32.c,
 * pipe_win32.c, run_sync_win32.c) through the API of childproc.h.
 *
 * Built with mingw-w64 and run under wine64 by run_win32_tests.sh; it spawns
 * cp_testchild.exe from its own directory.  Each test prints "ok" or its
 * failed checks; the last line is "N passed, N failed", and the exit code is
 * non-zero if anything failed.  A test name given on the command line runs
 * only the tests whose names contain it.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wchar.h>

#include "childproc.h"

#ifndef CP_SPAWN_VERBATIM_ARGS
#define CP_SPAWN_VERBATIM_ARGS 64
#endif
#ifndef CP_SPAWN_HIDE
#define CP_SPAWN_HIDE 128
#endif
#ifndef CP_SPAWN_DIE_WITH_PARENT
#define CP_SPAWN_DIE_WITH_PARENT 256
#endif
#define E_TIMEDOUT 10060 /* what Python's errno calls ETIMEDOUT on Windows */
#define E_NOBUFS 10055

int cp_kill(cp_child *child, int sig); /* proposed for childproc.h */

/* ---- a tiny harness ------------------------------------------------------ */

static int test_failed;
static int n_passed, n_failed;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            test_failed = 1;                                                  \
            printf("    %s:%d: check failed: %s: ", __FILE__, __LINE__,      \
                   #cond);                                                    \
            printf(__VA_ARGS__);                                              \
            printf("\n");                                                     \
        }                                                                     \
    } while (0)

static char child_exe[MAX_PATH * 3]; /* UTF-8 path of cp_testchild.exe */
static char tmp_dir[MAX_PATH * 3];   /* a fresh directory of our own    */

static char *utf8_of(const WCHAR *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = malloc((size_t)n);
    WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

static WCHAR *wide_of(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    WCHAR *w = malloc((size_t)n * sizeof(WCHAR));
    MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

static int under_wine(void)
{
    return GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                          "wine_get_version") != NULL;
}

static double now_s(void)
{
    LARGE_INTEGER c, f;
    QueryPerformanceCounter(&c);
    QueryPerformanceFrequency(&f);
    return (double)c.QuadPart / (double)f.QuadPart;
}

/* argc strings back to back, as childproc.h wants them. */
static char *blob(const char *const *v, int n, size_t *len)
{
    size_t total = 0;
    int i;
    for (i = 0; i < n; i++)
        total += strlen(v[i]) + 1;
    char *b = malloc(total ? total : 1), *p = b;
    for (i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        memcpy(p, v[i], l);
        p += l;
    }
    if (len)
        *len = total;
    return b;
}

/* One cp_run_sync of the test child (or `file`) with `args` after argv[0]. */
typedef struct {
    const char *file;
    const char *const *args;
    int nargs;
    const char *const *env; /* NULL: inherit */
    int envc;
    const char *cwd;
    const char *path;
    int flags;
    const char *input;
    size_t input_len;
    double timeout;
    uint64_t max_buffer;
    int kill_signal;
    int nstdio;          /* 0: [PIPE_IN, PIPE_OUT, PIPE_OUT] */
    cp_stdio stdio[4];
} run_opts;

typedef struct {
    int rc;
    cp_sync_result res;
    cp_output out[4];
    int nstdio;
    double secs;
} run_result;

static void run(const run_opts *o, run_result *rr)
{
    const char *v[64];
    int i, n = 0;
    cp_spawn_req req;
    cp_sync_opts so;
    cp_stdio st[4];

    v[n++] = o->file ? o->file : child_exe;
    for (i = 0; i < o->nargs && n < 64; i++)
        v[n++] = o->args[i];
    memset(&req, 0, sizeof req);
    req.file = o->file ? o->file : child_exe;
    req.argv = blob(v, n, NULL);
    req.argc = n;
    req.envp = o->env ? blob(o->env, o->envc, NULL) : NULL;
    req.envc = o->env ? o->envc : 0;
    req.cwd = o->cwd;
    req.path = o->path;
    req.flags = o->flags;
    if (o->nstdio) {
        memcpy(st, o->stdio, sizeof st);
        req.nstdio = o->nstdio;
    } else {
        st[0].kind = CP_STDIO_PIPE_IN;
        st[1].kind = CP_STDIO_PIPE_OUT;
        st[2].kind = CP_STDIO_PIPE_OUT;
        st[0].fd = st[1].fd = st[2].fd = -1;
        req.nstdio = 3;
    }
    req.stdio = st;
    memset(&so, 0, sizeof so);
    so.input = o->input;
    so.input_len = o->input_len;
    so.timeout_ns = (int64_t)(o->timeout * 1e9);
    so.kill_signal = o->kill_signal ? o->kill_signal : 15;
    so.max_buffer = o->max_buffer;
    memset(rr, 0, sizeof *rr);
    rr->res.outputs = rr->out;
    rr->nstdio = req.nstdio;
    double t0 = now_s();
    rr->rc = cp_run_sync(&req, &so, &rr->res);
    rr->secs = now_s() - t0;
    free((void *)req.argv);
    free((void *)req.envp);
}

static void run_free(run_result *rr)
{
    cp_sync_result_free(&rr->res, rr->nstdio);
}

static int out_is(const run_result *rr, int i, const char *s)
{
    size_t n = strlen(s);
    return rr->out[i].len == n && (n == 0 || memcmp(rr->out[i].data, s, n) == 0);
}

static const char *out_str(const run_result *rr, int i)
{
    static char buf[4][512];
    size_t n = rr->out[i].len < 511 ? rr->out[i].len : 511;
    if (n)
        memcpy(buf[i], rr->out[i].data, n);
    buf[i][n] = 0;
    return buf[i];
}

static int is_pattern(const char *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)d[i] != (unsigned char)(i % 251))
            return 0;
    return 1;
}

/* args and their count, for a run_opts (the compound literal lives as long
 * as the enclosing block) or as two arguments of spawn_simple. */
#define SET_ARGS(o, ...)                                                      \
    ((o).args = (const char *const[]){__VA_ARGS__},                           \
     (o).nargs = (int)(sizeof((const char *const[]){__VA_ARGS__}) /           \
                       sizeof(const char *)))
#define ARGS(...) (const char *const[]){__VA_ARGS__}, \
    (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* ---- the tests ----------------------------------------------------------- */

static void test_exit_codes(void)
{
    static const char *codes[] = {"0", "1", "42", "255", "256",
                                  "3221225477" /* 0xC0000005 */};
    static const unsigned long want[] = {0, 1, 42, 255, 256, 3221225477UL};
    for (int i = 0; i < 6; i++) {
        run_opts o = {0};
        run_result rr;
        const char *a[] = {"exit", codes[i]};
        o.args = a;
        o.nargs = 2;
        run(&o, &rr);
        CHECK(rr.rc == 0, "rc %d", rr.rc);
        CHECK(rr.res.spawned == 1 && rr.res.pid > 0, "pid %d", rr.res.pid);
        CHECK((unsigned long)(uint32_t)rr.res.exit_code == want[i],
              "exit %s gave %d", codes[i], rr.res.exit_code);
        CHECK(rr.res.term_signal == 0, "signal %d", rr.res.term_signal);
        CHECK(rr.out[1].len == 0 && rr.out[2].len == 0, "no output");
        CHECK(rr.res.collected == 0, "collected %zu", rr.res.collected);
        run_free(&rr);
    }
}

static void test_quoting(void)
{
    /* Each must come back from the child's MSVCRT argv unchanged. */
    static const char *tricky[] = {
        "plain", "", "a b", "a\tb", "a\"b", "\"", "\"\"", "\\", "\\\\",
        "a\\b", "a\\\\b", "a\\\"b", "a\\\\\"b", "trailing\\",
        "trailing space\\", "two\\\\", "sp ace\\\\", "\\\"", " ", "  lead",
        "x\"y z\"w", "%PATH%", "^&|<>()", "'single'", "a\\b c\\d\\",
        "\\\\server\\share\\x y", "ünïcødé 日本", "\"quoted\"",
        "end\\\"", "a\nb",
    };
    int n = (int)(sizeof tricky / sizeof tricky[0]);
    const char *args[40];
    args[0] = "args";
    for (int i = 0; i < n; i++)
        args[i + 1] = tricky[i];
    run_opts o = {0};
    run_result rr;
    o.args = args;
    o.nargs = n + 1;
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.res.exit_code == 0, "rc %d exit %d", rr.rc,
          rr.res.exit_code);
    size_t want_len;
    char *want = blob(tricky, n, &want_len);
    CHECK(rr.out[1].len == want_len &&
              memcmp(rr.out[1].data, want, want_len) == 0,
          "argv differs: got %zu bytes, want %zu", rr.out[1].len, want_len);
    if (rr.out[1].len != want_len ||
        memcmp(rr.out[1].data, want, want_len) != 0) {
        const char *p = rr.out[1].data, *end = p + rr.out[1].len;
        for (int i = 0; p < end; i++) {
            printf("      got[%d] = [%s] want [%s]\n", i, p,
                   i < n ? tricky[i] : "(none)");
            p += strlen(p) + 1;
        }
    }
    free(want);
    run_free(&rr);
}

static void test_verbatim(void)
{
    run_opts o = {0};
    run_result rr;
    const char *a[] = {"args", "\"a b\"", "c\\\"d", "e"};
    o.args = a;
    o.nargs = 4;
    o.flags = CP_SPAWN_VERBATIM_ARGS;
    run(&o, &rr);
    /* No quoting added: the child's own parser sees the raw text. */
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(rr.out[1].len == 10 && memcmp(rr.out[1].data, "a b\0c\"d\0e\0", 10) == 0,
          "got %zu bytes [%s]", rr.out[1].len, out_str(&rr, 1));
    run_free(&rr);
}

static void test_env_pass(void)
{
    run_opts o = {0};
    run_result rr;
    const char *env[] = {"FOO=bar baz", "UNI=\xc3\xa9t\xc3\xa9", "EMPTY="};
    SET_ARGS(o, "env", "FOO", "print", "|", "env", "UNI", "print", "|",
                  "env", "EMPTY", "print", "|", "env", "NOPE");
    o.env = env;
    o.envc = 3;
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(out_is(&rr, 1, "bar baz|\xc3\xa9t\xc3\xa9||<unset>"), "got [%s]",
          out_str(&rr, 1));
    run_free(&rr);
}

static void test_env_inherit(void)
{
    run_opts o = {0};
    run_result rr;
    SetEnvironmentVariableW(L"CP_TEST_INHERIT", L"inherited");
    SET_ARGS(o, "env", "CP_TEST_INHERIT");
    run(&o, &rr);
    CHECK(out_is(&rr, 1, "inherited"), "got [%s]", out_str(&rr, 1));
    run_free(&rr);
    SetEnvironmentVariableW(L"CP_TEST_INHERIT", NULL);
}

static void test_env_block(void)
{
    run_opts o = {0};
    run_result rr;
    /* Unsorted, with a case-insensitive duplicate; no SYSTEMROOT. */
    const char *env[] = {"zeta=1", "Alpha=2", "dup=lower", "DUP=upper",
                         "_under=3", "Beta=4", "noequals"};
    SET_ARGS(o, "envblock");
    o.env = env;
    o.envc = 7;
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    char *text = malloc(rr.out[1].len + 1);
    memcpy(text, rr.out[1].data, rr.out[1].len);
    text[rr.out[1].len] = 0;
    int n_dup = 0, sorted = 1, has_root = 0, has_noeq = 0, has_zeta = 0;
    char prev[512] = "";
    /* Wine's process start-up appends variables of its own (WINE*, then
     * SystemDrive/SystemRoot, re-set from its registry) after the block it
     * was given; order is only ours up to there. */
    int wine_tail = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (under_wine() && !strncmp(line, "WINE", 4))
            wine_tail = 1;
        if (wine_tail) {
            if (!_strnicmp(line, "SYSTEMROOT=", 11))
                has_root = 1;
            continue;
        }
        char key[512];
        const char *eq = strchr(line + 1, '=');
        size_t k = eq ? (size_t)(eq - line) : strlen(line);
        if (k > 511)
            k = 511;
        memcpy(key, line, k);
        key[k] = 0;
        if (!_stricmp(key, "DUP")) {
            n_dup++;
            /* Node keeps the first in JS sort order: "DUP" < "dup". */
            CHECK(!strcmp(line, "DUP=upper"), "kept [%s]", line);
        }
        if (!_stricmp(key, "SYSTEMROOT"))
            has_root = 1;
        if (!strcmp(key, "noequals"))
            has_noeq = 1;
        if (!strcmp(line, "zeta=1"))
            has_zeta = 1;
        WCHAR *wa = wide_of(prev), *wb = wide_of(key);
        if (prev[0] && CompareStringOrdinal(wa, -1, wb, -1, TRUE) !=
                           CSTR_LESS_THAN)
            sorted = 0;
        free(wa);
        free(wb);
        strcpy(prev, key);
    }
    CHECK(n_dup == 1, "%d DUP entries", n_dup);
    CHECK(sorted, "block not sorted");
    if (!sorted)
        printf("%.*s\n", (int)rr.out[1].len, rr.out[1].data);
    CHECK(has_root, "SYSTEMROOT not copied in from the parent");
    CHECK(!has_noeq, "an entry without '=' was passed");
    CHECK(has_zeta, "zeta=1 missing");
    free(text);
    run_free(&rr);
}

static int same_dir(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la && (a[la - 1] == '\\' || a[la - 1] == '/'))
        la--;
    while (lb && (b[lb - 1] == '\\' || b[lb - 1] == '/'))
        lb--;
    return la == lb && _strnicmp(a, b, la) == 0;
}

static void test_cwd(void)
{
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "cwd");
    o.cwd = tmp_dir;
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(same_dir(out_str(&rr, 1), tmp_dir), "got [%s] want [%s]",
          out_str(&rr, 1), tmp_dir);
    run_free(&rr);

    /* A cwd with non-ASCII characters. */
    char uni[MAX_PATH * 3];
    snprintf(uni, sizeof uni, "%s\\d\xc3\xafr \xe6\x97\xa5", tmp_dir);
    WCHAR *w = wide_of(uni);
    CreateDirectoryW(w, NULL);
    free(w);
    o.cwd = uni;
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(same_dir(out_str(&rr, 1), uni), "got [%s] want [%s]",
          out_str(&rr, 1), uni);
    run_free(&rr);
}

static void test_cwd_missing(void)
{
    run_opts o = {0};
    run_result rr;
    char bad[MAX_PATH * 3];
    snprintf(bad, sizeof bad, "%s\\no\\such\\dir", tmp_dir);
    SET_ARGS(o, "cwd");
    o.cwd = bad;
    run(&o, &rr);
    CHECK(rr.rc == -ENOENT, "rc %d", rr.rc);
    CHECK(rr.res.stage == CP_STAGE_CHDIR, "stage %d", rr.res.stage);
    CHECK(rr.res.pid == 0 && rr.res.spawned == 0, "pid %d", rr.res.pid);
    run_free(&rr);
}

static void test_enoent(void)
{
    run_opts o = {0};
    run_result rr;
    o.file = "no-such-program-xyz";
    run(&o, &rr);
    CHECK(rr.rc == -ENOENT && rr.res.error == -ENOENT, "rc %d", rr.rc);
    CHECK(rr.res.stage == CP_STAGE_EXEC, "stage %d", rr.res.stage);
    CHECK(rr.res.pid == 0 && rr.res.spawned == 0, "pid %d", rr.res.pid);
    run_free(&rr);

    char p[MAX_PATH * 3];
    snprintf(p, sizeof p, "%s\\missing\\prog.exe", tmp_dir);
    o.file = p;
    run(&o, &rr);
    CHECK(rr.rc == -ENOENT, "rc %d", rr.rc);
    run_free(&rr);

    o.file = ""; /* an empty name is never found */
    run(&o, &rr);
    CHECK(rr.rc == -ENOENT, "rc %d", rr.rc);
    run_free(&rr);
}

static void copy_child_to(const char *dir, const char *name)
{
    char dst[MAX_PATH * 3];
    snprintf(dst, sizeof dst, "%s\\%s", dir, name);
    WCHAR *ws = wide_of(child_exe), *wd = wide_of(dst);
    CopyFileW(ws, wd, FALSE);
    free(ws);
    free(wd);
}

static void test_path_search(void)
{
    char dir[MAX_PATH * 3], path[MAX_PATH * 4];
    snprintf(dir, sizeof dir, "%s\\bin dir", tmp_dir);
    WCHAR *w = wide_of(dir);
    CreateDirectoryW(w, NULL);
    free(w);
    copy_child_to(dir, "cp_searched.exe");

    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "print", "found");
    o.file = "cp_searched"; /* no extension: .com, then .exe */
    snprintf(path, sizeof path, "C:\\no\\such;;\"%s\";C:\\other", dir);
    o.path = path;
    run(&o, &rr);
    CHECK(rr.rc == 0 && out_is(&rr, 1, "found"), "quoted PATH entry: rc %d",
          rr.rc);
    run_free(&rr);

    snprintf(path, sizeof path, "%s\\", dir); /* trailing slash */
    o.path = path;
    o.file = "cp_searched.exe";
    run(&o, &rr);
    CHECK(rr.rc == 0 && out_is(&rr, 1, "found"), "exact name: rc %d", rr.rc);
    run_free(&rr);

    /* The child's cwd is searched first, before PATH. */
    o.path = "";
    o.file = "cp_searched";
    o.cwd = dir;
    run(&o, &rr);
    CHECK(rr.rc == 0 && out_is(&rr, 1, "found"), "cwd first: rc %d", rr.rc);
    run_free(&rr);

    /* Not on PATH, not in cwd. */
    o.cwd = tmp_dir;
    run(&o, &rr);
    CHECK(rr.rc == -ENOENT, "rc %d", rr.rc);
    run_free(&rr);

    /* PATH taken from the child's env when none is given. */
    char envpath[MAX_PATH * 4];
    snprintf(envpath, sizeof envpath, "Path=%s", dir);
    const char *env[] = {envpath};
    o.env = env;
    o.envc = 1;
    o.path = NULL;
    run(&o, &rr);
    CHECK(rr.rc == 0 && out_is(&rr, 1, "found"), "env PATH: rc %d", rr.rc);
    run_free(&rr);

    /* A relative path is resolved against the child's cwd. */
    o.env = NULL;
    o.file = "bin dir\\cp_searched";
    o.cwd = tmp_dir;
    run(&o, &rr);
    CHECK(rr.rc == 0 && out_is(&rr, 1, "found"), "relative: rc %d", rr.rc);
    run_free(&rr);
}

static void test_batch_refused(void)
{
    static const char *names[] = {"x.bat", "y.CMD", "z.Bat. . ", "w.cmd."};
    char dir[MAX_PATH * 3];
    snprintf(dir, sizeof dir, "%s\\batch", tmp_dir);
    WCHAR *w = wide_of(dir);
    CreateDirectoryW(w, NULL);
    free(w);
    for (int i = 0; i < 4; i++) {
        char p[MAX_PATH * 3];
        snprintf(p, sizeof p, "%s\\%s", dir, names[i]);
        FILE *f = fopen(p, "w");
        if (f) {
            fputs("@echo pwned\r\n", f);
            fclose(f);
        }
        run_opts o = {0};
        run_result rr;
        o.file = p;
        run(&o, &rr);
        CHECK(rr.rc == -EINVAL, "%s: rc %d", names[i], rr.rc);
        CHECK(rr.res.pid == 0, "%s ran", names[i]);
        run_free(&rr);
    }
    /* Refused by name even when it does not exist (Node checks the name). */
    run_opts o = {0};
    run_result rr;
    o.file = "nowhere.bat";
    run(&o, &rr);
    CHECK(rr.rc == -EINVAL, "rc %d", rr.rc);
    run_free(&rr);
    /* A search never finds .bat (only .com and .exe are tried). */
    o.file = "x";
    o.path = dir;
    run(&o, &rr);
    CHECK(rr.rc == -ENOENT, "rc %d", rr.rc);
    run_free(&rr);
}

static void test_stdin_echo(void)
{
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "cat");
    o.input = "hello\nworld\n";
    o.input_len = 12;
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.res.exit_code == 0, "rc %d", rr.rc);
    CHECK(out_is(&rr, 1, "hello\nworld\n"), "got [%s]", out_str(&rr, 1));
    CHECK(rr.out[0].len == 0 && rr.out[0].data == NULL, "stdin slot filled");
    run_free(&rr);
}

static void test_stdin_large(void)
{
    size_t n = 5 * 1024 * 1024 + 123;
    char *in = malloc(n);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)(i * 7 + (i >> 13));
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "cat");
    o.input = in;
    o.input_len = n;
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.res.exit_code == 0, "rc %d", rr.rc);
    CHECK(rr.out[1].len == n && memcmp(rr.out[1].data, in, n) == 0,
          "echoed %zu of %zu bytes", rr.out[1].len, n);
    run_free(&rr);
    free(in);
}

static void test_no_input_closes_stdin(void)
{
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "count");
    o.timeout = 20;
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d (a child reading stdin must see EOF)", rr.rc);
    CHECK(out_is(&rr, 1, "0"), "got [%s]", out_str(&rr, 1));
    run_free(&rr);
}

static void test_input_not_read(void)
{
    /* The child exits without reading 4 MiB of input: no hang, no error. */
    size_t n = 4 * 1024 * 1024;
    char *in = calloc(1, n);
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "print", "bye");
    o.input = in;
    o.input_len = n;
    o.timeout = 20;
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(out_is(&rr, 1, "bye"), "got [%s]", out_str(&rr, 1));
    run_free(&rr);
    free(in);
}

static void test_large_output(void)
{
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "write", "8388613");
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.res.exit_code == 0, "rc %d", rr.rc);
    CHECK(rr.out[1].len == 8388613, "len %zu", rr.out[1].len);
    CHECK(is_pattern(rr.out[1].data, rr.out[1].len), "bytes differ");
    run_free(&rr);

    /* stdout and stderr together, interleaved: both must be drained. */
    SET_ARGS(o, "both", "3145728");
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(rr.out[1].len == 3145728 && rr.out[2].len == 3145728,
          "len %zu %zu", rr.out[1].len, rr.out[2].len);
    CHECK(rr.res.collected == 2 * 3145728, "collected %zu", rr.res.collected);
    CHECK(is_pattern(rr.out[1].data, rr.out[1].len) &&
              is_pattern(rr.out[2].data, rr.out[2].len),
          "bytes differ");
    run_free(&rr);
}

static void test_zero_write(void)
{
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "write0", "print", "after", "write0", "print", "!");
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(out_is(&rr, 1, "after!"), "a zero-byte write was taken for EOF: [%s]",
          out_str(&rr, 1));
    run_free(&rr);
}

static void test_max_buffer(void)
{
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "write", "1000000");
    o.max_buffer = 10;
    run(&o, &rr);
    CHECK(rr.rc == -E_NOBUFS && rr.res.error == -E_NOBUFS, "rc %d", rr.rc);
    /* Not truncated to 10: the whole read that crossed the limit is kept. */
    CHECK(rr.out[1].len > 10 && rr.out[1].len < 1000000, "len %zu",
          rr.out[1].len);
    CHECK(is_pattern(rr.out[1].data, rr.out[1].len), "bytes differ");
    CHECK(rr.res.term_signal == 15 && rr.res.exit_code == -1,
          "killed: exit %d signal %d", rr.res.exit_code, rr.res.term_signal);
    run_free(&rr);

    /* All outputs count together: 3 + 3 > 4. */
    SET_ARGS(o, "print", "012", "eprint", "345", "sleep", "5000");
    o.max_buffer = 4;
    run(&o, &rr);
    CHECK(rr.rc == -E_NOBUFS, "combined: rc %d", rr.rc);
    CHECK(out_is(&rr, 1, "012") && out_is(&rr, 2, "345"), "[%s] [%s]",
          out_str(&rr, 1), out_str(&rr, 2));
    CHECK(rr.res.term_signal == 15, "signal %d", rr.res.term_signal);
    CHECK(rr.secs < 4, "took %.2fs: the kill did not happen", rr.secs);
    run_free(&rr);

    /* Exactly max_buffer is fine: the rule is "more than". */
    SET_ARGS(o, "write", "10");
    o.max_buffer = 10;
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.out[1].len == 10, "rc %d len %zu", rr.rc,
          rr.out[1].len);
    run_free(&rr);

    /* 0 means no limit. */
    SET_ARGS(o, "write", "300000");
    o.max_buffer = 0;
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.out[1].len == 300000, "rc %d len %zu", rr.rc,
          rr.out[1].len);
    run_free(&rr);
}

static void test_timeout(void)
{
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "print", "started", "sleep", "20000");
    o.timeout = 0.3;
    run(&o, &rr);
    CHECK(rr.rc == -E_TIMEDOUT && rr.res.error == -E_TIMEDOUT, "rc %d",
          rr.rc);
    CHECK(rr.res.term_signal == 15 && rr.res.exit_code == -1,
          "exit %d signal %d", rr.res.exit_code, rr.res.term_signal);
    CHECK(rr.secs >= 0.25 && rr.secs < 5, "took %.2fs", rr.secs);
    CHECK(out_is(&rr, 1, "started"), "got [%s]", out_str(&rr, 1));
    run_free(&rr);

    /* Finishing in time is no error. */
    SET_ARGS(o, "print", "quick");
    o.timeout = 20;
    run(&o, &rr);
    CHECK(rr.rc == 0 && out_is(&rr, 1, "quick"), "rc %d", rr.rc);
    run_free(&rr);

    /* An unsupported kill signal: the timeout stays the error (the first
     * wins) and SIGKILL goes instead, as in Node. */
    SET_ARGS(o, "sleep", "20000");
    o.timeout = 0.2;
    o.kill_signal = 10;
    run(&o, &rr);
    CHECK(rr.rc == -E_TIMEDOUT, "rc %d", rr.rc);
    CHECK(rr.res.term_signal == 9, "signal %d", rr.res.term_signal);
    run_free(&rr);
}

static void test_timeout_grandchild(void)
{
    /* The child exits at once; a grandchild keeps stdout open.  Node
     * returns at the timeout with ETIMEDOUT and the child's own status. */
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "grandchild", "4000", "print", "hi");
    o.timeout = 0.5;
    run(&o, &rr);
    CHECK(rr.rc == -E_TIMEDOUT, "rc %d", rr.rc);
    CHECK(rr.res.exit_code == 0 && rr.res.term_signal == 0,
          "exit %d signal %d", rr.res.exit_code, rr.res.term_signal);
    CHECK(rr.secs < 3.5, "took %.2fs", rr.secs);
    CHECK(out_is(&rr, 1, "hi"), "got [%s]", out_str(&rr, 1));
    run_free(&rr);
}

static void test_spawn_wait_fds(void)
{
    /* cp_spawn + cp_wait: pipe ends come back as CRT fds over overlapped
     * handles. */
    const char *v[] = {child_exe, "cat"};
    cp_stdio st[3] = {{CP_STDIO_PIPE_IN, -1},
                      {CP_STDIO_PIPE_OUT, -1},
                      {CP_STDIO_IGNORE, -1}};
    cp_spawn_req req;
    cp_child ch;
    memset(&req, 0, sizeof req);
    req.file = child_exe;
    req.argv = blob(v, 2, NULL);
    req.argc = 2;
    req.stdio = st;
    req.nstdio = 3;
    int r = cp_spawn(&req, &ch);
    CHECK(r == 0, "rc %d", r);
    if (r != 0)
        return;
    CHECK(ch.pid > 0 && ch.pidfd != -1 && ch.stage == CP_STAGE_NONE,
          "pid %d pidfd %d", ch.pid, ch.pidfd);
    CHECK(GetProcessId((HANDLE)(intptr_t)ch.pidfd) == (DWORD)ch.pid,
          "pidfd is not the process handle");
    CHECK(st[0].fd >= 0 && st[1].fd >= 0 && st[2].fd == -1, "fds %d %d %d",
          st[0].fd, st[1].fd, st[2].fd);
    HANDLE hin = (HANDLE)_get_osfhandle(st[0].fd);
    HANDLE hout = (HANDLE)_get_osfhandle(st[1].fd);
    CHECK(hin != INVALID_HANDLE_VALUE && hout != INVALID_HANDLE_VALUE,
          "no handles behind the fds");
    DWORD hflags = 1;
    GetHandleInformation(hout, &hflags);
    CHECK(!(hflags & HANDLE_FLAG_INHERIT), "parent end is inheritable");

    /* Overlapped I/O on our ends. */
    OVERLAPPED ov;
    DWORD n = 0;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    BOOL ok = WriteFile(hin, "ping", 4, NULL, &ov);
    CHECK(ok || GetLastError() == ERROR_IO_PENDING, "write err %lu",
          GetLastError());
    CHECK(GetOverlappedResult(hin, &ov, &n, TRUE) && n == 4, "wrote %lu", n);
    _close(st[0].fd); /* EOF for cat */
    char buf[16];
    size_t got = 0;
    for (;;) {
        memset(&ov, 0, sizeof ov);
        ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        ok = ReadFile(hout, buf + got, (DWORD)(sizeof buf - got), NULL, &ov);
        if (!ok && GetLastError() != ERROR_IO_PENDING)
            break;
        if (!GetOverlappedResult(hout, &ov, &n, TRUE))
            break;
        CloseHandle(ov.hEvent);
        got += n;
    }
    CHECK(GetLastError() == ERROR_BROKEN_PIPE, "ended with %lu",
          GetLastError());
    CHECK(got == 4 && memcmp(buf, "ping", 4) == 0, "read %zu bytes", got);
    _close(st[1].fd);
    int status = -7;
    r = cp_wait(&ch, &status);
    CHECK(r == 0 && status == 0, "wait %d status %d", r, status);
    CHECK(ch.pidfd == -1, "pidfd not cleared");
    CHECK(cp_wait(&ch, &status) == -ECHILD, "second wait");
    free((void *)req.argv);
}

static void test_crt_fd_io(void)
{
    /* The same through plain CRT _write/_read (what os.write/os.read do):
     * not promised on an overlapped handle, but it should work. */
    const char *v[] = {child_exe, "cat"};
    cp_stdio st[3] = {{CP_STDIO_PIPE_IN, -1},
                      {CP_STDIO_PIPE_OUT, -1},
                      {CP_STDIO_IGNORE, -1}};
    cp_spawn_req req;
    cp_child ch;
    memset(&req, 0, sizeof req);
    req.file = child_exe;
    req.argv = blob(v, 2, NULL);
    req.argc = 2;
    req.stdio = st;
    req.nstdio = 3;
    int r = cp_spawn(&req, &ch);
    CHECK(r == 0, "rc %d", r);
    if (r != 0)
        return;
    CHECK(_write(st[0].fd, "crt-io", 6) == 6, "_write");
    _close(st[0].fd);
    char buf[32];
    int got = 0, n;
    while ((n = _read(st[1].fd, buf + got, (unsigned)(sizeof buf - got))) > 0)
        got += n;
    CHECK(n == 0, "_read ended with %d", n);
    CHECK(got == 6 && memcmp(buf, "crt-io", 6) == 0, "read %d", got);
    _close(st[1].fd);
    int status;
    CHECK(cp_wait(&ch, &status) == 0 && status == 0, "status %d", status);
    free((void *)req.argv);
}

static int spawn_simple(const char *const *args, int nargs, int flags,
                        cp_child *ch, cp_stdio *st, int nstdio)
{
    const char *v[16];
    cp_stdio def[3] = {{CP_STDIO_IGNORE, -1},
                       {CP_STDIO_IGNORE, -1},
                       {CP_STDIO_IGNORE, -1}};
    cp_spawn_req req;
    v[0] = child_exe;
    for (int i = 0; i < nargs; i++)
        v[i + 1] = args[i];
    memset(&req, 0, sizeof req);
    req.file = child_exe;
    req.argv = blob(v, nargs + 1, NULL);
    req.argc = nargs + 1;
    req.stdio = st ? st : def;
    req.nstdio = st ? nstdio : 3;
    req.flags = flags;
    int r = cp_spawn(&req, ch);
    free((void *)req.argv);
    return r;
}

static void test_kill(void)
{
    cp_child ch;
    int r = spawn_simple(ARGS("sleep", "20000"), 0, &ch, NULL, 0);
    CHECK(r == 0, "rc %d", r);
    if (r)
        return;
    CHECK(cp_kill(&ch, 0) == 0, "alive check");
    CHECK(cp_kill(&ch, 10) == -ENOSYS, "SIGUSR1 on Windows");
    CHECK(cp_kill(&ch, 15) == 0, "SIGTERM");
    int status = -7;
    double t0 = now_s();
    CHECK(cp_wait(&ch, &status) == 0, "wait");
    CHECK(now_s() - t0 < 5, "kill did not end it");
    CHECK(status == 1, "status %d (TerminateProcess code 1, as libuv)",
          status);
    CHECK(cp_kill(&ch, 15) == -ESRCH, "after reaping");

    /* A child that has ended but is not reaped: ESRCH, never a kill. */
    r = spawn_simple(ARGS("exit", "5"), 0, &ch, NULL, 0);
    CHECK(r == 0, "rc %d", r);
    WaitForSingleObject((HANDLE)(intptr_t)ch.pidfd, 5000);
    CHECK(cp_kill(&ch, 9) == -ESRCH, "kill of an exited child");
    CHECK(cp_kill(&ch, 0) == -ESRCH, "liveness of an exited child");
    CHECK(cp_wait(&ch, &status) == 0 && status == 5, "status %d", status);
}

static void test_ids_unsupported(void)
{
    cp_child ch;
    int r = spawn_simple(ARGS("exit", "0"), CP_SPAWN_SETUID, &ch, NULL, 0);
    CHECK(r == -ENOTSUP && ch.stage == CP_STAGE_IDS, "rc %d stage %d", r,
          ch.stage);
    r = spawn_simple(ARGS("exit", "0"), CP_SPAWN_SETGID, &ch, NULL, 0);
    CHECK(r == -ENOTSUP, "rc %d", r);
}

static void test_stdio_fd_file(void)
{
    char p[MAX_PATH * 3];
    snprintf(p, sizeof p, "%s\\out.txt", tmp_dir);
    int fd = _open(p, _O_CREAT | _O_TRUNC | _O_WRONLY | _O_BINARY,
                   _S_IREAD | _S_IWRITE);
    CHECK(fd >= 0, "open");
    cp_stdio st[3] = {{CP_STDIO_IGNORE, -1},
                      {CP_STDIO_FD, fd},
                      {CP_STDIO_FD, fd}};
    cp_child ch;
    int r = spawn_simple(ARGS("print", "to-file", "eprint", "+err"), 0, &ch,
                         st, 3);
    CHECK(r == 0, "rc %d", r);
    int status = -1;
    if (r == 0)
        cp_wait(&ch, &status);
    CHECK(status == 0, "status %d", status);
    CHECK(st[1].fd == fd, "fd slot changed");
    _close(fd);
    char buf[64] = {0};
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    CHECK(n == 11 && !strcmp(buf, "to-file+err"), "file has [%s]", buf);

    /* A closed fd is EBADF, at the stdio stage. */
    st[1].fd = 77;
    st[2].kind = CP_STDIO_FD;
    st[2].fd = 77;
    r = spawn_simple(ARGS("exit", "0"), 0, &ch, st, 3);
    CHECK(r == -EBADF && ch.stage == CP_STAGE_STDIO, "rc %d stage %d", r,
          ch.stage);
}

static void test_ignore(void)
{
    run_opts o = {0};
    run_result rr;
    o.nstdio = 3;
    for (int i = 0; i < 3; i++) {
        o.stdio[i].kind = CP_STDIO_IGNORE;
        o.stdio[i].fd = -1;
    }
    /* stdin is NUL (EOF at once), stdout/stderr swallow. */
    SET_ARGS(o, "count", "print", "x", "eprint", "y");
    o.timeout = 20;
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.res.exit_code == 0, "rc %d exit %d", rr.rc,
          rr.res.exit_code);
    CHECK(rr.out[1].len == 0 && rr.out[1].data == NULL, "output collected");
    run_free(&rr);
}

static void test_fd3(void)
{
    run_opts o = {0};
    run_result rr;
    o.nstdio = 4;
    o.stdio[0].kind = CP_STDIO_IGNORE;
    o.stdio[1].kind = CP_STDIO_PIPE_OUT;
    o.stdio[2].kind = CP_STDIO_IGNORE;
    o.stdio[3].kind = CP_STDIO_PIPE_OUT;
    SET_ARGS(o, "fdwrite", "3", "on-fd-3", "print", "on-1");
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.res.exit_code == 0, "rc %d exit %d", rr.rc,
          rr.res.exit_code);
    CHECK(out_is(&rr, 3, "on-fd-3"), "fd 3 got [%s]", out_str(&rr, 3));
    CHECK(out_is(&rr, 1, "on-1"), "fd 1 got [%s]", out_str(&rr, 1));
    run_free(&rr);
}

static void test_dup_stderr_into_stdout(void)
{
    /* CP_STDIO_DUP (subprocess.STDOUT in slot 2): stderr goes into the
     * stdout pipe, 2>&1, and nothing is collected for slot 2. */
    run_opts o = {0};
    run_result rr;
    o.nstdio = 3;
    o.stdio[0].kind = CP_STDIO_IGNORE;
    o.stdio[1].kind = CP_STDIO_PIPE_OUT;
    o.stdio[2].kind = CP_STDIO_DUP;
    o.stdio[2].fd = 1;
    SET_ARGS(o, "print", "out", "eprint", "+err");
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.res.exit_code == 0, "rc %d exit %d", rr.rc,
          rr.res.exit_code);
    CHECK(out_is(&rr, 1, "out+err"), "fd 1 got [%s]", out_str(&rr, 1));
    CHECK(rr.out[2].len == 0 && rr.out[2].data == NULL, "slot 2 collected");
    run_free(&rr);
}

static void test_handle_list(void)
{
    /* An inheritable handle of ours that is not in the child's stdio must
     * not reach the child. */
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE ev = CreateEventW(&sa, TRUE, FALSE, NULL);
    char hex[32];
    snprintf(hex, sizeof hex, "%llx", (unsigned long long)(uintptr_t)ev);
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "handle", hex);
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(out_is(&rr, 1, "invalid"), "leaked: child says [%s]",
          out_str(&rr, 1));
    run_free(&rr);

    /* The control: a plain CreateProcessW that inherits everything does
     * pass it, so "invalid" above is the handle list's doing. */
    WCHAR line[MAX_PATH * 2];
    WCHAR *wexe = wide_of(child_exe);
    swprintf(line, MAX_PATH * 2, L"\"%ls\" handle %hs", wexe, hex);
    SECURITY_ATTRIBUTES psa = {sizeof psa, NULL, TRUE};
    HANDLE rd, wr;
    CreatePipe(&rd, &wr, &psa, 0);
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdOutput = wr;
    si.hStdError = wr;
    si.hStdInput = INVALID_HANDLE_VALUE;
    BOOL ok = CreateProcessW(wexe, line, NULL, NULL, TRUE, 0, NULL, NULL, &si,
                             &pi);
    CloseHandle(wr);
    char buf[32] = {0};
    DWORD n = 0, got = 0;
    while (ok && got < sizeof buf - 1 &&
           ReadFile(rd, buf + got, (DWORD)(sizeof buf - 1 - got), &n, NULL) &&
           n > 0)
        got += n;
    CHECK(ok && !strcmp(buf, "valid"), "control: child says [%s]", buf);
    if (ok) {
        WaitForSingleObject(pi.hProcess, INFINITE);
        CloseHandle(pi.hProcess);
        CloseHandle(pi.hThread);
    }
    CloseHandle(rd);
    free(wexe);
    CloseHandle(ev);
}

static void test_shell_cmd(void)
{
    /* Node's shell mode on Windows: cmd.exe /d /s /c "<command>" with
     * windowsVerbatimArguments, found on the parent's PATH. */
    run_opts o = {0};
    run_result rr;
    o.file = "cmd.exe";
    SET_ARGS(o, "/d", "/s", "/c", "\"echo hello world& exit 3\"");
    o.flags = CP_SPAWN_VERBATIM_ARGS;
    run(&o, &rr);
    CHECK(rr.rc == 0, "rc %d", rr.rc);
    CHECK(rr.res.exit_code == 3, "exit %d", rr.res.exit_code);
    CHECK(out_is(&rr, 1, "hello world\r\n"), "got [%s]", out_str(&rr, 1));
    run_free(&rr);

    /* The brief's simplest case: cmd /c echo hi, quoted normally. */
    o.file = "cmd";
    SET_ARGS(o, "/c", "echo", "hi");
    o.flags = 0;
    run(&o, &rr);
    CHECK(rr.rc == 0 && rr.res.exit_code == 0, "rc %d", rr.rc);
    CHECK(out_is(&rr, 1, "hi\r\n"), "got [%s]", out_str(&rr, 1));
    run_free(&rr);
}

static void test_not_executable(void)
{
    /* A file with an .exe name that is no program: ENOEXEC (Python's
     * winerror_to_errno says the same for ERROR_BAD_EXE_FORMAT). */
    char p[MAX_PATH * 3];
    snprintf(p, sizeof p, "%s\\bogus.exe", tmp_dir);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs("this is not a program\n", f);
        fclose(f);
    }
    run_opts o = {0};
    run_result rr;
    o.file = p;
    run(&o, &rr);
    CHECK(rr.rc == -ENOEXEC, "rc %d", rr.rc);
    CHECK(rr.res.stage == CP_STAGE_EXEC && rr.res.pid == 0, "stage %d pid %d",
          rr.res.stage, rr.res.pid);
    run_free(&rr);

    /* A directory is never taken for the program. */
    o.file = tmp_dir;
    run(&o, &rr);
    CHECK(rr.rc == -ENOENT, "directory: rc %d", rr.rc);
    run_free(&rr);
}

static void test_flags(void)
{
    /* CP_SPAWN_NONBLOCK (32 in childproc.h) is accepted: our pipe ends are
     * overlapped whatever the flag says. */
    static const int flags[] = {CP_SPAWN_SETSID, CP_SPAWN_SETPGROUP,
                                CP_SPAWN_HIDE, CP_SPAWN_USE_CLONE,
                                CP_SPAWN_DIE_WITH_PARENT, 32,
                                CP_SPAWN_VERBATIM_ARGS | CP_SPAWN_HIDE};
    for (int i = 0; i < 7; i++) {
        run_opts o = {0};
        run_result rr;
        SET_ARGS(o, "print", "flagged", "exit", "7");
        o.flags = flags[i];
        run(&o, &rr);
        CHECK(rr.rc == 0 && rr.res.exit_code == 7 && out_is(&rr, 1, "flagged"),
              "flag %d: rc %d exit %d", flags[i], rr.rc, rr.res.exit_code);
        run_free(&rr);
    }
}

/* Run the child with `cmd MS` (dwp or nodwp) and return a handle to the
 * grandchild it started, or NULL. */
static HANDLE grandchild_of(const char *cmd, run_result *rr)
{
    run_opts o = {0};
    SET_ARGS(o, cmd, "30000");
    o.timeout = 20;
    run(&o, rr);
    CHECK(rr->rc == 0 && rr->res.exit_code == 0, "%s: rc %d exit %d", cmd,
          rr->rc, rr->res.exit_code);
    DWORD pid = (DWORD)strtoul(out_str(rr, 1), NULL, 10);
    CHECK(pid > 0, "no pid printed: [%s]", out_str(rr, 1));
    return pid ? OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE, FALSE, pid)
               : NULL;
}

static void test_die_with_parent(void)
{
    run_result rr;
    /* The control: without the flag the grandchild outlives the child, so
     * the check below tests the flag and not a grandchild that never ran. */
    HANDLE h = grandchild_of("nodwp", &rr);
    CHECK(h != NULL, "control grandchild not running");
    if (h) {
        CHECK(WaitForSingleObject(h, 1000) == WAIT_TIMEOUT,
              "control grandchild died on its own");
        TerminateProcess(h, 1);
        CloseHandle(h);
    }
    run_free(&rr);
}

static void test_die_with_parent_flag(void)
{
    /* The child spawns a grandchild with CP_SPAWN_DIE_WITH_PARENT, prints
     * its pid and exits: the grandchild must die with it. */
    run_result rr;
    HANDLE h = grandchild_of("dwp", &rr);
    if (h) {
        DWORD w = WaitForSingleObject(h, 10000);
        CHECK(w == WAIT_OBJECT_0, "grandchild outlived its parent");
        if (w != WAIT_OBJECT_0)
            TerminateProcess(h, 1);
        CloseHandle(h);
    }
    run_free(&rr);
}

static void test_e2big_and_bad_utf8(void)
{
    size_t n = 40000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = 0;
    const char *a[] = {"args", big};
    run_opts o = {0};
    run_result rr;
    o.args = a;
    o.nargs = 2;
    run(&o, &rr);
    CHECK(rr.rc == -E2BIG && rr.res.stage == CP_STAGE_EXEC, "rc %d stage %d",
          rr.rc, rr.res.stage);
    run_free(&rr);
    free(big);

    SET_ARGS(o, "args", "bad\xff");
    run(&o, &rr);
    CHECK(rr.rc == -EINVAL, "invalid UTF-8: rc %d", rr.rc);
    run_free(&rr);

    /* A lone surrogate (WTF-8) is valid on Windows and passes through. */
    SET_ARGS(o, "args", "a\xed\xa0\x80z");
    run(&o, &rr);
    CHECK(rr.rc == 0, "lone surrogate: rc %d", rr.rc);
    run_free(&rr);
}

typedef struct {
    int id;
    int bad;
} thread_arg;

static DWORD WINAPI thread_main(LPVOID p)
{
    thread_arg *t = p;
    for (int k = 0; k < 8; k++) {
        char in[64];
        int len = snprintf(in, sizeof in, "thread %d round %d", t->id, k);
        run_opts o = {0};
        run_result rr;
        SET_ARGS(o, "cat");
        o.input = in;
        o.input_len = (size_t)len;
        o.timeout = 30;
        run(&o, &rr);
        if (rr.rc != 0 || !out_is(&rr, 1, in))
            t->bad++;
        run_free(&rr);
    }
    return 0;
}

static void test_threads(void)
{
    HANDLE th[6];
    thread_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i].id = i;
        args[i].bad = 0;
        th[i] = CreateThread(NULL, 0, thread_main, &args[i], 0, NULL);
    }
    WaitForMultipleObjects(6, th, TRUE, INFINITE);
    for (int i = 0; i < 6; i++) {
        CHECK(args[i].bad == 0, "thread %d: %d bad rounds", i, args[i].bad);
        CloseHandle(th[i]);
    }
}

static void test_no_handle_leak(void)
{
    DWORD before = 0, after = 0;
    run_opts o = {0};
    run_result rr;
    SET_ARGS(o, "print", "x");
    run(&o, &rr); /* warm up (lazy allocations) */
    run_free(&rr);
    GetProcessHandleCount(GetCurrentProcess(), &before);
    for (int i = 0; i < 40; i++) {
        run(&o, &rr);
        run_free(&rr);
    }
    o.file = "no-such-program-xyz"; /* failures must clean up too */
    for (int i = 0; i < 10; i++) {
        run(&o, &rr);
        run_free(&rr);
    }
    GetProcessHandleCount(GetCurrentProcess(), &after);
    CHECK(after <= before + 2, "handles %lu -> %lu", before, after);
}

/* ---- cp_pump ----------------------------------------------------------- */

/* Spawn the test child with stdio [st0, PIPE_OUT, IGNORE] (or PIPE_IN at 0
 * when `stdin_pipe`); the pipe fds come back in st. */
static int spawn_piped(const char *const *args, int nargs, cp_child *ch,
                       cp_stdio *st, int stdin_pipe)
{
    st[0].kind = stdin_pipe ? CP_STDIO_PIPE_IN : CP_STDIO_IGNORE;
    st[1].kind = CP_STDIO_PIPE_OUT;
    st[2].kind = CP_STDIO_IGNORE;
    st[0].fd = st[1].fd = st[2].fd = -1;
    return spawn_simple(args, nargs, 0, ch, st, 3);
}

/* Wait for the pump's wake-up byte on `wake_rd`, then finish it. */
static int pump_end_wait(cp_pump *pump, int wake_rd, uint64_t *moved,
                         double *secs)
{
    char b;
    double t0 = now_s();
    int n = _read(wake_rd, &b, 1);
    CHECK(n == 1, "no wake-up byte (%d)", n);
    int rc = cp_pump_finish(pump, moved);
    if (secs)
        *secs = now_s() - t0;
    return rc;
}

static void test_pump_to_file(void)
{
    cp_child ch;
    cp_stdio st[3];
    int wake[2];
    CHECK(_pipe(wake, 256, _O_BINARY) == 0, "_pipe");
    int r = spawn_piped(ARGS("write", "3000000"), &ch, st, 0);
    CHECK(r == 0, "spawn %d", r);
    char p[MAX_PATH * 3];
    snprintf(p, sizeof p, "%s\\pumped.bin", tmp_dir);
    int fd = _open(p, _O_CREAT | _O_TRUNC | _O_RDWR | _O_BINARY,
                   _S_IREAD | _S_IWRITE);
    /* Something already in the file: the pump must append after it. */
    _write(fd, "head", 4);
    cp_pump *pump = NULL;
    r = cp_pump_start(st[1].fd, fd, wake[1], &pump);
    CHECK(r == 0, "pump_start %d", r);
    uint64_t moved = 0;
    if (r == 0) {
        r = pump_end_wait(pump, wake[0], &moved, NULL);
        CHECK(r == 0, "pump ended with %d", r);
        CHECK(moved == 3000000, "moved %llu", (unsigned long long)moved);
    }
    CHECK(_lseeki64(fd, 0, SEEK_CUR) == 3000004, "file pointer at %lld",
          (long long)_lseeki64(fd, 0, SEEK_CUR));
    _close(fd);
    _close(st[1].fd);
    int status;
    CHECK(cp_wait(&ch, &status) == 0 && status == 0, "status %d", status);
    FILE *f = fopen(p, "rb");
    char *buf = malloc(3000004);
    size_t n = f ? fread(buf, 1, 3000004, f) : 0;
    if (f)
        fclose(f);
    CHECK(n == 3000004 && !memcmp(buf, "head", 4) && is_pattern(buf + 4, n - 4),
          "file has %zu bytes", n);
    free(buf);
    _close(wake[0]);
    _close(wake[1]);
}

static void test_pump_pipeline(void)
{
    /* a | b: a's stdout pipe pumped into b's stdin pipe, both ours. */
    cp_child a, b;
    cp_stdio sa[3], sb[3];
    int wake[2];
    CHECK(_pipe(wake, 256, _O_BINARY) == 0, "_pipe");
    int r = spawn_piped(ARGS("write", "5000000"), &a, sa, 0);
    CHECK(r == 0, "spawn a %d", r);
    r = spawn_piped(ARGS("count"), &b, sb, 1);
    CHECK(r == 0, "spawn b %d", r);
    cp_pump *pump = NULL;
    r = cp_pump_start(sa[1].fd, sb[0].fd, wake[1], &pump);
    CHECK(r == 0, "pump_start %d", r);
    uint64_t moved = 0;
    if (r == 0) {
        r = pump_end_wait(pump, wake[0], &moved, NULL);
        CHECK(r == 0 && moved == 5000000, "rc %d moved %llu", r,
              (unsigned long long)moved);
    }
    _close(sa[1].fd);
    _close(sb[0].fd); /* EOF for b */
    char out[32] = {0};
    int n, got = 0;
    while ((n = _read(sb[1].fd, out + got, (unsigned)(sizeof out - 1 - got))) > 0)
        got += n;
    CHECK(!strcmp(out, "5000000"), "b counted [%s]", out);
    _close(sb[1].fd);
    int status;
    CHECK(cp_wait(&a, &status) == 0 && status == 0, "a %d", status);
    CHECK(cp_wait(&b, &status) == 0 && status == 0, "b %d", status);
    _close(wake[0]);
    _close(wake[1]);
}

static void test_pump_epipe(void)
{
    /* The reader goes away: the pump stops with EPIPE. */
    cp_child a, b;
    cp_stdio sa[3], sb[3];
    int wake[2];
    CHECK(_pipe(wake, 256, _O_BINARY) == 0, "_pipe");
    int r = spawn_piped(ARGS("write", "50000000"), &a, sa, 0);
    CHECK(r == 0, "spawn a %d", r);
    r = spawn_piped(ARGS("exit", "0"), &b, sb, 1);
    CHECK(r == 0, "spawn b %d", r);
    int status;
    cp_wait(&b, &status);
    cp_pump *pump = NULL;
    r = cp_pump_start(sa[1].fd, sb[0].fd, wake[1], &pump);
    CHECK(r == 0, "pump_start %d", r);
    if (r == 0) {
        uint64_t moved;
        r = pump_end_wait(pump, wake[0], &moved, NULL);
        CHECK(r == -EPIPE, "rc %d", r);
    }
    cp_kill(&a, 9);
    cp_wait(&a, &status);
    _close(sa[1].fd);
    _close(sb[0].fd);
    _close(sb[1].fd);
    _close(wake[0]);
    _close(wake[1]);
}

static void test_pump_cancel(void)
{
    /* Cancel a pump waiting on our overlapped pipe end ... */
    cp_child a;
    cp_stdio sa[3];
    int wake[2];
    CHECK(_pipe(wake, 256, _O_BINARY) == 0, "_pipe");
    int r = spawn_piped(ARGS("print", "x", "sleep", "20000"), &a, sa, 0);
    CHECK(r == 0, "spawn %d", r);
    char p[MAX_PATH * 3];
    snprintf(p, sizeof p, "%s\\cancelled.bin", tmp_dir);
    int fd = _open(p, _O_CREAT | _O_TRUNC | _O_WRONLY | _O_BINARY,
                   _S_IREAD | _S_IWRITE);
    cp_pump *pump = NULL;
    r = cp_pump_start(sa[1].fd, fd, wake[1], &pump);
    CHECK(r == 0, "pump_start %d", r);
    if (r == 0) {
        Sleep(300);
        cp_pump_cancel(pump);
        uint64_t moved = 0;
        double secs;
        r = pump_end_wait(pump, wake[0], &moved, &secs);
        CHECK(r == -ECANCELED, "rc %d", r);
        CHECK(moved == 1, "moved %llu", (unsigned long long)moved);
        CHECK(secs < 3, "cancel took %.2fs", secs);
    }
    cp_kill(&a, 9);
    int status;
    cp_wait(&a, &status);
    _close(sa[1].fd);
    _close(fd);

    /* ... and one blocked in a synchronous handle (an anonymous pipe). */
    int sync[2];
    CHECK(_pipe(sync, 4096, _O_BINARY) == 0, "_pipe");
    fd = _open(p, _O_CREAT | _O_TRUNC | _O_WRONLY | _O_BINARY,
               _S_IREAD | _S_IWRITE);
    r = cp_pump_start(sync[0], fd, wake[1], &pump);
    CHECK(r == 0, "pump_start %d", r);
    if (r == 0) {
        _write(sync[1], "abc", 3);
        Sleep(300);
        cp_pump_cancel(pump);
        uint64_t moved = 0;
        double secs;
        r = pump_end_wait(pump, wake[0], &moved, &secs);
        CHECK(r == -ECANCELED, "sync: rc %d", r);
        CHECK(moved == 3, "sync: moved %llu", (unsigned long long)moved);
        CHECK(secs < 3, "sync: cancel took %.2fs", secs);
    }
    _close(sync[0]);
    _close(sync[1]);
    _close(fd);
    _close(wake[0]);
    _close(wake[1]);
    CHECK(cp_pump_start(999, 1, 2, &pump) == -EBADF, "bad fd");
}

/* ---- main ---------------------------------------------------------------- */

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case tests[] = {
    {"exit_codes", test_exit_codes},
    {"quoting", test_quoting},
    {"verbatim", test_verbatim},
    {"env_pass", test_env_pass},
    {"env_inherit", test_env_inherit},
    {"env_block", test_env_block},
    {"cwd", test_cwd},
    {"cwd_missing", test_cwd_missing},
    {"enoent", test_enoent},
    {"path_search", test_path_search},
    {"batch_refused", test_batch_refused},
    {"stdin_echo", test_stdin_echo},
    {"stdin_large", test_stdin_large},
    {"no_input_closes_stdin", test_no_input_closes_stdin},
    {"input_not_read", test_input_not_read},
    {"large_output", test_large_output},
    {"zero_write", test_zero_write},
    {"max_buffer", test_max_buffer},
    {"timeout", test_timeout},
    {"timeout_grandchild", test_timeout_grandchild},
    {"spawn_wait_fds", test_spawn_wait_fds},
    {"crt_fd_io", test_crt_fd_io},
    {"kill", test_kill},
    {"ids_unsupported", test_ids_unsupported},
    {"stdio_fd_file", test_stdio_fd_file},
    {"ignore", test_ignore},
    {"dup_stderr_into_stdout", test_dup_stderr_into_stdout},
    {"fd3", test_fd3},
    {"handle_list", test_handle_list},
    {"shell_cmd", test_shell_cmd},
    {"not_executable", test_not_executable},
    {"flags", test_flags},
    {"die_with_parent_control", test_die_with_parent},
    {"die_with_parent", test_die_with_parent_flag},
    {"e2big_and_bad_utf8", test_e2big_and_bad_utf8},
    {"threads", test_threads},
    {"no_handle_leak", test_no_handle_leak},
    {"pump_to_file", test_pump_to_file},
    {"pump_pipeline", test_pump_pipeline},
    {"pump_epipe", test_pump_epipe},
    {"pump_cancel", test_pump_cancel},
};

int main(int argc, char **argv)
{
    WCHAR self[MAX_PATH], tmp[MAX_PATH];
    setvbuf(stdout, NULL, _IONBF, 0);
    GetModuleFileNameW(NULL, self, MAX_PATH);
    WCHAR *slash = wcsrchr(self, L'\\');
    wcscpy(slash + 1, L"cp_testchild.exe");
    char *s = utf8_of(self);
    strcpy(child_exe, s);
    free(s);
    if (GetFileAttributesW(self) == INVALID_FILE_ATTRIBUTES) {
        printf("cp_testchild.exe not found next to the test program\n");
        return 2;
    }
    GetTempPathW(MAX_PATH, tmp);
    swprintf(tmp + wcslen(tmp), 64, L"cp_w32_%lu", GetCurrentProcessId());
    CreateDirectoryW(tmp, NULL);
    s = utf8_of(tmp);
    strcpy(tmp_dir, s);
    free(s);

    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        test_failed = 0;
        double t0 = now_s();
        printf("%-26s ", tests[i].name);
        tests[i].fn();
        if (test_failed) {
            n_failed++;
            printf("  %s FAILED\n", tests[i].name);
        } else {
            n_passed++;
            printf("ok (%.2fs)\n", now_s() - t0);
        }
    }
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
