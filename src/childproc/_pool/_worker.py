"""The worker: the main module a pool's Python worker runs.

Started by the pool as ``python -c "...; main()" childproc-pool [<module>]``
with a ``cp.fork()`` channel (``NODE_CHANNEL_FD``).  A worker waits on
nothing but its channel, so it reads it with plain blocking ``os.read``
calls: no loop, no selector, one syscall per batch of messages.  It runs
one task at a time, in the order the tasks arrive, and answers each.

``'pickle'`` (Python pools): the frames are Node's advanced-mode framing
(u32 big-endian length + payload) that the parent's channel speaks.  The
parent sends ``('init', {...})`` first -- its ``sys.path``, where its main
script is, the initializer -- and the worker answers ``('ready', pid)``
once the initializer ran.  Then every frame is a task: its id (u64
big-endian) and the pickle of ``(fn, args, kwargs)``, made once at
``submit`` (:func:`task_frame`: no pickler runs to send it); the answers are
``(id, 0, result)``, ``(id, 1, exception, traceback_text)`` and, for what
cannot cross, ``(id, 2, type_name, message, traceback_text)``.

``'json'`` (the same protocol as the Node runtime, ``worker.js``): the
worker loads ``<module>`` and answers ``{"id", "fn", "args"}`` with
``{"id", "result"}`` or ``{"id", "error": {"name", "message", "stack"}}``;
it says ``{"ready": pid}`` first.  A Node parent can drive it with its own
``child_process.fork``.

Functions defined in the parent's ``__main__`` are found the way
multiprocessing's spawn finds them: ``sys.modules['__main__']`` is a
placeholder that, on first use, imports the parent's main script as
``__mp_main__`` (so its ``if __name__ == "__main__":`` block does not run).
A worker that never needs it never imports it.
"""

from __future__ import annotations

import os
import sys
from select import select as _select
from struct import Struct
from time import monotonic as _monotonic

from .._spinning import MISSES, REST, REST_MAX, spin_setting

try:  # the C pickler without pickle.py's imports (re & co.): the worker starts faster
    import _pickle as pickle
except ImportError:  # pragma: no cover - other Pythons
    import pickle  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

__all__ = ["main", "apply_chunk"]

_READ_SIZE = 256 * 1024


async def _probe() -> None:
    pass


_coro = _probe()
_CoroutineType = type(_coro)  # types.CoroutineType, without importing types
_coro.close()
del _coro
_PROTOCOL = 5
_sched_yield = getattr(os, "sched_yield", lambda: None)
_TASK_HEAD = Struct(">IQ")  # frame length, task id


def _channel_fd() -> tuple[int, str]:
    fd = int(os.environ.pop("NODE_CHANNEL_FD"))
    mode = os.environ.pop("NODE_CHANNEL_SERIALIZATION_MODE", None) or "json"
    os.set_inheritable(fd, False)  # no grandchild holds the channel open
    os.set_blocking(fd, _SPIN is None)  # a spinning reader polls it (_Reader)
    return fd, mode


def _write_all(fd: int, parts: list[bytes]) -> None:
    total = sum(len(p) for p in parts)
    try:
        sent = os.writev(fd, parts)
    except BlockingIOError:  # a spinning reader's fd is non-blocking (_Reader)
        sent = 0
    if sent == total:
        return
    rest = memoryview(b"".join(parts))[sent:]
    while rest:
        try:
            rest = rest[os.write(fd, rest) :]
        except BlockingIOError:
            _select([], [fd], [])  # the parent reads on: room comes


def _spin_setting() -> float | None:
    """How long a worker polls for its next task before it sleeps, in
    seconds (the parent loop's setting, ``_spinning``); None: never."""
    spin = spin_setting()
    if not spin:
        return None
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return spin if cpus > 1 else None  # one CPU: it is the parent's too


_SPIN = _spin_setting()


