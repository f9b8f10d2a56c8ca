"""Every exception and warning class of childproc (``childproc`` exports them all).

*Runtime errors* describe what happened to a child: :class:`SpawnError` (the
process could not be created, or a sync run ended with ``ETIMEDOUT`` /
``ENOBUFS``), :class:`ExecError` (an ``exec`` family command failed; also a
``subprocess.CalledProcessError``), :class:`ExecTimeoutError` (its timeout
killed it; also a ``TimeoutError``), :class:`MaxBufferError`,
:class:`AbortError` and :class:`IPCError`.  Their
attributes are Node's (``code``, ``syscall``, ``spawnargs``, ``killed``,
``cmd`` ...) so that code ported from Node reads the same fields, and their
``str()`` is Node's ``message`` (``spawnSync ls ENOENT``), not Python's
``[Errno 2] ...`` form.

*Validation errors* are raised before anything is spawned.  Node throws
``TypeError``/``RangeError`` objects carrying a ``code``; childproc raises the
Python builtins a Python caller expects -- :class:`ArgTypeError` (a
``TypeError``) for a wrong type and :class:`ArgValueError` (a ``ValueError``)
for a bad value -- each with Node's ``.code`` and Node's message text
(built by ``_messages.py``).

*Stream errors* (:class:`StreamError`, :class:`StreamSystemError`,
:class:`LineTooLongError`), the emitter's :class:`UnhandledErrorEvent` and the
warnings (:class:`MaxListenersExceededWarning`, :class:`IPCWarning`) complete
the set.
"""

from __future__ import annotations

import os

from ._errnos import errno_code

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; forked children start faster without
    from collections.abc import Hashable
    from typing import Any

__all__ = [
    "SpawnError",
    "spawn_error",
    "ExecError",
    "ExecTimeoutError",
    "MaxBufferError",
    "AbortError",
    "IPCError",
    "ArgTypeError",
    "ArgValueError",
    "ArgRangeTypeError",
    "StreamError",
    "StreamSystemError",
    "LineTooLongError",
    "UnhandledErrorEvent",
    "MaxListenersExceededWarning",
    "IPCWarning",
    "system_error",
    "write_after_end",
    "stream_destroyed",
    "already_finished",
    "premature_close",
]


# --------------------------------------------------------------------------
# Runtime errors
# --------------------------------------------------------------------------


class SpawnError(OSError):
    """A process-level failure, shaped like Node's ``ErrnoException``.

    ``errno`` is positive (Python's convention; Node's is negative), ``code``
    is the symbolic name (``'ENOENT'``), ``syscall`` is ``'spawn ls'``,
    ``'spawnSync ls'`` or plain ``'spawn'`` (uid/gid failures, which Node
    reports without a path), ``path`` and ``spawnargs`` are the file and
    ``argv[1:]`` or None.  ``str(err)`` is Node's message ``"<syscall>
    <code>"``.  ``filename`` is what was not found, as :mod:`subprocess`
    has it (``e.filename``): the program, or the ``cwd`` when changing into
    it failed (``path`` stays Node's: the program).

    Build instances with :func:`spawn_error`, which picks a subclass that
    also derives from the matching builtin (``FileNotFoundError`` for ENOENT
    ...), so ``except FileNotFoundError`` catches a missing executable exactly
    as it does with :mod:`subprocess`.  The sync functions attach the run's
    ``status``, ``signal``, ``output``, ``pid``, ``stdout`` and ``stderr`` as
    plain attributes, as Node's ``Object.assign(err, ret)`` does.
    """

    code: str
    syscall: str
    path: str | bytes | None
    spawnargs: list[Any] | None

    def __init__(
        self,
        errno: int,
        syscall: str,
        path: str | bytes | None = None,
        spawnargs: list[Any] | None = None,
        filename: str | bytes | None = None,
    ) -> None:
        errno = abs(errno)
        if filename is None:
            filename = path
        if filename is None:
            OSError.__init__(self, errno, os.strerror(errno))
        else:
            OSError.__init__(self, errno, os.strerror(errno), filename)
        self.code = errno_code(errno)
        self.syscall = syscall
        self.path = path
        self.spawnargs = spawnargs

    def __str__(self) -> str:
        return f"{self.syscall} {self.code}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError pickles as cls(*args) with args == (errno, strerror), which
        # does not fit our constructor; rebuild through the factory so the
        # right cached subclass comes back, then restore the extra fields.
        return (spawn_error, (self.errno, self.syscall, self.path, self.spawnargs, self.filename), self.__dict__)


