"""Edit-to-inbox latency of the running daemon: from an out-of-band edit to SMTP acceptance.

Starts the sandbox API and an SMTP server in this process and `assistant-watcher run` as a
subprocess with a 2-second interval, then makes 20 out-of-band edits one after another,
each at a random moment of the poll cycle, and times each from the edit to the moment the
SMTP server accepted its alert. Prints p50 and p95 against the target p95 <= interval + 5 s.

    .venv/bin/python bench/latency.py [--edits 20] [--interval 2]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from watcher.demo import SmtpSink
from watcher.sandbox.server import Sandbox

KEY_ENV = "ASSISTANT_WATCHER_BENCH_KEY"
SLACK = 5.0  # the target: p95 <= interval + SLACK


def write_config(directory: Path, api_url: str, smtp_port: int, interval: float) -> Path:
    path = directory / "config.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{directory / 'watcher.db'}"

[schedule]
interval = "{int(interval * 1000)}ms"
jitter = "0s"

[[targets]]
name = "bench"
base_url = "{api_url}"
api_key_env = "{KEY_ENV}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "Watcher <watcher@example.com>"

[alerts]
watchlist = ["ops@example.com"]
""")
    return path


def start_daemon(config: Path, api_key: str, log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_"))}
    env[KEY_ENV] = api_key
    log = open(log_path, "wb")
    return subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(config), "run"], env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def wait_for_baseline(database: Path, daemon: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until both kinds have one complete poll (the baseline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"the daemon exited with {daemon.returncode} before its baseline")
        if database.exists():
            try:
                with sqlite3.connect(database, timeout=30) as connection:
                    complete = connection.execute("SELECT count(*) FROM polls WHERE status = 'complete'").fetchone()
                if complete[0] >= 2:
                    return
            except sqlite3.OperationalError:
                pass  # not migrated yet
        time.sleep(0.05)
    raise SystemExit("no baseline within a minute")


def measure(sandbox: Sandbox, sink: SmtpSink, edits: int, interval: float) -> list[float]:
    """Seconds from each edit to the SMTP acceptance of the alert that carries its marker."""
    assistants = sandbox.objects("assistants")
    latencies = []
    for number in range(1, edits + 1):
        time.sleep(random.uniform(0, interval))  # land anywhere in the poll cycle
        target = assistants[number % len(assistants)]
        marker = f"bench edit {number} of {edits}"
        start = len(sink.messages)
        sandbox.edit("assistants", target["id"], instructions=f"{target['instructions']}\n{marker}")
        edited_at = time.monotonic()
        mail = sink.wait_for(lambda m, marker=marker: marker in (m.part("plain") or ""), timeout=60, start=start)
        if mail is None:
            raise SystemExit(f"edit {number}: no alert within 60 s")
        latencies.append(mail.accepted_at - edited_at)
        print(f"  edit {number:2d}: {latencies[-1]:5.2f} s", flush=True)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def report(latencies: list[float], interval: float) -> bool:
    p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
    target = interval + SLACK
    rows = [("edits", f"{len(latencies)}"), ("poll interval", f"{interval:.2f} s"),
            ("p50 edit → SMTP accepted", f"{p50:.2f} s  ({p50 / interval:.2f} × interval)"),
            ("p95 edit → SMTP accepted", f"{p95:.2f} s  ({p95 / interval:.2f} × interval)"),
            ("mean / max", f"{statistics.mean(latencies):.2f} s / {max(latencies):.2f} s"),
            ("target p95 ≤ interval + 5 s", f"{target:.2f} s: {'met' if p95 <= target else 'MISSED'}")]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return p95 <= target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval in seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="watcher-latency-") as tmp, Sandbox() as sandbox, SmtpSink() as sink:
        directory = Path(tmp)
        config = write_config(directory, sandbox.url, sink.port, args.interval)
        daemon = start_daemon(config, sandbox.api_key, directory / "daemon.log")
        try:
            wait_for_baseline(directory / "watcher.db", daemon)
            print(f"daemon polling every {args.interval:g} s; {args.edits} out-of-band edits:")
            latencies = measure(sandbox, sink, args.edits, args.interval)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(30)
        met = report(latencies, args.interval)
        print(f"daemon stopped with exit code {code}")
        return 0 if met and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
