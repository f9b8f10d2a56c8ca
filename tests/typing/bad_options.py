"""What ``mypy --strict`` must reject: tests/test_typing.py expects exactly
these two errors, on the two marked lines.  Never run."""

import childproc as cp

cp.spawn("ls", timout=5)  # error: a misspelt option
cp.exec_sync("ls", timeout="5")  # error: a wrong-typed timeout
