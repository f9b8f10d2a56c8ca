"""The reactor on a running asyncio loop (``_runtime/aio.py``).

On Linux childproc's fds sit in an epoll instance of the reactor's own,
which the asyncio loop (or uvloop) watches as a single fd.  These tests pin
what that must not change: every event of every child arrives, in Node's
order, also when a listener raises or many children run at once, and the
loop's own selector only ever sees that one fd.
"""

from __future__ import annotations

import asyncio
import select
import sys
from typing import Any

import pytest

import childproc as cp

WATCHDOG_SECONDS = 60
pytestmark = pytest.mark.usefixtures("watchdog")

SCRIPT = "echo out; echo err >&2; cat"


async def _one_child() -> list[Any]:
    events: list[Any] = []
    child = cp.spawn("sh", ["-c", SCRIPT])
    child.stdout.on("data", lambda d: events.append(("stdout", d)))
    child.stderr.on("data", lambda d: events.append(("stderr", d)))
    child.stdout.on("end", lambda: events.append("stdout end"))
    child.on("exit", lambda code, sig: events.append(("exit", code, sig)))
    child.on("close", lambda code, sig: events.append(("close", code, sig)))
    child.stdin.write(b"in\n")
    child.stdin.end()
    assert await child == 0
    return events


def _check(events: list[Any]) -> None:
    out = b"".join(e[1] for e in events if isinstance(e, tuple) and e[0] == "stdout")
    err = b"".join(e[1] for e in events if isinstance(e, tuple) and e[0] == "stderr")
    assert out == b"out\nin\n" and err == b"err\n"
    assert events[-1] == ("close", 0, None)
    assert events.index("stdout end") < events.index(("close", 0, None))
    assert ("exit", 0, None) in events


def test_many_children_at_once_each_get_all_their_events() -> None:
    async def main() -> list[list[Any]]:
        return list(await asyncio.gather(*(_one_child() for _ in range(20))))

    for events in asyncio.run(main()):
        _check(events)


def _run_with_raising_listener(attach: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """Spawn a child that writes to both outputs under asyncio, with
    ``attach(child, events, boom)`` adding listeners (``boom(event)`` notes
    ``event`` and raises); the events seen, and what reached the loop's
    exception handler."""
    handled: list[dict[str, Any]] = []

    def boom(event: Any) -> None:
        events.append(event)
        raise ValueError("listener failed")

    events: list[Any] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: handled.append(ctx))
        child = cp.spawn("sh", ["-c", "echo out; echo err >&2"])
        attach(child, events, boom)
        child.on("close", lambda code, sig: events.append(("close", code, sig)))
        await asyncio.wait_for(child, 30)

    asyncio.run(main())
    return events, handled


def test_a_raising_listener_reaches_the_loop_and_the_other_events_still_come() -> None:
    def attach(child: Any, events: list[Any], boom: Any) -> None:
        child.stdout.on("data", lambda d: boom(("stdout", d)))
        child.stderr.on("data", lambda d: events.append(("stderr", d)))

    events, handled = _run_with_raising_listener(attach)
    assert ("stdout", b"out\n") in events and ("stderr", b"err\n") in events
    assert events[-1] == ("close", 0, None)
    assert [type(ctx.get("exception")) for ctx in handled] == [ValueError]


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="the nested epoll is Linux's")
def test_the_loop_selector_sees_one_fd_however_many_pipes() -> None:
    async def main() -> tuple[int, int]:
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        before = len(selector.get_map())
        children = [cp.spawn("sh", ["-c", "cat"]) for _ in range(5)]
        await asyncio.sleep(0)  # the new fds are registered on the next turn
        during = len(selector.get_map())
        for child in children:
            child.stdin.end()
        for child in children:
            await child
        return before, during

    before, during = asyncio.run(main())
    assert during == before + 1


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is POSIX only")
def test_under_uvloop_every_event_arrives() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[list[Any]]:
        return list(await asyncio.gather(*(_one_child() for _ in range(10))))

    for events in uvloop.run(main()):
        _check(events)


def test_ticks_queued_by_a_raising_callback_still_run() -> None:
    # 'end' is emitted on a tick (Node's endReadableNT); a listener that
    # raises there must not strand what else was queued on ticks.
    def attach(child: Any, events: list[Any], boom: Any) -> None:
        child.stdout.on("data", lambda d: events.append(("stdout", d)))
        child.stdout.on("end", lambda: boom("stdout end"))
        child.stdout.on("close", lambda: events.append("stdout close"))
        child.stderr.on("data", lambda d: events.append(("stderr", d)))
        child.stderr.on("end", lambda: events.append("stderr end"))

    events, handled = _run_with_raising_listener(attach)
    assert {"stdout end", "stdout close", "stderr end"} <= set(events)
    assert events[-1] == ("close", 0, None)
    assert [type(ctx.get("exception")) for ctx in handled] == [ValueError]


def test_callbacks_queued_in_one_turn_run_in_order_past_a_raising_one() -> None:
    # 'spawn' comes on the next turn for each child, in spawn order; the
    # reactor runs one turn's calls from one asyncio callback, and a
    # listener that raises must not drop the calls queued after it.
    handled: list[dict[str, Any]] = []

    async def main() -> list[Any]:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: handled.append(ctx))
        events: list[Any] = []
        children = [cp.spawn("true") for _ in range(4)]
        for i, child in enumerate(children):
            child.on("spawn", lambda i=i: events.append(("spawn", i)))
        children[1].on("spawn", lambda: (_ for _ in ()).throw(ValueError("listener failed")))
        for child in children:
            await asyncio.wait_for(child, 30)
        return events

    events = asyncio.run(main())
    assert events == [("spawn", i) for i in range(4)]
    assert [type(ctx.get("exception")) for ctx in handled] == [ValueError]


def test_a_raising_exit_listener_does_not_strand_the_close_phase() -> None:
    # The exit and the outputs' EOFs usually come in one wake-up: the
    # reactor runs that turn's queued calls and close phase at its end.  A
    # listener that raises in the middle must leave them to the next turn,
    # not drop them: the streams' 'close' and the child's still come.
    handled: list[dict[str, Any]] = []

    async def main() -> list[Any]:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: handled.append(ctx))
        events: list[Any] = []
        child = cp.spawn("true")

        def boom(code: int, sig: str | None) -> None:
            events.append(("exit", code, sig))
            raise ValueError("listener failed")

        child.on("exit", boom)
        child.stdout.on("close", lambda: events.append("stdout close"))
        child.stderr.on("close", lambda: events.append("stderr close"))
        child.stdin.on("close", lambda: events.append("stdin close"))
        child.on("close", lambda code, sig: events.append(("close", code, sig)))
        assert await asyncio.wait_for(child, 30) == 0
        await asyncio.sleep(0)  # stdin's 'close' may come a turn after the child's
        return events

    events = asyncio.run(main())
    assert {"stdout close", "stderr close", "stdin close", ("exit", 0, None), ("close", 0, None)} <= set(events)
    assert events.index(("exit", 0, None)) < events.index(("close", 0, None))
    assert [type(ctx.get("exception")) for ctx in handled] == [ValueError]
