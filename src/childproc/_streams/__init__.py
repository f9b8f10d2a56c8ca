"""Streams: the fd stream base, Readable (with its iteration and exec-capture layers),
Writable, the splice pump and line splitting.

It may import ``childproc._spawn`` and ``childproc._runtime``, never the channel or the child
(docs/architecture.md).
"""