# One subclass per builtin OSError subclass, made on first use.  CPython maps
# an errno to its builtin subclass when OSError itself is instantiated
# (``type(OSError(errno.ENOENT, ''))`` is FileNotFoundError); asking it keeps
# the mapping identical to the one subprocess users see.
_SUBCLASSES: dict[int, type[SpawnError]] = {}


def _subclass_for(errno: int) -> type[SpawnError]:
    cls = _SUBCLASSES.get(errno)
    if cls is not None:
        return cls
    builtin = type(OSError(errno, ""))
    if builtin is OSError:
        cls = SpawnError
    else:
        name = "Spawn" + builtin.__name__
        cls = globals().get(name)
        if cls is None:
            cls = type(name, (SpawnError, builtin), {"__module__": "childproc", "__doc__": (
                f"A :class:`SpawnError` that is also a :class:`{builtin.__name__}`.")})
            cls.__qualname__ = name
            # Module-level names make the dynamic classes picklable and visible.
            globals()[name] = cls
    _SUBCLASSES[errno] = cls
    return cls


def spawn_error(
    errno: int,
    syscall: str,
    path: str | bytes | None = None,
    spawnargs: list[Any] | None = None,
    filename: str | bytes | None = None,
) -> SpawnError:
    """Make the :class:`SpawnError` for ``errno`` (either sign accepted).

    The instance's class also derives from the builtin OSError subclass for
    that errno: ENOENT gives ``FileNotFoundError``, EACCES/EPERM
    ``PermissionError``, ETIMEDOUT ``TimeoutError``, EAGAIN
    ``BlockingIOError``, ECHILD ``ChildProcessError`` (and likewise ENOTDIR,
    EISDIR, EINTR ...).  Other errnos give a plain :class:`SpawnError`.
    """
    errno = abs(errno)
    return _subclass_for(errno)(errno, syscall, path, spawnargs, filename)


# The exec family also derives from subprocess's errors, so ``except
# subprocess.CalledProcessError`` catches a failed ``exec_sync``.  Importing
# subprocess (re, enum, locale, threading ...) would double the start-up of
# a forked child, which loads this module for its channel's errors, so the
# three classes are made on first use (PEP 562 ``__getattr__`` below).  Their
# whole behaviour is in the mixins here, written once; the class statements
# the type checker reads (under TYPE_CHECKING) and the ones made at run time
# (:func:`_make_exec_errors`) only name the bases, and
# tests/test_errors.py checks that the two agree.


