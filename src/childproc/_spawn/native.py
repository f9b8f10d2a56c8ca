"""The bridge to the C core: turns a validated :class:`SpawnPlan` into the C
structures of ``csrc/childproc.h`` and back.

Nothing here validates; ``_options`` has done that.  Nothing here decides
policy either; the callers map the raw results onto Node's shapes.  What this
module owns is the cost of crossing into C, which sits on the hot path of
every spawn, so it builds each structure once, passes ``bytes`` to C without
copying (``ffi.from_buffer``) and keeps those buffers alive for the call.
"""

from __future__ import annotations

import errno as _errno
import math
import os
import queue
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._core import ffi, lib
from .asciistr import ascii_str_maker
from .options import MAX_BUFFER as _DEFAULT_MAX_BUFFER
from .signals import SIGTERM as _SIGTERM
from .warden import Warden, can_guard

if TYPE_CHECKING:
    from .options import SpawnPlan

__all__ = ["RawChild", "RawSyncResult", "SyncRequest", "spawn", "STAGE_NAMES", "clone_parent_function"]

STAGE_NAMES = {
    lib.CP_STAGE_NONE: "none",
    lib.CP_STAGE_PIPE: "pipe",
    lib.CP_STAGE_FORK: "fork",
    lib.CP_STAGE_STDIO: "stdio",
    lib.CP_STAGE_SESSION: "session",
    lib.CP_STAGE_CHDIR: "chdir",
    lib.CP_STAGE_IDS: "ids",
    lib.CP_STAGE_EXEC: "exec",
}

_NULL = ffi.NULL
# The C types ffi.new makes per spawn, resolved once (a type string is
# looked up again on every call).
_REQ = ffi.typeof("cp_spawn_req *")
_STDIO_ARRAY = ffi.typeof("cp_stdio[]")
_CHILD = ffi.typeof("cp_child *")
_NONBLOCK = lib.CP_SPAWN_NONBLOCK
_from_buffer = ffi.from_buffer
_PIPE_IN = lib.CP_STDIO_PIPE_IN
_PIPE_OUT = lib.CP_STDIO_PIPE_OUT
_IGNORE = lib.CP_STDIO_IGNORE
_FD = lib.CP_STDIO_FD
_IPC = lib.CP_STDIO_IPC
_DUP = lib.CP_STDIO_DUP
_INT64_MAX = 2**63 - 1
_EINTR_RESULT = -_errno.EINTR
_UINT64_MAX = 2**64 - 1


# What a sync run reports, before Node's shapes are applied: ``(pid,
# outputs, exit_code, term_signal, errno)``.  ``outputs`` is None when no
# child was started, else a new list with the captured bytes of every output
# pipe slot and None for the others; ``exit_code`` is None when a signal
# (``term_signal``, else 0) ended the child; ``errno`` is 0 or a positive
# errno (ETIMEDOUT, ENOBUFS, or why the spawn failed).  A plain tuple: it
# is built on caches the child has just made cold, where every object and
# call shows.
RawSyncResult = tuple[int, "list[bytes | None] | None", "int | None", int, int, int]


_NO_LENT: Mapping[int, int] = {}


def _exit_status_windows(code: int) -> int:
    # Windows exit codes are 32-bit unsigned (0xC0000005, an access
    # violation, is 3221225477 in Node); C hands them over as an int.
    return code & 0xFFFFFFFF


def _exit_status_posix(code: int) -> int:
    return code


#: The exit status Node reports for the core's ``exit_code``.
exit_status = _exit_status_windows if sys.platform == "win32" else _exit_status_posix


_PARENT_END_KINDS = frozenset({"pipe", "ipc"})  # plan slots C gives a parent end for


def _cstr(data: bytes, keep: list[object]) -> object:
    buf = _from_buffer(data + b"\0")
    keep.append(buf)
    return buf


