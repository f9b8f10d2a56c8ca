"""Errno numbers and names as Node shows them: the one place an errno becomes
its name (``'ENOENT'``), and libuv's own numbers on Windows."""

from __future__ import annotations

import errno as _errno
import sys

__all__ = ["errno_code", "node_errno", "node_errno_name"]


def errno_code(errno: int) -> str:
    """Node's name for a (positive) errno: ``'ENOENT'``, ``'ETIMEDOUT'``.

    The one place errno numbers become names.  On Windows ``errno.errorcode``
    names the socket-flavoured values by their Winsock names (CPython's
    ``errno.ETIMEDOUT`` is ``WSAETIMEDOUT``, 10060, and the C core reports
    those values so that Python can compare with ``errno.E*``); Node (libuv)
    reports ``'ETIMEDOUT'``, so the ``WSA`` prefix goes.
    """
    name = _errno.errorcode.get(errno)
    if name is None:
        return f"Unknown system error -{errno}"
    if name.startswith("WSAE"):
        return name[3:]
    return name


# libuv's own error numbers on Windows (uv-errno.h: UV__E* are not the CRT's
# values there), which Node reports where it reports a number (the 'close'
# code of a spawn that failed).  Checked against node.exe's
# util.getSystemErrorMap() by tests_windows/.
_UV_WINDOWS = {
    "E2BIG": 4093, "EACCES": 4092, "EADDRINUSE": 4091, "EAGAIN": 4088, "EBADF": 4083, "EBUSY": 4082,
    "ECANCELED": 4081, "ECONNABORTED": 4079, "ECONNREFUSED": 4078, "ECONNRESET": 4077, "EEXIST": 4075,
    "EINTR": 4072, "EINVAL": 4071, "EIO": 4070, "EISDIR": 4068, "EMFILE": 4066, "ENAMETOOLONG": 4064,
    "ENFILE": 4061, "ENOBUFS": 4060, "ENOENT": 4058, "ENOMEM": 4057, "ENOSPC": 4055, "ENOSYS": 4054,
    "ENOTCONN": 4053, "ENOTDIR": 4052, "ENOTSUP": 4049, "EPERM": 4048, "EPIPE": 4047, "ESRCH": 4040,
    "ETIMEDOUT": 4039,
}
_UV_WINDOWS_NAMES = {number: name for name, number in _UV_WINDOWS.items()}
_WIN = sys.platform == "win32"


def node_errno(errno: int) -> int:
    """Node's (negative) number for a positive errno: ``-errno`` on POSIX,
    libuv's own number on Windows (ENOENT is -4058 there)."""
    if _WIN:
        number = _UV_WINDOWS.get(errno_code(errno))
        if number is not None:
            return -number
    return -errno


def node_errno_name(number: int) -> str:
    """The name of a negative Node error number (``node_errno``'s inverse)."""
    if _WIN and -number in _UV_WINDOWS_NAMES:
        return _UV_WINDOWS_NAMES[-number]
    return errno_code(-number)
