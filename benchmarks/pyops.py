"""The Python peers of benchmarks/compare: one op factory per peer.

A factory takes the workload's arguments (a list of strings, the same ones
the external peers get after the protocol arguments) and returns ``op``, a
zero-argument callable that does one op.  ``op()`` returns either

* an int: 0 on success (a child's exit status; anything else counts as a
  failed op).  The worker times the call.
* ``(status, elapsed_ns)``: the op timed itself.  The asyncio peers do this
  (the clock runs inside the coroutine, so entering and leaving
  ``run_until_complete`` is not counted: an async program already has its
  loop running), and so do the latency peers, whose op ends with untimed
  clean-up (fork to first message: the child's exit is not counted).

An op that got the wrong result (bytes missing, a message not echoed)
raises ``AssertionError``; the batch then fails with that message.  ``op``
may carry ``op.close()``, called once after the batch (stops a forked child,
closes a loop).

Factories run inside a worker process only (``python -m compare --worker``): each
imports what it needs, once, before the warm-up.  Keep this module's own
imports to the standard library's cheap ones: the multiprocessing children
of the IPC workloads import it too (their targets are ``mp_*`` below).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

now = time.perf_counter_ns

# The message of the IPC workloads: a small dict.  The C floor sends the
# same JSON text (floor_ipc.c), Node the same object (node_peers.js).
MSG = {"seq": 1, "cmd": "ping", "ok": True, "data": "hello"}

Op = Callable[[], "int | tuple[int, int]"]


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


def _split(argv: list[str]) -> tuple[int, str, list[str]]:
    """EXPECTED PROGRAM ARGS... -> (expected, program, args)."""
    return int(argv[0]), argv[1], argv[2:]


def _loop(kind: str):
    """A fresh event loop, set as the thread's loop: asyncio's or uvloop's."""
    import asyncio

    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def _close_loop(loop) -> None:
    import asyncio

    loop.close()
    asyncio.set_event_loop(None)


def _on_loop(loop, coro_fn) -> Op:
    """An op that runs one self-timed coroutine on ``loop``."""

    def op():
        return loop.run_until_complete(coro_fn())

    op.close = lambda: _close_loop(loop)  # type: ignore[attr-defined]
    return op


def _childproc():
    import childproc

    return childproc


def _reactor_run_until():
    # What child.wait() and exec's result() use to drive this thread's
    # private loop; childproc has no public "run until this message" call.
    from childproc._runtime.loop import current_reactor

    return current_reactor().run_until


# ---------------------------------------------------------------------------
# spawn_true: spawn + wait of /bin/true, synchronous.  ARGS: PROGRAM


def c_floor(argv: list[str]) -> Op:
    """ARGS: LIBRARY PROGRAM [ARGS...]: a C floor's op (floor_spawn.c built
    with -DFLOOR_LIBRARY), called through ctypes -- in this process."""
    import ctypes

    floor_op = ctypes.CDLL(argv[0]).floor_spawn_op
    floor_op.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    args = [a.encode() for a in argv[1:]]
    c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)

    def op() -> int:
        status = floor_op(c_argv)
        _check(status == 0, f"the floor's op returned {status}")
        return 0

    return op


def spawn_sync(argv: list[str], **opts) -> Op:
    spawn_sync = _childproc().spawn_sync
    program = argv[0]

    def op() -> int:
        # Default options, exactly as a user writes it: stdio is three pipes.
        return spawn_sync(program, **opts).status

    return op


def subprocess_run(argv: list[str], pipes: bool = False) -> Op:
    import subprocess

    run, PIPE = subprocess.run, subprocess.PIPE
    cmd = [argv[0]]
    kw = dict(stdin=PIPE, stdout=PIPE, stderr=PIPE) if pipes else {}

    def op() -> int:
        return run(cmd, **kw).returncode

    return op


