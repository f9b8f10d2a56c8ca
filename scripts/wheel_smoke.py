"""The Windows wheel's test command (pyproject.toml [tool.cibuildwheel.windows]).

The test suite needs the async API's Windows loop, which is still to come;
until then the installed wheel is checked here: the compiled core loads, and
the sync forms run real children, report an exit status, capture output,
feed input, and turn a missing program into Node's ENOENT error.  Runs on any
platform.  Exits non-zero on the first failure; the last line is
"N passed, N failed".
"""

from __future__ import annotations

import sys

import childproc as cp

PY = sys.executable
checks = {
    "exit status and output": lambda: cp.spawn_sync(PY, ["-c", "print('out'); raise SystemExit(3)"]),
    "input fed to stdin": lambda: cp.spawn_sync(PY, ["-c", "import sys; print(sys.stdin.read().upper())"],
                                                input=b"fed"),
    "missing program": lambda: cp.spawn_sync("childproc-no-such-program-xyz"),
    "exec_file_sync text": lambda: cp.exec_file_sync(PY, ["-c", "print('text')"], encoding="utf-8"),
}
expected = {
    "exit status and output": lambda r: r.status == 3 and r.stdout.strip() == b"out" and r.error is None,
    "input fed to stdin": lambda r: r.status == 0 and r.stdout.strip() == b"FED",
    "missing program": lambda r: r.error is not None and r.error.code == "ENOENT" and r.status is None,
    "exec_file_sync text": lambda r: r.strip() == "text",
}
passed = failed = 0
for name, run in checks.items():
    result = run()
    if expected[name](result):
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAILED: {name}: {result!r}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
