"""Kernels without pidfds (before 5.3) and without clone3 (before 5.3, or
behind a container's seccomp filter): every path that watches a child's
exit has a fallback, and so does the way the child is made; these tests run
them for real.

A tiny LD_PRELOAD library makes ``syscall(SYS_pidfd_open, ...)`` fail with
ENOSYS and ``clone()`` refuse CLONE_PIDFD with EINVAL, as kernels before 5.3
and 5.2 do, and its constructor installs a seccomp filter that answers
clone3 with ENOSYS, as container runtimes do.  A Python subprocess then
drives the sync loop's bounded waits (a timeout after the pipes are done,
and force_kill_after) and the async exit watcher (its waiter thread).  Both
spawn paths are intercepted: the default clone path falls back from clone3
to glibc's clone() and from CLONE_PIDFD to pidfd_open, the posix_spawn path
calls pidfd_open; glibc 2.39's pidfd_spawn would not go through syscall(),
so the test skips when the library is not in effect.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds are Linux's"),
    pytest.mark.usefixtures("watchdog"),
]
WATCHDOG_SECONDS = 120

_NO_PIDFD_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/syscall.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
/* Headers older than the call (manylinux_2_28's) lack the name; the number
 * is the same on every architecture, as in csrc/spawn_posix.c. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* clone3 (435 on every architecture) answers ENOSYS. */
__attribute__((constructor)) static void refuse_clone3(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 435, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* clone(2) as libc has it, except that CLONE_PIDFD is unknown. */
int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    static int (*real)(int (*)(void *), void *, int, void *, ...);
    va_list ap;
    void *parent_tid, *tls, *child_tid;
    if (flags & CLONE_PIDFD) {
        errno = EINVAL;
        return -1;
    }
    if (!real)
        real = (int (*)(int (*)(void *), void *, int, void *, ...))dlsym(RTLD_NEXT, "clone");
    va_start(ap, arg);
    parent_tid = va_arg(ap, void *);
    tls = va_arg(ap, void *);
    child_tid = va_arg(ap, void *);
    va_end(ap);
    return real(fn, stack, flags, arg, parent_tid, tls, child_tid);
}

/* syscall(2) as libc has it, except that pidfd_open is missing. */
long syscall(long number, ...)
{
    static long (*real)(long, ...);
    va_list ap;
    long a[6];
    if (number == SYS_pidfd_open) {
        errno = ENOSYS;
        return -1;
    }
    if (!real)
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
"""

