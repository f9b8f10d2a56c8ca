"""Signal names and numbers, as Node's ``os.constants.signals`` knows them.

Node accepts a signal as a name (``'SIGTERM'``, upper-cased first, so
``'sigterm'`` works) or as a number that is a known signal, and rejects
everything else with ``ERR_UNKNOWN_SIGNAL`` -- including ``0`` and the
real-time signals (``kill(64)`` is "Unknown signal: 64" in Node).  Its table
is a fixed list of names (``node_constants.cc``), each present only where
the platform defines it.  This module takes the *numbers* from the running
platform (Python's :mod:`signal` module, so macOS's SIGUSR1 = 30 is right)
and the *names* from Node's list, so ``SIGCLD``, ``SIGRTMIN`` and friends,
which Python has and Node does not, stay unknown.

Aliases: SIGIOT (= SIGABRT) and SIGPOLL (= SIGIO) are accepted as names, and
a number is reported with its canonical name (``signal_name(6) ==
'SIGABRT'``, ``signal_name(29) == 'SIGIO'``), which is what Node prints in
``signalCode`` and ``result.signal``.

Accepted inputs for :func:`signal_number`: a ``str`` name in any case, an
``int`` (``signal.SIGTERM`` is an ``IntEnum`` member and counts), or a float
with an integral value (JavaScript has no separate integer type, so Node
takes ``9.0``).  ``bool`` is not a number here, although Python makes it an
``int``: ``kill_signal=True`` is a type error, as in Node.

Kill-time special cases (``kill(0)`` probes the process) belong to the
callers; this module answers only "which signal is this".
"""

from __future__ import annotations

import signal as _signal
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .._messages import invalid_arg_type, unknown_signal

__all__ = [
    "SIGNALS",
    "SIGTERM",
    "SIGKILL",
    "signal_number",
    "signal_name",
    "is_known_signal",
]

# Node's list, in node_constants.cc order.  The order matters twice: it is
# the key order of os.constants.signals, and for number -> name the first
# name wins (SIGABRT before SIGIOT, SIGIO before SIGPOLL), matching the
# canonical names Node's C++ layer reports.
_NODE_NAMES = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGIOT",
    "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE",
    "SIGALRM", "SIGTERM", "SIGCHLD", "SIGSTKFLT", "SIGCONT", "SIGSTOP",
    "SIGTSTP", "SIGBREAK", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPOLL",
    "SIGLOST", "SIGPWR", "SIGINFO", "SIGSYS", "SIGUNUSED",
)

# Names the platform has in C but Python's signal module may lack: SIGSTKFLT
# appeared in Python 3.11; on Windows libuv emulates SIGHUP, SIGKILL and
# SIGWINCH, which Node lists and Python does not.
_FALLBACK: dict[str, dict[str, int]] = {
    "linux": {"SIGSTKFLT": 16},
    "win32": {"SIGHUP": 1, "SIGKILL": 9, "SIGWINCH": 28},
}


def _build_table() -> tuple[dict[str, int], dict[int, str]]:
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    fallback = _FALLBACK.get(platform, {})
    by_name: dict[str, int] = {}
    by_number: dict[int, str] = {}
    for name in _NODE_NAMES:
        value = getattr(_signal, name, None)
        number = int(value) if value is not None else fallback.get(name)
        if number is None:
            continue
        by_name[name] = number
        by_number.setdefault(number, name)
    return by_name, by_number


_BY_NAME, _BY_NUMBER = _build_table()

#: Node's ``os.constants.signals`` for this platform (read-only).
SIGNALS: Mapping[str, int] = MappingProxyType(_BY_NAME)
SIGTERM: int = _BY_NAME["SIGTERM"]
SIGKILL: int = _BY_NAME["SIGKILL"]

# Lower- and mixed-case spellings are resolved once and remembered, so a
# repeated kill_signal='sigkill' costs one dict lookup.  Bounded by the
# number of distinct spellings that were valid, so it cannot grow unboundedly.
_SPELLINGS: dict[str, int] = dict(_BY_NAME)


def signal_number(value: Any, name: str = "options.killSignal") -> int:
    """Resolve ``value`` to a signal number with Node's ``convertToValidSignal``.

    ``'SIGTERM'``, ``'sigterm'``, ``15`` and ``signal.SIGTERM`` all give 15.
    An unknown name or number (``'SIGNOPE'``, ``0``, ``64``, ``1.5``) raises
    ``ValueError`` with ``.code == 'ERR_UNKNOWN_SIGNAL'`` and Node's message
    ``Unknown signal: SIGNOPE``.  Any other type (including ``bool`` and
    ``None``) raises ``TypeError`` with ``.code == 'ERR_INVALID_ARG_TYPE'``:
    ``The "<name>" property must be one of type string or number. Received
    ...`` -- callers map ``None`` to their default before calling.
    """
    cls = type(value)
    if cls is str:
        number = _SPELLINGS.get(value)
        if number is not None:
            return number
        number = _BY_NAME.get(value.upper())
        if number is None:
            raise unknown_signal(value)
        _SPELLINGS[value] = number
        return number
    if cls is int:
        if value in _BY_NUMBER:
            return value
        raise unknown_signal(value)
    if isinstance(value, int) and cls is not bool:
        # IntEnum members such as signal.SIGTERM, and other int subclasses.
        number = int(value)
        if number in _BY_NUMBER:
            return number
        raise unknown_signal(number)
    if cls is float:
        if value.is_integer() and int(value) in _BY_NUMBER:
            return int(value)
        raise unknown_signal(value)
    if isinstance(value, str):
        return signal_number(str(value), name)
    raise invalid_arg_type(name, ["string", "number"], value)


def signal_name(number: int) -> str | None:
    """The canonical Node name of signal ``number`` (``6 -> 'SIGABRT'``),
    or None for a number Node does not know (0, real-time signals)."""
    return _BY_NUMBER.get(number)


def is_known_signal(number: int) -> bool:
    """Whether ``number`` is a signal Node knows on this platform."""
    return number in _BY_NUMBER
