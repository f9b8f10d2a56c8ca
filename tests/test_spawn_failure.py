"""A failed spawn becomes its error in one place (childproc._spawn.failure),
the same for the async and the sync forms: Node's message and ``.path``, and
``.filename`` naming what was missing -- the cwd when changing into it failed,
as :mod:`subprocess` reports it.  (The Node comparison of ``.path`` and the
message is in test_sync.py and test_spawn.py.)"""

from __future__ import annotations

import pickle

import childproc as cp

MISSING = "/nonexistent-childproc-failure-dir"


def _async_error(*args: object, **options: object) -> cp.SpawnError:
    errors: list[cp.SpawnError] = []
    child = cp.spawn(*args, **options)
    child.on("error", errors.append)
    child.wait()
    assert len(errors) == 1
    return errors[0]


def test_missing_cwd_names_the_cwd_in_filename_sync() -> None:
    err = cp.spawn_sync("ls", ["-l"], cwd=MISSING).error
    assert isinstance(err, FileNotFoundError)
    assert str(err) == "spawnSync ls ENOENT"
    assert (err.path, err.filename, err.spawnargs) == ("ls", MISSING, ["-l"])


def test_missing_cwd_names_the_cwd_in_filename_async() -> None:
    err = _async_error("ls", ["-l"], cwd=MISSING)
    assert str(err) == "spawn ls ENOENT"
    assert (err.path, err.filename, err.spawnargs) == ("ls", MISSING, ["-l"])


def test_missing_program_names_the_program() -> None:
    for err in (cp.spawn_sync("no-such-program-childproc").error, _async_error("no-such-program-childproc")):
        assert err is not None
        assert err.path == err.filename == "no-such-program-childproc"


def test_the_error_survives_pickling_with_its_filename() -> None:
    err = cp.spawn_sync("ls", cwd=MISSING).error
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert (str(again), again.path, again.filename, again.errno) == (str(err), "ls", MISSING, err.errno)


def test_exec_sync_raises_it_with_the_cwd() -> None:
    try:
        cp.exec_file_sync("ls", cwd=MISSING)
    except cp.SpawnError as err:
        assert (err.path, err.filename) == ("ls", MISSING)
    else:  # pragma: no cover
        raise AssertionError("no error")