_SCENARIOS = textwrap.dedent(
    """
    import json, os, sys, time
    import childproc as cp

    out = {}
    try:
        os.pidfd_open(os.getpid())
        out["pidfd_open"] = "works"
    except OSError as exc:
        out["pidfd_open"] = exc.errno

    def timed(fn):
        t0 = time.monotonic()
        r = fn()
        return r, time.monotonic() - t0

    # 0. Neither spawn path gets a pidfd for the child.
    from childproc._spawn import native as _native
    from childproc._spawn import options as _options
    from childproc._core import lib
    for name, flag in (("clone", 0), ("posix_spawn", lib.CP_SPAWN_USE_POSIX_SPAWN)):
        plan = _options.normalize_spawn("spawn", "true", None, None, {"stdio": "ignore"}, sync=False)
        keep = []
        req, _ = _native.build_request(plan, keep)
        req.flags |= flag
        child = _native.ffi.new("cp_child *")
        rc = lib.cp_spawn(req, child)
        os.waitpid(child.pid, 0)
        out["pidfd_" + name] = [rc, child.pidfd]

    # 0b. Without clone3's CLONE_CLEAR_SIGHAND the child resets handlers
    #     itself: the same signal state as everywhere else.
    import signal
    signal.signal(signal.SIGRTMIN + 5, signal.SIG_IGN)
    signal.signal(signal.SIGRTMIN + 6, lambda *_: None)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    r = cp.spawn_sync("grep", ["-E", "^Sig(Blk|Ign)", "/proc/self/status"], encoding="utf-8")
    out["signal_state"] = r.stdout
    # What the child must keep ignored: SIGRTMIN+5, and any real-time
    # signal this process was started with ignored (Python >= 3.13 starts
    # it with glibc's posix_spawn, which leaves glibc's 32 and 33 ignored).
    with open("/proc/self/status") as status:
        ign = next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
    out["rt_ignored"] = f"{ign & ~0x7FFFFFFF | 1 << (signal.SIGRTMIN + 5 - 1):016x}"

    # 1. Untimed: a blocking waitpid, no pidfd needed at all.
    r = cp.spawn_sync("sh", ["-c", "echo hi; exit 3"])
    out["untimed"] = [r.status, r.stdout.decode(), r.error is None]

    # 2. Pipes done long before the exit, then the timeout: the bounded
    #    wait sleeps in steps and asks waitpid.
    r, took = timed(lambda: cp.spawn_sync("sh", ["-c", "exec >&- 2>&-; exec sleep 5"], timeout=0.3))
    out["pipes_closed_then_timeout"] = [r.status, r.signal, r.error and r.error.code, took < 3]

    # 3. The same, with no pipes, and the child ending in time.
    r, took = timed(lambda: cp.spawn_sync("sh", ["-c", "sleep 0.2; exit 4"], timeout=5, stdio="inherit"))
    out["exits_in_time"] = [r.status, r.signal, r.error, took < 3]

    # 4. force_kill_after: SIGTERM is ignored, SIGKILL follows.
    trap = "trap '' TERM; exec >&- 2>&-; while :; do sleep 0.05; done"
    r, took = timed(lambda: cp.spawn_sync("sh", ["-c", trap], timeout=0.2, force_kill_after=0.3))
    out["force_kill"] = [r.signal, r.error and r.error.code, took < 3]

    # 5. Async: the exit watcher's waiter thread.
    child = cp.spawn("sh", ["-c", "exit 5"])
    events = []
    child.on("exit", lambda code, sig: events.append(["exit", code, sig]))
    child.on("close", lambda code, sig: events.append(["close", code, sig]))
    child.wait(timeout=10)
    out["async"] = events

    # 6. Async kill of a running child, through the pid (no pidfd to signal).
    child = cp.spawn("sleep", ["5"])
    child.kill()
    child.wait(timeout=10)
    out["async_kill"] = [child.exit_code, child.signal_code]

    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def no_pidfd_lib(tmp_path_factory) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    tmp = tmp_path_factory.mktemp("nopidfd")
    src = tmp / "nopidfd.c"
    src.write_text(_NO_PIDFD_C)
    lib = tmp / "nopidfd.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(src), "-ldl"], check=True)
    return str(lib)


def test_exit_watching_without_pidfds(no_pidfd_lib: str) -> None:
    import childproc

    env = dict(os.environ, LD_PRELOAD=no_pidfd_lib)
    package_root = os.path.dirname(os.path.dirname(childproc.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", _SCENARIOS], env=env, capture_output=True, timeout=90
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    if out["pidfd_open"] == "works":
        pytest.skip("the LD_PRELOAD library is not in effect here")
    assert out["pidfd_open"] == errno.ENOSYS  # as on a kernel before 5.3
    assert out["pidfd_clone"] == [0, -1] and out["pidfd_posix_spawn"] == [0, -1]
    assert out["signal_state"] == f"SigBlk:\t{0:016x}\nSigIgn:\t{out['rt_ignored']}\n"
    assert out["untimed"] == [3, "hi\n", True]
    assert out["pipes_closed_then_timeout"] == [None, "SIGTERM", "ETIMEDOUT", True]
    assert out["exits_in_time"] == [4, None, None, True]
    assert out["force_kill"] == ["SIGKILL", "ETIMEDOUT", True]
    assert out["async"] == [["exit", 5, None], ["close", 5, None]]
    assert out["async_kill"] == [None, "SIGTERM"]
