"""The typed API: one source of truth for the options, and ``mypy --strict``
rejecting what the checker should catch.

``tests/typing/ok_tour.py`` (the README's tour, grown) must pass ``mypy
--strict``: scripts/test.sh runs that.  ``tests/typing/bad_options.py`` must
fail with exactly the errors its ``# error`` comments mark: checked here."""

from __future__ import annotations

import inspect
import pathlib
import re
import subprocess
import sys
import typing

import pytest

import childproc as cp
from childproc._spawn import options, optiontypes

HERE = pathlib.Path(__file__).parent
ENTRY_POINTS = {"spawn": cp.spawn, "fork": cp.fork, "exec": cp.exec, "exec_file": cp.exec_file,
                "spawn_sync": cp.spawn_sync, "exec_sync": cp.exec_sync, "exec_file_sync": cp.exec_file_sync}


def test_the_runtime_table_is_the_typed_dicts() -> None:
    assert options._ALLOWED is optiontypes.ALLOWED
    assert set(optiontypes.ALLOWED) == set(ENTRY_POINTS)
    for name, family in optiontypes._FAMILIES.items():
        keys = family.__required_keys__ | family.__optional_keys__
        assert optiontypes.ALLOWED[name] == keys
        assert not family.__required_keys__, name  # every option is optional


def test_an_option_outside_the_typed_dict_is_refused_at_run_time() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_buffer'"):
        cp.spawn("true", max_buffer=1)  # type: ignore[call-arg]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.get_overloads is 3.11's")
@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_overload_takes_exactly_the_functions_options(name: str) -> None:
    function = ENTRY_POINTS[name]
    overloads = typing.get_overloads(function) or [function]
    taken: set[str] = set()
    for overload in overloads:
        parameters = inspect.signature(overload).parameters.values()
        explicit = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
        (kwargs,) = [p for p in parameters if p.kind is p.VAR_KEYWORD]
        match = re.fullmatch(r"Unpack\[(\w+)\]", str(kwargs.annotation))
        if match is None:  # the implementation: **kwargs: Any
            assert overload is function
            continue
        family = getattr(optiontypes, match[1])
        unpacked = family.__required_keys__ | family.__optional_keys__
        assert not explicit & unpacked, (name, explicit & unpacked)
        # Some overloads leave one out on purpose (exec_sync without stdio
        # returns bytes, not bytes | None); none takes one the function does not.
        assert explicit | unpacked <= optiontypes.ALLOWED[name], (name, overload)
        taken |= explicit | unpacked
    assert taken == optiontypes.ALLOWED[name]


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_help_lists_every_option(name: str) -> None:
    doc = inspect.getdoc(ENTRY_POINTS[name]) or ""
    assert "Options (keywords" in doc
    for option in optiontypes.ALLOWED[name]:
        assert re.search(rf"^    {option}: .+\n        {re.escape(optiontypes.DOCS[option])}$", doc, re.M), option
    assert "PathArg" not in doc  # aliases are spelt out


def _mypy(path: pathlib.Path) -> list[tuple[int, str]]:
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
                           "--cache-dir", str(HERE.parent / ".mypy_cache"), str(path)],
                          capture_output=True, text=True, cwd=HERE.parent)
    errors = re.findall(r"^.*?:(\d+): error: .*\[([\w-]+)\]$", proc.stdout, re.M)
    return [(int(line), code) for line, code in errors]


def test_mypy_rejects_exactly_the_bad_calls() -> None:
    pytest.importorskip("mypy")
    path = HERE / "typing" / "bad_options.py"
    marked = [i for i, line in enumerate(path.read_text().splitlines(), 1) if line.endswith(tuple(f"# error: {what}" for what in ("a misspelt option", "a wrong-typed timeout")))]
    assert _mypy(path) == [(marked[0], "call-arg"), (marked[1], "call-overload")]


def test_read_and_aread() -> None:
    child = cp.spawn("echo", ["hi"])
    assert child.stdout is not None
    assert child.stdout.read() == b"hi\n"

    async def main() -> tuple[bytes | str, bytes | str]:
        a = cp.spawn("echo", ["new"])
        b = cp.spawn("echo", ["old"])
        assert a.stdout is not None and b.stdout is not None
        new = await a.stdout.aread()
        with pytest.warns(DeprecationWarning, match="aread"):
            pending = b.stdout.read()
        old = await typing.cast(typing.Awaitable[bytes], pending)
        return new, old

    import asyncio

    assert asyncio.run(main()) == (b"new\n", b"old\n")
