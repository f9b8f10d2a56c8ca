"""The text of Node's argument-validation errors.

Node throws ``TypeError``/``RangeError`` objects carrying a ``code``;
childproc raises :class:`childproc._errors.ArgTypeError` (a ``TypeError``) or
:class:`childproc._errors.ArgValueError` (a ``ValueError``) with Node's
``.code``, built by the constructors here (:func:`invalid_arg_type`,
:func:`invalid_arg_value`, :func:`out_of_range`, ...), which rebuild Node's
``lib/internal/errors.js`` message formats.  Where Node names a JavaScript
type (``Received type number (42)``, ``Received null``, ``an instance of
Array``) the Python type is named instead (``Received type int (42)``,
``Received None``, ``an instance of list``); that is deliberate.  Everything
else -- the quoting and escaping of strings (``Received 'ec\\x00ho'``), the
128-character cut of inspected values, the ``argument``/``property`` wording --
is Node's to the character, and the tests compare it against a real ``node``.
"""

from __future__ import annotations

from types import BuiltinFunctionType, BuiltinMethodType, FunctionType, MethodType

from ._errors import ArgRangeTypeError, ArgTypeError, ArgValueError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

__all__ = [
    "invalid_arg_type",
    "invalid_arg_value",
    "out_of_range",
    "unknown_signal",
    "unknown_encoding",
    "ipc_sync_fork",
    "invalid_sync_fork_input",
    "add_max_buffer_hint",
    "ipc_one_pipe",
    "child_process_ipc_required",
    "format_value",
    "describe_received",
]


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


def out_of_range(name: str, range_desc: str, value: Any, *, wrong_type: bool = False) -> ArgValueError:
    """``ERR_OUT_OF_RANGE``: ``The value of "<name>" is out of range. It must
    be <range_desc>. Received <value>``; integers beyond 2**32 are printed
    with ``_`` separators, as Node does.  ``wrong_type``: the value is not a
    number at all (Node says out of range too), so the error is also a
    ``TypeError``."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**32:
        received = _numeric_separators(str(int(value)))
    else:
        received = format_value(value)
    cls = ArgRangeTypeError if wrong_type else ArgValueError
    return cls(
        f'The value of "{name}" is out of range. It must be {range_desc}. Received {received}',
        "ERR_OUT_OF_RANGE",
    )


def invalid_sync_fork_input(value: Any) -> ArgTypeError:
    """``ERR_INVALID_SYNC_FORK_INPUT``: bytes or a string in an async ``stdio`` slot."""
    return ArgTypeError("Asynchronous forks do not support Buffer, TypedArray, DataView or string input: "
                        + format_value(value), "ERR_INVALID_SYNC_FORK_INPUT")


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


def add_max_buffer_hint(err: BaseException, limit: float) -> None:
    """Say which limit an output went over, and which option moves it.

    The message stays Node's (``stdout maxBuffer length exceeded``,
    ``spawnSync sh ENOBUFS``), which code ported from Node may match; the
    hint is a note (shown under the traceback on 3.11+; ``__notes__`` on
    3.10 too) and the limit is ``err.max_buffer``.  The 1 MiB default is
    Node's, and surprises ``subprocess`` users, who have no limit."""
    note = (f"childproc: the output went over max_buffer={limit:.0f} bytes (1 MiB by default, as in Node; "
            "subprocess has no limit): pass a larger max_buffer, or max_buffer=math.inf for none")
    setattr(err, "max_buffer", limit)  # noqa: B010 - an attribute the class does not declare
    add_note = getattr(err, "add_note", None)
    if add_note is not None:
        add_note(note)
    else:  # 3.10: same data, not printed
        setattr(err, "__notes__", [*getattr(err, "__notes__", ()), note])  # noqa: B010
