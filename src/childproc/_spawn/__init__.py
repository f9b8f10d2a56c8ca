"""Spawning: options, stdio, env, encoding and signals turned into a plan (pure data), the
native boundary (the only module that imports the compiled core) and the ``*_sync`` forms.

Imports run one way: this package uses only ``childproc._errors`` and ``childproc._abort``
(docs/architecture.md).
"""