def build_request(plan: SpawnPlan, keep: list[object], lent: Mapping[int, int] = _NO_LENT) -> tuple[Any, Any]:
    """Fill a ``cp_spawn_req`` from the plan; ``keep`` holds what C points at.

    ``lent`` maps each ``'stream'`` slot to the fd its stream lends this spawn
    (the caller, which owns the streams, asked them for it)."""
    req = ffi.new(_REQ)
    argv = _from_buffer(plan.argv_blob)
    keep.append(argv)
    req.argv = argv
    # argv[0] is the file itself unless argv0 was given: then the blob
    # already starts with the NUL-terminated file name.
    req.file = argv if plan.spawnargs[0] is plan.file else _cstr(plan.file_bytes, keep)
    req.argc = plan.argc
    if plan.env_blob is not None:
        envp = _from_buffer(plan.env_blob)
        keep.append(envp)
        req.envp = envp
        req.envc = plan.envc
    if plan.path is not None:
        req.path = _cstr(plan.path, keep)
    if plan.cwd is not None:
        req.cwd = _cstr(plan.cwd, keep)

    slots = plan.stdio
    stdio = ffi.new(_STDIO_ARRAY, len(slots))
    for i, slot in enumerate(slots):
        kind = slot.kind
        entry = stdio[i]  # one cdata view per slot, not one per field
        if kind == "pipe":
            # Node: index 0 is the child's input, every other pipe its output.
            entry.kind = _PIPE_IN if i == 0 else _PIPE_OUT
            entry.fd = -1
        elif kind == "fd":
            entry.kind = _FD
            entry.fd = slot.fd
        elif kind == "ignore":
            entry.kind = _IGNORE
            entry.fd = -1
        elif kind == "ipc":
            entry.kind = _IPC
            entry.fd = -1
        elif kind == "dup":
            entry.kind = _DUP
            entry.fd = slot.fd
        elif kind == "stream":
            # Another child's stream: its fd itself goes to this child.
            entry.kind = _FD
            entry.fd = lent[i]
        else:
            raise AssertionError(f"stdio kind {kind!r} cannot be used here")
    req.stdio = stdio
    req.nstdio = len(slots)

    flags = 0
    if plan.detached:
        flags |= lib.CP_SPAWN_SETSID
    elif plan.kill_tree or (plan.die_with_parent and plan.group_guarded and can_guard()):
        flags |= lib.CP_SPAWN_SETPGROUP
    if plan.uid is not None:
        flags |= lib.CP_SPAWN_SETUID
        req.uid = plan.uid & 0xFFFFFFFF
    if plan.gid is not None:
        flags |= lib.CP_SPAWN_SETGID
        req.gid = plan.gid & 0xFFFFFFFF
    if plan.die_with_parent:
        flags |= lib.CP_SPAWN_DIE_WITH_PARENT
    if plan.windows_verbatim_arguments:
        flags |= lib.CP_SPAWN_VERBATIM_ARGS
    if plan.windows_hide:
        flags |= lib.CP_SPAWN_HIDE
    req.flags = flags
    return req, stdio


@dataclass(slots=True)
class RawChild:
    """What ``cp_spawn`` gives back: the pid, its pidfd (-1 without one) and
    the parent's end of every pipe slot (-1 for the other slots), or the
    positive errno and ``CP_STAGE_*`` of a failure."""

    pid: int
    pidfd: int
    fds: list[int]
    error: int
    stage: int
    job: int = 0  # Windows, kill_tree: the job holding the child's tree


def spawn(plan: SpawnPlan, lent: Mapping[int, int]) -> RawChild:
    """Create the child for the async API: pipes non-blocking on our side;
    ``lent`` as for :func:`build_request`."""
    keep: list[object] = []
    req, stdio = build_request(plan, keep, lent)
    req.flags |= _NONBLOCK
    child = ffi.new(_CHILD)
    if plan.die_with_parent and sys.platform.startswith("linux"):
        rc = _on_spawner_thread(lambda: lib.cp_spawn(req, child))
    else:
        rc = lib.cp_spawn(req, child)
    n = len(plan.stdio)
    if rc < 0:
        return RawChild(0, -1, [-1] * n, -rc, child.stage)
    # The pipe and ipc slots got the parent's end; the plan says which they
    # are without reading C's kinds back.
    fds = [stdio[i].fd if slot.kind in _PARENT_END_KINDS else -1 for i, slot in enumerate(plan.stdio)]
    return RawChild(child.pid, child.pidfd, fds, 0, lib.CP_STAGE_NONE, child.job)


