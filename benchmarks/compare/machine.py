"""What a run finds on the machine: the C floors it compiles, and the
description of the machine that goes into compare.json.

Every program of the registry's C_PROGRAMS is compiled with `cc -O2` into
benchmarks/.build/ when its source (or a header below) is newer than the
binary; a floor that does not build makes its peers skipped, with the
compiler's message as the reason.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .model import BUILD, HERE, Context, log
from .workloads import C_PROGRAMS

C_HEADERS = ["_floor_common.h"]


def build_c(ctx: Context, names: set[str]) -> None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    ctx.cc = cc
    newest_header = max((HERE / h).stat().st_mtime for h in C_HEADERS)
    for name in sorted(names):
        src, flags = C_PROGRAMS[name]
        out = BUILD / name
        src_path = HERE / src
        if out.exists() and out.stat().st_mtime >= max(src_path.stat().st_mtime, newest_header):
            ctx.binaries[name] = out
            continue
        if not cc:
            ctx.build_errors[name] = "no C compiler (`cc`) on PATH to build it"
            continue
        BUILD.mkdir(exist_ok=True)
        tmp = out.with_name(f"{name}.{os.getpid()}.tmp")
        cmd = [cc, "-O2", *flags, "-o", str(tmp), str(src_path)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            os.replace(tmp, out)  # a concurrent run never sees half a binary
            ctx.binaries[name] = out
            log(f"built {out.relative_to(HERE.parent)}: {' '.join(cmd[:-3])} ...")
        else:
            tail = " ".join(r.stderr.strip().splitlines()[-2:])
            tmp.unlink(missing_ok=True)
            ctx.build_errors[name] = f"`{' '.join(cmd)}` failed: {tail}"


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_meta(ctx: Context) -> dict:
    def cmd_out(argv: list[str]) -> str | None:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return None

    def read(path: str) -> str | None:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return None

    cpu = None
    for line in (read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_executable": ctx.python,
        "libc": " ".join(platform.libc_ver()),
        "node": cmd_out([ctx.node, "--version"]) if ctx.node else None,
        "cc": cmd_out([ctx.cc, "--version"]) if ctx.cc else None,
        "transparent_hugepage": read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "pipe_max_size": read("/proc/sys/fs/pipe-max-size"),
        "git_commit": cmd_out(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"]),
        "loadavg_start": loadavg(),
    }
    r = subprocess.run(
        [ctx.python, "-c", "import childproc,sys; print(getattr(childproc,'__version__','?'), childproc.__file__)"],
        capture_output=True, text=True, cwd=HERE,
    )
    meta["childproc"] = r.stdout.strip() if r.returncode == 0 else None
    r = subprocess.run([ctx.python, "-c", "import uvloop; print(uvloop.__version__)"],
                       capture_output=True, text=True, cwd=HERE)
    meta["uvloop"] = r.stdout.strip() if r.returncode == 0 else None
    return meta

