"""The zygote: ``python [exec_argv] -c 'import childproc; from
childproc._warm.server import main; main()'``, started by :mod:`.client`
with its request socket at fd 3 (childproc is imported there, once, so that
each child has it at no cost).

It imports what a forked Python child needs (childproc and its channel)
once, tells the parent it is ready, then serves requests one at a time: a
``SOCK_SEQPACKET`` message with the child's plan (see :func:`_become`) and
its fds (``SCM_RIGHTS``).  Each request is served by cloning the zygote with
``CLONE_PARENT``: the new process is a child of the zygote's parent, so that
parent gets its SIGCHLD, its pidfd and its exit status, as for any child it
spawned.  The zygote never reaps, never starts a thread and never runs user
code; it dies with its parent (``PR_SET_PDEATHSIG``, set by the spawn, and
EOF on its socket).

Replies, ``marshal``'d ``(who, pid, errno, stage)``: the zygote sends
``(0, pid, 0, 0)`` after a clone (``(0, 0, errno, FORK)`` when it failed),
the clone sends ``(1, pid, errno, stage)`` once its setup (fds, cwd,
session) is done or failed.  Both write the same socket; a seqpacket keeps
each message whole.
"""

from __future__ import annotations

import builtins
import io
import marshal
import os
import signal
import socket
import sys
import types

if sys.platform != "win32":  # the zygote runs on Linux; the module imports everywhere
    import fcntl

from .._ipc import process as _process
from .._spawn import native as _native
from . import DIE_WITH_PARENT, SETPGROUP, SETSID, SOCKET_FD

__all__ = ["main"]

# The stages of childproc.h's CP_STAGE_*, for the clone's failures.
_FORK, _STDIO, _SESSION, _CHDIR = 2, 3, 4, 5
_MAX_REQUEST = 1 << 16  # the client sends no more (client._MAX_REQUEST)
_MAX_FDS = 64
_PR_SET_PDEATHSIG = 1


def main() -> None:
    """The zygote's loop; returns only in a clone, which then runs the
    child's script at the top of the stack (see :func:`_run_main`)."""
    # Ctrl-C at a terminal signals the whole foreground group: the zygote
    # must outlive it (it ends with its parent).  Each child gets Python's
    # own handler back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=SOCKET_FD)
    os.set_inheritable(SOCKET_FD, False)
    clone = _native.clone_parent_function()
    import ctypes

    api = ctypes.pythonapi
    libc = ctypes.CDLL(None, use_errno=True)
    stdio = _stdio_shape()
    parent = os.getppid()
    # Ready, with the environment as this interpreter holds it: a child
    # whose own is the same plus its channel is spared rebuilding it.
    sock.send(b"R" + b"".join(k + b"=" + v + b"\0" for k, v in os.environb.items()))
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, _MAX_REQUEST, _MAX_FDS)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)  # the parent closed its end, or died
        # The GIL is held across the clone (ctypes.pythonapi and PyDLL keep
        # it), so no other Python code runs between these calls: this is
        # os.fork()'s sequence, with our clone in the middle.
        api.PyOS_BeforeFork()
        pid = clone()
        if pid == 0:
            api.PyOS_AfterFork_Child()
            script, code = _become(sock, msg, fds, parent, libc, stdio)
            if code is not None:
                _run_code(code)
            else:
                _run_main(script)
            return
        api.PyOS_AfterFork_Parent()
        for fd in fds:
            os.close(fd)
        sock.send(marshal.dumps((0, 0, -pid, _FORK) if pid < 0 else (0, pid, 0, 0)))


def _stdio_shape() -> tuple[bool, list[tuple[str, str]]]:
    """Whether stdio is buffered (``-u``/PYTHONUNBUFFERED) and the encoding
    and errors of stdin, stdout, stderr: what a fresh interpreter with the
    same flags and environment would pick, to make the child's streams."""
    streams = (sys.stdin, sys.stdout, sys.stderr)
    buffered = not getattr(sys.stdout, "write_through", False)
    return buffered, [(getattr(s, "encoding", None) or "utf-8", getattr(s, "errors", None) or "strict")
                      for s in streams]