class _ExecErrorFields(Exception):
    """An ``exec``/``exec_file`` (or sync form) command that did not succeed.

    Node's fields: the message is ``Command failed: <cmd>\\n<stderr>``;
    ``code`` is the exit code, or None when a signal ended the child (Node
    puts the exit code in ``code``, not ``status``, for the async forms);
    ``killed`` says whether childproc itself sent the signal (timeout,
    max_buffer, ``kill()``); ``signal`` is the signal name or None; ``cmd``
    the command line as Node prints it.  The sync forms fill ``status``,
    ``output`` (Node's ``[None, stdout, stderr]``) and ``pid`` as well.
    ``stdout``/``stderr`` carry what was captured (Node adds them only in the
    promisified form; having them always costs nothing).

    It is also a :class:`subprocess.CalledProcessError`: ``returncode`` is
    the exit code, or minus the number of the signal that ended the child
    (as :mod:`subprocess` has it), ``cmd`` and ``stderr`` are the fields
    above, and ``output`` is the captured stdout in the async forms.  In the
    sync forms ``output`` stays Node's list (Node's field wins where the two
    disagree); ``stdout`` is the captured stdout in every form.
    """

    code: int | str | None
    killed: bool
    signal: str | None
    cmd: str
    # Class-level values on purpose: CalledProcessError makes ``stdout`` a
    # property aliasing ``output``, which Node's list occupies in the sync
    # forms; a plain class attribute earlier in the MRO keeps the two apart.
    stdout: str | bytes | None = None
    stderr: str | bytes | None = None
    output: Any = None
    status: int | None
    pid: int | None
    returncode: int

    def __init__(
        self,
        message: str = "",
        *,
        code: int | str | None = None,
        killed: bool = False,
        signal: str | None = None,
        cmd: str | bytes | None = None,
        stdout: str | bytes | None = None,
        stderr: str | bytes | None = None,
        status: int | None = None,
        output: list[Any] | None = None,
        pid: int | None = None,
        returncode: int | None = None,
    ) -> None:
        # Not CalledProcessError.__init__: args stay (message,), so pickling
        # (cls(*args) then __dict__) and str() are Node's.
        Exception.__init__(self, message)
        self.code = code
        self.killed = killed
        self.signal = signal
        self.cmd = cmd if isinstance(cmd, str) or cmd is None else os.fsdecode(cmd)  # type: ignore[assignment]
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
        self.output = output if output is not None else stdout
        self.pid = pid
        if returncode is None:
            returncode = _returncode(code if isinstance(code, int) else status, signal)
        self.returncode = returncode

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _returncode(code: int | None, signal: str | None) -> int:
    """subprocess's returncode: the exit code, or minus the signal's number."""
    if signal is not None:
        # Here, not at the top: the signal module imports enum, which a
        # forked child that never builds an ExecError need not pay for.
        import signal as _signal_module

        number = getattr(_signal_module, signal, None)
        if isinstance(number, int):
            return -number
    return code if code is not None else 1


class _MaxBufferErrorFields(_ExecErrorFields):
    """An output stream exceeded ``max_buffer`` in ``exec``/``exec_file``.

    Node's ``RangeError [ERR_CHILD_PROCESS_STDIO_MAXBUFFER]``: ``code`` is
    that string and the message is ``"stdout maxBuffer length exceeded"``
    (or ``stderr``).  The constructor takes the stream name; ``killed``, ``signal``, ``cmd``,
    ``stdout`` and ``stderr`` are filled as for :class:`ExecError`.
    """

    stream: str

    def __init__(self, stream: str = "stdout", **fields: Any) -> None:
        fields.pop("code", None)
        super().__init__(f"{stream} maxBuffer length exceeded", **fields)
        self.stream = stream
        self.code = "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stream,), self.__dict__)