# PR_SET_PDEATHSIG fires when the *thread* that created the child exits, not
# the process (prctl(2)).  A child spawned by a short-lived worker thread
# would die with that thread, so die_with_parent children are created by one
# daemon thread that lives as long as the process.  (The sync forms need no
# such thread: the calling thread waits for the child, so it cannot exit
# first.)
_spawner_lock = threading.Lock()
_spawner_queue: queue.SimpleQueue[tuple[Callable[[], int], list[int], threading.Event]] | None = None


def _spawner_main(jobs: queue.SimpleQueue[tuple[Callable[[], int], list[int], threading.Event]]) -> None:
    while True:
        job, out, done = jobs.get()
        try:
            out.append(job())
        finally:
            done.set()


def _no_spawner_after_fork() -> None:
    # A forked copy has no spawner thread (threads do not survive fork), so
    # its first die_with_parent spawn starts one of its own.
    global _spawner_lock, _spawner_queue
    _spawner_lock = threading.Lock()
    _spawner_queue = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_no_spawner_after_fork)


def _on_spawner_thread(job: Callable[[], int]) -> int:
    global _spawner_queue
    with _spawner_lock:
        if _spawner_queue is None:
            _spawner_queue = queue.SimpleQueue()
            threading.Thread(
                target=_spawner_main, args=(_spawner_queue,), name="childproc-spawner", daemon=True
            ).start()
    out: list[int] = []
    done = threading.Event()
    _spawner_queue.put((job, out, done))
    done.wait()
    return out[0]


def kill_handle(handle: int, sig: int) -> int:
    """Windows: ``cp_kill`` through a process handle (ChildProcess keeps
    it, not a ``cp_child``): 0, or -ESRCH once the child has ended, -ENOSYS
    for a signal Windows cannot deliver."""
    child = ffi.new("cp_child *")
    child.pidfd = handle
    return int(lib.cp_kill(child, sig))


def close_handle(handle: int) -> None:
    """Windows: close a HANDLE the core handed over (a kill_tree job)."""
    if sys.platform == "win32":
        import _winapi

        _winapi.CloseHandle(handle)


def kill_tree(job: int, sig: int) -> int:
    """Windows: ``cp_kill_tree`` on a kill_tree child's job: 0, -ESRCH once
    nothing in it runs, -ENOSYS for a signal Windows cannot deliver."""
    child = ffi.new("cp_child *")
    child.job = job
    child.pidfd = -1
    return int(lib.cp_kill_tree(child, sig))


def _timeout_ns(timeout: float | None) -> int:
    if not timeout or math.isinf(timeout):
        return 0
    if timeout >= _INT64_MAX / 1e9:
        # Centuries (1e300 would overflow int()): the C core saturates its
        # deadline, so this is "no deadline" there.
        return _INT64_MAX
    return max(1, int(timeout * 1e9))


def _max_buffer(limit: float) -> int:
    # Node's sync rule: 0 means no limit, and so does infinity.
    if math.isinf(limit):
        return 0
    return min(int(limit), _UINT64_MAX)


# Ctrl-C during a sync run.  The C loop waits without the GIL; a signal
# interrupts its wait (EINTR) and C calls cp_py_sync_interrupted, which takes
# the GIL: entering Python code runs the signal handlers pending for this
# thread (only the main thread's ever are).  A handler that raises
# (KeyboardInterrupt) ends the run: cffi hands the exception to
# _handler_raised, which keeps it for SyncRequest.run and answers 1; C then
# kills and reaps the child and returns -EINTR, and run() raises it.
_interrupt = threading.local()


def _handler_raised(kind: type[BaseException], exc: BaseException | None, tb: Any) -> int:
    # cffi may pass the exception unnormalized (no value): make one.
    _interrupt.exc = (exc if exc is not None else kind()).with_traceback(tb)
    return 1


@ffi.def_extern(onerror=_handler_raised)
def cp_py_sync_interrupted() -> int:
    return 0  # no handler raised: the run goes on


_INTERRUPTED = lib.cp_py_sync_interrupted


# die_with_parent for a sync run whose child leads its group (see
# _spawn/warden.py): C calls back as soon as the child runs, the warden joins
# its group then, and SyncRequest.run releases and reaps it after the run.
def _warden_failed(_type: object, _exc: object, _tb: object) -> None:
    _interrupt.warden = None  # (posix_spawn failing is handled in Warden)


