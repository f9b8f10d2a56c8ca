"""One worker as the pool's thread sees it: a ``cp.fork()`` child, its
channel, its stderr and the tasks sent to it.

The child is started with ``kill_tree`` (its own process group, so a
timeout kills whatever the task started too), ``die_with_parent`` (a
SIGKILLed parent leaves no worker behind) and the pool's ``kill_signal``
and ``force_kill_after``.  Its exit comes from the pidfd through the
child's ``'exit'`` event -- not ``'close'``, which would wait for a
grandchild that still holds a pipe.

stderr goes through a pipe of the pool's own: what arrives is copied to
the parent's stderr (as an inherited stderr would show it) and its last
few KiB are kept, so a crash can say what the worker printed before it
died.  At the exit the pipe is read out at once -- everything the worker
wrote before dying is already in it -- and closed.
"""

from __future__ import annotations

import os
import select
import struct
import time
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import IPCError

try:
    from _pickle import loads as _loads
except ImportError:  # pragma: no cover - other Pythons
    from pickle import loads as _loads
from .._launch import fork
from ._errors import RemoteError

if TYPE_CHECKING:
    from collections import deque

    from .._child import ChildProcess
    from .._runtime.reactor import TimerHandle
    from ._config import PoolConfig
    from .._runtime.private import PrivateLoop
    from ._future import Task


class Scheduler(Protocol):
    """What a worker tells the pool's scheduler (``_scheduler``, which
    imports this module)."""

    reactor: PrivateLoop | None
    config: PoolConfig
    queue: deque[Task]

    def worker_ready(self, worker: Worker) -> None: ...

    def task_answered(self, worker: Worker, tid: Any, outcome: int, value: Any, extra: Any = None) -> None: ...

    def bad_answer(self, worker: Worker, error: BaseException) -> None: ...

    def refill(self, worker: Worker) -> None: ...

    def worker_exited(self, worker: Worker, code: int | None, signal: str | None) -> None: ...

__all__ = ["Worker", "start_worker", "STARTING", "READY", "RETIRING", "KILLED", "DEAD"]

