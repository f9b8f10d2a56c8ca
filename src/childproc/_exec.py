"""``exec()`` and ``exec_file()``: spawn, collect both outputs, call back.

Node's ``execFile`` to the detail (docs/architecture.md, "exec"):

* Only ``cwd, env, gid, uid, shell, signal, windows_hide,
  windows_verbatim_arguments`` reach the spawn (plus the additions
  ``kill_tree``, ``force_kill_after``, ``die_with_parent``); ``timeout``,
  ``kill_signal``, ``max_buffer`` and ``encoding`` are exec's own.
* ``encoding`` defaults to UTF-8 (``str`` results); ``None``/``'buffer'``
  gives ``bytes``.
* ``max_buffer`` is counted **per stream**; going strictly over it keeps the
  chunk cut to the budget, records ``MaxBufferError``, destroys both streams
  and kills the child with ``kill_signal``.  ``timeout`` does the same kill.
* The callback ``(error, stdout, stderr)`` runs on ``'close'`` -- before any
  user ``'close'`` listener, because exec's listener is attached first -- or
  right away on ``'error'`` (a spawn failure, an abort).  ``error`` is an
  ``ExecError`` (``Command failed: <cmd>\\n<stderr>``; an ``ExecTimeoutError``
  when the timeout killed the child), the ``MaxBufferError``, the
  ``AbortError`` or the spawn error, each with ``cmd`` added.

The Python forms: the returned child is awaitable -- ``await cp.exec(...)``
gives ``ExecResult(stdout, stderr)`` or raises the error with ``stdout`` and
``stderr`` attached, Node's promisified form -- and ``child.result(timeout)``
is the same, blocking.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, overload

from ._child import ChildProcess
from ._errnos import node_errno_name
from ._errors import ExecError, ExecTimeoutError, MaxBufferError
from ._messages import add_max_buffer_hint
from ._runtime.loop import running_asyncio_loop
from ._spawn.options import SpawnPlan, normalize_exec, normalize_exec_file
from ._spawn.optiontypes import Args, PathArg, options_doc
from ._streams.decode import byte_length

if TYPE_CHECKING:
    from typing import Literal

    from typing_extensions import Unpack  # typing's own from 3.11; only the checker needs it

    from ._spawn.optiontypes import ExecCore, ExecOptions

__all__ = ["ExecResult", "ExecChildProcess", "ExecCallback", "exec", "exec_file"]

Output = str | bytes
#: ``str`` (an encoding, exec's default: UTF-8) or ``bytes`` (``encoding=None``/``'buffer'``).
_T = TypeVar("_T", str, bytes)
_T_co = TypeVar("_T_co", str, bytes, covariant=True)
#: ``callback(error, stdout, stderr)``; its return value is ignored.
ExecCallback = Callable[[BaseException | None, _T, _T], object]
Callback = Callable[[BaseException | None, Any, Any], object]

if TYPE_CHECKING or sys.version_info >= (3, 11):
    class ExecResult(NamedTuple, Generic[_T_co]):
        """What a successful ``exec``/``exec_file`` produced: ``str``
        outputs by default, ``bytes`` with ``encoding=None``."""

        stdout: _T_co
        stderr: _T_co
else:  # a generic NamedTuple needs 3.11; the same tuple, subscriptable for annotations
    class ExecResult(NamedTuple):
        """What a successful ``exec``/``exec_file`` produced: ``str``
        outputs by default, ``bytes`` with ``encoding=None``."""

        stdout: Any
        stderr: Any

        def __class_getitem__(cls, item: Any) -> Any:
            return cls


class ExecChildProcess(ChildProcess, Generic[_T]):
    """The child of ``exec``/``exec_file``: a ``ChildProcess`` whose outcome
    can also be awaited (``await child``) or waited for (``result()``).
    ``ExecChildProcess[str]`` by default, ``[bytes]`` with ``encoding=None``."""

    def __init__(self) -> None:
        super().__init__()
        self._outcome: tuple[BaseException | None, Any, Any] | None = None
        self._waiters: list[Any] = []  # asyncio futures of `await child`
        self._end_output: Callable[[], None] | None = None

    def _settle(self, err: BaseException | None, stdout: Output, stderr: Output) -> None:
        self._outcome = (err, stdout, stderr)

    def _result(self) -> ExecResult[_T]:
        assert self._outcome is not None
        err, stdout, stderr = self._outcome
        if err is not None:
            # Node's promisified exec attaches both outputs to the error.
            err.stdout = stdout  # type: ignore[attr-defined]
            err.stderr = stderr  # type: ignore[attr-defined]
            raise err
        return ExecResult(stdout, stderr)

    def result(self, timeout: float | None = None) -> ExecResult[_T]:
        """Block until the command is done; ``ExecResult`` or raise its error
        (``ExecError``, ``ExecTimeoutError`` when its own ``timeout`` killed
        it, ``MaxBufferError``, ``AbortError`` or the ``SpawnError``).  The
        builtin ``TimeoutError`` (not an ``ExecError``) after ``timeout``
        seconds of waiting, the command still running."""
        if not self._reactor.run_until(lambda: self._outcome is not None, timeout):
            raise TimeoutError(f"command {self.pid} {self._not_closed()} after {timeout} s")
        return self._result()

    def __await__(self) -> Generator[Any, None, ExecResult[_T]]:  # type: ignore[override]
        if self._outcome is None:
            future = running_asyncio_loop("a command").create_future()
            if self._reactor.asyncio_loop is None:
                raise RuntimeError(
                    "this command was started outside the running asyncio loop; start it "
                    "inside a coroutine to await it, or call .result()"
                )
            self._waiters.append(future)
            import asyncio  # loaded: a loop is running

            try:
                yield from future.__await__()
            except asyncio.CancelledError:
                # Cancelling the awaiting task kills the command (the
                # lifecycle policy: kill_signal, force_kill_after, kill_tree);
                # await asyncio.shield(child) to keep it running.
                self._cancel()
                raise
        return self._result()

    def _cancel(self) -> None:
        # As exec's timeout: the output ends too (a process the shell
        # started may hold it), then the lifecycle policy kills.
        if self._outcome is None and self._end_output is not None:
            self._end_output()
        super()._cancel()


class _Collected:
    """One stream's output, when it comes as chunks.  Bytes go into one
    growing bytearray as they come, so each chunk is freed at once and its
    memory reused (glibc grows a large block with mremap, without copying);
    a list of 100 MiB of chunks and a join at the end would touch every
    page twice.  Strings (an encoding is set) are joined at the end, as
    Node joins them.

    Usually no chunk comes at all: the stream reads into its C collector
    (``Readable._attach_collector``) and ``tail`` is the whole output, given
    by :func:`_join` as it is, without a copy."""

    __slots__ = ("data", "ends", "parts")

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends: list[int] = []  # where each bytes chunk ends in data
        self.parts: list[str] = []

    def append(self, chunk: Output) -> None:
        if isinstance(chunk, str):
            self.parts.append(chunk)
        else:
            self.data += chunk
            self.ends.append(len(self.data))

    def text_parts(self) -> list[str]:
        """The strings to join for a text result.  Bytes chunks come first
        (a user's set_encoding switched the stream to strings after them),
        each decoded on its own as UTF-8: Node's ``array.join('')`` calls
        ``Buffer.toString()`` on every Buffer chunk."""
        if not self.ends:
            return self.parts
        view, start, texts = memoryview(self.data), 0, []
        for end in self.ends:
            texts.append(str(view[start:end], "utf-8", "replace"))
            start = end
        view.release()
        return texts + self.parts


def _join(collected: _Collected, text: bool, tail: Output | None = None) -> Output:
    """The output: the chunks collected, then ``tail`` (what the stream's C
    collector still held: the whole output when no chunk came)."""
    if text:
        parts = collected.text_parts()
        if type(tail) is str:
            if not parts:
                return tail
            parts.append(tail)
        return "".join(parts)
    if tail is not None and not isinstance(tail, str):
        if not collected.data:
            return tail
        collected.data += tail
    return bytes(collected.data)


def _run(plan: SpawnPlan, callback: Callback | None) -> ExecChildProcess[Any]:
    child: ExecChildProcess[Any] = ExecChildProcess()
    # exec's timeout is its own (it destroys the streams before the kill),
    # so the spawn itself gets none; it goes to the same lifecycle policy
    # (with kill_tree the timeout belongs to the group, see
    # _runtime/lifecycle.py).  The other spawn options are Node's subset.
    timeout, plan.timeout = plan.timeout, None
    child._spawn(plan)

    encoding = plan.encoding
    max_buffer = plan.max_buffer
    stdout_chunks = _Collected()
    stderr_chunks = _Collected()
    counted = {"stdout": 0, "stderr": 0}
    run = _ExecRun()
    cmd = plan.command_line()

    def settle(err: BaseException | None, stdout: Output, stderr: Output) -> None:
        child._settle(err, stdout, stderr)
        for future in child._waiters:
            if not future.done():
                future.set_result(None)
        if callback is not None:
            callback(err, stdout, stderr)

    def exithandler(code: int | None = None, signal: str | None = None) -> None:
        if run.exited:
            return
        run.exited = True
        child._life.cancel_timeout()
        # Per stream, as Node: a user's set_encoding on one of them makes
        # that one's chunks strings.
        stdout = _join(stdout_chunks, encoding is not None or _stream_text(child.stdout), _tail(child.stdout))
        stderr = _join(stderr_chunks, encoding is not None or _stream_text(child.stderr), _tail(child.stderr))
        ex = run.ex
        if ex is None and code == 0 and signal is None:
            settle(None, stdout, stderr)
            return
        if ex is None:
            shown = stderr if isinstance(stderr, str) else stderr.decode("utf-8", "replace")
            fields: dict[str, Any] = {
                "code": node_errno_name(code) if code is not None and code < 0 else code,
                "killed": child.killed or run.killed,
                "signal": signal,
                "stdout": stdout,
                "stderr": stderr,
            }
            if run.timed_out:
                # Node's error, which is also Python's TimeoutError.
                ex = ExecTimeoutError(f"Command failed: {cmd}\n{shown}", timeout=timeout or 0.0, **fields)
            else:
                ex = ExecError(f"Command failed: {cmd}\n{shown}", **fields)
        ex.cmd = cmd  # type: ignore[attr-defined]  # Node adds cmd to whatever error it is
        settle(ex, stdout, stderr)

    def errorhandler(err: BaseException) -> None:
        run.ex = err
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.destroy()
        exithandler()

    def destroy_streams() -> None:
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.destroy()
        run.killed = True

    def kill() -> None:
        destroy_streams()
        try:
            child.kill(plan.kill_signal)
        except Exception as err:  # noqa: BLE001 - Node hands what kill throws to the callback
            run.ex = err
            exithandler()

    def on_timeout() -> None:
        if run.exited:
            return
        run.timed_out = True
        destroy_streams()
        child._life.expire_kill()

    child._life.arm_timeout(timeout, on_timeout)
    child._end_output = destroy_streams

    def collector(name: str, stream: Any, chunks: _Collected) -> Callable[[Output], None]:
        def on_data(chunk: Output) -> None:
            if max_buffer == float("inf"):
                chunks.append(chunk)
                return
            # Node: Buffer.byteLength(chunk, stream.readableEncoding) for text.
            length = byte_length(chunk, stream.readable_encoding) if isinstance(chunk, str) else len(chunk)
            before = counted[name]
            counted[name] = before + length
            if counted[name] > max_buffer:
                # Node cuts with the byte budget, in the chunk's own units
                # (UTF-16 code units there, code points here).
                chunks.append(chunk[: max(0, int(max_buffer - before))])
                run.ex = err = MaxBufferError(name, cmd=cmd)
                add_max_buffer_hint(err, max_buffer)
                kill()
            else:
                chunks.append(chunk)

        return on_data

    # Text with a finite max_buffer counts the byte length of each decoded
    # chunk: that stays on the chunk path.  Otherwise the streams read into
    # C collectors, which hand over to the listener the moment anything
    # else (a user's listener, pause(), ...) wants the chunks.
    collect = max_buffer == float("inf") or encoding is None
    for name, stream, chunks in (("stdout", child.stdout, stdout_chunks), ("stderr", child.stderr, stderr_chunks)):
        if stream is None:
            continue
        if encoding is not None:
            stream.set_encoding(encoding)
        listener = collector(name, stream, chunks)
        stream.on("data", listener)
        if collect:
            stream._attach_collector(listener, max_buffer)
    child.on("close", exithandler)
    child.on("error", errorhandler)
    if plan.input is not None and child.stdin is not None:
        # input= (a Python addition): written, then the end, as the sync
        # forms do.  A child that exits without reading gives EPIPE here;
        # the outcome is its exit and output, as with subprocess.run(input=).
        child.stdin.on("error", _ignore)
        child.stdin.end(plan.input)
    return child


def _ignore(*_: Any) -> None:
    pass


class _ExecRun:
    """One exec's own outcome so far (what Node's execFile keeps in closures)."""

    __slots__ = ("ex", "killed", "exited", "timed_out")

    def __init__(self) -> None:
        self.ex: BaseException | None = None
        self.killed = False
        self.exited = False
        self.timed_out = False


def _tail(stream: Any) -> Output | None:
    # What the stream's C collector holds (and its memory freed), if any.
    return stream._take_collected() if stream is not None else None


def _stream_text(stream: Any) -> bool:
    # A user who called set_encoding on a stream gets its strings joined (Node).
    return stream is not None and getattr(stream, "readable_encoding", None) is not None


@overload
def exec(  # type: ignore[overload-overlap]  # 'buffer' is a str too: this one is tried first
    command: PathArg,
    options: ExecCallback[bytes] | None = None,
    callback: ExecCallback[bytes] | None = None,
    /,
    *,
    encoding: Literal["buffer"] | None,
    **kwargs: Unpack[ExecCore],
) -> ExecChildProcess[bytes]: ...
@overload
def exec(
    command: PathArg,
    options: ExecCallback[str] | None = None,
    callback: ExecCallback[str] | None = None,
    /,
    *,
    encoding: str = ...,
    **kwargs: Unpack[ExecCore],
) -> ExecChildProcess[str]: ...
@overload
def exec(  # Node's shape: the encoding is inside the mapping, out of the checker's sight
    command: PathArg,
    options: Mapping[str, Any],
    callback: Callback | None = None,
    /,
    **kwargs: Unpack[ExecOptions],
) -> ExecChildProcess[Any]: ...
def exec(  # noqa: A001 - Node's name
    command: PathArg,
    options: Mapping[str, Any] | Callback | None = None,
    callback: Callback | None = None,
    /,
    **kwargs: Any,
) -> ExecChildProcess[Any]:
    """Run ``command`` through the shell, buffering its output (Node's
    ``exec``).  ``callback(error, stdout, stderr)``; or ``await`` the child
    for an ``ExecResult``, or call its ``result()``.  Output is ``str``
    (UTF-8) unless ``encoding=None``/``'buffer'`` asks for ``bytes``; each
    stream may hold ``max_buffer`` (1 MiB) before the child is killed."""
    plan = normalize_exec("exec", command, options, callback, kwargs, sync=False)
    return _run(plan, plan.callback)


@overload
def exec_file(  # type: ignore[overload-overlap]  # 'buffer' is a str too: this one is tried first
    file: PathArg,
    args: Args | ExecCallback[bytes] | None = None,
    options: ExecCallback[bytes] | None = None,
    callback: ExecCallback[bytes] | None = None,
    /,
    *,
    encoding: Literal["buffer"] | None,
    **kwargs: Unpack[ExecCore],
) -> ExecChildProcess[bytes]: ...
@overload
def exec_file(
    file: PathArg,
    args: Args | ExecCallback[str] | None = None,
    options: ExecCallback[str] | None = None,
    callback: ExecCallback[str] | None = None,
    /,
    *,
    encoding: str = ...,
    **kwargs: Unpack[ExecCore],
) -> ExecChildProcess[str]: ...
@overload
def exec_file(  # Node's shape: the encoding is inside the mapping, out of the checker's sight
    file: PathArg,
    args: Args | Mapping[str, Any] | Callback | None,
    options: Mapping[str, Any] | Callback | None = None,
    callback: Callback | None = None,
    /,
    **kwargs: Unpack[ExecOptions],
) -> ExecChildProcess[Any]: ...
def exec_file(
    file: PathArg,
    args: Args | Mapping[str, Any] | Callback | None = None,
    options: Mapping[str, Any] | Callback | None = None,
    callback: Callback | None = None,
    /,
    **kwargs: Any,
) -> ExecChildProcess[Any]:
    """Run ``file`` with ``args`` (no shell unless ``shell=``), buffering its
    output (Node's ``execFile``); results and errors as for :func:`exec`."""
    plan = normalize_exec_file("exec_file", file, args, options, callback, kwargs, sync=False)
    return _run(plan, plan.callback)


# help(cp.exec) lists the options, from the TypedDicts the checker reads.
exec.__doc__ = (exec.__doc__ or "") + options_doc("exec")
exec_file.__doc__ = (exec_file.__doc__ or "") + options_doc("exec_file")
