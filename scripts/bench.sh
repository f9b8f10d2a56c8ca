#!/usr/bin/env bash
# The benchmark command: sets everything up, then runs the comparison.
#
#   scripts/bench.sh                       # every workload (8-10 minutes): tables, results/compare.{json,png}
#   scripts/bench.sh --quick               # CI-sized run (under a minute)
#   scripts/bench.sh --workload pipe_fd    # one workload (repeatable); --list names them
#   scripts/bench.sh --help                # the runner's options; all arguments pass through
#
# Needs only python3 (3.10+), a C compiler and, for the Node peers, node.  On
# first use it creates .venv at the repo root and installs the project with its
# `bench` extra there (pytest-benchmark, matplotlib, uvloop, loky) and piscina
# from npm for the pool peers; later runs
# reinstall only when pyproject.toml, setup.py, src/ or csrc/ changed.  If
# childproc does not build, the benchmark still runs with the childproc peers
# reported as skipped (and the next run tries again); a bench dependency that
# does not install (uvloop on an odd platform) only makes its peers skipped.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

venv="$root/.venv"
py="$venv/bin/python"
stamp="$venv/.childproc-bench-installed"

say() { printf 'bench.sh: %s\n' "$*" >&2; }

if [ ! -x "$py" ]; then
    base=${PYTHON:-python3}
    command -v "$base" >/dev/null || { say "no $base on PATH"; exit 1; }
    say "creating $venv with $($base --version 2>&1)"
    "$base" -m venv "$venv"
fi

# A fingerprint of everything that goes into the installed package.
fingerprint() {
    {
        "$py" -c 'import sys; print(sys.version)'
        find pyproject.toml setup.py src csrc -type f \
            ! -name '*.so' ! -name '*.o' ! -name '*.pyc' ! -path '*/__pycache__/*' \
            ! -path '*.egg-info/*' ! -name '_core.c' -print0 2>/dev/null \
            | LC_ALL=C sort -z | xargs -0 -r sha256sum
    } | sha256sum | cut -d' ' -f1
}

want=$(fingerprint)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$want" != "$have" ] || ! "$py" -c 'import matplotlib, pytest_benchmark' 2>/dev/null; then
    say "installing the project with its bench extra into .venv (pip install '.[bench]')"
    rm -f "$stamp"
    log="$venv/bench-pip.log"
    if "$venv/bin/pip" install -q --disable-pip-version-check '.[bench]' >"$log" 2>&1; then
        echo "$want" >"$stamp"
    else
        # Something did not install: each bench dependency on its own (one
        # that fails only makes its peers skipped), then the project alone.
        tail -n 15 "$log" >&2
        mapfile -t deps < <("$py" - <<'EOF'
import re
text = open("pyproject.toml").read()
m = re.search(r'^bench\s*=\s*\[(.*?)\]', text, re.M | re.S)
print("\n".join(re.findall(r'"([^"]+)"', m.group(1))) if m else "pytest-benchmark\nmatplotlib")
EOF
)
        for dep in "${deps[@]}"; do
            "$venv/bin/pip" install -q --disable-pip-version-check "$dep" >>"$log" 2>&1 \
                || say "could not install '$dep' (see $log); the peers that need it will be reported as skipped"
        done
        if "$venv/bin/pip" install -q --disable-pip-version-check . >>"$log" 2>&1; then
            echo "$want" >"$stamp"
        else
            say "childproc did not install (whole log: $log); its peers will be reported as skipped"
            # Never benchmark a stale copy from an earlier install.
            "$venv/bin/pip" uninstall -q -y childproc >/dev/null 2>&1 || true
        fi
    fi
fi

# Piscina, the Node peer of the pool family, from npm into benchmarks/.build
# (best effort: without it that peer is reported as skipped).
pool_node="$root/benchmarks/.build/pool-node"
if command -v npm >/dev/null && [ ! -d "$pool_node/node_modules/piscina" ]; then
    mkdir -p "$pool_node"
    npm install --silent --no-audit --no-fund --prefix "$pool_node" piscina >"$pool_node/npm.log" 2>&1 \
        || say "could not install piscina (see $pool_node/npm.log); the Piscina pool peer will be reported as skipped"
fi

# The runner is the package benchmarks/compare; its Python workers are
# `python -m compare --worker` started in benchmarks/ too.  A relative --out
# is still taken from the repo root.
cd "$root/benchmarks"
exec "$py" -m compare "$@"