def posix_spawn(argv: list[str]) -> Op:
    posix_spawn, waitpid, environ = os.posix_spawn, os.waitpid, os.environ
    program = argv[0]
    args = [program]

    def op() -> int:
        pid = posix_spawn(program, args, environ)
        return waitpid(pid, 0)[1]

    return op


# ---------------------------------------------------------------------------
# spawn_async: spawn + exit of /bin/true, asynchronously.  ARGS: PROGRAM [ARGS]


def childproc_spawn_wait(argv: list[str], **opts) -> Op:
    spawn = _childproc().spawn
    program, args = argv[0], argv[1:]

    def op() -> int:
        # spawn(), then wait(): the thread's private loop runs until 'close'.
        return spawn(program, args, **opts).wait()

    return op


def childproc_spawn_await(argv: list[str]) -> Op:
    spawn = _childproc().spawn
    program, args = argv[0], argv[1:]

    async def one():
        t0 = now()
        status = await spawn(program, args)
        return status, now() - t0

    return _on_loop(_loop("asyncio"), one)


def asyncio_spawn(argv: list[str], loop_kind: str = "asyncio", pipes: bool = False) -> Op:
    import asyncio

    exec_, PIPE = asyncio.create_subprocess_exec, asyncio.subprocess.PIPE
    program, args = argv[0], argv[1:]
    kw = dict(stdin=PIPE, stdout=PIPE, stderr=PIPE) if pipes else {}

    async def one():
        t0 = now()
        proc = await exec_(program, *args, **kw)
        if pipes:
            await proc.communicate()  # outputs to EOF, then the exit
        else:
            await proc.wait()
        return proc.returncode, now() - t0

    return _on_loop(_loop(loop_kind), one)


# ---------------------------------------------------------------------------
# stdout_data: a child's stdout into Python.  ARGS: EXPECTED PROGRAM [ARGS]


def childproc_data(argv: list[str]) -> Op:
    spawn = _childproc().spawn
    expected, program, args = _split(argv)

    def op() -> int:
        n = 0

        def on_data(chunk) -> None:
            nonlocal n
            n += len(chunk)

        child = spawn(program, args)
        child.stdout.on("data", on_data)
        status = child.wait()
        _check(n == expected, f"'data' delivered {n} bytes, expected {expected}")
        return status

    return op


def subprocess_read(argv: list[str]) -> Op:
    import subprocess

    Popen, PIPE = subprocess.Popen, subprocess.PIPE
    expected, program, args = _split(argv)
    cmd = [program, *args]

    def op() -> int:
        proc = Popen(cmd, stdout=PIPE)
        read = proc.stdout.read
        n = 0
        while True:
            chunk = read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        proc.stdout.close()
        status = proc.wait()
        _check(n == expected, f"read {n} bytes, expected {expected}")
        return status

    return op


def asyncio_read(argv: list[str], loop_kind: str = "asyncio") -> Op:
    import asyncio

    exec_, PIPE = asyncio.create_subprocess_exec, asyncio.subprocess.PIPE
    expected, program, args = _split(argv)

    async def one():
        t0 = now()
        proc = await exec_(program, *args, stdout=PIPE)
        read = proc.stdout.read
        n = 0
        while True:
            chunk = await read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        status = await proc.wait()
        t1 = now()
        _check(n == expected, f"read {n} bytes, expected {expected}")
        return status, t1 - t0

    return _on_loop(_loop(loop_kind), one)


# ---------------------------------------------------------------------------
# pipe_fd: readable.pipe() between fds.  ARGS: EXPECTED PROGRAM [ARGS]


def childproc_pipe_devnull(argv: list[str]) -> Op:
    spawn = _childproc().spawn
    _expected, program, args = _split(argv)

    def op() -> int:
        child = spawn(program, args)
        with open(os.devnull, "wb") as dest:  # pipe() never closes a raw file
            child.stdout.pipe(dest)
            return child.wait()

    return op


