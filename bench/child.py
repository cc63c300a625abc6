"""A watcher in a child process, and what it leaves in its database: the machinery of bench/faults.py.

`run_watcher` runs `python -m watcher …` to its end or kills it, and reports its exit code, wall time
and peak RSS (`ru_maxrss` from wait4: that child alone). `Record` reads a watcher database with plain
SQL; `Edits` are out-of-band edits on the sandbox that the record must hold exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from watcher.demo import SmtpSink
from watcher.sandbox.server import Sandbox

KEY_ENV = "WATCHER_FAULTS_KEY"
KEY = "sk-faults-bench"
MIB = 2**20
# Runs a command with a file-size limit: RLIMIT_FSIZE set in the child, then exec (no preexec_fn: threads here).
_WITH_FSIZE = ("import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
               "os.execv(sys.argv[2], sys.argv[2:])")


_tree: list[str] = []  # another source tree for the children, when set


def use_tree(path: str | None) -> str:
    """Make every child import `watcher` from the source tree at `path` (None: this one); returns which."""
    _tree[:] = [str(Path(path).resolve())] if path else []
    return _tree[0] if _tree else str(Path(__file__).resolve().parent.parent)


# --- one child process ---------------------------------------------------------------------------


@dataclass
class Run:
    """One watcher process as it ended: exit code (None when the bench killed it), time, peak RSS, output."""

    code: int | None
    seconds: float
    peak: int
    out: str
    err: str
    killed: str | None = None  # "kill -9" (on purpose) or "cap" (it ran past the wall-clock cap)

    @property
    def exit(self) -> str:
        return {"cap": f"killed at cap ({self.seconds:.0f} s)", "kill -9": "killed"}.get(self.killed, str(self.code))

    @property
    def first_error(self) -> str:
        lines = [line for line in self.err.splitlines() if line.strip()]
        return lines[0][:160] if lines else ""

    @property
    def error_lines(self) -> int:
        return len(self.err.splitlines())


def run_watcher(config: Path, *args: str, cap: float, kill_when=None, term_after: float | None = None,
                fsize: int | None = None) -> Run:
    """Run `python -m watcher --config CONFIG ARGS` to its end, or kill it: when `kill_when(elapsed)` says
    so (SIGKILL), after `term_after` seconds (SIGTERM, as systemd stops it), or past `cap` (SIGKILL)."""
    command = [sys.executable, "-m", "watcher", "--config", str(config), *args]
    if fsize is not None:
        command = [sys.executable, "-c", _WITH_FSIZE, str(fsize), *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_"))}
    env[KEY_ENV] = KEY
    if _tree:
        env["PYTHONPATH"] = _tree[0]  # the children import `watcher` from there
    started = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, cwd=config.parent)
    out, err = _drain(process.stdout), _drain(process.stderr)
    killed, termed = None, False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.monotonic() - started
        if killed is None and kill_when is not None and kill_when(elapsed):
            os.kill(process.pid, signal.SIGKILL)
            killed = "kill -9"
        elif killed is None and elapsed >= cap:
            os.kill(process.pid, signal.SIGKILL)
            killed = "cap"
        elif term_after is not None and not termed and elapsed >= term_after:
            os.kill(process.pid, signal.SIGTERM)
            termed = True
        time.sleep(0.002)
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    code = None if killed else process.returncode
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return Run(code, seconds, peak, out.text(), err.text(), killed)


class _drain:
    """Reads a pipe to its end in a thread, so a chatty child never blocks on a full pipe."""

    def __init__(self, pipe):
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        while chunk := pipe.read1(65536):
            self._chunks.append(chunk)
        pipe.close()

    def text(self) -> str:
        self._thread.join(10)
        return b"".join(self._chunks).decode("utf-8", "replace")


# --- configs, databases and what they hold ---------------------------------------------------------------


def write_config(directory: Path, api_url: str, database: str, *, smtp: SmtpSink | None = None,
                 kinds: tuple[str, ...] = ("assistants", "agents"), schedule: str = "", alerts: str = "") -> Path:
    path = directory / "config.toml"
    mail = (f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\ntimeout = "10s"\n'
            f'sender = "Watcher <watcher@example.com>"\n\n[alerts]\nwatchlist = ["ops@example.com"]\n{alerts}\n'
            if smtp else "")
    path.write_text(f'[database]\nurl = "{database}"\n\n[schedule]\njitter = "0s"\n{schedule}\n\n'
                    f'[[targets]]\nname = "bench"\nbase_url = "{api_url}"\napi_key_env = "{KEY_ENV}"\n'
                    f'kinds = {json.dumps(list(kinds))}\n\n{mail}')
    return path


def config_accepts(snippet: str) -> bool:
    """Whether this watcher's config knows a [schedule] key (the lead's fixes add some)."""
    from watcher.config.model import parse_config
    from watcher.errors import ConfigError

    try:
        parse_config(f"[schedule]\n{snippet}\n\n[[targets]]\nname = \"x\"\napi_key_env = \"{KEY_ENV}\"\n")
    except ConfigError:
        return False
    return True


class Record:
    """Reads a watcher database (SQLite or PostgreSQL) with plain SQL, to check what a run left."""

    def __init__(self, url: str):
        self.engine = create_engine(url, poolclass=NullPool)  # no connection held open between checks

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]

    def integrity_ok(self) -> bool:
        """SQLite's integrity_check; on PostgreSQL (whose crash safety is the server's) that every table reads."""
        if self.engine.dialect.name == "sqlite":
            return self.rows("PRAGMA integrity_check") == [("ok",)]
        tables = ("targets", "resources", "versions", "events", "polls", "alerts", "outbox")
        return all(self.rows(f"SELECT count(*) FROM {table}") for table in tables)  # noqa: S608 - our own names

    def duplicates(self) -> tuple[int, int]:
        """Versions sharing (resource, number); events sharing (resource, change, from, to)."""
        versions = self.rows("SELECT resource_id, number FROM versions GROUP BY resource_id, number "
                             "HAVING count(*) > 1")
        events = self.rows("SELECT resource_id FROM events GROUP BY resource_id, change, from_version, to_version "
                           "HAVING count(*) > 1")
        return len(versions), len(events)

    def polls(self) -> list[tuple]:
        return self.rows("SELECT id, kind, status, error FROM polls ORDER BY id")

    def events(self, change: str | None = None) -> int:
        if change is None:
            return self.rows("SELECT count(*) FROM events")[0][0]
        return self.rows("SELECT count(*) FROM events WHERE change = :c", c=change)[0][0]

    def unsent(self) -> set[str]:
        return {row[0] for row in self.rows("SELECT message_id FROM outbox WHERE sent_at IS NULL")}

    def message_ids(self) -> set[str]:
        return {row[0] for row in self.rows("SELECT message_id FROM outbox")}

    def expire_claims(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("UPDATE outbox SET claimed_until = NULL WHERE sent_at IS NULL"))

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class Edits:
    """One round of out-of-band edits on the sandbox, and whether the record holds each exactly once."""

    round: int
    modified: list[str] = field(default_factory=list)
    created: str = ""
    deleted: str = ""

    def count(self) -> int:
        return len(self.modified) + 2

    def recorded_once(self, record: Record) -> int:
        """How many of this round's edits have exactly one version and one event."""
        ok = sum(1 for object_id in self.modified if self._modified_once(record, object_id))
        created = record.rows("SELECT count(*) FROM events e JOIN resources r ON r.id = e.resource_id "
                              "WHERE r.remote_id = :id AND e.change = 'created'", id=self.created)
        deleted = record.rows("SELECT count(*) FROM events e JOIN resources r ON r.id = e.resource_id "
                              "WHERE r.remote_id = :id AND e.change = 'deleted' AND r.deleted_at IS NOT NULL",
                              id=self.deleted)
        return ok + (created == [(1,)]) + (deleted == [(1,)])

    def _modified_once(self, record: Record, object_id: str) -> bool:
        versions = [number for number, body in record.rows(
            "SELECT v.number, v.body FROM versions v JOIN resources r ON r.id = v.resource_id "
            "WHERE r.remote_id = :id", id=object_id)
            if (json.loads(body).get("metadata") or {}).get("round") == str(self.round)]
        if len(versions) != 1:
            return False
        events = record.rows("SELECT count(*) FROM events e JOIN resources r ON r.id = e.resource_id "
                             "WHERE r.remote_id = :id AND e.change = 'modified' AND e.to_version = :n",
                             id=object_id, n=versions[0])
        return events == [(1,)]


