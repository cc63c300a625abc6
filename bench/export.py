"""`export git`: how long writing the record as a git repository takes, and what it weighs.

A record of `--objects` agents is built against the sandbox: a baseline, then rounds in which every
agent is edited and polled, until it holds each size of `--sizes` versions. For each size: a whole
export into a new directory (seconds, commits a second, repository size), then one agent edited,
one poll, and the incremental export after it (the target: under 1 s).

Run: .venv/bin/python bench/export.py [--objects 1000] [--sizes 2000,10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY_ENV = "WATCHER_BENCH_KEY"
TARGET_INCREMENTAL = 1.0  # seconds


def size_of(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def run(objects: int, sizes: list[int]) -> list[str]:
    from watcher.config.model import parse_config
    from watcher.export.history import export_git
    from watcher.poll.run import poll_target
    from watcher.record.engine import open_engine
    from watcher.sandbox.server import Sandbox

    lines = [f"export git: a record of {objects:,} agents, edited and polled until it holds each size",
             f"{'versions':>10} {'export (s)':>11} {'commits/s':>10} {'repo (MiB)':>11} {'incremental (s)':>16}"
             "   target"]
    with tempfile.TemporaryDirectory(prefix="watcher-export-") as folder, \
            Sandbox(assistants=0, agents=objects, skills=0, webhook_endpoints=0, vector_stores=0,
                    agent_environments=0, agent_automations=0, vaults=0) as api:
        os.environ[KEY_ENV] = api.api_key
        config = parse_config(f'[database]\nurl = "sqlite:///{folder}/watcher.db"\n\n[[targets]]\nname = "bench"\n'
                              f'base_url = "{api.url}"\napi_key_env = "{KEY_ENV}"\nkinds = ["agents"]\n')
        target, engine = config.targets[0], open_engine(config.database.url)
        poll_target(engine, target)
        versions, round_number = objects, 0
        for size in sizes:
            while versions < size:
                round_number += 1
                for agent in api.objects("agents"):
                    api.edit("agents", agent["id"], instructions=f"Round {round_number}: be brief.")
                poll_target(engine, target)
                versions += objects
            history = Path(folder) / f"history-{size}"
            started = time.perf_counter()
            report = export_git(engine, history)
            whole = time.perf_counter() - started
            first = api.objects("agents")[0]
            api.edit("agents", first["id"], instructions="One more change.")
            poll_target(engine, target)
            versions += 1
            started = time.perf_counter()
            export_git(engine, history)
            incremental = time.perf_counter() - started
            verdict = "PASS" if incremental <= TARGET_INCREMENTAL else "MISS"
            lines.append(f"{report.commits:>10,} {whole:>11.1f} {report.commits / whole:>10,.0f} "
                         f"{size_of(history) / 2**20:>11.1f} {incremental:>16.3f}   <= {TARGET_INCREMENTAL:g} s "
                         f"{verdict}")
        engine.dispose()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--sizes", default="2000,10000", help="comma-separated numbers of versions")
    args = parser.parse_args()
    print("\n".join(run(args.objects, [int(n) for n in args.sizes.split(",")])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