class _Reader:
    """Reads the channel; after each answer it polls for the next task for
    up to ``_SPIN`` (yielding the CPU each turn) before it sleeps.

    A worker asleep in ``read()`` pays a wake-up per task that, on a VM
    whose idle vCPUs halt, is about as long as the rest of a round trip
    (docs/architecture.md, "Spinning before a wait").  Four misses in a
    row rest the spin for 64 reads, twice as long after each further run
    of misses; a hit starts over."""

    __slots__ = ("fd", "misses", "rest", "rest_len")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.misses = 0
        self.rest = 0
        self.rest_len = REST

    def readv(self, space: list[memoryview]) -> int:
        fd = self.fd
        if _SPIN is None:
            return os.readv(fd, space)
        if self.rest:
            self.rest -= 1
        else:
            end = _monotonic() + _SPIN
            while True:
                try:
                    size = os.readv(fd, space)
                except BlockingIOError:
                    if _monotonic() < end:
                        _sched_yield()
                        continue
                    break
                self.misses = 0
                self.rest_len = REST
                return size
            self.misses += 1
            if self.misses >= MISSES:
                self.misses = 0
                self.rest = self.rest_len
                self.rest_len = min(2 * self.rest_len, REST_MAX)
        while True:  # asleep until the channel is readable
            _select([fd], [], [])
            try:
                return os.readv(fd, space)
            except BlockingIOError:  # pragma: no cover - readable, then not: wait again
                continue


def _frames(fd: int) -> Iterator[bytearray]:
    """The pickle frames the parent sends, as they arrive; ends at EOF."""
    buf = bytearray()
    space = [memoryview(bytearray(_READ_SIZE))]  # read into: no allocation per read
    readv = _Reader(fd).readv
    while True:
        try:
            size = readv(space)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        except OSError:
            return
        if not size:
            return
        buf += space[0][:size]
        pos, n = 0, len(buf)
        while n - pos >= 4:
            end = pos + 4 + int.from_bytes(buf[pos : pos + 4], "big")
            if end > n:
                break
            yield buf[pos + 4 : end]
            pos = end
        del buf[:pos]


# -------------------------------------------------------------- __main__


class _LazyMain(type(sys)):  # type: ignore[misc]
    """Stands in for ``__main__`` until something is looked up in it."""

    _path: str | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(_load_main(self._path), name)


