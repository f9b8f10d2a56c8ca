"""Reliability bars for the sync path: no fd / zombie / memory leak over
10,000 spawns, fd isolation when spawning from many threads, E2BIG as an error
result, EMFILE / EAGAIN as error results followed by recovery.

No timing assertions: these only check what is left behind and what is returned.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import textwrap
import threading

import pytest

import childproc as cp

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc"),
    pytest.mark.reliability,
]

TRUE = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
IS_ROOT = os.geteuid() == 0


def open_fds() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the directory fd listdir used, already closed
            pass
    return out


def zombies_of(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(b")") + 2:].split()
        state, ppid = rest[0], int(rest[1])
        if state == b"Z" and ppid == pid:
            found.append(int(name))
    return found


def vm_rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_10000_spawns_leak_nothing():
    for _ in range(500):  # warm-up: caches, allocator arenas, lazy imports
        cp.spawn_sync(TRUE)
    gc.collect()
    fds_before = open_fds()
    rss_before = vm_rss_kib()
    bad = []
    for i in range(10_000):
        r = cp.spawn_sync(TRUE)
        if r.status != 0 or r.error is not None:
            bad.append((i, r.status, r.signal, r.error))
            if len(bad) > 5:
                break
    del r
    gc.collect()
    rss_after = vm_rss_kib()
    fds_after = open_fds()
    assert not bad, bad
    assert fds_after == fds_before
    assert zombies_of(os.getpid()) == []
    assert rss_after - rss_before < 1024, f"RSS grew by {rss_after - rss_before} KiB over 10,000 spawns"


def test_spawn_sync_with_all_features_leaks_no_fd(tmp_path):
    # pipes at 0-3, input, encoding, a timeout that fires, max_buffer that fires, spawn errors
    gc.collect()
    before = open_fds()
    for _ in range(20):
        cp.spawn_sync("cat", input=b"x" * 70000, stdio=["pipe", "pipe", "pipe", "pipe"], encoding="utf8")
        cp.spawn_sync("sh", ["-c", "printf 0123456789; exec sleep 5"], max_buffer=4)
        cp.spawn_sync("nope-xyz-childproc")
        cp.spawn_sync("ls", cwd=str(tmp_path / "missing"))
        cp.spawn_sync(str(tmp_path))  # EACCES
        with open(tmp_path / "f", "wb") as f:
            cp.spawn_sync("echo", ["x"], stdio=["ignore", f, "ignore"])
    for _ in range(3):
        cp.spawn_sync("sleep", ["5"], timeout=0.05)
    gc.collect()
    assert open_fds() == before
    assert zombies_of(os.getpid()) == []


def test_exec_errors_leak_no_fd():
    gc.collect()
    before = open_fds()
    for _ in range(50):
        with pytest.raises(cp.ExecError):
            cp.exec_sync("exit 3", stdio="pipe")
        with pytest.raises(cp.SpawnError):
            cp.exec_file_sync("nope-xyz-childproc")
    gc.collect()
    assert open_fds() == before
    assert zombies_of(os.getpid()) == []


_LIST_FDS = textwrap.dedent(
    """
    import os, json
    d = '/proc/self/fd'
    out = {}
    for n in os.listdir(d):
        try:
            out[n] = os.readlink(d + '/' + n)
        except OSError:
            out[n] = None
    print(json.dumps(out))
    """
)


def test_16_threads_children_see_only_their_own_fds(tmp_path):
    n_threads, py_runs, ls_runs = 16, 2, 20
    # fds this process already lets children inherit (e.g. from whoever started pytest)
    inheritable = {fd for fd in open_fds() if fd > 2 and _inheritable(fd)}
    # `ls` opens the directory it lists with the lowest free number
    listing_fd = min(set(range(4, 1000)) - inheritable)
    allowed = {0, 1, 2, 3, listing_fd} | inheritable
    barrier = threading.Barrier(n_threads)
    problems: list = []

    def work(i):
        try:
            path = str(tmp_path / f"thread-{i}.txt")
            barrier.wait()
            for k in range(py_runs + ls_runs):
                with open(path, "wb") as f:
                    if k < py_runs:  # names of the fds: fd 3 must be this thread's own file
                        r = cp.spawn_sync(sys.executable, ["-I", "-S", "-c", _LIST_FDS],
                                          stdio=["ignore", "pipe", "pipe", f], encoding="utf8")
                    else:  # quick: numbers only
                        r = cp.spawn_sync("ls", ["/proc/self/fd"], stdio=["ignore", "pipe", "pipe", f],
                                          encoding="utf8")
                if r.error is not None or r.status != 0:
                    problems.append((i, k, r.status, r.error, r.stderr))
                    continue
                if k < py_runs:
                    fds = {int(n): target for n, target in json.loads(r.stdout).items()}
                    if fds.get(3) != path:
                        problems.append((i, k, "fd 3 is not this thread's file", fds))
                    listing = {fd for fd, t in fds.items() if t is None or t.startswith("/proc/")}
                    unexpected = set(fds) - {0, 1, 2, 3} - inheritable - listing
                    if unexpected or len(listing) != 1:
                        problems.append((i, k, "unexpected fds", fds))
                else:
                    fds = {int(n) for n in r.stdout.split()}
                    if fds - allowed or not {0, 1, 2, 3} <= fds:
                        problems.append((i, k, "unexpected fds", sorted(fds), sorted(allowed)))
        except BaseException as e:  # noqa: BLE001
            problems.append((i, "raised", repr(e)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems, problems[:5]
    assert zombies_of(os.getpid()) == []


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:
        return False


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["x" * 65536] * 64, id="total-4MiB"),
        pytest.param(["y" * (256 * 1024)], id="one-arg-over-MAX_ARG_STRLEN"),
    ],
)
def test_huge_argv_is_e2big_result(args):
    r = cp.spawn_sync("/bin/echo", args)
    assert r.error is not None, (r.status, r.signal)
    assert r.error.code == "E2BIG"
    assert r.error.errno == 7
    assert r.error.syscall == "spawnSync /bin/echo"
    assert str(r.error) == "spawnSync /bin/echo E2BIG"
    assert r.pid == 0 and r.output is None and r.status is None and r.signal is None
    # nothing else lost: the next call works
    assert cp.spawn_sync("/bin/echo", ["ok"]).stdout == b"ok\n"


def test_huge_env_is_e2big_result():
    r = cp.spawn_sync("/bin/echo", ["x"], env={f"V{i}": "v" * 65536 for i in range(64)})
    assert r.error is not None and r.error.code == "E2BIG"
    assert r.pid == 0


def test_huge_argv_exec_file_sync_raises_spawn_error():
    with pytest.raises(cp.SpawnError) as ei:
        cp.exec_file_sync("/bin/echo", ["x" * 65536] * 64)
    assert ei.value.code == "E2BIG"


_EMFILE_CHILD = textwrap.dedent(
    """
    import json, os, resource, errno
    import childproc as cp

    def free_slots():
        # how many fds can still be opened (opens and closes them; needs no fd itself)
        got = []
        try:
            while len(got) < 64:
                got.append(os.open('/dev/null', os.O_RDONLY))
        except OSError as e:
            assert e.errno == errno.EMFILE, e
        for fd in got:
            os.close(fd)
        return len(got)

    cp.spawn_sync('/bin/true')  # warm-up (lazy imports, caches)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(n) for n in os.listdir('/proc/self/fd'))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 40, hard))
    fill = []
    try:
        while True:
            fill.append(os.open('/dev/null', os.O_RDONLY))
    except OSError as e:
        assert e.errno == errno.EMFILE
    seen = []
    # leave 8, 7, ..., 0 descriptors free and spawn each time: every call must return
    # a result (success or an EMFILE error), never raise, and leave no fd behind
    for free in range(8, -1, -1):
        while free_slots() > free:
            fill.append(os.open('/dev/null', os.O_RDONLY))
        while free_slots() < free:
            os.close(fill.pop())
        try:
            r = cp.spawn_sync('/bin/echo', ['hi'], stdio=['pipe', 'pipe', 'pipe', 'pipe'])
        except Exception as e:
            seen.append({'free': free, 'raised': repr(e)})
            continue
        e = r.error
        seen.append({'free': free, 'status': r.status, 'pid0': r.pid == 0, 'output_none': r.output is None,
                     'code': e and e.code, 'errno': e and e.errno, 'syscall': e and e.syscall,
                     'message': e and str(e), 'free_after': free_slots()})
    for fd in fill:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    r = cp.spawn_sync('/bin/echo', ['recovered'])
    print(json.dumps({'seen': seen, 'after': [r.status, r.stdout.decode(), repr(r.error)]}))
    """
)


def test_emfile_is_an_error_result_and_library_recovers(py_helper):
    p = py_helper(_EMFILE_CHILD)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    seen = res["seen"]
    raised = [s for s in seen if "raised" in s]
    assert not raised, raised
    emfile = [s for s in seen if s["code"] == "EMFILE"]
    assert emfile, seen
    for s in emfile:
        assert s["pid0"] and s["output_none"] and s["status"] is None
        assert s["errno"] == 24
        assert s["syscall"] == "spawnSync /bin/echo" and s["message"] == "spawnSync /bin/echo EMFILE"
    others = [s for s in seen if s["code"] not in (None, "EMFILE")]
    assert not others, others
    leaks = [s for s in seen if "raised" not in s and s["free_after"] != s["free"]]
    assert not leaks, leaks  # a call that failed half-way left descriptors open
    assert res["after"] == [0, "recovered\n", "None"]


_EAGAIN_CHILD = textwrap.dedent(
    """
    import json, os, resource
    import childproc as cp
    cp.spawn_sync('/bin/true', encoding='utf8')  # warm-up before losing access to /root
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, hard))
    try:
        r = cp.spawn_sync('/bin/echo', ['x'])
        e = r.error
        first = {'status': r.status, 'pid0': r.pid == 0, 'output_none': r.output is None,
                 'code': e and e.code, 'message': e and str(e)}
    except Exception as e:
        first = {'raised': repr(e)}
    resource.setrlimit(resource.RLIMIT_NPROC, (soft, hard))
    r = cp.spawn_sync('/bin/echo', ['recovered'])
    print(json.dumps({'first': first, 'after': [r.status, r.stdout and r.stdout.decode(), repr(r.error)]}))
    """
)


@pytest.mark.skipif(not IS_ROOT, reason="needs root to switch to an unprivileged uid (RLIMIT_NPROC binds non-root)")
def test_eagain_from_rlimit_nproc_and_recovery(py_helper):
    p = py_helper(_EAGAIN_CHILD, cwd="/")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["first"] == {
        "status": None, "pid0": True, "output_none": True, "code": "EAGAIN",
        "message": "spawnSync /bin/echo EAGAIN",
    }, res
    assert res["after"] == [0, "recovered\n", "None"]


def test_signals_arriving_during_spawn_sync_lose_nothing():
    # a Python signal handler firing every 2 ms (EINTR for every blocking call in
    # the sync loop) must not cut output short, fail the call or leave anything behind
    import signal

    hits = []
    old = signal.signal(signal.SIGALRM, lambda *a: hits.append(1))
    gc.collect()
    before = open_fds()
    signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
    try:
        data = os.urandom(3 * 1024 * 1024)
        r1 = cp.spawn_sync("cat", input=data, max_buffer=0)
        r2 = cp.spawn_sync("sh", ["-c", "sleep 0.3; echo ok"])
        r3 = cp.spawn_sync("sleep", ["5"], timeout=0.3)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert hits  # the handler did run
    assert r1.error is None and r1.status == 0 and r1.stdout == data
    assert r2.error is None and r2.status == 0 and r2.stdout == b"ok\n"
    assert r3.error is not None and r3.error.code == "ETIMEDOUT" and r3.signal == "SIGTERM"
    gc.collect()
    assert open_fds() == before
    assert zombies_of(os.getpid()) == []


def test_short_lived_threads_leave_no_fd():
    # Each thread that uses the async API gets a private loop (a poller and a
    # wake-up pipe); the loop is closed when its thread ends.  Before: 100
    # threads took the process from 6 to 206 open fds.
    def work() -> None:
        cp.spawn(TRUE).wait()

    t = threading.Thread(target=work)  # warm-up: the reaper, lazy imports
    t.start()
    t.join()
    gc.collect()
    before = open_fds()
    for _ in range(100):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    gc.collect()
    assert open_fds() == before
    assert zombies_of(os.getpid()) == []


def test_thread_ending_before_its_child_leaves_no_fd():
    # The thread's children go to the reaper first, then its loop closes.
    children = []

    def work() -> None:
        children.append(cp.spawn("sleep", ["0.2"], stdio="ignore"))

    def round_of(n: int) -> None:
        threads = [threading.Thread(target=work) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pids = [c.pid for c in children]
        del children[:]
        gc.collect()
        for _ in range(200):  # the reaper thread reaps them as they exit
            if not zombies_of(os.getpid()) and not any(os.path.exists(f"/proc/{p}") for p in pids):
                break
            threading.Event().wait(0.05)
        assert zombies_of(os.getpid()) == []
        assert not any(os.path.exists(f"/proc/{p}") for p in pids)

    round_of(1)  # warm-up: starts the reaper thread (its wake-up pipe stays)
    before = open_fds()
    round_of(20)
    assert open_fds() == before


# ----------------------------------------------------------------- the channel, fuzzed
#
# Garbage, values, over-limit messages, cut at random places: the reader never
# raises, every value arrives in order, and every bad or too-big message is
# exactly one BadMessage ('error') in its place.  Garbage lines start with '}',
# which no JSON text does, so each is known to be bad.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from childproc._ipc.channel import IPC  # noqa: E402
from childproc._ipc.wire import BadMessage, Framer  # noqa: E402
from childproc._runtime.emitter import EventEmitter  # noqa: E402
from childproc._runtime.loop import private_loop  # noqa: E402

_LIMIT = 2048
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)
_items = st.lists(
    st.one_of(
        _values.map(lambda v: ("ok", v)),
        st.binary(max_size=40).map(lambda b: ("bad", b"}" + b.replace(b"\n", b""))),
        st.integers(_LIMIT + 1, 3 * _LIMIT).map(lambda n: ("big", n)),
    ),
    max_size=25,
)


def _wire(items: list) -> bytes:
    parts = []
    for kind, v in items:
        if kind == "ok":
            parts.append(json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode())
        elif kind == "bad":
            parts.append(v)
        else:
            parts.append(b'"' + b"a" * v + b'"')
    return b"".join(p + b"\n" for p in parts)


def _expected(items: list) -> list:
    return [v if kind == "ok" else "bad" for kind, v in items]


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, pos = [], 0
    for n in sizes:
        if pos >= len(data):
            break
        chunks.append(data[pos : pos + n])
        pos += n
    chunks.append(data[pos:])
    return chunks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=_items, sizes=st.lists(st.integers(1, 700), max_size=40))
def test_fuzzed_json_framer_loses_nothing(items, sizes):
    framer = Framer(False, _LIMIT)
    got = []
    for chunk in _cut(_wire(items), sizes):
        got += framer.feed(chunk)
        assert framer.pending <= _LIMIT
    assert framer.pending == 0
    assert ["bad" if isinstance(m, BadMessage) else m for m in got] == _expected(items)


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.one_of(_values, st.binary(max_size=3 * _LIMIT).map(lambda b: ("junk", b))), max_size=15),
       sizes=st.lists(st.integers(1, 900), max_size=40))
def test_fuzzed_pickle_framer_loses_nothing(payloads, sizes):
    import pickle
    import struct

    frames, expected = [], []
    for p in payloads:
        if isinstance(p, tuple) and len(p) == 2 and p[0] == "junk":
            body = b"\x00" + p[1]  # opcode 0 does not exist: never a pickle
            expected.append("bad")
        else:
            body = pickle.dumps(p)
            expected.append(p if len(body) <= _LIMIT else "bad")
        frames.append(struct.pack(">I", len(body)) + body)
        if len(body) > _LIMIT:
            expected[-1] = "bad"
    framer = Framer(True, _LIMIT)
    got = []
    for chunk in _cut(b"".join(frames), sizes):
        got += framer.feed(chunk)
        assert framer.pending <= _LIMIT + 4
    assert ["bad" if isinstance(m, BadMessage) else m for m in got] == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=_items, sizes=st.lists(st.integers(1, 3000), max_size=20))
def test_fuzzed_channel_neither_crashes_nor_loses_messages(items, sizes):
    # A real channel on a socketpair, fed by another thread in random cuts.
    import socket

    ours, theirs = socket.socketpair()
    target = EventEmitter()
    events: list = []
    target.on("message", lambda m, h: events.append(m))
    target.on("error", lambda e: events.append(("error", e.code)))
    done: list = []
    target.on("disconnect", lambda: done.append(1))
    private_loop()  # its own fds are not the channel's
    fds_before = open_fds()
    IPC(target, ours.detach(), private_loop(), max_message_size=_LIMIT)

    def write() -> None:
        for chunk in _cut(_wire(items), sizes):
            theirs.sendall(chunk)
        theirs.close()

    writer = threading.Thread(target=write)
    writer.start()
    assert private_loop().run_until(lambda: bool(done), 30)
    writer.join()
    assert [("bad" if e == ("error", "ERR_IPC_BAD_MESSAGE") else e) for e in events] == _expected(items)
    gc.collect()
    assert len(open_fds()) <= len(fds_before) - 1  # both ends closed (theirs by the writer)


_FRESH_FUZZ = textwrap.dedent(
    """
    import random, sys
    assert "json" not in sys.modules
    from childproc._ipc.wire import BadMessage, Framer
    rnd = random.Random(int(sys.argv[1]))
    bad = [b'{x}', b'{"a" 1}', b'[1 2]', b'"\\\\x"', b'"abc', b'{,}', b'}', b'\\xff\\xfe', b'[' * 50]
    good = [b'1', b'"s"', b'{"k":[1,2,{"z":null}]}', b'[]', b'true']
    bad_seen = 0
    for _ in range(300):
        # As in a worker that never imported json (a bad line imports it).
        for name in ("json", "json.decoder", "json.scanner", "json.encoder"):
            sys.modules.pop(name, None)
        picks = [rnd.choice(bad + good) for _ in range(rnd.randint(1, 12))]
        data = b"".join(p + b"\\n" for p in picks)
        framer, got, pos = Framer(False, 1 << 20), [], 0
        while pos < len(data):
            n = rnd.randint(1, 16)
            got += framer.feed(data[pos:pos + n])
            pos += n
        assert len(got) == len(picks), (picks, got)
        for p, m in zip(picks, got):
            assert isinstance(m, BadMessage) == (p in bad), (p, m)
        bad_seen += sum(p in bad for p in picks)
    print(bad_seen)
    """
)


def test_fuzzed_parser_in_a_process_that_never_imported_json():
    # json's C scanner finds JSONDecodeError in sys.modules only (<= 3.11):
    # without json there, bad lines once raised SystemError and lost the rest.
    import subprocess

    src = os.path.dirname(os.path.dirname(os.path.abspath(cp.__file__)))
    proc = subprocess.run([sys.executable, "-c", _FRESH_FUZZ, "7"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": src})
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 100
# -- the async forms, with the lifecycle policy at work ----------------------------
#
# 5,000 runs each of spawn, exec and fork, with what each run leaves behind
# compared before and after: fds, zombies, threads and RSS.  The full count
# takes minutes (fork starts 5,000 interpreters), so it runs with
# CHILDPROC_RELIABILITY_FULL=1; by default a tenth of it (fork: a fiftieth).

_FULL = os.environ.get("CHILDPROC_RELIABILITY_FULL") == "1"
_RUNS = 5000 if _FULL else 500
_FORK_RUNS = 5000 if _FULL else 100


def _left_behind() -> tuple[dict[int, str], int]:
    gc.collect()
    return open_fds(), threading.active_count()


def _runs_leak_nothing(what: str, run, runs: int) -> None:
    """``run(i)`` ``runs`` times; fds, zombies and threads must be as before.
    RSS is sampled 20 times along the way: the allocator's heap moves up and
    down by a few MiB (a fork run's channel buffers are 128 KiB each), so
    the lowest of the first five samples is compared with the lowest of the
    last five, which a leak raises and that noise does not."""
    _settle()
    fds, threads = _left_behind()
    samples: list[int] = []
    every = max(1, runs // 20)
    for i in range(runs):
        run(i)
        if i % every == every - 1:
            gc.collect()
            samples.append(vm_rss_kib())
    _settle()
    fds_after, threads_after = _left_behind()
    assert fds_after == fds, f"{what}: fds changed over {runs} runs"
    assert zombies_of(os.getpid()) == [], what
    assert threads_after == threads, f"{what}: {threads_after - threads} threads more over {runs} runs"
    growth = min(samples[-5:]) - min(samples[:5])
    assert growth < 2048, f"{what}: RSS grew by {growth} KiB over {runs} runs ({samples})"


def _spawn_run(i: int) -> None:
    kind = i % 5
    if kind == 0:  # output read to the end
        child = cp.spawn("echo", [str(i)])
        out: list[bytes] = []
        assert child.stdout is not None
        child.stdout.on("data", out.append)
        assert child.wait(30) == 0 and b"".join(out) == f"{i}\n".encode()
    elif kind == 1:  # killed
        child = cp.spawn("sleep", ["5"], stdio="ignore")
        assert child.kill()
        child.wait(30)
        assert child.signal_code == "SIGTERM"
    elif kind == 2:  # kill_tree, a timeout that fires after the leader exited
        child = cp.spawn("sh", ["-c", "sleep 5 & exit 0"], kill_tree=True, timeout=0.01,
                         force_kill_after=0.01, stdio="ignore")
        child.wait(30)
        cp.run()  # the timers of the group
    elif kind == 3:  # a runtime spawn failure
        child = cp.spawn("no-such-program-childproc")
        errors: list[BaseException] = []
        child.on("error", errors.append)
        child.wait(30)
        assert isinstance(errors[0], cp.SpawnError)
    else:  # die_with_parent through a shell: a warden comes and goes
        child = cp.spawn("true", shell=True, die_with_parent=True)
        assert child.wait(30) == 0


def _exec_run(i: int) -> None:
    kind = i % 3
    if kind == 0:
        assert cp.exec(f"echo {i}").result(30).stdout == f"{i}\n"
    elif kind == 1:
        with pytest.raises(cp.ExecError):
            cp.exec("echo no >&2; exit 3").result(30)
    else:
        with pytest.raises(cp.ExecError) as info:
            cp.exec("sleep 5", timeout=0.01, kill_tree=True).result(30)
        assert info.value.killed


@pytest.mark.parametrize("what, run, runs", [
    ("spawn", _spawn_run, _RUNS),
    ("exec", _exec_run, _RUNS),
])
def test_async_runs_leak_nothing(what, run, runs) -> None:
    for i in range(50):  # warm-up: lazy imports, the reaper thread, allocator arenas
        run(i)
    _runs_leak_nothing(what, run, runs)


def _settle() -> None:
    # A group's timeout that outlives its leader is a timer that does not
    # keep the loop alive (its leader held unreaped, with its pidfd, until
    # it fires): run the loop a little so that the last one has fired.
    cp.spawn("sleep", ["0.1"]).wait(30)


def test_fork_runs_leak_nothing(tmp_path) -> None:
    worker = tmp_path / "echo_worker.py"
    worker.write_text(textwrap.dedent("""
        from childproc import process
        process.on("message", lambda m, _h=None: process.send(m))
    """))

    def run(i: int) -> None:
        child = cp.fork(str(worker))
        got: list[object] = []

        def on_message(message: object, _handle: object = None) -> None:
            got.append(message)
            child.disconnect()  # the worker ends with its channel

        child.on("message", on_message)
        child.send({"n": i})
        assert child.wait(30) == 0 and got == [{"n": i}]

    for i in range(10):
        run(i)
    _runs_leak_nothing("fork", run, _FORK_RUNS)