class _ExecTimeoutErrorFields(_ExecErrorFields):
    """An ``exec``/``exec_file`` command killed because its ``timeout``
    passed: an :class:`ExecError` (``killed`` True, ``signal`` the
    ``kill_signal``) that is also a :class:`TimeoutError` and a
    :class:`subprocess.TimeoutExpired` (``timeout`` in seconds), so the
    ``except`` clauses of asyncio and subprocess code catch it."""

    timeout: float

    def __init__(self, message: str = "", *, timeout: float = 0.0, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.timeout = timeout


if TYPE_CHECKING:
    from subprocess import CalledProcessError, TimeoutExpired

    class ExecError(_ExecErrorFields, CalledProcessError):
        """A command of the exec family that failed (see the fields' docs)."""

    class MaxBufferError(_MaxBufferErrorFields, ExecError):
        """``ERR_CHILD_PROCESS_STDIO_MAXBUFFER``: an output went over ``max_buffer``."""

    # typeshed types TimeoutExpired.stdout/stderr as bytes; ours are str
    # with an encoding, as every exec output is.
    class ExecTimeoutError(  # type: ignore[misc]
            _ExecTimeoutErrorFields, ExecError, TimeoutExpired, TimeoutError):
        """An exec command killed by its ``timeout``."""

_LAZY = ("ExecError", "MaxBufferError", "ExecTimeoutError")

# The pool's crash errors are BrokenProcessPools (PPE's except clauses match);
# its module imports multiprocessing (~50 ms): made on first use too.


class _WorkerCrashedFields(Exception):
    """A pool worker died running the task; only that task fails.  ``pid``,
    ``exit_code``, ``signal_code``, ``attempts`` (times the task was started)
    and ``stderr`` (the tail of what the worker wrote there)."""

    def __init__(self, message: str, *, pid: int | None = None, exit_code: int | None = None,
                 signal_code: str | None = None, attempts: int = 0, stderr: str = "") -> None:
        super().__init__(message)
        self.pid, self.exit_code, self.signal_code = pid, exit_code, signal_code
        self.attempts, self.stderr = attempts, stderr

    def __str__(self) -> str:
        tail = f"\n--- worker stderr (tail) ---\n{self.stderr.rstrip()}" if self.stderr else ""
        return (str(self.args[0]) if self.args else "worker crashed") + tail


if TYPE_CHECKING:
    from concurrent.futures.process import BrokenProcessPool

    class WorkerCrashedError(_WorkerCrashedFields, BrokenProcessPool):
        """A pool worker died while running the task (see the fields' docs)."""

    class PoolBrokenError(WorkerCrashedError):
        """The pool cannot run tasks: 3 start failures in a row, or terminate/kill_workers."""

_LAZY_POOL = ("WorkerCrashedError", "PoolBrokenError")


def _make_pool_errors() -> None:
    from concurrent.futures.process import BrokenProcessPool

    doc = "The pool cannot run tasks: 3 start failures in a row, or terminate/kill_workers."
    crashed = type("WorkerCrashedError", (_WorkerCrashedFields, BrokenProcessPool), {"__module__": __name__})
    globals().update(WorkerCrashedError=crashed, PoolBrokenError=type("PoolBrokenError", (crashed,), {"__doc__": doc}))


class TaskTimeoutError(TimeoutError):
    """A pool task ran past its timeout and its worker was killed (``timeout``, ``pid``)."""

    def __init__(self, message: str, *, timeout: float | None = None, pid: int | None = None) -> None:
        super().__init__(message)
        self.timeout, self.pid = timeout, pid


class RemoteError(Exception):
    """What a pool worker sent back cannot be rebuilt here (an unpicklable
    exception or result), or a Node worker threw: the worker's own words."""

    def __init__(self, type_name: str, message: str, traceback_text: str = "") -> None:
        super().__init__(type_name, message, traceback_text)
        self.type_name, self.message, self.traceback_text = type_name, message, traceback_text

    def __str__(self) -> str:
        tb = f"\n--- remote traceback ---\n{self.traceback_text.rstrip()}" if self.traceback_text else ""
        return (f"{self.type_name}: {self.message}" if self.message else self.type_name) + tb


class QueueFullError(RuntimeError):
    """``ProcessPool.submit`` past ``max_queue``: it refuses rather than block."""


def _make_exec_errors() -> None:
    from subprocess import CalledProcessError, TimeoutExpired

    def make(name: str, fields: type, *bases: type) -> type:
        cls = type(name, (fields, *bases), {"__module__": __name__, "__doc__": fields.__doc__})
        globals()[name] = cls
        return cls

    exec_error = make("ExecError", _ExecErrorFields, CalledProcessError)
    make("MaxBufferError", _MaxBufferErrorFields, exec_error)
    make("ExecTimeoutError", _ExecTimeoutErrorFields, exec_error, TimeoutExpired, TimeoutError)


if not TYPE_CHECKING:  # hidden from the checker, which would let any name through it
    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            _make_exec_errors()
            return globals()[name]
        if name in _LAZY_POOL:
            _make_pool_errors()
            return globals()[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AbortError(Exception):
    """The operation was cancelled through an ``AbortSignal``.

    ``code`` is ``'ABORT_ERR'``; ``cause`` is the signal's reason.  When the
    reason is itself an exception it also becomes ``__cause__`` so tracebacks
    show it.
    """

    code: str
    cause: Any

    def __init__(self, message: str | None = None, *, cause: Any = None) -> None:
        super().__init__(message or "The operation was aborted")
        self.code = "ABORT_ERR"
        self.cause = cause
        if isinstance(cause, BaseException):
            self.__cause__ = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_abort_error, (self.args[0] if self.args else None,), self.__dict__)


def _rebuild_abort_error(message: str | None) -> AbortError:
    return AbortError(message)


class IPCError(Exception):
    """An error on a child's message channel, with Node's ``code``.

    Codes in use: ``ERR_IPC_CHANNEL_CLOSED`` ('Channel closed'),
    ``ERR_IPC_DISCONNECTED`` ('IPC channel is already disconnected').
    """

    code: str | None

    def __init__(self, message: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0] if self.args else "", self.code), self.__dict__)


