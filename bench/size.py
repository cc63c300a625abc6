"""How the record grows: bytes per version, event and poll row, and a year of typical churn per 1k objects.

Run: .venv/bin/python bench/size.py [--objects 1000]

A sandbox account (agents, with the sandbox's realistic instructions and tools) is polled into a fresh
SQLite file: a baseline, then edits of 10% of the objects, then unchanged polls. Bytes are counted with
SQLite's `dbstat` (bytes in use per table and its indexes, after folding the WAL in), so they are the
record's own size, not page slack. The year is then worked out from those figures for a churn given on
the command line (default: each object changed twice a month, polled every 5 minutes, 9 kinds).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def used_bytes(path: str) -> dict[str, int]:
    """Bytes in use per table, its indexes included (dbstat), after a WAL checkpoint."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = connection.execute("SELECT name, sum(pgsize - unused) FROM dbstat GROUP BY name").fetchall()
    tables = {name: tbl for name, tbl in connection.execute("SELECT name, tbl_name FROM sqlite_master")}
    connection.close()
    sizes: dict[str, int] = {}
    for name, size in rows:
        table = tables.get(name, name)
        sizes[table] = sizes.get(table, 0) + size
    return sizes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--changes-per-month", type=float, default=2.0)
    parser.add_argument("--interval-minutes", type=float, default=5.0)
    parser.add_argument("--kinds", type=int, default=9)
    args = parser.parse_args(argv)

    from watcher.config.model import parse_config
    from watcher.poll.run import poll_target
    from watcher.record.engine import open_engine
    from watcher.sandbox.server import Sandbox

    n = args.objects
    with Sandbox(assistants=0, agents=n) as sandbox, tempfile.TemporaryDirectory() as folder:
        os.environ["SIZE_KEY"] = sandbox.api_key
        target = parse_config(f'[[targets]]\nname = "size"\nbase_url = "{sandbox.url}"\napi_key_env = "SIZE_KEY"\n'
                              'kinds = ["agents"]\n').targets[0]
        path = os.path.join(folder, "w.db")
        engine = open_engine(f"sqlite:///{path}")
        poll_target(engine, target)
        base = used_bytes(path)
        edited = sandbox.objects("agents")[: n // 10]
        for agent in edited:
            sandbox.edit("agents", agent["id"], instructions=agent.get("instructions", "") + "\nOne more rule.")
        poll_target(engine, target)
        changed = used_bytes(path)
        for _ in range(20):
            poll_target(engine, target)
        quiet = used_bytes(path)
        engine.dispose()

    version = (changed.get("versions", 0) - base.get("versions", 0)) / len(edited)
    event = (changed.get("events", 0) - base.get("events", 0)) / len(edited)
    poll = (quiet.get("polls", 0) - changed.get("polls", 0)) / 20
    baseline = sum(base.values())
    per_year_changes = n * args.changes_per_month * 12
    polls_per_year = 365 * 24 * 60 / args.interval_minutes * args.kinds
    year = per_year_changes * (version + event) + polls_per_year * poll
    print(f"record of {n:,} agents (sandbox content): baseline {baseline / 1e6:.1f} MB "
          f"({baseline / n:,.0f} B per object)")
    print(f"  one new version: {version:,.0f} B    one event: {event:,.0f} B    one poll row: {poll:,.0f} B")
    print(f"a year at {args.changes_per_month:g} changes per object per month, a poll every "
          f"{args.interval_minutes:g} min of {args.kinds} kinds:")
    print(f"  versions and events: {per_year_changes * (version + event) / 1e6:,.1f} MB; "
          f"polls: {polls_per_year * poll / 1e6:,.1f} MB; total {year / 1e6:,.1f} MB per 1k objects"
          if n == 1000 else f"  total {year / 1e6:,.1f} MB")
    print("  `prune --keep-days N` removes acknowledged history and old polls; see docs/retention.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
