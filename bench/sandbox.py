"""Sandbox benchmark: how fast it seeds and serves the accounts the other benchmarks and tests ask of it.

Run: .venv/bin/python bench/sandbox.py [--repeat 3]

- seeding: building `Sandbox(...)` (no server) for 10k assistants, and for the mixed account of issue 8
  (1k agents, 200 skills with 3 versions each, 100 webhook endpoints, 500 vector stores, the default
  organization plane); the best of `--repeat`;
- serving: the mixed account's sandbox runs in its OWN process (spawned, so it shares no GIL with the
  client); this process lists every kind page by page (limit 100) with the standard library over one
  keep-alive connection, as a raw floor would, and prints requests, objects, MB and objects/s per kind.

Figures are for comparing runs on one machine, not targets.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import time
from urllib.parse import urlsplit

MIXED = {"assistants": 0, "agents": 1_000, "skills": 200, "versions_per_skill": 3, "webhook_endpoints": 100,
         "vector_stores": 500}


def _serve(conn) -> None:
    from watcher.sandbox.server import Sandbox

    sandbox = Sandbox(**MIXED).start()
    conn.send((sandbox.url, sandbox.api_key))
    try:
        conn.recv()
    except EOFError:
        pass
    sandbox.stop()


def best_seconds(repeat: int, build) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        build()
        best = min(best, time.perf_counter() - started)
    return best


def list_kind(conn: http.client.HTTPConnection, root: str, path: str, headers: dict,
              ids: list | None = None) -> tuple[int, int, int]:
    """(requests, objects, bytes) of listing one collection to its end (its ids appended to `ids`)."""
    requests = objects = size = 0
    after = None
    while True:
        query = "limit=100" + (f"&after={after}" if after else "")
        conn.request("GET", f"{root}{path}?{query}", headers=headers)
        body = conn.getresponse().read()
        page = json.loads(body)
        requests, objects, size = requests + 1, objects + len(page["data"]), size + len(body)
        if ids is not None:
            ids.extend(o["id"] for o in page["data"])
        if not page.get("has_more"):
            return requests, objects, size
        after = page["last_id"]


def serving_rows(url: str, api_key: str) -> list[tuple[str, int, int, int, float]]:
    from watcher.kinds import registry
    from watcher.kinds.base import PROJECT

    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=60)
    rows = []
    for kind in (k for k in registry.all_kinds() if k.key == PROJECT):
        headers = {"Authorization": f"Bearer {api_key}", **({"OpenAI-Beta": kind.beta} if kind.beta else {})}
        parents: list = []
        if kind.parent:  # list every parent (not timed), then its children
            owner = registry.get(kind.parent)
            list_kind(conn, split.path, owner.path, {"Authorization": f"Bearer {api_key}",
                                                     **({"OpenAI-Beta": owner.beta} if owner.beta else {})}, parents)
        started, totals = time.perf_counter(), [0, 0, 0]
        for parent in parents if kind.parent else [None]:
            for i, figure in enumerate(list_kind(conn, split.path, kind.list_path(parent), headers)):
                totals[i] += figure
        rows.append((kind.name, *totals, time.perf_counter() - started))
    conn.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each seeding (the min is kept)")
    args = parser.parse_args()
    from watcher.sandbox.server import Sandbox

    print(f"seeding (best of {args.repeat}):")
    print(f"  10k assistants, no agents     {best_seconds(args.repeat, lambda: Sandbox(assistants=10_000, agents=0)):6.2f} s")
    print(f"  mixed account (issue 8)       {best_seconds(args.repeat, lambda: Sandbox(**MIXED)):6.2f} s")

    ctx = multiprocessing.get_context("spawn")
    mine, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    url, api_key = mine.recv()
    try:
        rows = serving_rows(url, api_key)
    finally:
        mine.send("stop")
        process.join(10)
    print("\nserving the mixed account (sandbox in its own process, stdlib client, one keep-alive connection):")
    print(f"  {'kind':20} {'requests':>8} {'objects':>8} {'MB':>7} {'objects/s':>10}")
    for name, requests, objects, size, seconds in rows:
        rate = objects / seconds if seconds else 0
        print(f"  {name:20} {requests:8d} {objects:8d} {size / 1e6:7.2f} {rate:10.0f}")


if __name__ == "__main__":
    main()
