"""Reading commands against `sqlite-utils query` on the same database: whole processes, wall time.

Builds a small record the way a user gets one (a sandbox with its default seed, a baseline
`snapshot`, an out-of-band edit of one assistant, a second `snapshot` delivering its alert to a
local webhook receiver, which then goes away, and a third edit and `snapshot` whose alert stays
pending in the outbox; every alert's email waits too, its relay being down), then times each
reading command, text and --json, as a whole `python -m watcher` process, beside `sqlite-utils query FILE "select * from events"` on the same
file (the issue's yardstick). Best of --repeat runs each, interleaved. Target: every command
<= 1.0x sqlite-utils (PASS/MISS per row).

Run: .venv/bin/python bench/cli.py [--repeat N]   (needs sqlite-utils in the venv: pip install sqlite-utils)
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from watcher.sandbox import Sandbox  # noqa: E402

TARGET_RATIO = 1.0


class _Accept(BaseHTTPRequestHandler):
    """A webhook receiver that accepts every delivery (so the outbox has sent rows to list)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args):
        pass


def build(folder: Path) -> tuple[Path, Path, str]:
    """The config, the database and the id of the edited assistant."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    database = folder / "watcher.db"
    config = folder / "watcher.toml"
    with Sandbox() as sandbox:
        config.write_text(
            f'[database]\nurl = "sqlite:///{database}"\n\n'
            f'[[targets]]\nname = "prod"\nbase_url = "{sandbox.url}"\napi_key_env = "BENCH_SANDBOX_KEY"\n\n'
            '[smtp]\nhost = "127.0.0.1"\nport = 9\nsender = "watcher@example.com"\ntimeout = "2s"\n\n'
            '[alerts]\nwatchlist = ["ops@example.com"]\n\n'
            f'[[channels]]\nname = "siem"\ntype = "webhook"\n'
            f'url = "http://127.0.0.1:{receiver.server_address[1]}/hook"\nsecret_env = "BENCH_WEBHOOK_SECRET"\n')
        env = {**os.environ, "BENCH_SANDBOX_KEY": sandbox.api_key,
               "BENCH_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"b" * 32).decode()}
        snapshot = [sys.executable, "-m", "watcher", "--config", str(config), "snapshot"]
        subprocess.run(snapshot, env=env, check=True, capture_output=True)
        import openai

        warnings.simplefilter("ignore")
        client = openai.OpenAI(base_url=sandbox.url, api_key=sandbox.api_key)
        first = client.beta.assistants.list(order="asc").data[0]
        client.beta.assistants.update(first.id, model="gpt-4.1-nano", instructions=first.instructions + "\nRefund.")
        subprocess.run(snapshot, env=env, check=True, capture_output=True)
        receiver.shutdown()  # the receiver goes away: the next alert waits in the outbox, pending
        receiver.server_close()
        client.beta.assistants.update(first.id, model="gpt-4o")
        third = subprocess.run(snapshot, env=env, capture_output=True, text=True)
        assert "1 modified" in third.stdout and "waiting in the outbox" in third.stdout, third.stdout + third.stderr
    return config, database, first.id


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}: {result.stderr.decode()[-500:]}")
    return elapsed


def _holds(database: Path) -> str:
    import sqlite3

    with sqlite3.connect(database) as connection:
        objects = connection.execute("SELECT COUNT(*) FROM resources").fetchone()[0]
        events = connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        outbox = connection.execute("SELECT channel, state, COUNT(*) FROM outbox GROUP BY channel, state "
                                    "ORDER BY channel, state").fetchall()
    rows = ", ".join(f"{count} {state} ({channel})" for channel, state, count in outbox)
    return f"{objects} objects, {events} events, outbox: {rows}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command; the best counts")
    args = parser.parse_args()
    sqlite_utils = shutil.which("sqlite-utils", path=str(Path(sys.executable).parent)) or shutil.which("sqlite-utils")
    if not sqlite_utils:
        raise SystemExit("bench/cli.py compares against sqlite-utils: .venv/bin/pip install sqlite-utils")
    with tempfile.TemporaryDirectory() as tmp:
        config, database, edited = build(Path(tmp))
        env = {**os.environ, "ASSISTANT_WATCHER_CONFIG": str(config)}
        reference = [sqlite_utils, "query", str(database), "select * from events"]
        commands = [["events"], ["history", edited], ["show", edited], ["diff", edited], ["status"], ["objects"],
                    ["outbox"]]
        commands += [[*c, "--json"] for c in list(commands)]
        watcher = [sys.executable, "-m", "watcher"]
        best = {"reference": float("inf")} | {" ".join(c): float("inf") for c in commands}
        for _ in range(args.repeat):  # interleaved: a busy moment of the machine hits every row alike
            best["reference"] = min(best["reference"], wall(reference, env))
            for command in commands:
                name = " ".join(command)
                best[name] = min(best[name], wall([*watcher, *command], env))
        base = best["reference"]
        print(f"small record: {database.stat().st_size // 1024} KiB SQLite, {_holds(database)}; "
              f"best of {args.repeat} whole processes")
        print(f"{'command':<58} {'wall s':>7} {'ratio':>6}  target <= {TARGET_RATIO:.1f}x")
        yardstick = 'sqlite-utils query FILE "select * from events"'
        print(f"{yardstick:<58} {base:>7.3f} {1.0:>6.2f}  (reference)")
        for command in commands:
            name = " ".join(command)
            shown = name.replace(edited, "ASSISTANT")
            ratio = best[name] / base
            verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
            print(f"{'assistant-watcher ' + shown:<58} {best[name]:>7.3f} {ratio:>6.2f}  {verdict}")


if __name__ == "__main__":
    main()