@ffi.def_extern(onerror=_warden_failed)
def cp_py_sync_spawned(pid: int) -> None:
    _interrupt.warden = Warden(pid)


_SPAWNED = lib.cp_py_sync_spawned

# What a plan that sets no sync option runs with: shared, since C only reads it.
_DEFAULT_SYNC_OPTS = ffi.new("cp_sync_opts *")
_DEFAULT_SYNC_OPTS.kill_signal = _SIGTERM
_DEFAULT_SYNC_OPTS.max_buffer = _DEFAULT_MAX_BUFFER
_DEFAULT_SYNC_OPTS.interrupted = _INTERRUPTED


def _sync_opts(plan: SpawnPlan, keep: list[object]) -> Any:
    """The ``cp_sync_opts`` of a plan; the shared defaults when it sets none
    (C only reads them)."""
    data = plan.input
    guarded = plan.group_guarded and can_guard()
    if (not data and plan.timeout is None and plan.kill_signal == _SIGTERM and not plan.kill_tree
            and plan.max_buffer == _DEFAULT_MAX_BUFFER and plan.force_kill_after is None and not guarded):
        return _DEFAULT_SYNC_OPTS
    opts = ffi.new("cp_sync_opts *")
    if data:
        buf = _from_buffer(data)
        keep.append(buf)
        opts.input = buf
        opts.input_len = len(data)
    opts.timeout_ns = _timeout_ns(plan.timeout)
    opts.kill_signal = plan.kill_signal
    opts.max_buffer = _max_buffer(plan.max_buffer)
    opts.kill_group = 1 if plan.kill_tree else 0
    opts.force_kill_after_ns = _timeout_ns(plan.force_kill_after)
    opts.interrupted = _INTERRUPTED
    if guarded:
        opts.spawned = _SPAWNED
    return opts


class SyncRequest:
    """One synchronous run's C structures, built once from a plan and
    reusable: :meth:`run` spawns, collects and reaps in C (without the GIL)
    and reports what happened.

    A request can run again and again.  C resets the result at the start of
    each run and leaves the request as it found it (every pipe end it made
    is closed and its slot back at -1), so a caller that repeats a call
    shape keeps the request instead of validating and packing the same plan
    each time (``_sync``'s prepared calls).  One run at a time: a run writes
    into the request's result, so whoever shares requests between threads
    takes one out of the pool while it runs.
    """

    __slots__ = ("plan", "_req", "_stdio", "_opts", "_res", "_outputs", "_keep", "_out_slots", "_no_output")

    def __init__(self, plan: SpawnPlan) -> None:
        self.plan = plan
        keep: list[object] = []
        self._req, self._stdio = build_request(plan, keep)  # req points into stdio
        self._opts = _sync_opts(plan, keep)
        n = len(plan.stdio)
        self._outputs = outputs = ffi.new("cp_output[]", n)
        self._res = res = ffi.new("cp_sync_result *")
        res.outputs = outputs
        self._keep = keep
        # The child's output pipes (PIPE_OUT): every pipe slot but stdin.
        self._out_slots = tuple(i for i, slot in enumerate(plan.stdio) if i and slot.kind == "pipe")
        # What a run that printed nothing collected.
        self._no_output = tuple(b"" if i in self._out_slots else None for i in range(n))

    def run(self) -> RawSyncResult:
        """Run the child to its end.  This is all the Python a sync call pays
        after the child has run, on caches the child has just made cold, so
        it touches little: an output that stayed empty comes back from C
        with nothing to free."""
        res = self._res
        try:
            lib.cp_run_sync(self._req, self._opts, res)
        finally:
            warden = getattr(_interrupt, "warden", None)
            if warden is not None:
                _interrupt.warden = None
                warden.reap()
        error = res.error
        if error == _EINTR_RESULT:
            exc, _interrupt.exc = getattr(_interrupt, "exc", None), None
            lib.cp_sync_result_free(res, len(self._no_output))
            if exc is not None:
                raise exc  # the child is dead and reaped (see cp_py_sync_interrupted)
        if not res.spawned:
            return 0, None, None, 0, -error, res.stage
        collected: list[bytes | None] = list(self._no_output)
        if res.collected:
            outputs = self._outputs
            try:
                for i in self._out_slots:
                    out = outputs[i]
                    if out.len:
                        collected[i] = ffi.unpack(out.data, out.len)
            finally:
                lib.cp_sync_result_free(res, len(collected))
        term_signal = res.term_signal
        if term_signal:
            return res.pid, collected, None, term_signal, -error, res.stage
        return res.pid, collected, exit_status(res.exit_code), term_signal, -error, res.stage


