"""The IPC channel: the wire format, the channel with Node's handle protocol, and the
child side (``childproc.process``).

It may import ``childproc._runtime`` and ``childproc._spawn``, never the streams or the child
(docs/architecture.md).  A forked child imports this package first, so its modules keep their
imports few.
"""