def _become(sock: socket.socket, msg: bytes, fds: list[int], parent: int, libc: object,
            stdio: tuple[bool, list[tuple[str, str]]]) -> tuple[str, bytes | None]:
    """In the clone: become what ``python script args`` (or ``python -c
    code args``) started by the parent would be, up to running it; returns
    the script's path and the code (None for a script)."""
    argv, orig_argv, env, cwd, slots, flags, code = marshal.loads(msg)
    n = len(slots)
    # The reply goes out on a copy above the stdio range: the socket's own
    # number may be one of the child's slots (3 is often the channel).
    raw = sock.detach()
    reply = fcntl.fcntl(raw, fcntl.F_DUPFD_CLOEXEC, max(n, 3))
    stage = _STDIO
    try:
        # Every received fd lifted above the slots first, so no dup2 below
        # overwrites a source it still needs.
        lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, max(n, 3)) for fd in fds]
        for fd in fds:
            os.close(fd)
        if raw >= n:
            os.close(raw)
        for i, k in enumerate(slots):
            if k < 0:
                try:
                    os.close(i)
                except OSError:
                    pass
            else:
                os.dup2(lifted[k], i)  # inheritable, as exec leaves a stdio fd
        stage = _CHDIR
        os.fchdir(lifted[0])  # the parent's cwd at fork() time
        if cwd is not None:
            os.chdir(cwd)
        stage = _SESSION
        if flags & SETSID:
            os.setsid()
        elif flags & SETPGROUP:
            os.setpgid(0, 0)
        if flags & DIE_WITH_PARENT:
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) < 0:  # type: ignore[attr-defined]
                raise OSError(_ctypes_errno(), "prctl")
            if os.getppid() != parent:
                os._exit(127)  # the parent died before prctl took effect
    except OSError as exc:
        os.write(reply, marshal.dumps((1, os.getpid(), exc.errno or 5, stage)))
        os._exit(127)
    os.write(reply, marshal.dumps((1, os.getpid(), 0, 0)))
    # Nothing of the zygote's reaches the child: only its stdio slots.
    os.closerange(n, _fd_limit())
    if isinstance(env, list):
        for entry in env:  # the zygote's environment plus these (the channel's)
            key, _, value = entry.partition(b"=")
            os.environb[key] = value
    else:
        _environ(env)
    # The channel is claimed when the script first asks for it, as a cold
    # child's import would claim it; nothing of the zygote's caches it.
    _process._defer_channel()
    vars(sys.modules["childproc"]).pop("process", None)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    script = os.fsdecode(argv[0])
    sys.argv = [os.fsdecode(a) for a in argv]
    sys.orig_argv = [os.fsdecode(a) for a in orig_argv]
    if code is not None:
        sys.argv.insert(0, "-c")  # and sys.path[0] stays '', as for the zygote's own -c
    elif not getattr(sys.flags, "safe_path", False) and sys.path and sys.path[0] == "":  # (-P, 3.11)
        # python script.py puts the script's directory first, symlinks resolved.
        sys.path[0] = os.path.dirname(os.path.realpath(script))
    _streams(*stdio)
    return script, code


def _ctypes_errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _fd_limit() -> int:
    try:
        return min(os.sysconf("SC_OPEN_MAX"), 1 << 20)
    except (OSError, ValueError):
        return 65536


def _environ(env: bytes) -> None:
    """``os.environ`` (and the C environ under it) becomes the child's."""
    entries = [e for e in env.split(b"\0") if e]
    os.environb.clear()
    for entry in entries:
        key, sep, value = entry.partition(b"=")
        if sep and key:
            os.environb[key] = value


