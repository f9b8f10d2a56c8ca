"""The readiness poller of the private loop, chosen once for this platform:
epoll where there is epoll (Linux), poll(2) elsewhere (macOS, the BSDs).
Windows pipes are not pollable: there ``Poller`` is None and the private loop
says so."""

from __future__ import annotations

import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["HUP", "HUP_WITHOUT_READ_IS_EOF", "NVAL", "ONESHOT", "Poller", "READ", "WRITE", "pipe_cloexec"]

# Readiness masks: epoll's where there is epoll (Linux), poll's elsewhere.
Poller: Any  # select.epoll, select.poll, or None (Windows)
if hasattr(select, "epoll"):
    Poller = select.epoll
    READ, WRITE = select.EPOLLIN, select.EPOLLOUT
    HUP = select.EPOLLHUP | select.EPOLLERR
    NVAL = 0  # epoll forgets a closed fd by itself
    ONESHOT = select.EPOLLONESHOT  # reported once, then disabled (see FdTable.add_reader_oneshot)
    # A pipe's read end polls readable exactly while it holds data, hung up
    # while no writer is left (Linux's pipe_poll): hung up and not readable
    # is its EOF, and the read that would say so can be skipped.
    HUP_WITHOUT_READ_IS_EOF = True
elif hasattr(select, "poll"):  # macOS, the BSDs
    Poller = select.poll
    READ, WRITE = select.POLLIN, select.POLLOUT
    HUP = select.POLLHUP | select.POLLERR
    NVAL = select.POLLNVAL
    ONESHOT = 0  # poll(2) has none: such fds are registered as any other
    HUP_WITHOUT_READ_IS_EOF = False  # not promised everywhere: the read tells
else:  # Windows: pipes are not pollable there; its loop (IOCP) is still to come
    Poller = None
    READ, WRITE, HUP, NVAL = 1, 4, 8, 32
    ONESHOT = 0
    HUP_WITHOUT_READ_IS_EOF = False


def pipe_cloexec() -> tuple[int, int]:
    """A non-blocking pipe whose ends are not inherited by children."""
    if hasattr(os, "pipe2"):
        return os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    r, w = os.pipe()  # Python makes both non-inheritable (PEP 446)
    if os.name == "nt":
        return r, w  # CRT pipes have no O_NONBLOCK; the Windows loop uses overlapped I/O
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w