def edit_round(api: Sandbox, rng: random.Random, number: int, modify: int = 3) -> Edits:
    """Modify `modify` assistants, create one, delete one: each a distinct, checkable edit."""
    live = [o["id"] for o in api.objects("assistants")]
    chosen = rng.sample(live, modify + 1)
    edits = Edits(number, modified=chosen[:modify], deleted=chosen[modify])
    for object_id in edits.modified:
        api.edit("assistants", object_id, metadata={"round": str(number)})
    api.remove("assistants", edits.deleted)
    edits.created = api.add("assistants", name=f"faults round {number}", model="gpt-4o",
                            metadata={"round": str(number)})["id"]
    return edits


def message_ids(sink: SmtpSink) -> list[str]:
    return [str(mail.message["Message-ID"]).strip() for mail in list(sink.messages)]


# --- a row of the table ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    exit: str
    seconds: str
    peak: str
    verdict: str
    details: list[str]


def mib(run: Run) -> str:
    return f"{run.peak / MIB:.0f}"


def secs(run: Run) -> str:
    return f"{run.seconds:.1f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(rows: list[Row]) -> None:
    """The fault, the exit code(s), wall time and peak RSS of the run that met it, its verdict, then details."""
    print(f"{'fault':<34} {'exit':<26} {'wall s':>8} {'peak MiB':>9}  verdict")
    print("-" * 90)
    for row in rows:
        print(f"{row.name:<34} {row.exit:<26} {row.seconds:>8} {row.peak:>9}  {row.verdict}")
        for line in row.details:
            print(f"    {line}")
