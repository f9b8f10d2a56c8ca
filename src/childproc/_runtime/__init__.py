"""The runtime: the reactor interface, the private loop, the asyncio adapter, the event
emitter, fork safety and exit watching (one module per platform mechanism).

It may import ``childproc._spawn`` (the native boundary), never the streams, the channel or the
child (docs/architecture.md).
"""