# Below this, take_bytes copies: moving pages pays off for large outputs only
# (and the C buffer is a mapping of its own only from 1 MiB on).
_MOVE_MIN = 1 << 20
_page_offset: int | None = None


def _bytes_page_offset() -> int:
    """Where, within a page, the data of a large new ``bytes`` starts.

    The C collector puts its data at the same offset so that the result can
    be handed over page by page (``cp_collector_move``).  Learnt once from a
    probe: a large ``bytes(n)`` is calloc'd, i.e. mapped and never touched,
    so the probe costs a map and an unmap.  32 MiB because glibc maps every
    block that large (its dynamic threshold stops there), which is where
    the move matters; smaller results may come from the heap at another
    offset, and are then copied.  A wrong answer costs speed, never bytes.
    """
    global _page_offset
    if _page_offset is None:
        import mmap

        try:
            probe = bytes(32 << 20)
        except MemoryError:  # strict overcommit on a small machine: copy, then
            _page_offset = 0
        else:
            _page_offset = int(ffi.cast("uintptr_t", _from_buffer(probe))) % mmap.PAGESIZE
            del probe
    return _page_offset


_CAN_MOVE = sys.implementation.name == "cpython" and sys.platform.startswith("linux")

_str_page_offset: int | None = None


def _text_page_offset() -> int:
    """As :func:`_bytes_page_offset`, for a large str from ``ascii_str_maker``."""
    global _str_page_offset
    if _str_page_offset is None:
        import mmap

        maker = ascii_str_maker()
        if maker is None:
            _str_page_offset = _bytes_page_offset()
        else:
            try:
                probe = maker[0](32 << 20)  # mapped, only its last page touched
            except MemoryError:
                _str_page_offset = 0
            else:
                _str_page_offset = (id(probe) + maker[1]) % mmap.PAGESIZE
                del probe
    return _str_page_offset


