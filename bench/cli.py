"""Reading commands against `sqlite-utils query` on the same database: whole processes, wall time.

Builds a small record the way a user gets one (a sandbox with its default seed, a baseline
`snapshot`, an out-of-band edit of one assistant, a second `snapshot` delivering its alert to a
local webhook receiver, which then goes away, and a third edit and `snapshot` whose alert stays
pending in the outbox; every alert's email waits too, its relay being down), then times each
reading command, text and --json, as a whole `python -m watcher` process, beside `sqlite-utils query FILE "select * from events"` on the same
file (the issue's yardstick). Best of --repeat runs each, interleaved. Target: every command
<= 1.0x sqlite-utils (PASS/MISS per row).

With --postgres URL the same record is also built in that PostgreSQL database (wiped first) and
the same commands are timed there, for information: sqlite-utils has no PostgreSQL to compare with.

Run: .venv/bin/python bench/cli.py [--repeat N] [--postgres URL]   (needs sqlite-utils: pip install sqlite-utils)
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

from watcher.sandbox.server import Sandbox  # noqa: E402

TARGET_RATIO = 1.0


class _Accept(BaseHTTPRequestHandler):
    """A webhook receiver that accepts every delivery (so the outbox has sent rows to list)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args):
        pass


def build(folder: Path, url: str) -> tuple[Path, str]:
    """The config of a record built at `url`, and the id of the edited assistant."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    config = folder / f"watcher-{url.partition(':')[0].partition('+')[0]}.toml"
    with Sandbox() as sandbox:
        config.write_text(
            f'[database]\nurl = "{url}"\n\n'
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
    return config, first.id


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


def wipe(url: str) -> None:
    """Drop every table of the PostgreSQL database at `url` (the bench builds its record there from nothing)."""
    import psycopg

    scheme, _, rest = url.partition("://")
    with psycopg.connect(f"{scheme.partition('+')[0]}://{rest}", autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def commands_of(edited: str) -> list[list[str]]:
    commands = [["events"], ["history", edited], ["show", edited], ["diff", edited], ["status"], ["objects"],
                ["outbox"]]
    return commands + [[*c, "--json"] for c in commands]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command; the best counts")
    parser.add_argument("--postgres", metavar="URL", help="also time the same record in this PostgreSQL database, "
                                                         "which the bench wipes (for information: no target)")
    args = parser.parse_args()
    sqlite_utils = shutil.which("sqlite-utils", path=str(Path(sys.executable).parent)) or shutil.which("sqlite-utils")
    if not sqlite_utils:
        raise SystemExit("bench/cli.py compares against sqlite-utils: .venv/bin/pip install sqlite-utils")
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "watcher.db"
        config, edited = build(Path(tmp), f"sqlite:///{database}")
        runs = [(config, edited)]
        if args.postgres:
            wipe(args.postgres)
            postgres_config, postgres_edited = build(Path(tmp), args.postgres)
            runs.append((postgres_config, postgres_edited))
        reference = [sqlite_utils, "query", str(database), "select * from events"]
        watcher = [sys.executable, "-m", "watcher"]
        best = {"reference": float("inf")}
        for _ in range(args.repeat):  # interleaved: a busy moment of the machine hits every row alike
            best["reference"] = min(best["reference"], wall(reference, dict(os.environ)))
            for run, (path, assistant) in enumerate(runs):
                for command in commands_of(assistant):
                    key = f"{run} {' '.join(command)}"
                    best[key] = min(best.get(key, float("inf")), wall([*watcher, "--config", str(path), *command],
                                                                      dict(os.environ)))
        base = best["reference"]
        print(f"small record: {database.stat().st_size // 1024} KiB SQLite, {_holds(database)}; "
              f"best of {args.repeat} whole processes")
        print(f"{'command':<58} {'wall s':>7} {'ratio':>6}  target <= {TARGET_RATIO:.1f}x")
        yardstick = 'sqlite-utils query FILE "select * from events"'
        print(f"{yardstick:<58} {base:>7.3f} {1.0:>6.2f}  (reference)")
        for command in commands_of(edited):
            shown = " ".join(command).replace(edited, "ASSISTANT")
            figure = best[f"0 {' '.join(command)}"]
            verdict = "PASS" if figure / base <= TARGET_RATIO else "MISS"
            print(f"{'assistant-watcher ' + shown:<58} {figure:>7.3f} {figure / base:>6.2f}  {verdict}")
        if args.postgres:
            print("the same record in PostgreSQL (for information; ratio to the same sqlite-utils figure):")
            for command in commands_of(postgres_edited):
                shown = " ".join(command).replace(postgres_edited, "ASSISTANT")
                figure = best[f"1 {' '.join(command)}"]
                print(f"{'assistant-watcher ' + shown:<58} {figure:>7.3f} {figure / base:>6.2f}")


if __name__ == "__main__":
    main()
