"""The same API under asyncio's ProactorEventLoop, Windows' default loop."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import childproc

PY = sys.executable


def run(coro: Any) -> Any:
    loop = asyncio.new_event_loop()
    assert type(loop).__name__ == "ProactorEventLoop"
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_await_child_and_events() -> None:
    async def main() -> list[Any]:
        child = childproc.spawn(PY, ["-c", "print('hi'); raise SystemExit(4)"])
        seen: list[Any] = []
        child.on("exit", lambda code, sig: seen.append(["exit", code, sig]))
        child.on("close", lambda code, sig: seen.append(["close", code, sig]))
        code = await child
        return [code, seen]

    code, seen = run(main())
    assert code == 4
    assert seen == [["exit", 4, None], ["close", 4, None]]


def test_fifty_concurrent_children() -> None:
    async def one(i: int) -> Any:
        result = await childproc.exec_file(PY, ["-c", f"print({i} * 2)"])
        return result.stdout

    async def main() -> list[Any]:
        return await asyncio.gather(*(one(i) for i in range(50)))

    assert run(main()) == [f"{i * 2}\r\n" for i in range(50)]


def test_stdin_stdout_round_trip_with_backpressure() -> None:
    data = os.urandom(1 << 20) * 4

    async def main() -> bytes:
        child = childproc.spawn(PY, ["-c", "import sys, shutil; shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)"])
        chunks: list[bytes] = []
        child.stdout.on("data", chunks.append)
        child.stdin.end(data)
        assert await child == 0
        return b"".join(chunks)

    assert run(main()) == data


def test_exec_timeout_and_kill() -> None:
    async def main() -> Any:
        try:
            await childproc.exec_file(PY, ["-c", "import time; time.sleep(30)"], timeout=0.3)
        except childproc.ExecError as e:
            timed_out = (e.killed, e.signal)
        child = childproc.spawn(PY, ["-c", "import time; time.sleep(30)"])
        await asyncio.sleep(0.1)
        assert child.kill()
        await child
        return timed_out, (child.exit_code, child.signal_code)

    assert run(main()) == ((True, "SIGTERM"), (None, "SIGTERM"))



def test_a_selector_loop_is_refused_clearly() -> None:
    async def main() -> None:
        childproc.spawn(PY, ["-c", "pass"])

    loop = asyncio.SelectorEventLoop()
    try:
        try:
            loop.run_until_complete(main())
        except RuntimeError as e:
            assert "ProactorEventLoop" in str(e)
        else:
            raise AssertionError("spawn on a selector loop did not raise")
    finally:
        loop.close()
