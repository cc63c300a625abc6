"""Who may poll or record (target, kind), or write the git history, now: PostgreSQL advisory locks, or a
file lock beside SQLite.

Locks order processes; they are not what keeps the record true (a lost lock must not lose or
double a change): recording refuses a stale write on its own (see `watcher.poll.recording`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine


def lock_key(*parts: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for `parts`."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def poll_lock(engine: Engine, target: str, kind: str) -> Iterator[None]:
    """Held while one process polls (target, kind): others wait, then see its result.

    On PostgreSQL the lock lives on its own connection, which a network blip or a pooler may
    drop mid-poll; recording does not trust it (see watcher.poll.recording), and a lock that was lost
    is not an error when released.
    """
    with _held(engine, ("poll", target, kind), f"poll-{target}-{kind}"):
        yield


@contextlib.contextmanager
def export_lock(engine: Engine) -> Iterator[None]:
    """Held while one process writes the record's git history (`export git`): one writer at a time."""
    with _held(engine, ("export", "git"), "export-git"):
        yield


@contextlib.contextmanager
def _held(engine: Engine, parts: tuple[str, ...], file_name: str) -> Iterator[None]:
    """A session-level advisory lock on its own PostgreSQL connection, or a file lock beside SQLite."""
    if engine.dialect.name == "postgresql":
        key = lock_key(*parts)
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            connection.commit()
            try:
                yield
            finally:
                _unlock(connection, key)
        return
    with _file_lock(engine, file_name):
        yield


def _unlock(connection, key: int) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        connection.commit()
    except Exception:  # the connection died, and the lock with it
        connection.invalidate()


@contextlib.contextmanager
def _file_lock(engine: Engine, name: str) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = Path(database).expanduser().resolve()  # one file, one lock, however its path was spelled
    # One hidden folder beside the database, not a file per (target, kind) in the user's folder.
    folder = path.with_name(f".{path.name}.locks")
    folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / f"{safe}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
