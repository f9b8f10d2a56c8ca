"""The exception classes of childproc and the text of Node's error messages.

Two families live here.

*Runtime errors* describe what happened to a child: :class:`SpawnError` (the
process could not be created, or a sync run ended with ``ETIMEDOUT`` /
``ENOBUFS``), :class:`ExecError` (an ``exec`` family command failed),
:class:`MaxBufferError`, :class:`AbortError` and :class:`IPCError`.  Their
attributes are Node's (``code``, ``syscall``, ``spawnargs``, ``killed``,
``cmd`` ...) so that code ported from Node reads the same fields, and their
``str()`` is Node's ``message`` (``spawnSync ls ENOENT``), not Python's
``[Errno 2] ...`` form.

*Validation errors* are raised before anything is spawned.  Node throws
``TypeError``/``RangeError`` objects carrying a ``code``; childproc raises the
Python builtins a Python caller expects -- :class:`ArgTypeError` (a
``TypeError``) for a wrong type and :class:`ArgValueError` (a ``ValueError``)
for a bad value -- each with Node's ``.code`` and Node's message text.  The
helper constructors (:func:`invalid_arg_type`, :func:`invalid_arg_value`,
:func:`out_of_range`, ...) rebuild Node's ``lib/internal/errors.js`` message
formats.  Where Node names a JavaScript type (``Received type number (42)``,
``Received null``, ``an instance of Array``) the Python type is named instead
(``Received type int (42)``, ``Received None``, ``an instance of list``); that
is deliberate.  Everything else -- the quoting and escaping of strings
(``Received 'ec\\x00ho'``), the 128-character cut of inspected values, the
``argument``/``property`` wording -- is Node's to the character, and the tests
compare it against a real ``node``.
"""

from __future__ import annotations

import errno as _errno
import os
from types import BuiltinFunctionType, BuiltinMethodType, FunctionType, MethodType
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; forked children start faster without
    from collections.abc import Iterable
    from typing import Any

