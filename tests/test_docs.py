"""The docs cover the whole surface: the migration tables name every entry
point, option, event and error code, and the API page every public name.
(scripts/test.sh builds the site itself with ``mkdocs build --strict``.)"""

from __future__ import annotations

import inspect
import pathlib
import re
import subprocess

import pytest

import childproc as cp
from childproc._spawn import optiontypes
from childproc._spawn.options import _CAMEL

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "childproc"


def _page(name: str) -> str:
    return (DOCS / name).read_text()


def _nav_pages() -> list[str]:
    return re.findall(r"^\s+- [^:]+: ([\w.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)


def test_every_page_is_in_the_nav_and_exists() -> None:
    pages = _nav_pages()
    assert sorted(pages) == sorted(p.name for p in DOCS.glob("*.md") if p.name in pages)
    for required in ("getting-started.md", "lifecycle.md", "from-subprocess.md", "from-node.md", "faq.md",
                     "benchmarks.md", "api.md", "architecture.md"):
        assert required in pages
    # A page in docs/ but not in the nav (docs/pool.md, say) would be built but unreachable.
    assert {p.name for p in DOCS.glob("*.md")} <= set(pages), "add the page to mkdocs.yml's nav"


def test_node_table_names_every_function_option_and_camel_name() -> None:
    text = _page("from-node.md")
    for node, python in [("spawn", "spawn"), ("exec", "exec"), ("execFile", "exec_file"), ("fork", "fork"),
                         ("spawnSync", "spawn_sync"), ("execSync", "exec_sync"), ("execFileSync", "exec_file_sync")]:
        assert f"`{node}" in text and f"`{python}" in text
    for option in set().union(*optiontypes.ALLOWED.values()):
        assert f"`{option}`" in text, option
    for camel in _CAMEL:
        assert f"`{camel}`" in text, camel


def test_node_table_names_every_event() -> None:
    text = _page("from-node.md")
    emitted = set()
    for path in SRC.rglob("*.py"):
        emitted |= set(re.findall(r"""emit\(\s*["']([a-z]+)["']""", path.read_text()))
    assert emitted  # the scan found the events
    for event in emitted:
        assert f"`'{event}'" in text, event


def test_node_table_names_every_error_code() -> None:
    text = _page("from-node.md")
    codes = set()
    for path in SRC.rglob("*.py"):
        codes |= set(re.findall(r"\b(ERR_[A-Z_]+|ABORT_ERR)\b", path.read_text()))
    assert "ERR_CHILD_PROCESS_STDIO_MAXBUFFER" in codes
    for code in codes:
        assert f"`{code}`" in text, code


def test_subprocess_table_names_every_function_parameter_and_error() -> None:
    text = _page("from-subprocess.md")
    for name in ("run", "call", "check_call", "check_output", "getoutput", "getstatusoutput", "Popen",
                 "communicate", "wait", "poll", "send_signal", "terminate", "kill", "DEVNULL", "STDOUT",
                 "CalledProcessError", "TimeoutExpired", "SubprocessError"):
        assert name in text, name
    params = set(inspect.signature(subprocess.Popen).parameters) - {"args", "stdin", "stdout", "stderr"}
    params |= {"input", "capture_output", "timeout", "check"}  # run()'s own
    for param in params:
        assert f"`{param}=" in text, param


def test_api_page_documents_every_public_name() -> None:
    text = _page("api.md")
    for name in cp.__all__:
        assert re.search(rf"(\.{name}$|`{name}`|import {name}\b)", text, re.M), name


@pytest.mark.parametrize("page", ["faq.md", "lifecycle.md"])
def test_the_traps_and_lifecycle_pages_cover_their_topics(page: str) -> None:
    text = _page(page).lower()
    topics = {"faq.md": ["pipe deadlock", "grandchildren", "zombies", "line buffering", "1 mib", "max_buffer"],
              "lifecycle.md": ["who owns a child", "when callbacks run", "keeps the interpreter alive",
                               "exit and cancellation", "thread ownership"]}[page]
    for topic in topics:
        assert topic in text, topic
