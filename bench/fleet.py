"""A fleet of daemons on one database: do 3 processes poll what 1 does, no more, and on time?

Starts a sandbox (its own process, --objects assistants) and --targets targets on it (one
sandbox serves them all: each target is a name with the same key), empties --database, lets
one daemon (`assistant-watcher -v run`) record every baseline, then measures --rounds
intervals of steady polling with 1 process, and again with 3 processes on the same database.
For each it prints:

- polls per interval (complete polls recorded in the window ÷ rounds; the schedule says one per
  target per interval) and list requests per interval (counted by the sandbox); where the window's
  edges fall moves these by up to one poll per target, so short --rounds are rough;
- polls that came less than half an interval after the same (target, kind)'s previous one: work
  done twice, whatever the window (target 0);
- p50/p95 poll lag behind schedule (the daemons' own "due N s ago" at each claim);
- peak RSS per process (VmHWM; the 1-process phase includes nothing but steady polls too:
  the baseline daemon is a separate process, reported on its own line);
- database connections per process, peak (pg_stat_activity by application_name; PostgreSQL only).

    .venv/bin/python bench/fleet.py --database postgresql+psycopg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/fleet.py --database ... --targets 20 --objects 100 --interval 10 --rounds 3

THE DATABASE IS EMPTIED FIRST (every table dropped). The full size (200 targets x 500 objects,
60 s interval) takes about 15 minutes on 2 CPUs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

KEY_ENV = "WATCHER_BENCH_KEY"
KEY = "sk-bench-fleet"
LAG = re.compile(r"polling .*, due ([0-9.]+) s ago")


def serve_sandbox(connection, objects: int) -> None:
    """In a child process: a sandbox with `objects` assistants, answering "count" and "stop" on `connection`."""
    from watcher.sandbox.server import Sandbox

    with Sandbox(assistants=objects, agents=0, api_key=KEY) as sandbox:
        connection.send(sandbox.url)
        while True:
            command = connection.recv()
            if command == "count":
                connection.send(sandbox.count_requests())
            else:
                return


def empty(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


def write_config(folder: Path, url: str, sandbox_url: str, targets: int, interval: float, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql"):  # one application_name per process: connections counted per process
        url += ("&" if "?" in url else "?") + f"application_name={name}"
    blocks = "".join(f'[[targets]]\nname = "t{n:03d}"\n\n' for n in range(targets))
    path = folder / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n\n[schedule]\ninterval = "{interval:g}s"\njitter = "0s"\n\n'
                    f'[target_defaults]\nbase_url = "{sandbox_url}"\napi_key_env = "{KEY_ENV}"\n'
                    f'kinds = ["assistants"]\n\n{blocks}')
    return path


class Daemon:
    def __init__(self, config: Path):
        self.log_path = config.parent / "daemon.log"
        self._log = open(self.log_path, "wb")
        env = {**os.environ, KEY_ENV: KEY}
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
            env.pop(name, None)
        self.process = subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(config), "-v", "run"],
                                        env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def lags(self, since: int) -> list[float]:
        with open(self.log_path, "rb") as file:
            file.seek(since)
            return [float(m.group(1)) for m in LAG.finditer(file.read().decode("utf-8", "replace"))]

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        code = self.process.wait(60)
        self._log.close()
        return code


def complete_polls(engine) -> int:
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT count(*) FROM polls WHERE status = 'complete'")).scalar()
        except Exception:  # not migrated yet
            connection.rollback()
            return 0


def last_poll_id(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT COALESCE(max(id), 0) FROM polls")).scalar()


def polls_too_soon(engine, after_id: int, interval: float) -> int:
    """Polls of a (target, kind) that came less than half an interval after its previous one: work done twice.

    Unlike a count of polls in the window, this does not depend on where the window's edges fall.
    """
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT target_id, kind, started_at FROM polls WHERE id > :after "
                                       "AND status = 'complete' ORDER BY target_id, kind, started_at"),
                                  {"after": after_id}).all()
    too_soon = 0
    for previous, row in zip(rows, rows[1:]):
        if (previous[0], previous[1]) == (row[0], row[1]):
            too_soon += (_moment(row[2]) - _moment(previous[2])).total_seconds() < interval / 2
    return too_soon


def _moment(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value  # SQLite hands back text


def connections(engine) -> dict[str, int]:
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT application_name, count(*) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND application_name LIKE 'fleet-%' "
                                       "GROUP BY application_name")).all()
    return dict(rows)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def baseline(folder: Path, args, sandbox_url: str, engine, count) -> None:
    started, requests = time.monotonic(), count()
    daemon = Daemon(write_config(folder / "baseline", args.database, sandbox_url, args.targets, args.interval,
                                 "fleet-baseline"))
    wait_for(lambda: complete_polls(engine) >= args.targets, 3600, "every baseline")
    rss = daemon.peak_rss_mib()
    daemon.stop()
    daemon.wait()
    print(f"baseline: {args.targets} targets x {args.objects} objects recorded by 1 process in "
          f"{time.monotonic() - started:.1f} s, {count() - requests} list requests, peak RSS {rss:.0f} MiB")


def phase(processes: int, folder: Path, args, sandbox_url: str, engine, count) -> dict:
    daemons = [Daemon(write_config(folder / f"{processes}-{n}", args.database, sandbox_url, args.targets,
                                   args.interval, f"fleet-{processes}-{n}")) for n in range(processes)]
    time.sleep(max(args.interval, 3.0))  # every process up and in step with the schedule
    offsets = [d.log_size() for d in daemons]
    polls, requests, first_id = complete_polls(engine), count(), last_poll_id(engine)
    peak: dict[str, int] = {}
    window = args.rounds * args.interval
    ends = time.monotonic() + window
    while time.monotonic() < ends:
        for name, number in connections(engine).items():
            peak[name] = max(peak.get(name, 0), number)
        time.sleep(min(1.0, max(ends - time.monotonic(), 0)))
    polls, requests = complete_polls(engine) - polls, count() - requests
    twice = polls_too_soon(engine, first_id, args.interval)
    per_daemon = [d.lags(offset) for d, offset in zip(daemons, offsets)]  # one lag line per target claimed
    lags = sorted(lag for claimed in per_daemon for lag in claimed)
    rss = [d.peak_rss_mib() for d in daemons]
    for d in daemons:
        d.stop()
    codes = [d.wait() for d in daemons]
    return {"processes": processes, "polls": polls / args.rounds, "requests": requests / args.rounds,
            "p50": statistics.median(lags) if lags else float("nan"),
            "p95": lags[int(0.95 * (len(lags) - 1))] if lags else float("nan"), "claims": len(lags),
            "rss": rss, "connections": [peak.get(f"fleet-{processes}-{n}", 0) for n in range(processes)],
            "codes": codes, "twice": twice, "shares": [len(claimed) for claimed in per_daemon]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", required=True, help="a database URL to EMPTY and use (PostgreSQL for a fleet)")
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--objects", type=int, default=500, help="assistants on the sandbox (every target lists them)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds")
    parser.add_argument("--rounds", type=int, default=3, help="intervals measured per phase")
    args = parser.parse_args()

    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve_sandbox, args=(theirs, args.objects),
                                                          daemon=True)
    server.start()
    sandbox_url = ours.recv()

    def count() -> int:
        ours.send("count")
        return ours.recv()

    print(f"fleet: {args.targets} targets x {args.objects} assistants, interval {args.interval:g} s, "
          f"{args.rounds} intervals measured per phase, on {args.database.split('://')[0]}")
    empty(args.database)
    engine = create_engine(args.database)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
            baseline(Path(folder), args, sandbox_url, engine, count)
            results = [phase(n, Path(folder), args, sandbox_url, engine, count) for n in (1, 3)]
    finally:
        engine.dispose()
        ours.send("stop")
        server.join(10)
    print(f"{'processes':>9} {'polls/interval':>14} {'requests/interval':>17} {'lag p50 s':>9} {'lag p95 s':>9} "
          f"{'peak RSS MiB per process':>26} {'DB connections per process':>27}")
    for r in results:
        print(f"{r['processes']:>9} {r['polls']:>14.1f} {r['requests']:>17.1f} {r['p50']:>9.3f} {r['p95']:>9.3f} "
              f"{' '.join(f'{v:.0f}' for v in r['rss']):>26} {' '.join(map(str, r['connections'])):>27}")
    one, three = results
    print(f"3 processes / 1 process: polls {three['polls'] / max(one['polls'], 1e-9):.2f}x, list requests "
          f"{three['requests'] / max(one['requests'], 1e-9):.2f}x (target: within 1.1x); expected polls per "
          f"interval: {args.targets}; exit codes {one['codes'] + three['codes']}")
    print(f"targets polled by each of the 3 processes in the window: {' '.join(map(str, three['shares']))} "
          "(spread: none should be 0)")
    print(f"polls less than half an interval after the same pair's previous one (work done twice; target 0): "
          f"{one['twice']} with 1 process, {three['twice']} with 3 "
          f"(the window's edges can move the counts above by up to one poll per target at short --rounds)")


if __name__ == "__main__":
    main()
