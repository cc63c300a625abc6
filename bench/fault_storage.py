"""The database read-only, full and unreachable, then back: the run that meets it, and the one after."""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from pathlib import Path

import hostile
from child import KEY, Edits, Record, Row, Run, edit_round, mib, run_watcher, secs, verdict, write_config
from sqlalchemy import text

from watcher.sandbox.server import Sandbox


class ReadOnly:
    """Makes a directory read-only and back: a tmpfs remounted ro when root (chmod does not stop root), else chmod."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.mounted = False

    @property
    def how(self) -> str:
        if self.mounted:
            return "a tmpfs remounted read-only before the run"
        return "chmod a-w before the run" + (" (which root ignores: no mount here)" if os.geteuid() == 0 else "")

    def __enter__(self) -> ReadOnly:
        if os.geteuid() == 0:
            mount = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(self.directory)]
            self.mounted = subprocess.run(mount, capture_output=True).returncode == 0
        return self

    def protect(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.directory)], check=True, capture_output=True)
            return
        for path in self.directory.iterdir():
            path.chmod(0o444)
        self.directory.chmod(0o555)

    def release(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(self.directory)], check=True, capture_output=True)
            return
        self.directory.chmod(0o755)
        for path in self.directory.iterdir():
            path.chmod(0o644)

    def __exit__(self, *_exc) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.directory)], capture_output=True)


def _fault_row(name: str, fault: Run, recovery: Run, once: int, edits: Edits, extra: list[str]) -> Row:
    """One database fault: the run that met it (one line, exit 1, nothing recorded) and the run after it."""
    traceback = "Traceback" in fault.err
    one_line = fault.code in (1, 2) and not traceback and fault.error_lines <= 2  # exit 2: the URL is unusable
    ok = one_line and recovery.code == 0 and once == edits.count()
    return Row(name, f"{fault.exit}, then {recovery.exit}", secs(fault), mib(fault), verdict(ok), [
        *extra,
        f"the failed run: stdout {fault.out.strip().splitlines()[:2]}; stderr {fault.error_lines} lines"
        + (" (a traceback)" if traceback else "") + (f", first: {fault.first_error}" if fault.err.strip() else ""),
        f"recovery: the edits made during the fault recorded exactly once: {once}/{edits.count()}",
    ])


def read_only(args, rng: random.Random) -> Row:
    with tempfile.TemporaryDirectory(prefix="faults-ro-") as tmp, Sandbox(assistants=50, agents=10, api_key=KEY) as api:
        directory = Path(tmp) / "db"
        directory.mkdir()
        with ReadOnly(directory) as readonly:
            url = f"sqlite:///{directory}/watcher.db"
            config = write_config(Path(tmp), api.url, url)
            run_watcher(config, "snapshot", cap=args.cap)
            edits = edit_round(api, rng, 1)
            readonly.protect()
            try:
                fault = run_watcher(config, "snapshot", cap=args.cap)
            finally:
                readonly.release()
            recovery = run_watcher(config, "snapshot", cap=args.cap)
            record = Record(url)
            once = edits.recorded_once(record)
            record.close()
    return _fault_row("database read-only", fault, recovery, once, edits, [f"made read-only with {readonly.how}"])


def full(args, rng: random.Random) -> Row:
    limit = 8 * 1024
    with tempfile.TemporaryDirectory(prefix="faults-full-") as tmp, \
            Sandbox(assistants=50, agents=10, api_key=KEY) as api:
        url = f"sqlite:///{tmp}/watcher.db"
        config = write_config(Path(tmp), api.url, url)
        run_watcher(config, "snapshot", cap=args.cap)
        edits = edit_round(api, rng, 1)
        fault = run_watcher(config, "snapshot", cap=args.cap, fsize=limit)
        record = Record(url)
        intact = record.integrity_ok()
        recovery = run_watcher(config, "snapshot", cap=args.cap)
        once = edits.recorded_once(record)
        record.close()
    return _fault_row("database full", fault, recovery, once, edits, [
        f"RLIMIT_FSIZE {limit // 1024} KiB in the child (no file, WAL or spool may grow past it); "
        f"integrity_check after the failed run: {'ok' if intact else 'NOT ok'}"])


def unreachable(args, rng: random.Random) -> Row:
    from sqlalchemy.engine import make_url

    if not args.postgres:
        return Row("PostgreSQL unreachable", "-", "-", "-", "SKIP", ["needs --postgres URL (its schema is dropped)"])
    real = make_url(args.postgres)
    gate = hostile.Gate((real.host or "127.0.0.1", real.port or 5432))
    gated = real.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False)
    record = Record(args.postgres)
    with record.engine.begin() as connection:  # a fresh, unmigrated database, as the test fixtures do
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    with tempfile.TemporaryDirectory(prefix="faults-pg-") as tmp, Sandbox(assistants=50, agents=10, api_key=KEY) as api:
        config = write_config(Path(tmp), api.url, gated)
        gate.open()
        run_watcher(config, "snapshot", cap=args.cap)
        gate.close()
        edits = edit_round(api, rng, 1)
        fault = run_watcher(config, "snapshot", cap=args.cap)
        gate.open()
        recovery = run_watcher(config, "snapshot", cap=args.cap)
        gate.close()
        once = edits.recorded_once(record)
    record.close()
    return _fault_row("PostgreSQL unreachable", fault, recovery, once, edits,
                      [f"port {gate.port} closed (connection refused), then forwarding to {real.host}:{real.port}"])