def childproc_handover(argv: list[str]) -> Op:
    spawn = _childproc().spawn
    _expected, program, args = _split(argv)

    def op() -> int:
        a = spawn(program, args)
        # a's stdout becomes b's stdin: the children share the pipe, the
        # parent moves nothing.
        b = spawn("cat", stdio=[a.stdout, "ignore", "inherit"])
        return a.wait() or b.wait()

    return op


def childproc_pipe_child(argv: list[str]) -> Op:
    spawn = _childproc().spawn
    _expected, program, args = _split(argv)

    def op() -> int:
        a = spawn(program, args)
        b = spawn("cat", stdio=["pipe", "ignore", "inherit"])
        a.stdout.pipe(b.stdin)  # the parent pumps: C splice between the two pipes
        return a.wait() or b.wait()

    return op


# ---------------------------------------------------------------------------
# concurrent_*: COUNT children at once.  ARGS: COUNT PROGRAM [ARGS]


def _raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def childproc_concurrent(argv: list[str]) -> Op:
    spawn = _childproc().spawn
    count, program, args = int(argv[0]), argv[1], argv[2:]
    _raise_nofile()

    def op() -> int:
        children = [spawn(program, args, stdio="ignore") for _ in range(count)]
        return sum(child.wait() != 0 for child in children)

    return op


def childproc_concurrent_await(argv: list[str]) -> Op:
    import asyncio

    spawn = _childproc().spawn
    count, program, args = int(argv[0]), argv[1], argv[2:]
    _raise_nofile()

    async def one():
        t0 = now()
        children = [spawn(program, args, stdio="ignore") for _ in range(count)]
        codes = await asyncio.gather(*children)
        return sum(c != 0 for c in codes), now() - t0

    return _on_loop(_loop("asyncio"), one)


