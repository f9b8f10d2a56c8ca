"""The warm start of ``fork(..., warm_start=True)`` (Linux): a zygote, an
interpreter that has started and imported childproc already, clones itself
into each new child with ``clone(CLONE_PARENT)``, so the child is still ours
(docs/architecture.md, "Warm start").  :mod:`.client` is the parent's side,
:mod:`.server` the zygote's."""

__all__ = ["SOCKET_FD", "SETSID", "SETPGROUP", "DIE_WITH_PARENT"]

SOCKET_FD = 3  # where the zygote finds its request socket
# Request flags.
SETSID, SETPGROUP, DIE_WITH_PARENT = 1, 2, 4