class OutputBuffer:
    """A growing C buffer that a stream's output is read straight into.

    exec() collects its outputs with it (``Readable._attach_collector``):
    each ``fill`` is one ``read(2)`` into the buffer, so the bytes cross
    from the kernel to memory once and no Python object exists per chunk.
    At the end ``take_bytes`` gives them as ``bytes`` without a second copy
    where it can (the pages are moved into the new object), and
    ``decode_utf8`` decodes them in place.  The C memory is freed by
    ``close()``, ``take_bytes``, ``decode_utf8``, or when the object is
    collected, so no path leaks it.
    """

    __slots__ = ("_c",)

    def __init__(self, text: bool = False) -> None:
        """``text``: the result will most likely be taken as text (UTF-8,
        :meth:`decode_utf8`), so lay the buffer out for a str's pages."""
        self._c = ffi.new("cp_collector *")  # zeroed: empty, nothing allocated
        if _CAN_MOVE:
            self._c.page_offset = _text_page_offset() if text else _bytes_page_offset()

    def fill(self, fd: int, size: int) -> int:
        """Append one read of at most ``size`` bytes from the non-blocking ``fd``.

        Returns the bytes read, 0 at EOF, ``-EAGAIN`` when nothing is ready,
        or another ``-errno`` (``-ENOMEM`` when the buffer cannot grow).
        """
        return lib.cp_read_append(fd, self._c, size)

    def __len__(self) -> int:
        return self._c.len

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` bytes (no-op if there are fewer)."""
        if 0 <= n < self._c.len:
            self._c.len = n

    def take_bytes(self) -> bytes:
        """The bytes collected, and the C memory freed."""
        c = self._c
        n = c.len
        try:
            if n < _MOVE_MIN or not _CAN_MOVE:
                return ffi.buffer(c.data, n)[:] if n else b""
            # bytes(n) is calloc'd: its pages are not even touched until the
            # move replaces them with the collector's.  Writing into a new
            # bytes nobody else has seen is what C code does with
            # PyBytes_FromStringAndSize(NULL, n).
            result = bytes(n)
            lib.cp_collector_move(c, _from_buffer(result))
            return result
        finally:
            lib.cp_collector_free(c)

    def decode_utf8(self, final: bool) -> str:
        """The bytes decoded as UTF-8 with ``'replace'``, and the C memory freed.

        Decoded from the C memory itself: going through ``bytes`` first (or
        through an incremental decoder, which concatenates its input onto
        what it holds) would copy the whole output once more.  This is what
        a fresh ``codecs`` UTF-8 incremental decoder with ``'replace'``
        returns for the same bytes; without ``final`` an incomplete
        character at the end is left out, as that decoder holds it back.
        """
        import codecs

        c = self._c
        try:
            if not c.len:
                return ""
            text = self.take_ascii()
            if text is not None:
                return text
            return codecs.utf_8_decode(ffi.buffer(c.data, c.len), "replace", final)[0]
        finally:
            lib.cp_collector_free(c)

    def take_ascii(self) -> str | None:
        """The bytes as a str if they are all ASCII and many, and the C memory
        freed; else None and the buffer as it was.

        ASCII is the same text in UTF-8, Latin-1 and ASCII, so nothing needs
        decoding: the bytes become the characters of a new str, by moving
        their pages where they line up (``cp_collector_move``).  A decode
        would write the whole output again into fresh memory, and on a VM
        the page faults of that memory cost more than the copy itself.
        """
        c = self._c
        n = c.len
        if n < _MOVE_MIN or not _CAN_MOVE:
            return None
        maker = ascii_str_maker()
        if maker is None or lib.cp_collector_ascii(c) != n:
            return None
        new, header = maker
        text = new(n)
        lib.cp_collector_move(c, ffi.cast("char *", id(text) + header))
        return text

    def close(self) -> None:
        """Free the C memory (idempotent); the buffer is empty and usable after."""
        lib.cp_collector_free(self._c)

    def __del__(self) -> None:
        try:
            lib.cp_collector_free(self._c)
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: nothing to report to
            pass


# -- the fd-to-fd pump behind Readable.pipe() (see childproc._streams.pump) ----

#: Whether this build of the core has the pump (the POSIX builds do).
HAS_PUMP: bool = hasattr(lib, "cp_pump_start")


def pump_start(src_fd: int, dest_fd: int, wake_fd: int) -> tuple[int, Any]:
    """Start the C thread that moves ``src_fd`` to ``dest_fd`` (splice, or a
    read/write loop) and writes to ``wake_fd`` when it stops: ``(0, handle)``
    or ``(-errno, None)``."""
    out = ffi.new("cp_pump **")
    rc = lib.cp_pump_start(src_fd, dest_fd, wake_fd, out)
    return rc, (out[0] if rc >= 0 else None)


def pump_cancel(handle: Any) -> None:
    """Ask a running pump to stop; it writes to its wake fd as it does."""
    lib.cp_pump_cancel(handle)


def pump_finish(handle: Any) -> tuple[int, int]:
    """Join a pump whose thread has stopped: ``(rc, bytes moved)``."""
    moved = ffi.new("uint64_t *")
    rc = lib.cp_pump_finish(handle, moved)
    return rc, int(moved[0])


def clone_parent_function() -> Callable[[], int]:
    """``cp_clone_parent`` (the warm start's zygote, ``childproc._warm``) as a
    ``ctypes.PyDLL`` function: it keeps the GIL across the clone, as
    ``os.fork`` does, where a call through ``lib`` would release it."""
    import ctypes

    from .._core import __file__ as core_path

    fn = ctypes.PyDLL(core_path).cp_clone_parent
    fn.restype = ctypes.c_int
    fn.argtypes = []
    return fn


def spin_wait(epfd: int, max_ns: int) -> int:
    """``cp_spin_wait``: poll ``epfd`` without sleeping (and without the
    GIL) for up to ``max_ns``; 1 when an fd is ready, 0 when none became
    ready, -errno (-ENOSYS where there is no epoll)."""
    return int(lib.cp_spin_wait(epfd, max_ns))
