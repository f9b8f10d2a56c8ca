"""The pool's settings: validated once, in the constructor, before any
worker exists (the house rule: validation before anything is spawned),
and the command line each worker is started with."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from .._spawn.signals import signal_number
from .._ipc.wire import encode_pickle

__all__ = ["PoolConfig", "make_config", "positive", "PICKLE_PROTOCOL"]

PICKLE_PROTOCOL = 5
_NODE_SUFFIXES = (".js", ".mjs", ".cjs")
_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(_HERE))  # where ``childproc`` itself is importable from
# The Python worker: childproc's own worker module, findable even when the
# user's sys.path (applied by the worker later) does not hold childproc.
_BOOT = f"import sys; sys.path.append({_PACKAGE_ROOT!r}); from childproc._pool._worker import main; main()"


@dataclass(slots=True)
class PoolConfig:
    max_workers: int
    min_workers: int
    idle_timeout: float | None
    task_timeout: float | None
    kill_signal: int
    force_kill_after: float | None
    max_retries: int
    max_tasks_per_worker: int | None
    max_memory_per_worker: int | None
    max_worker_age: float | None
    prefetch: int
    max_queue: int | None
    json: bool
    node: bool
    module_path: str  # what fork() runs (the Node runtime, or a token for python -c)
    args: list[str]
    fork_options: dict[str, Any] = field(default_factory=dict)
    init_message: Any = None  # the first message a pickle worker gets


def positive(value: Any, name: str, *, allow_none: bool = True, allow_zero: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise TypeError(f"{name} must be a number{' or None' if allow_none else ''}, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {value!r}")
    return None if value == math.inf and allow_none else float(value)


def _count(value: Any, name: str, *, minimum: int, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int{' or None' if allow_none else ''}, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value!r}")
    return value


def _main_script() -> str | None:
    """The parent's main script, for workers to import functions defined
    there (multiprocessing's spawn does the same)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    path = getattr(spec, "origin", None) if spec is not None else getattr(main, "__file__", None)
    if not isinstance(path, str) or not os.path.isfile(path):
        return None  # interactive, -c: nothing to import
    return os.path.abspath(path)


def make_config(
    max_workers: Any,
    min_workers: Any,
    idle_timeout: Any,
    initializer: Any,
    initargs: Any,
    task_timeout: Any,
    kill_signal: Any,
    force_kill_after: Any,
    max_retries: Any,
    max_tasks_per_worker: Any,
    max_memory_per_worker: Any,
    max_worker_age: Any,
    prefetch: Any,
    max_queue: Any,
    serialization: Any,
    module: Any,
    exec_path: Any,
    exec_argv: Any,
    env: Any,
    cwd: Any,
    warm_start: Any = False,
) -> PoolConfig:
    if max_workers is None:
        max_workers = os.cpu_count() or 1
    workers = _count(max_workers, "max_workers", minimum=1, allow_none=False)
    assert workers is not None
    least = _count(min_workers, "min_workers", minimum=0, allow_none=False) or 0
    if least > workers:
        raise ValueError(f"min_workers ({least}) must not exceed max_workers ({workers})")
    if serialization not in ("pickle", "json"):
        raise ValueError(f"serialization must be 'pickle' or 'json', not {serialization!r}")
    json_mode = serialization == "json"
    if module is not None:
        module = os.fspath(module)
        if not isinstance(module, str):
            raise TypeError(f"module must be a str path, not {module!r}")
        module = os.path.abspath(module)
    if json_mode and module is None:
        raise ValueError("serialization='json' needs module= (the worker file whose functions are called by name)")
    if not json_mode and module is not None:
        raise ValueError("module= is for json workers (serialization='json'); pickle workers take functions")
    node = module is not None and module.endswith(_NODE_SUFFIXES)
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be callable")
    if initializer is not None and json_mode:
        raise ValueError("initializer is for pickle workers; a json worker's module runs its own set-up")
    if not isinstance(initargs, tuple):
        initargs = tuple(initargs)
    argv = [] if exec_argv is None else list(exec_argv)
    if not all(isinstance(a, str) for a in argv):
        raise TypeError("exec_argv must be a sequence of str")
    fork_options: dict[str, Any] = {
        "exec_path": exec_path or ("node" if node else sys.executable),
        "serialization": serialization,
        "kill_tree": True,  # a timeout or abort kills the task's own children too
        "die_with_parent": True,  # a SIGKILLed parent leaves no worker behind
        "kill_signal": kill_signal,
        "force_kill_after": force_kill_after,
        # A result is the caller's own data, however big (as with PPE): the
        # channel's guard against a runaway peer does not apply.
        "max_message_size": math.inf,
    }
    signal_number(kill_signal, "kill_signal")
    positive(force_kill_after, "force_kill_after", allow_zero=True)
    if env is not None:
        fork_options["env"] = dict(env)
    if cwd is not None:
        fork_options["cwd"] = os.fspath(cwd)
    if node:
        fork_options["exec_argv"] = argv
        module_path = os.path.join(_HERE, "worker.js")
        args = [module]
    else:
        # -S (no site): the worker takes the parent's sys.path from its
        # first message, so site's work would be thrown away, and it costs
        # a worker milliseconds of start-up.  Only for the parent's own
        # interpreter, whose sys.path is valid there.
        # With warm_start (Linux) a Python worker is cloned from the warm
        # zygote (childproc._warm) instead, which serves the default flags
        # only: no -S there (the zygote has run site already).
        if type(warm_start) is not bool:
            raise TypeError(f"warm_start must be a bool, not {warm_start!r}")
        if warm_start:
            fork_options["warm_start"] = True
        fast = ["-S"] if not exec_path and not json_mode and not warm_start else []
        if warm_start and not argv:
            # The zygote runs with this interpreter's flags (fork's default
            # exec_argv); a worker cloned from it has them too, and says so.
            argv = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
        fork_options["exec_argv"] = [*argv, *fast, "-c", _BOOT]
        module_path = "childproc-pool-worker"  # sys.argv[1] of python -c
        args = [module] if module is not None else []
    init_message = None
    if not json_mode:
        init: dict[str, Any] = {"sys_path": list(sys.path), "main": _main_script()}
        if initializer is not None:
            # Pickled now: an initializer that cannot cross fails here, not in every worker.
            init["initializer"] = encode_pickle((initializer, initargs))[4:]
        init_message = ("init", init)
    return PoolConfig(
        max_workers=workers,
        min_workers=least,
        idle_timeout=positive(idle_timeout, "idle_timeout"),
        task_timeout=positive(task_timeout, "task_timeout"),
        kill_signal=signal_number(kill_signal, "kill_signal"),
        force_kill_after=positive(force_kill_after, "force_kill_after", allow_zero=True),
        max_retries=_count(max_retries, "max_retries", minimum=0, allow_none=False) or 0,
        max_tasks_per_worker=_count(max_tasks_per_worker, "max_tasks_per_worker", minimum=1),
        max_memory_per_worker=_count(max_memory_per_worker, "max_memory_per_worker", minimum=1),
        max_worker_age=positive(max_worker_age, "max_worker_age"),
        prefetch=_count(prefetch, "prefetch", minimum=1, allow_none=False) or 1,
        max_queue=_count(max_queue, "max_queue", minimum=0),
        json=json_mode,
        node=node,
        module_path=module_path,
        args=args,
        fork_options=fork_options,
        init_message=init_message,
    )