# --------------------------------------------------------------------------
# Validation errors
# --------------------------------------------------------------------------


class ArgTypeError(TypeError):
    """A wrong type, with Node's error code (usually ``ERR_INVALID_ARG_TYPE``)."""

    code: str

    def __init__(self, message: str, code: str = "ERR_INVALID_ARG_TYPE") -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.code), self.__dict__)


class ArgValueError(ValueError):
    """A bad value, with Node's error code (``ERR_INVALID_ARG_VALUE``,
    ``ERR_OUT_OF_RANGE``, ``ERR_UNKNOWN_SIGNAL`` ...)."""

    code: str

    def __init__(self, message: str, code: str = "ERR_INVALID_ARG_VALUE") -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.code), self.__dict__)


class ArgRangeTypeError(ArgValueError, TypeError):
    """Node's ``ERR_OUT_OF_RANGE`` for a value of the wrong type (``timeout='5'``,
    ``max_buffer=True``): Node's code and message, and a ``TypeError`` too, as
    a wrong type is in Python (and was here before the code was Node's)."""

    def __init__(self, message: str, code: str = "ERR_OUT_OF_RANGE") -> None:
        super().__init__(message, code)


# --------------------------------------------------------------------------
# Stream errors
# --------------------------------------------------------------------------


class StreamError(Exception):
    """A stream used in a state that forbids it, with Node's ``code`` and message.

    Codes: ``ERR_STREAM_WRITE_AFTER_END`` (``write after end``),
    ``ERR_STREAM_DESTROYED`` (``Cannot call write after a stream was
    destroyed``), ``ERR_STREAM_ALREADY_FINISHED``, ``ERR_STREAM_PREMATURE_CLOSE``
    (``Premature close``: a stream being iterated or read closed before its
    end).
    """

    code: str

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.code), self.__dict__)


def write_after_end() -> StreamError:
    return StreamError("write after end", "ERR_STREAM_WRITE_AFTER_END")


def stream_destroyed(method: str) -> StreamError:
    return StreamError(f"Cannot call {method} after a stream was destroyed", "ERR_STREAM_DESTROYED")


def already_finished(method: str) -> StreamError:
    return StreamError(f"Cannot call {method} after a stream was finished", "ERR_STREAM_ALREADY_FINISHED")


def premature_close() -> StreamError:
    return StreamError("Premature close", "ERR_STREAM_PREMATURE_CLOSE")


