"""The ``env`` option: the child's environment as the C core reads it.

The result of :func:`env_block` is three values for the :class:`SpawnPlan`:

* the *env blob*: every entry as ``KEY=VALUE`` followed by a NUL, back to
  back, so C can point an ``envp`` array into it without copying.  ``None``
  means "the parent's own ``environ``, as it is" -- the fast path, taken
  when no ``env`` is given and there is no IPC channel; test it with ``is
  None``, because an empty environment is ``b''``;
* the number of entries in the blob;
* the ``PATH`` the exec search uses, taken from the environment the child
  gets, or None (no PATH there) for the C default list.

Keys and values follow Node's ``normalizeSpawnArguments``: ``None`` values
are skipped, other values that are not str or bytes are stringified
(``42`` -> ``'42'``, ``True`` -> ``'true'`` as JavaScript writes it; a
path-like gives its path), keys with ``str()``, a NUL
byte in a key or a value raises Node's ``options.env['KEY']`` error.  On
Windows keys are case-insensitive: the first key in sorted order wins among
those that differ only in case, as in Node, and ``Path`` counts as ``PATH``.
``str`` keys and values are encoded as :func:`os.fsencode` does.

``fork`` (any call with an ``'ipc'`` slot) appends ``NODE_CHANNEL_FD`` and
``NODE_CHANNEL_SERIALIZATION_MODE`` to the environment, building it from
:data:`os.environ` when no ``env`` was given.  Deliberate difference from
Node: a stale pair of those variables in the environment -- a child that
forks again inherits its own -- is replaced rather than duplicated.

Deliberate difference from Node: ``env`` must be a mapping (Node iterates
any object, so ``env: 5`` gives an empty environment).

The platform switch ``win`` is a parameter, not read here, so that the
caller's switch (which the tests flip) decides for the whole plan.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .encoding import NUL_MESSAGE, fs_bytes, fs_text
from .._messages import invalid_arg_type, invalid_arg_value

__all__ = ["environ_path", "env_block"]

_CHANNEL_KEYS = frozenset({"NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE",
                           b"NODE_CHANNEL_FD", b"NODE_CHANNEL_SERIALIZATION_MODE"})


def environ_path(win: bool) -> bytes | None:
    """The parent's PATH as bytes (None when unset), for the fast path."""
    if win:
        path = os.environ.get("PATH")
        return None if path is None else fs_bytes(path)
    return os.environb.get(b"PATH")


def env_block(env: Any, ipc_fd: int, serialization: str, win: bool) -> tuple[bytes | None, int, bytes | None]:
    """``(env_blob, envc, path)`` for the ``env`` option (None: not given)
    and the IPC index (-1: no channel); see the module docstring."""
    if env is None and ipc_fd < 0:
        return None, 0, environ_path(win)  # the fast path: C uses environ as it is
    pairs, path = _environ_pairs(win) if env is None else _env_pairs(env, ipc_fd >= 0, win)
    if ipc_fd >= 0:
        pairs.append(b"NODE_CHANNEL_FD=%d" % ipc_fd)
        pairs.append(b"NODE_CHANNEL_SERIALIZATION_MODE=" + serialization.encode())
    return (b"\0".join(pairs) + b"\0" if pairs else b""), len(pairs), path


def _env_items(env: Any, win: bool) -> list[tuple[Any, Any]]:
    if not isinstance(env, Mapping):
        # Deliberate: Node iterates any object (env: 5 gives an empty env).
        raise invalid_arg_type("options.env", "object", env)
    items = list(env.items())
    if win:  # keys are case-insensitive: keep the first in sorted order, as Node does
        by_upper: dict[str, tuple[Any, Any]] = {}
        for key, value in sorted(items, key=lambda kv: _key_text(kv[0])):
            by_upper.setdefault(_key_text(key).upper(), (key, value))
        items = list(by_upper.values())
    return items


def _key_text(key: Any) -> str:
    return fs_text(key) if isinstance(key, (str, bytes)) else str(key)


def _env_pairs(env: Any, drop_channel: bool, win: bool) -> tuple[list[bytes], bytes | None]:
    """``KEY=VALUE`` entries for ``env`` plus the PATH among them.

    ``None`` values are skipped; other non-str/bytes values are stringified
    (``42`` -> ``'42'``), as Node does.  NUL bytes in keys or values raise
    Node's ``options.env['KEY']`` errors."""
    pairs: list[bytes] = []
    path: bytes | None = None
    for key, value in _env_items(env, win):
        if value is None:
            continue
        if not isinstance(key, (str, bytes)):
            key = str(key)
        name = f"options.env['{fs_text(key)}']"
        if ("\0" if isinstance(key, str) else b"\0") in key:
            raise invalid_arg_value(name, key, NUL_MESSAGE)
        if not isinstance(value, (str, bytes)):
            if isinstance(value, bool):
                value = "true" if value else "false"  # Node's `${value}`
            else:
                value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        if ("\0" if isinstance(value, str) else b"\0") in value:
            raise invalid_arg_value(name, value, NUL_MESSAGE)
        if drop_channel and key in _CHANNEL_KEYS:
            continue
        kb = fs_bytes(key)
        vb = fs_bytes(value)
        if kb == b"PATH" or (win and kb.upper() == b"PATH"):
            path = vb
        pairs.append(kb + b"=" + vb)
    return pairs, path


def _environ_pairs(win: bool) -> tuple[list[bytes], bytes | None]:
    """The parent's environment minus the channel variables, unchecked."""
    if win:
        return _env_pairs(dict(os.environ), True, win)
    pairs = [k + b"=" + v for k, v in os.environb.items() if k not in _CHANNEL_KEYS]
    return pairs, os.environb.get(b"PATH")
