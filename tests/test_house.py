"""The house rules, checked on the source: imports run one way, one module
touches the compiled core, and nothing cites files the repository lacks.

The import graph is read with ``ast`` from ``src/childproc`` (every import
at every level counts, including those under ``TYPE_CHECKING`` and inside
functions), so the rules hold for the code as written, not only for what one
run happens to import.  docs/architecture.md describes the layers.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "childproc"

# The layers, lowest first: a module may import its own layer and the ones below.
LAYERS = [
    {"childproc._errnos", "childproc._errors", "childproc._messages", "childproc._abort", "childproc._spinning"},
    {"childproc._spawn"},
    {"childproc._runtime"},
    {"childproc._streams"},
    {"childproc._ipc"},
    {"childproc._warm"},
    {"childproc._child"},
    {"childproc._exec", "childproc._launch"},
    {"childproc._pool"},
    {"childproc"},
]

if not PKG.is_dir():  # pragma: no cover - an installed copy without its source
    pytest.skip("needs the source tree", allow_module_level=True)


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(name: str, path: pathlib.Path, mods: dict[str, pathlib.Path]) -> set[str]:
    """Every module of the package that ``name`` imports, at any level."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in mods and target != name:
                found.add(target)
            elif target.endswith("._core"):
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _layer(name: str) -> int:
    best = -1
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if name == prefix or name.startswith(prefix + "."):
                best = max(best, i)
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    # A package's __init__ importing its own modules is not a cycle of concerns.
    assert _cycles(graph) == []


def test_no_import_cycle_between_subpackages() -> None:
    graph = _graph()
    packages: dict[str, set[str]] = {}
    top = lambda n: ".".join(n.split(".")[:2])  # noqa: E731 - childproc._spawn.options -> childproc._spawn
    for name, deps in graph.items():
        if name == "childproc":
            continue
        for dep in deps:
            if top(dep) != top(name) and dep != "childproc":
                packages.setdefault(top(name), set()).add(top(dep))
    assert _cycles(packages) == []


def test_imports_run_down_the_layers() -> None:
    wrong = []
    for name, deps in _graph().items():
        for dep in deps:
            if dep.endswith("._core"):
                continue
            if _layer(dep) > _layer(name):
                wrong.append(f"{name} -> {dep}")
    assert wrong == []


def test_every_module_has_a_layer() -> None:
    assert [name for name in _graph() if _layer(name) < 0] == []


def test_one_module_imports_the_compiled_core() -> None:
    importers = sorted(name for name, deps in _graph().items() if any(d.endswith("._core") for d in deps))
    assert importers == ["childproc._spawn.native"]


def test_the_package_root_only_re_exports() -> None:
    tree = ast.parse((PKG / "__init__.py").read_text())
    literal = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
    ]
    assert len(literal) == 1 and isinstance(literal[0].value, ast.List)
    assert all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in literal[0].value.elts)
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert classes == []


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_modules_stay_small(path: pathlib.Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 650, f"{path.name}: {lines} lines"


def test_nothing_cites_files_outside_the_repository() -> None:
    pattern = re.compile(r"DESIGN|reference/|reference §|spawn-internals|\.\./shared")
    hits = []
    for folder in ("src", "csrc", "benchmarks", "docs", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".c", ".h", ".md", ".js", ".sh"} and path != pathlib.Path(__file__):
                for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if pattern.search(line):
                        hits.append(f"{path.relative_to(ROOT)}:{lineno}")
    assert hits == []