class StreamSystemError(OSError):
    """An I/O failure on a stream's fd, shaped like Node's ``ErrnoException``.

    ``errno`` is positive (Python's convention), ``code`` the symbolic name
    (``'EPIPE'``), ``syscall`` the failing call (``'write'``, ``'read'``), and
    ``str(err)`` Node's message, ``write EPIPE``.  Instances made by
    :func:`system_error` also derive from the builtin subclass for the errno
    (EPIPE gives ``BrokenPipeError``), so ``except BrokenPipeError`` works.
    """

    code: str
    syscall: str

    def __init__(self, errno: int, syscall: str) -> None:
        errno = abs(errno)
        super().__init__(errno, os.strerror(errno))
        self.code = errno_code(errno)
        self.syscall = syscall

    def __str__(self) -> str:
        return f"{self.syscall} {self.code}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (system_error, (self.errno, self.syscall), self.__dict__)


_SYSTEM_ERRORS: dict[type[OSError], type[StreamSystemError]] = {}


def system_error(errno: int, syscall: str) -> StreamSystemError:
    """A :class:`StreamSystemError` that is also the builtin OSError subclass
    Python itself would raise for ``errno`` (``BrokenPipeError`` for EPIPE)."""
    errno = abs(errno)
    builtin = type(OSError(errno, ""))  # CPython maps errno -> subclass here
    cls = _SYSTEM_ERRORS.get(builtin)
    if cls is None:
        if builtin is OSError:
            cls = StreamSystemError
        else:
            cls = type(f"Stream{builtin.__name__}", (StreamSystemError, builtin), {"__module__": "childproc"})
        _SYSTEM_ERRORS[builtin] = cls
    return cls(errno, syscall)


# --------------------------------------------------------------------------
# Events and warnings
# --------------------------------------------------------------------------


class UnhandledErrorEvent(RuntimeError):
    """``emit('error', value)`` found no ``'error'`` listener and ``value`` is not an exception.

    Node's ``ERR_UNHANDLED_ERROR``: the message is ``Unhandled error. (<value>)``
    with the value shown by ``repr()``, ``code`` is ``'ERR_UNHANDLED_ERROR'`` and
    ``context`` is the value itself.  (When the value *is* an exception, ``emit``
    raises that exception instead, as Node throws an ``Error`` as is.)
    """

    code = "ERR_UNHANDLED_ERROR"

    def __init__(self, context: Any = None) -> None:
        try:
            shown = repr(context)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the error
            shown = object.__repr__(context)
        super().__init__(f"Unhandled error. ({shown})")
        self.context = context

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.context,))


class MaxListenersExceededWarning(RuntimeWarning):
    """More listeners were added to one event than the emitter's limit: a likely leak.

    Carries Node's fields: ``emitter``, ``type`` (the event) and ``count``.
    Silence it for one emitter with ``set_max_listeners(0)`` or a higher limit,
    or globally with :func:`warnings.filterwarnings`.
    """

    def __init__(
        self,
        message: str,
        emitter: Any = None,  # the EventEmitter
        type: Hashable = None,  # Node's field name, shadowing the builtin is harmless here
        count: int = 0,
    ) -> None:
        super().__init__(message)
        self.emitter = emitter
        self.type = type
        self.count = count


class IPCWarning(RuntimeWarning):
    """Bad bytes arrived on a channel nobody listens to ``'error'`` on."""


class LineTooLongError(ValueError):
    """A line read by ``Readable.lines()`` grew past ``max_line``.

    Nothing is truncated silently: the iteration stops with this error.
    ``max_line`` is the limit, ``partial`` the start of the offending line
    (what had been read of it, at least ``max_line + 1`` bytes or characters).
    """

    def __init__(self, max_line: int, partial: bytes | str) -> None:
        super().__init__(
            f"line longer than max_line={max_line} {'bytes' if isinstance(partial, bytes) else 'characters'} "
            f"(raise max_line in lines() to accept longer lines)"
        )
        self.max_line = max_line
        self.partial = partial