STARTING, READY, RETIRING, KILLED, DEAD = "starting", "ready", "retiring", "killed", "dead"
_TAIL = 8 * 1024
_DIRECT_MAX = 64 * 1024  # fits an empty socket buffer: written at once
_READ_SIZE = 256 * 1024
_unpack_u32 = struct.Struct(">I").unpack_from
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Worker:
    __slots__ = (
        "scheduler",
        "child",
        "pid",
        "state",
        "inflight",
        "sent",
        "done",
        "spawned_at",
        "ready_at",
        "err_fd",
        "tail",
        "idle_timer",
        "age_timer",
        "spawn_error",
        "json",
        "chan_fd",
        "rbuf",
        "rview",
        "reading",
        "refill",
    )

    def __init__(self, scheduler: Scheduler, child: ChildProcess | None, err_fd: int, json_mode: bool) -> None:
        self.scheduler = scheduler
        self.child = child
        self.pid: int | None = child.pid if child is not None else None
        self.state = STARTING
        self.inflight: dict[int, Task] = {}  # in the order sent: the first is the one running
        self.sent = 0
        self.done = 0
        self.spawned_at = time.monotonic()
        self.ready_at: float | None = None
        self.err_fd = err_fd
        self.tail = bytearray()
        self.idle_timer: TimerHandle | None = None
        self.age_timer: TimerHandle | None = None
        self.spawn_error: str | None = None
        self.json = json_mode
        channel = child.channel if child is not None else None
        self.chan_fd = channel.fd if channel is not None else -1
        self.rbuf = bytearray()  # a partial answer, once answers are read here
        self.rview: list[memoryview] = []  # what they are read into
        self.reading = False  # in read_answers: slots freed are topped up once, after the batch
        self.refill = False  # a slot was freed during the batch

    def load(self) -> int:
        return len(self.inflight)

    # -- the channel ---------------------------------------------------------

    def send_task(self, task: Task) -> None:
        child = self.child
        assert child is not None
        if self.json:
            fn, args = task.payload
            child.send({"id": task.id, "fn": fn, "args": args})
        else:
            self.send_frames([task.payload])  # the frame is made: past the channel's encoder

    def send_frames(self, frames: list[bytes]) -> None:
        """Pickle tasks' frames (``task_frame``), already counted as sent."""
        child = self.child
        ipc = child._ipc if child is not None else None
        if ipc is not None and ipc.connected:
            ipc.write(frames[0] if len(frames) == 1 else b"".join(frames), -1, None)
        # A worker that died meanwhile: its exit requeues the tasks.

    def send_direct(self, task: Task) -> bool:
        """The fast path (``Scheduler.put``), on the caller's thread with
        the scheduler's lock held: write ``task`` to this idle worker's
        channel ourselves.  An idle worker has answered everything sent to
        it, so the channel's write queue is empty and nothing else writes to
        it while the lock is held.  False: not sent, take the slow path."""
        if self.state != READY or self.inflight or self.chan_fd < 0:
            return False
        frame = task.payload
        if len(frame) > _DIRECT_MAX:
            return False  # big: the loop's writer handles partial writes
        task.claimed = True
        task.attempts = 1
        task.worker = self
        future = task.future
        future.worker_pid = self.pid
        future.attempts = 1
        self.inflight[task.id] = task
        self.sent += 1
        future.set_running_or_notify_cancel()  # new: nobody could cancel it yet
        view = memoryview(frame)
        try:
            while view:
                try:
                    view = view[os.write(self.chan_fd, view) :]
                except BlockingIOError:
                    select.select([], [self.chan_fd], [], 1.0)
        except OSError:
            # The worker is gone (its exit is on its way to the loop).
            # Nothing reached it if nothing was written: then it was never
            # sent, and the slow path requeues it cleanly.
            if len(view) == len(frame):
                del self.inflight[task.id]
                self.sent -= 1
                task.attempts = 0
                task.worker = None
                future.attempts = 0
                future.worker_pid = None
                task.claimed = True  # running already; the loop must not claim it again
                return False
        return True

    def on_pickle_message(self, message: Any, _handle: Any = None) -> None:
        tid = message[0]
        if tid == "ready":
            self._read_answers_ourselves()
            self.scheduler.worker_ready(self)
        elif message[1] == 2:
            self.scheduler.task_answered(self, tid, 2, RemoteError(message[2], message[3], message[4]))
        else:
            self.scheduler.task_answered(self, tid, message[1], message[2], message[3] if message[1] else None)

    def _read_answers_ourselves(self) -> None:
        """From now on the answers are read here, not by the channel.

        A worker's answers are plain pickle frames and one reader: the
        channel's general path (ancillary data, handles, internal messages,
        'message' events one per tick) costs a round trip microseconds it
        does not need.  The channel has read everything so far (the worker
        said 'ready' and waits for a task), so no byte is split between the
        two readers.  At EOF the fd is left alone: the exit's drain or the
        channel's own close takes it from there."""
        reactor = self.scheduler.reactor
        if self.json or self.chan_fd < 0 or reactor is None:
            return
        self.rbuf = bytearray()
        self.rview = [memoryview(bytearray(_READ_SIZE))]
        reactor.add_reader(self.chan_fd, self.read_answers)

    def read_answers(self) -> None:
        fd = self.chan_fd
        try:
            size = os.readv(fd, self.rview)  # into the worker's own buffer: no allocation per read
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            size = 0
        if not size:
            reactor = self.scheduler.reactor
            assert reactor is not None
            reactor.remove_reader(fd)  # EOF: the exit (or the close) comes next
            return
        buf = self.rbuf
        view: Any
        if buf:
            buf += self.rview[0][:size]
            view = buf
        else:
            view = self.rview[0][:size]  # the common case: whole frames, read as they came
        pos, n = 0, size if view is not buf else len(buf)
        scheduler = self.scheduler
        answered = scheduler.task_answered
        self.reading = True
        try:
            while n - pos >= 4:
                end = pos + 4 + _unpack_u32(view, pos)[0]
                if end > n:
                    break
                try:
                    message = _loads(view[pos + 4 : end])
                except Exception as exc:  # noqa: BLE001 - an answer that cannot be rebuilt here
                    pos = end
                    scheduler.bad_answer(self, exc)
                    continue
                pos = end
                outcome = message[1]
                if outcome == 0:  # a result: on_pickle_message's common case, inline
                    answered(self, message[0], 0, message[2])
                else:
                    self.on_pickle_message(message)
        finally:
            self.reading = False
            if view is buf:
                del buf[:pos]
            elif pos < n:
                buf += view[pos:n]
            if view is not buf:
                view.release()
        if self.refill:
            # The answers freed slots: one top-up for the lot (their tasks
            # leave in one write, at the end of this turn of the loop).
            self.refill = False
            scheduler.refill(self)
        if not scheduler.queue:
            # The next task of a caller an answer woke is likely soon (and
            # this worker's next answer): the loop may poll briefly before
            # it sleeps (docs/architecture.md, "Spinning before a wait").
            # Not while tasks wait in the queue: then every worker is busy
            # and the CPUs are theirs.
            scheduler.reactor.expect_soon(self.pid)  # type: ignore[union-attr]

    def on_json_message(self, message: Any, _handle: Any = None) -> None:
        if not isinstance(message, dict):
            return
        if "ready" in message:
            self.scheduler.worker_ready(self)
            return
        tid = message.get("id")
        error = message.get("error")
        if error is not None:
            if not isinstance(error, dict):
                error = {"message": str(error)}
            remote = RemoteError(
                str(error.get("name") or "Error"), str(error.get("message") or ""), str(error.get("stack") or "")
            )
            self.scheduler.task_answered(self, tid, 2, remote)
        else:
            self.scheduler.task_answered(self, tid, 0, message.get("result"))

    def on_error(self, err: BaseException) -> None:
        if isinstance(err, IPCError) and getattr(err, "code", None) == "ERR_IPC_BAD_MESSAGE":
            self.scheduler.bad_answer(self, err)
            return
        child = self.child
        if child is not None and child.pid is None and self.state == STARTING:
            # The spawn itself failed (ENOENT, EACCES, EAGAIN): there is no
            # process and no 'exit' will come.
            self.spawn_error = str(err)
            self.scheduler.worker_exited(self, child.exit_code, None)
        # Anything else (a send to a channel that just closed, a failed
        # kill of a process already gone) is followed by the 'exit' that
        # settles the worker's tasks.

    def on_exit(self, code: int | None, signal: str | None) -> None:
        if self.state != DEAD:
            self.scheduler.worker_exited(self, code, signal)

    # -- stderr --------------------------------------------------------------

    def read_stderr(self) -> None:
        fd = self.err_fd
        if fd < 0:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_stderr()
            return
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        tail = self.tail
        tail += data
        if len(tail) > _TAIL:
            del tail[: len(tail) - _TAIL]
        try:
            os.write(2, data)  # what an inherited stderr would have shown
        except OSError:
            pass

    def finish_stderr(self) -> str:
        """Read what the worker wrote before it died (it is in the pipe
        already), close the pipe, and give the tail as text."""
        fd = self.err_fd
        while fd >= 0:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            self._keep(data)
        self._close_stderr()
        return self.tail.decode("utf-8", "replace")

    def _close_stderr(self) -> None:
        fd, self.err_fd = self.err_fd, -1
        if fd >= 0:
            reactor = self.scheduler.reactor
            assert reactor is not None
            reactor.remove_reader(fd)
            os.close(fd)

    # -- control -------------------------------------------------------------

    def kill(self, sig: int | None = None) -> None:
        child = self.child
        if child is None:
            return
        try:
            child.kill(sig if sig is not None else self.scheduler.config.kill_signal)
        except Exception:  # noqa: BLE001 - gone already: its exit is on its way
            pass

    def let_go(self) -> None:
        """Close the channel: the worker reads EOF after its last task and
        exits by itself."""
        child = self.child
        if child is not None and child.connected:
            try:
                child.disconnect()
            except Exception:  # noqa: BLE001
                self.kill()

    def cancel_timers(self) -> None:
        for name in ("idle_timer", "age_timer"):
            timer = getattr(self, name)
            if timer is not None:
                timer.cancel()
                setattr(self, name, None)

    def rss(self) -> int:
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0


def start_worker(scheduler: Scheduler, config: PoolConfig) -> Worker:
    reactor = scheduler.reactor
    assert reactor is not None
    err_r, err_w = os.pipe()  # close-on-exec from birth (PEP 446), and there is no pipe2 on macOS
    os.set_blocking(err_r, False)
    try:
        child = fork(
            config.module_path,
            config.args,
            stdio=["ignore", "inherit", err_w, "ipc"],
            **config.fork_options,
        )
    except Exception as exc:  # noqa: BLE001 - a failure to start is counted, never raised here
        os.close(err_r)
        worker = Worker(scheduler, None, -1, config.json)
        worker.spawn_error = f"{type(exc).__name__}: {exc}"
        reactor.call_soon(scheduler.worker_exited, worker, None, None)
        return worker
    finally:
        os.close(err_w)
    worker = Worker(scheduler, child, err_r, config.json)
    child.on("message", worker.on_json_message if config.json else worker.on_pickle_message)
    child.on("exit", worker.on_exit)
    child.on("error", worker.on_error)
    reactor.add_reader(err_r, worker.read_stderr)
    if config.init_message is not None and child.pid is not None:
        child.send(config.init_message)
    return worker

