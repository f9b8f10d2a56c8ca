"""Forked by compare / bench_ipc.py (fork to first message): sends one
message as soon as it runs, then ends (no 'message' listener keeps it alive)."""

from childproc import process

process.send("ready")