def _streams(buffered: bool, codecs: list[tuple[str, str]]) -> None:
    """Fresh ``sys.stdin``/``stdout``/``stderr`` on fds 0-2, made as CPython
    makes them at start-up (``create_stdio``): line buffering when a tty
    (stderr always), write-through when unbuffered."""
    made: list[io.TextIOWrapper | None] = []
    for fd, (encoding, errors) in enumerate(codecs):
        try:
            os.fstat(fd)
        except OSError:
            made.append(None)  # a closed slot: None, as CPython leaves it
            continue
        write = fd > 0
        buf = io.open(fd, "wb" if write else "rb", buffering=0 if (write and not buffered) else -1, closefd=False)
        raw = buf if isinstance(buf, io.FileIO) else buf.raw  # type: ignore[attr-defined]
        raw.name = ("<stdin>", "<stdout>", "<stderr>")[fd]
        tty = raw.isatty()
        made.append(io.TextIOWrapper(buf, encoding, errors, newline="\n",
                                     line_buffering=buffered and (tty or fd == 2),
                                     write_through=not buffered))
    sys.stdin, sys.stdout, sys.stderr = made
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = made  # type: ignore[misc]


def _run_main(script: str) -> None:
    """Run ``script`` as ``__main__``, as ``python script`` does; the end of
    the zygote's ``-c`` is then the child's normal interpreter exit (atexit,
    childproc's keep-alive for channel listeners, the exit code)."""
    path = os.path.abspath(script)
    try:
        is_file = os.path.isfile(path)
        if is_file:
            with io.open_code(path) as f:
                source = f.read()
    except OSError as exc:
        is_file, source = False, b""
        err: OSError | None = exc
    else:
        err = None
    if not is_file:
        if err is None and os.path.exists(path):
            import runpy  # a directory or zip with a __main__.py

            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                runpy.run_path(script, run_name="__main__")
            except SystemExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - printed as the interpreter would
                sys.excepthook(type(exc), exc, exc.__traceback__)
                sys.exit(1)
            return
        errno = err.errno if err is not None else 2
        text = err.strerror if err is not None else os.strerror(2)
        sys.stderr.write(f"{sys.executable}: can't open file {path!r}: [Errno {errno}] {text}\n")
        sys.exit(2)
    # The names CPython's __main__ has, in its order (pylifecycle's
    # add_main_module, then run_simple_file's __file__ and __cached__).
    main = types.ModuleType("__main__")
    main.__annotations__ = {}
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    main.__file__ = path
    main.__cached__ = None  # type: ignore[attr-defined]
    from importlib.machinery import SourceFileLoader

    main.__loader__ = SourceFileLoader("__main__", path)
    sys.modules["__main__"] = main
    _exec(source, path, main)


def _exec(source: bytes, filename: str, main: types.ModuleType) -> None:
    """Compile and run the child's program in ``main``; errors are printed
    as the interpreter prints them (no frame of ours) and end it with 1."""
    try:
        code = compile(source, filename, "exec")
    except (SyntaxError, ValueError) as exc:
        exc.__traceback__ = None  # no frame of ours, as python prints it
        sys.excepthook(type(exc), exc, None)
        sys.exit(1)
    try:
        exec(code, main.__dict__)  # noqa: S102 - this is the child's program
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - printed as the interpreter would
        tb = exc.__traceback__
        tb = tb.tb_next if tb is not None else None  # from the program's frame on
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        if isinstance(exc, KeyboardInterrupt):
            _exit_by_sigint()
        sys.exit(1)


def _run_code(code: bytes) -> None:
    """``python -c code``: a fresh ``__main__`` as CPython makes it for -c."""
    main = types.ModuleType("__main__")
    main.__annotations__ = {}
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    import importlib.machinery

    main.__loader__ = importlib.machinery.BuiltinImporter
    sys.modules["__main__"] = main
    _exec(code, "<string>", main)


def _exit_by_sigint() -> None:
    """An uncaught KeyboardInterrupt: CPython finalizes, then ends by SIGINT
    so that its parent sees the signal (exit_sigint).  The same steps: the
    non-daemon threads, the atexit handlers, the streams, then the signal."""
    import atexit
    import threading

    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    os._exit(130)  # (SIGINT blocked by whoever started us)