__all__ = [
    "SpawnError",
    "spawn_error",
    "ExecError",
    "MaxBufferError",
    "AbortError",
    "IPCError",
    "ArgTypeError",
    "ArgValueError",
    "invalid_arg_type",
    "invalid_arg_value",
    "out_of_range",
    "unknown_signal",
    "unknown_encoding",
    "ipc_sync_fork",
    "ipc_one_pipe",
    "child_process_ipc_required",
    "format_value",
    "describe_received",
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
    <code>"``.  ``filename`` mirrors ``path`` so that code written for
    :mod:`subprocess` (``e.filename``) keeps working.

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
    ) -> None:
        errno = abs(errno)
        if path is None:
            OSError.__init__(self, errno, os.strerror(errno))
        else:
            OSError.__init__(self, errno, os.strerror(errno), path)
        self.code = _errno.errorcode.get(errno) or f"Unknown system error -{errno}"
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
        return (spawn_error, (self.errno, self.syscall, self.path, self.spawnargs), self.__dict__)


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
            cls = type(name, (SpawnError, builtin), {"__module__": __name__, "__doc__": (
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
) -> SpawnError:
    """Make the :class:`SpawnError` for ``errno`` (either sign accepted).

    The instance's class also derives from the builtin OSError subclass for
    that errno: ENOENT gives ``FileNotFoundError``, EACCES/EPERM
    ``PermissionError``, ETIMEDOUT ``TimeoutError``, EAGAIN
    ``BlockingIOError``, ECHILD ``ChildProcessError`` (and likewise ENOTDIR,
    EISDIR, EINTR ...).  Other errnos give a plain :class:`SpawnError`.
    """
    errno = abs(errno)
    return _subclass_for(errno)(errno, syscall, path, spawnargs)


class ExecError(Exception):
    """An ``exec``/``exec_file`` (or sync form) command that did not succeed.

    The message is given by the caller: ``Command failed: <cmd>\\n<stderr>``.
    ``code`` is the exit code, or None when a signal ended the child (Node
    puts the exit code in ``code``, not ``status``, for the async forms).
    ``killed`` says whether childproc itself sent the signal (timeout,
    max_buffer, ``kill()``), ``signal`` is the signal name or None, ``cmd``
    the command line as Node prints it.  The sync forms fill ``status``,
    ``output`` and ``pid`` as well.  ``stdout``/``stderr`` carry what was
    captured (Node adds them only in the promisified form; having them
    always costs nothing).
    """

    code: int | str | None
    killed: bool
    signal: str | None
    cmd: str | bytes | None
    stdout: str | bytes | None
    stderr: str | bytes | None
    status: int | None
    output: list[Any] | None
    pid: int | None

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
    ) -> None:
        super().__init__(message)
        self.code = code
        self.killed = killed
        self.signal = signal
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
        self.output = output
        self.pid = pid

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MaxBufferError(ExecError):
    """An output stream exceeded ``max_buffer`` in ``exec``/``exec_file``.

    Node's ``RangeError [ERR_CHILD_PROCESS_STDIO_MAXBUFFER]``: ``code`` is
    that string and the message is ``"stdout maxBuffer length exceeded"``
    (or ``stderr``).  The constructor takes the stream name; ``killed``,
    ``signal``, ``cmd``, ``stdout`` and ``stderr`` are filled as for
    :class:`ExecError`.
    """

    def __init__(self, stream: str = "stdout", **fields: Any) -> None:
        fields.pop("code", None)
        super().__init__(f"{stream} maxBuffer length exceeded", **fields)
        self.stream = stream
        self.code = "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stream,), self.__dict__)


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


# util.inspect's escape table for strings (lib/internal/util/inspect.js):
# C0 controls and 0x7f-0x9f as upper-case \xNN, five of them as letters, the
# backslash doubled.  The quote is added only when it is the delimiter.
_META: dict[int, str] = {i: f"\\x{i:02X}" for i in (*range(0x20), *range(0x7F, 0xA0))}
_META.update({8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 0x5C: "\\\\"})
_ESCAPES = str.maketrans(_META)
_ESCAPES_SINGLE = str.maketrans({**_META, 0x27: "\\'"})
_NEEDS_ESCAPE = frozenset(chr(c) for c in _META) | {"'"}


def _escape_surrogates(text: str) -> str:
    # A Python str holds lone surrogates (surrogateescape'd file names) as
    # single code points; Node prints a lone UTF-16 surrogate as \udXXX.
    return "".join(f"\\u{ord(c):x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _quote(text: str) -> str:
    """``util.inspect`` of one string line: pick the delimiter, escape."""
    if "'" in text:
        if '"' not in text:
            quote = '"'
        elif "`" not in text and "${" not in text:
            quote = "`"
        else:
            quote = "'"
    else:
        quote = "'"
    if not _NEEDS_ESCAPE.isdisjoint(text):
        text = text.translate(_ESCAPES_SINGLE if quote == "'" else _ESCAPES)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        text = _escape_surrogates(text)
    return f"{quote}{text}{quote}"


def _inspect_str(value: str) -> str:
    """``util.inspect(value)`` for a string, with its default options.

    Strings over 10000 characters are cut with a ``... N more characters``
    trailer, and strings over 76 characters (breakLength 80 - 4) are split
    after each newline
    into ``'line\\n' +\\n  'line'`` pieces, exactly as Node prints them.
    """
    trailer = ""
    if len(value) > 10000:
        remaining = len(value) - 10000
        value = value[:10000]
        trailer = f"... {remaining} more character{'s' if remaining > 1 else ''}"
    if len(value) > 16 and len(value) > 80 - 4 and "\n" in value[:-1]:
        # Split after each "\n" only (str.splitlines would also split on
        # \r, \v, \x1c ... which Node keeps inside a line).
        lines = [line + "\n" for line in value.split("\n")]
        lines[-1] = lines[-1][:-1]
        if not lines[-1]:
            lines.pop()
        return " +\n  ".join(_quote(line) for line in lines) + trailer
    return _quote(value) + trailer


def format_value(value: Any) -> str:
    """Render ``value`` the way Node's ``util.inspect`` does where the two
    languages agree (strings), and with ``repr()`` where they do not
    (``None``, ``True``, containers, bytes and other Python objects)."""
    if type(value) is str or isinstance(value, str):
        return _inspect_str(str(value))
    return repr(value)


def _is_function(value: Any) -> bool:
    return isinstance(value, (FunctionType, BuiltinFunctionType, MethodType, BuiltinMethodType))


def _json_text(text: str) -> str:
    import json  # only on the error path

    return json.dumps(text, ensure_ascii=False)


def describe_received(value: Any) -> str:
    """Node's ``determineSpecificType`` with Python's type names.

    ``None`` -> ``None``; a function -> ``function name``; str, bytes and
    numbers -> ``type <name> (<value>)`` (a string is quoted raw, without
    escapes, as Node does, and cut to 25 characters plus ``...``); anything
    else -> ``an instance of <class name>``.
    """
    if value is None:
        return "None"
    if isinstance(value, str):
        text = str(value)
        if len(text) > 28:
            text = text[:25] + "..."
        if "'" not in text:
            return f"type {type(value).__name__} ('{text}')"
        return f"type {type(value).__name__} ({_json_text(text)})"
    if isinstance(value, (int, float, complex, bytes)):
        # bool is an int subclass and prints as True/False: Python's spelling.
        text = repr(int(value)) if isinstance(value, int) and type(value) not in (int, bool) else repr(value)
        if len(text) > 28:
            text = text[:25] + "..."
        return f"type {type(value).__name__} ({text})"
    if _is_function(value):
        return f"function {getattr(value, '__name__', '')}"
    return f"an instance of {type(value).__name__}"


_KTYPES = ("string", "function", "number", "object", "Function", "Object", "boolean", "bigint", "symbol")


def _is_class_name(word: str) -> bool:
    # Node's classRegExp: /^[A-Z][a-zA-Z0-9]*$/
    return bool(word) and "A" <= word[0] <= "Z" and word.isascii() and word.isalnum()


def _format_list(items: list[str], word: str = "or") -> str:
    if len(items) < 3:
        return f" {word} ".join(items)
    return f"{', '.join(items[:-1])}, {word} {items[-1]}"


def _subject(name: str) -> str:
    return "property" if "." in name else "argument"


def invalid_arg_type(name: str, expected: str | Iterable[str], value: Any) -> ArgTypeError:
    """``ERR_INVALID_ARG_TYPE``: ``The "<name>" argument must be ...``.

    ``expected`` uses Node's vocabulary, which the message keeps verbatim:
    lower-case primitive names (``'string'``, ``'boolean'``, ``'number'``,
    ``'object'``, ``'function'``), capitalised class names (``'Buffer'``,
    ``'AbortSignal'``, ``'Array'``) and free words (``'int32'``).  A dotted
    ``name`` is a "property", otherwise an "argument".  The received value is
    described with :func:`describe_received`.
    """
    exp = [expected] if isinstance(expected, str) else list(expected)
    if name.endswith(" argument"):
        msg = f"The {name} must be "
    else:
        msg = f'The "{name}" {_subject(name)} must be '
    types: list[str] = []
    instances: list[str] = []
    other: list[str] = []
    for word in exp:
        if word in _KTYPES:
            types.append(word.lower())
        elif _is_class_name(word):
            instances.append(word)
        else:
            other.append(word)
    if instances and "object" in types:
        types.remove("object")
        instances.append("Object")
    if types:
        msg += f"{'one of type' if len(types) > 1 else 'of type'} {_format_list(types)}"
        if instances or other:
            msg += " or "
    if instances:
        msg += f"an instance of {_format_list(instances)}"
        if other:
            msg += " or "
    if other:
        if len(other) > 1:
            msg += f"one of {_format_list(other)}"
        else:
            msg += ("an " if other[0].lower() != other[0] else "") + other[0]
    return ArgTypeError(f"{msg}. Received {describe_received(value)}")


def invalid_arg_value(name: str, value: Any, reason: str = "is invalid") -> ArgValueError:
    """``ERR_INVALID_ARG_VALUE``: ``The argument 'file' cannot be empty. Received ''``.

    ``The property 'options.x' ...`` when ``name`` is dotted.  The inspected
    value is cut at 128 characters and ``...`` appended, as in Node.
    """
    inspected = format_value(value)
    if len(inspected) > 128:
        inspected = inspected[:128] + "..."
    return ArgValueError(f"The {_subject(name)} '{name}' {reason}. Received {inspected}")


def _numeric_separators(text: str) -> str:
    start = 1 if text.startswith("-") else 0
    head, digits = text[:start], text[start:]
    groups: list[str] = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return head + "_".join([digits, *groups])


def out_of_range(name: str, range_desc: str, value: Any) -> ArgValueError:
    """``ERR_OUT_OF_RANGE``: ``The value of "<name>" is out of range. It must
    be <range_desc>. Received <value>``; integers beyond 2**32 are printed
    with ``_`` separators, as Node does."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**32:
        received = _numeric_separators(str(int(value)))
    else:
        received = format_value(value)
    return ArgValueError(
        f'The value of "{name}" is out of range. It must be {range_desc}. Received {received}',
        "ERR_OUT_OF_RANGE",
    )


def unknown_signal(value: Any) -> ArgValueError:
    """``ERR_UNKNOWN_SIGNAL``: ``Unknown signal: SIGNOPE`` (or ``: 64``).

    Node throws a TypeError here; childproc a ValueError, per the design
    (an unknown name is a bad value of the right type)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = int(value)  # an IntEnum member prints as its number
    return ArgValueError(f"Unknown signal: {value}", "ERR_UNKNOWN_SIGNAL")


def unknown_encoding(encoding: Any) -> ArgValueError:
    """``ERR_UNKNOWN_ENCODING``: ``Unknown encoding: xyz``."""
    return ArgValueError(f"Unknown encoding: {encoding}", "ERR_UNKNOWN_ENCODING")


def ipc_sync_fork() -> ArgValueError:
    """``ERR_IPC_SYNC_FORK``: an ``'ipc'`` slot in a sync call."""
    return ArgValueError("IPC cannot be used with synchronous forks", "ERR_IPC_SYNC_FORK")


def ipc_one_pipe() -> ArgValueError:
    """``ERR_IPC_ONE_PIPE``: more than one ``'ipc'`` slot."""
    return ArgValueError("Child process can have only one IPC pipe", "ERR_IPC_ONE_PIPE")


def child_process_ipc_required(name: str = "options.stdio") -> ArgValueError:
    """``ERR_CHILD_PROCESS_IPC_REQUIRED``: ``fork`` with a stdio list lacking ``'ipc'``."""
    return ArgValueError(
        f"Forked processes must have an IPC channel, missing value 'ipc' in {name}",
        "ERR_CHILD_PROCESS_IPC_REQUIRED",
    )