def asyncio_concurrent(argv: list[str], loop_kind: str = "asyncio") -> Op:
    import asyncio

    exec_, DEVNULL = asyncio.create_subprocess_exec, asyncio.subprocess.DEVNULL
    count, program, args = int(argv[0]), argv[1], argv[2:]
    _raise_nofile()

    async def one():
        t0 = now()
        procs = [
            await exec_(program, *args, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
            for _ in range(count)
        ]
        codes = await asyncio.gather(*(p.wait() for p in procs))
        return sum(c != 0 for c in codes), now() - t0

    return _on_loop(_loop(loop_kind), one)


# ---------------------------------------------------------------------------
# exec_*: run a shell command, capture its output.  ARGS: EXPECTED COMMAND
# (mode "bytes" or "text"; "default" = what the call returns with no options)


def childproc_spawn_shell(argv: list[str]) -> Op:
    """ARGS: EXPECTED COMMAND: the async spawn exec() stands on, for the same
    command (shell=True, default stdio, wait for 'close'), its output
    unread: what exec() adds on top is the collecting."""
    spawn = _childproc().spawn
    command = argv[1]

    def op() -> int:
        return spawn(command, shell=True).wait()

    return op


def childproc_exec(argv: list[str], mode: str) -> Op:
    exec_ = _childproc().exec
    expected, command = int(argv[0]), argv[1]
    if mode == "bytes":
        kw = dict(encoding=None, max_buffer=float("inf"))
    elif mode == "text":
        kw = dict(max_buffer=float("inf"))  # utf-8 is exec's default
    else:
        kw = {}

    def op() -> int:
        out = exec_(command, **kw).result().stdout
        _check(len(out) == expected, f"captured {len(out)}, expected {expected}")
        _check(isinstance(out, bytes) == (mode == "bytes"), f"got {type(out).__name__}")
        return 0

    return op


def subprocess_run_capture(argv: list[str], mode: str) -> Op:
    import subprocess

    run = subprocess.run
    expected, command = int(argv[0]), argv[1]
    text = mode == "text"

    def op() -> int:
        r = run(command, shell=True, capture_output=True, text=text)
        _check(len(r.stdout) == expected, f"captured {len(r.stdout)}, expected {expected}")
        return r.returncode

    return op


def subprocess_check_output(argv: list[str], mode: str) -> Op:
    import subprocess

    check_output = subprocess.check_output
    expected, command = int(argv[0]), argv[1]
    text = mode == "text"

    def op() -> int:
        out = check_output(command, shell=True, text=text)
        _check(len(out) == expected, f"captured {len(out)}, expected {expected}")
        return 0

    return op


def asyncio_communicate(argv: list[str], mode: str, loop_kind: str = "asyncio") -> Op:
    import asyncio

    shell, PIPE = asyncio.create_subprocess_shell, asyncio.subprocess.PIPE
    expected, command = int(argv[0]), argv[1]
    text = mode == "text"

    async def one():
        t0 = now()
        proc = await shell(command, stdout=PIPE, stderr=PIPE)
        out, _err = await proc.communicate()
        if text:
            out = out.decode()
        t1 = now()
        _check(len(out) == expected, f"captured {len(out)}, expected {expected}")
        return proc.returncode, t1 - t0

    return _on_loop(_loop(loop_kind), one)


# ---------------------------------------------------------------------------
# ipc_roundtrip / ipc_oneway: a forked child, once per batch.  ARGS: COUNT
# (round trips, or messages, per op)


def _script(name: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def childproc_roundtrip(argv: list[str], serialization: str) -> Op:
    cp = _childproc()
    count = int(argv[0])
    child = cp.fork(_script("ipc_pong.py"), serialization=serialization)
    run_until = _reactor_run_until()
    state = {"left": 0, "bad": None}
    send = child.send

    def on_message(message, _handle=None) -> None:
        if message != MSG:
            state["bad"] = message
        state["left"] -= 1
        if state["left"] > 0:
            send(MSG)

    child.on("message", on_message)

    def op() -> int:
        state["left"] = count
        send(MSG)
        run_until(lambda: state["left"] <= 0)
        _check(state["bad"] is None, f"echo came back as {state['bad']!r}")
        return 0

    def close() -> None:
        child.disconnect()
        child.wait()

    op.close = close  # type: ignore[attr-defined]
    return op


def childproc_roundtrip_await(argv: list[str], serialization: str) -> Op:
    cp = _childproc()
    count = int(argv[0])
    loop = _loop("asyncio")
    state: dict = {"left": 0, "bad": None, "done": None}

    async def start():
        # The child belongs to the loop it was forked on: fork inside it.
        return cp.fork(_script("ipc_pong.py"), serialization=serialization)

    child = loop.run_until_complete(start())
    send = child.send

    def on_message(message, _handle=None) -> None:
        if message != MSG:
            state["bad"] = message
        state["left"] -= 1
        if state["left"] > 0:
            send(MSG)
        else:
            state["done"].set_result(None)

    child.on("message", on_message)

    async def one():
        t0 = now()
        state["left"] = count
        state["done"] = loop.create_future()
        send(MSG)
        await state["done"]
        t1 = now()
        _check(state["bad"] is None, f"echo came back as {state['bad']!r}")
        return 0, t1 - t0

    op = _on_loop(loop, one)

    async def stop():
        child.disconnect()
        await child

    def close() -> None:
        loop.run_until_complete(stop())
        _close_loop(loop)

    op.close = close  # type: ignore[attr-defined]
    return op


def childproc_oneway(argv: list[str], serialization: str) -> Op:
    cp = _childproc()
    count = int(argv[0])
    child = cp.fork(_script("ipc_sink.py"), serialization=serialization)
    run_until = _reactor_run_until()
    replies: list = []
    child.on("message", lambda message, _handle=None: replies.append(message))
    send = child.send

    def op() -> int:
        for _ in range(count):
            send(MSG)
        send("end")
        run_until(lambda: bool(replies))
        got = replies.pop()
        _check(got == count, f"the sink counted {got!r} messages, expected {count}")
        return 0

    def close() -> None:
        child.disconnect()
        child.wait()

    op.close = close  # type: ignore[attr-defined]
    return op


def _pin_child() -> None:
    # compare's two-CPU workloads name the child's CPU (as ipc_pong.py does).
    if os.environ.get("BENCH_CHILD_CPU"):
        os.sched_setaffinity(0, {int(os.environ["BENCH_CHILD_CPU"])})


def mp_pong(conn) -> None:
    """multiprocessing child: echo until None comes.  (Not until EOF: a
    forked child holds a copy of the parent's end too.)"""
    _pin_child()
    recv, send = conn.recv, conn.send
    while (message := recv()) is not None:
        send(message)


def mp_sink(conn) -> None:
    """multiprocessing child: count messages, answer 'end' with the count;
    stop at None."""
    _pin_child()
    recv, send = conn.recv, conn.send
    count = 0
    while (message := recv()) is not None:
        if message == "end":
            send(count)
            count = 0
        else:
            count += 1


def mp_first(conn) -> None:
    """multiprocessing child: one message as soon as it runs."""
    conn.send("ready")
    conn.close()


def _mp_child(target) -> tuple:
    import multiprocessing

    parent, child_end = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=target, args=(child_end,), daemon=True)
    proc.start()
    child_end.close()

    def close() -> None:
        parent.send(None)
        proc.join()
        parent.close()

    return parent, close


def mp_roundtrip(argv: list[str]) -> Op:
    count = int(argv[0])
    conn, close = _mp_child(mp_pong)
    send, recv = conn.send, conn.recv

    def op() -> int:
        for _ in range(count):
            send(MSG)
            _check(recv() == MSG, "echo differs")
        return 0

    op.close = close  # type: ignore[attr-defined]
    return op


def mp_oneway(argv: list[str]) -> Op:
    count = int(argv[0])
    conn, close = _mp_child(mp_sink)
    send, recv = conn.send, conn.recv

    def op() -> int:
        for _ in range(count):
            send(MSG)
        send("end")
        got = recv()
        _check(got == count, f"the sink counted {got!r} messages, expected {count}")
        return 0

    op.close = close  # type: ignore[attr-defined]
    return op


# ---------------------------------------------------------------------------
# fork_first: start a Python child, time until its first message.  No ARGS.


def childproc_fork_first(argv: list[str], warm_start: bool = False) -> Op:
    """``warm_start``: from the zygote (childproc._warm), which the first
    fork starts as multiprocessing's forkserver starts its server on first
    use; the warm-up ops pay for it, the timed ones are the steady state."""
    fork = _childproc().fork
    script = _script("ipc_first.py")
    options = {"warm_start": True} if warm_start else {}

    def op():
        got: list[int] = []
        t0 = now()
        child = fork(script, **options)
        child.on("message", lambda _m, _h=None: got.append(now()))
        status = child.wait()  # the child exits after its message; not timed
        _check(len(got) == 1, f"{len(got)} messages")
        return status, got[0] - t0

    return op


def mp_fork_first(argv: list[str], method: str) -> Op:
    import multiprocessing

    # A spawned (or forkserver) child re-imports the parent's __main__, and
    # that import would be timed: by path when it is a script with a
    # __file__ (dropped here), by name when it was run with -m, except for a
    # package's __main__, which is how the comparison worker runs (`python
    # -m compare`).  So the child imports only this module (for the target),
    # as it would for a small user script.
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is None and hasattr(main, "__file__"):
        del main.__file__
    ctx = multiprocessing.get_context(method)

    def op():
        reader, writer = ctx.Pipe(duplex=False)
        t0 = now()
        proc = ctx.Process(target=mp_first, args=(writer,))
        proc.start()
        msg = reader.recv()
        t1 = now()
        writer.close()
        proc.join()
        reader.close()
        _check(msg == "ready", f"first message {msg!r}")
        return proc.exitcode, t1 - t0

    return op
