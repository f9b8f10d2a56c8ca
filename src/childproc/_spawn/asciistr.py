"""New str objects whose characters C may write: how exec's capture of
all-ASCII output becomes its ``str`` without a decode.

A decode writes the whole output a second time, into fresh memory whose
page faults (on a VM) cost more than the copy; the bytes are the
characters already.  CPython's ``PyUnicode_New(n, 127)`` makes a str of
``n`` ASCII characters not yet written (only the NUL after them is), and
C code fills such a str before anyone else sees it: ``OutputBuffer`` does
the same, moving its pages into place (``childproc._spawn.native``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

__all__ = ["ascii_str_maker"]

#: ``(new, header)``: see :func:`ascii_str_maker`.
StrMaker = tuple[Callable[[int], str], int]
_learnt: list[StrMaker | None] = []  # empty: not learnt yet


def ascii_str_maker() -> StrMaker | None:
    """``(new, header)``, learnt once: ``new(n)`` is a new, unshared str of
    ``n`` ASCII characters not yet written, whose characters start
    ``header`` bytes into the object (at ``id(s) + header``), right after its
    fixed part, as CPython lays out every compact ASCII str.

    The layout is checked by reading (never writing) a str built at run
    time; None where it does not hold, or where there is no ctypes or no
    such function (another interpreter): the caller decodes then.
    """
    if not _learnt:
        found: StrMaker | None = None
        try:
            import ctypes

            new = ctypes.pythonapi.PyUnicode_New
            new.restype = ctypes.py_object  # ctypes takes over the new reference
            new.argtypes = (ctypes.c_ssize_t, ctypes.c_uint32)
            # The fixed part: what getsizeof adds to the characters and their NUL.
            header = sys.getsizeof("") - 1
            probe = "childproc-" + str(threading.get_ident())  # built now: a str of its own
            size = len(probe) + 1
            if (sys.getsizeof(probe) == header + size
                    and ctypes.string_at(id(probe) + header, size) == probe.encode("ascii") + b"\0"):
                found = (lambda n: new(n, 127)), header
        except Exception:  # noqa: BLE001, S110 - no ctypes, no such function: decode then
            pass
        _learnt.append(found)
    return _learnt[0]