def _load_main(path: str | None) -> Any:
    if path is None:
        raise AttributeError("the pool's parent has no main script to import functions from")
    import importlib.util

    spec = importlib.util.spec_from_file_location("__mp_main__", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the parent's main script {path!r}")
    module = importlib.util.module_from_spec(spec)
    # Registered first: classes pickled while it runs must be findable.
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    spec.loader.exec_module(module)
    return module


def _install_main(path: str | None) -> None:
    placeholder = _LazyMain("__mp_main__")
    placeholder._path = path
    sys.modules["__main__"] = sys.modules["__mp_main__"] = placeholder


# -------------------------------------------------------------- pickle


def _describe(exc: BaseException) -> tuple[str, str]:
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ in ("builtins", "__main__", "__mp_main__") else (
        f"{cls.__module__}.{cls.__qualname__}"
    )
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a __str__ that fails still leaves the type
        message = "<the exception's str() failed>"
    return name, message


def _traceback() -> str:
    import traceback

    return traceback.format_exc()


def _await(value: Any) -> Any:
    """An ``async def`` task: run its coroutine to completion here."""
    import asyncio

    async def wrap() -> Any:
        return await value

    return asyncio.run(wrap())


def _answer_exception(tid: int, exc: BaseException) -> bytes:
    tb = _traceback()
    try:
        data = pickle.dumps((tid, 1, exc, tb), protocol=_PROTOCOL)
        pickle.loads(data)  # what would fail to rebuild there fails here, with a reason
        return data
    except Exception:  # noqa: BLE001 - any failure to cross becomes a RemoteError
        name, message = _describe(exc)
        return pickle.dumps((tid, 2, name, message, tb), protocol=_PROTOCOL)


def _run_task(tid: int, payload: Any) -> bytes:
    try:
        fn, args, kwargs = pickle.loads(payload)
        result = fn(*args, **kwargs)
        if type(result) is _CoroutineType:
            result = _await(result)
    except BaseException as exc:  # noqa: BLE001 - SystemExit in a task fails the task, not the worker
        return _answer_exception(tid, exc)
    try:
        return pickle.dumps((tid, 0, result), protocol=_PROTOCOL)
    except BaseException as exc:  # noqa: BLE001
        name, message = _describe(exc)
        text = f"the result ({type(result).__qualname__}) cannot be pickled: {name}: {message}"
        return pickle.dumps((tid, 2, name, text, _traceback()), protocol=_PROTOCOL)


def _serve_pickle(fd: int) -> int:
    frames = _frames(fd)
    first = next(frames, None)
    if first is None:
        return 0
    kind, init = pickle.loads(first)
    path = init.get("sys_path")
    if path:
        sys.path[:] = path  # the parent's, so what imports there imports here
    _install_main(init.get("main"))
    initializer = init.get("initializer")
    if initializer is not None:
        initializer_fn, initargs = pickle.loads(initializer)
        initializer_fn(*initargs)  # raising ends the worker: a start failure, with its traceback on stderr
    _write_all(fd, _frame(pickle.dumps(("ready", os.getpid()), protocol=_PROTOCOL)))
    run = _run_task
    for frame in frames:
        _write_all(fd, _frame(run(int.from_bytes(frame[:8], "big"), memoryview(frame)[8:])))
    return 0


def _frame(data: bytes) -> list[bytes]:
    return [len(data).to_bytes(4, "big"), data]


def task_frame(tid: int, call: bytes) -> bytes:
    """The frame that carries task ``tid`` (``call``: the pickled
    ``(fn, args, kwargs)``) to a pickle worker, length prefix included."""
    return _TASK_HEAD.pack(len(call) + 8, tid) + call


def apply_chunk(fn: Callable[..., Any], chunk: tuple[tuple[Any, ...], ...]) -> list[Any]:
    """``map(chunksize=n)``: one task runs ``fn`` over ``n`` items."""
    return [fn(*args) for args in chunk]


# -------------------------------------------------------------- json


def _load_module(path: str) -> Any:
    import importlib.util

    name = os.path.splitext(os.path.basename(path))[0] or "worker"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import worker module {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _json_error(exc: BaseException) -> dict[str, str]:
    name, message = _describe(exc)
    return {"name": name, "message": message, "stack": _traceback()}


def _serve_json(fd: int, module_path: str) -> int:
    from .._ipc.wire import encode_json, parse_json_lines  # the channel's own codec: Node's JSON exactly

    module = _load_module(module_path)

    def lookup(name: Any) -> Callable[..., Any]:
        target: Any = module
        for part in str(name).split("."):
            target = getattr(target, part)
        if not callable(target):
            raise TypeError(f"{name} is not a function of {module_path}")
        fn: Callable[..., Any] = target
        return fn

    _write_all(fd, [encode_json({"ready": os.getpid()})])
    buf = bytearray()
    space = [memoryview(bytearray(_READ_SIZE))]
    readv = _Reader(fd).readv
    while True:
        size = readv(space)
        if not size:
            return 0
        buf += space[0][:size]
        for message in parse_json_lines(buf):
            if not isinstance(message, dict) or "id" not in message:
                continue  # not a task (a bad line): nothing to answer
            try:
                args = message.get("args") or []
                result = lookup(message.get("fn"))(*args)
                if type(result) is _CoroutineType:
                    result = _await(result)
                data = encode_json({"id": message["id"], "result": result})
            except BaseException as exc:  # noqa: BLE001 - the task fails, the worker goes on
                data = encode_json({"id": message["id"], "error": _json_error(exc)})
            _write_all(fd, [data])


def main() -> None:
    fd, mode = _channel_fd()
    module = sys.argv[2] if len(sys.argv) > 2 else ""
    try:
        code = _serve_json(fd, module) if mode == "json" else _serve_pickle(fd)
    except (BrokenPipeError, ConnectionResetError):
        code = 0  # the pool let go of this worker (shutdown, or it stopped waiting): done
    try:
        sys.stdout.flush()
    except OSError:
        pass
    raise SystemExit(code)
