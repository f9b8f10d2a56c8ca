"""A forked child whose loop waits on nothing but its channel (a worker
between two requests) reads the channel with one blocking recvmsg instead of
epoll_wait and a read (docs/architecture.md, "The channel").  What must stay
as it was: Ctrl-C still ends it, timers and other fds that appear are still
served, and the channel keeps it alive only while it has listeners.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap

import pytest

import childproc as cp

pytestmark = pytest.mark.usefixtures("watchdog")


def _fork(tmp_path: os.PathLike[str], code: str, serialization: str = "json") -> cp.ChildProcess:
    script = os.path.join(os.fspath(tmp_path), "worker.py")
    with open(script, "w") as f:
        f.write(textwrap.dedent(code))
    return cp.fork(script, serialization=serialization, stdio=["ignore", "ignore", "pipe", "ipc"])


def _replies(child: cp.ChildProcess, count: int) -> list[object]:
    got: list[object] = []
    child.on("message", lambda m, _h=None: got.append(m))
    from childproc._runtime.loop import private_loop

    private_loop().run_until(lambda: len(got) >= count or child.exit_code is not None, 30)
    return got


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_ends_a_worker_waiting_on_its_channel(tmp_path: os.PathLike[str]) -> None:
    child = _fork(tmp_path, """
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from childproc import process
        process.on('message', lambda m, h=None: process.send(m))
        process.send('ready')
    """)
    assert _replies(child, 1) == ["ready"]
    assert child.send("ping")
    assert _replies(child, 1) == ["ping"]  # it echoes: waiting in its loop at exit
    child.kill("SIGINT")
    child.wait()
    # As when Ctrl-C comes in any at-exit wait: ended by the signal.
    assert (child.exit_code, child.signal_code) == (None, "SIGINT")


@pytest.mark.parametrize("serialization", ["json", "pickle"])
def test_a_worker_still_serves_timers_and_other_fds(tmp_path: os.PathLike[str], serialization: str) -> None:
    # The handler starts a child with a timeout: a timer and a pidfd join
    # the channel in the worker's loop, and their events must come.
    child = _fork(tmp_path, """
        import childproc as cp
        from childproc import process
        def on_message(m, h=None):
            c = cp.spawn('sleep', ['30'], timeout=0.05)
            c.on('exit', lambda code, sig: process.send([m, code, sig]))
        process.on('message', on_message)
    """, serialization)
    child.send("a")
    assert _replies(child, 1) == [["a", None, "SIGTERM"]]
    child.send("b")
    assert _replies(child, 1) == [["b", None, "SIGTERM"]]
    child.disconnect()
    assert child.wait() == 0


def test_a_worker_ends_once_its_listener_is_gone(tmp_path: os.PathLike[str]) -> None:
    # Node's rule: the channel keeps the child alive only while it has
    # 'message' or 'disconnect' listeners, also while it waits in the read.
    child = _fork(tmp_path, """
        from childproc import process
        def on_message(m, h=None):
            process.send(m)
            if m == 'last':
                process.off('message', on_message)
        process.on('message', on_message)
    """)
    for m in ("one", "two", "last"):
        child.send(m)
        assert _replies(child, 1) == [m]
    assert child.wait() == 0  # never disconnected by this side


def test_messages_in_one_read_keep_their_order(tmp_path: os.PathLike[str]) -> None:
    child = _fork(tmp_path, """
        import time
        from childproc import process
        seen = []
        def on_message(m, h=None):
            seen.append(m)
            if m == 'first':
                time.sleep(0.2)  # the rest arrive meanwhile: one read
            if len(seen) == 5:
                process.send(seen)
        process.on('message', on_message)
    """)
    for m in ("first", 2, {"cmd": "NODE"}, [3], "last"):
        child.send(m)
    assert _replies(child, 1) == [["first", 2, {"cmd": "NODE"}, [3], "last"]]
    child.disconnect()
    assert child.wait() == 0


def test_an_error_thrown_by_a_listener_surfaces_in_the_worker(tmp_path: os.PathLike[str]) -> None:
    # It propagates out of the loop (here the one run at interpreter exit),
    # as from any callback: the worker reports it and ends.
    child = _fork(tmp_path, """
        from childproc import process
        def on_message(m, h=None):
            raise RuntimeError('boom ' + m)
        process.on('message', on_message)
        process.send('ready')
    """)
    assert _replies(child, 1) == ["ready"]
    child.send("x")
    assert child.stderr is not None
    err = child.stderr.read()
    child.wait()
    assert b"RuntimeError: boom x" in err


@pytest.mark.skipif(sys.platform == "win32", reason="the blocking read is POSIX's")
def test_a_worker_whose_channel_was_made_non_blocking_does_not_spin(tmp_path: os.PathLike[str]) -> None:
    # Code that sets the channel's fd non-blocking (Node's is) must not turn
    # the sleeping read into a loop that returns at once, again and again:
    # the loop's passes between two messages stay few however long it waits.
    child = _fork(tmp_path, """
        import os
        from childproc import process
        from childproc._runtime.loop import private_loop
        os.set_blocking(process.channel.fd, False)
        process.on('message', lambda m, h=None: process.send(private_loop().tick))
        process.send('ready')
    """)
    assert _replies(child, 1) == ["ready"]
    child.send("a")
    (first,) = _replies(child, 1)
    import time

    time.sleep(0.3)  # the worker waits; no time is asserted, only its loop's passes
    child.send("b")
    (second,) = _replies(child, 1)
    assert isinstance(first, int) and isinstance(second, int)
    assert second - first < 50, f"{second - first} loop passes while idle: a spin"
    child.disconnect()
    assert child.wait() == 0
