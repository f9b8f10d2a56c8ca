#!/usr/bin/env bash
# The README's test command.  Does all set-up on a fresh machine (python3,
# gcc; node for the Node-comparison tests, which skip without it): a venv in
# .venv, the package built and installed from this checkout with its test
# and docs extras, then mypy over src/childproc (the package ships py.typed,
# so its hints are a promise) and over a typed user script, the docs site
# (mkdocs.yml) built with warnings as errors, then pytest over tests/ and,
# once each with timing off, benchmarks/.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# A real (non-editable) install: the tests import the built package, never
# the source tree, so a missing file in the wheel shows up here.
.venv/bin/python -m pip install -q --disable-pip-version-check '.[test,docs]'
.venv/bin/python -m mypy
# A user's typed script (the README's tour, grown) against the installed
# package: the typed API is a promise too.  tests/test_typing.py checks that
# mypy rejects tests/typing/bad_options.py.
.venv/bin/python -m mypy --strict tests/typing/ok_tour.py
# The docs: API pages come from the docstrings (read from src/ statically),
# so a broken cross-reference or a page missing from the nav fails here.
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --quiet --site-dir build/docs-site
exec .venv/bin/python -m pytest tests benchmarks --benchmark-disable -q "$@"
