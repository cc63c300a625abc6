"""The web's read paths on a large record: the `at` lookup and the events page (100k events, 1M versions).

Fills a database (a temporary SQLite file, or --database URL, e.g. PostgreSQL) with --objects objects
of --versions versions each and --events drift events spread over them (half acknowledged, severities
and kinds mixed) plus --polls polls, then serves it with the watcher's own server on loopback and
times requests through one keep-alive HTTP connection:

- `at`: GET /api/v1/objects/{target}/{kind}/{id}/at?time=T for random objects and times (inside
  their history, before it, inside edit windows); target p95 < 50 ms;
- events page: GET /events with the page's filters (none, open, target+kind, severity, an older
  page); target p95 < 300 ms;
- and, for reference, the API's events list, /metrics, /healthz and the overview page.

    .venv/bin/python bench/web.py                       # SQLite, 20k objects x 50 versions, 100k events
    .venv/bin/python bench/web.py --database postgresql+psycopg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/web.py --database sqlite:////tmp/big.db --reuse   # skip filling a filled one

Filling takes about a minute on 2 CPUs; timings are printed as p50, p95 and max of each set.
"""

from __future__ import annotations

import argparse  # noqa: E402
import http.client  # noqa: E402
import json
import random  # noqa: E402
import statistics  # noqa: E402
import sys
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote  # noqa: E402

from sqlalchemy import func, insert, select, text  # noqa: E402

from watcher.config.model import parse_config  # noqa: E402
from watcher.record.engine import open_engine  # noqa: E402
from watcher.record.models import Event, Poll, Resource, Target, Version  # noqa: E402
from watcher.web.app import Web  # noqa: E402
from watcher.web.server import HttpServer  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(hours=3)  # between two versions of one object
TARGETS = ("prod", "staging")
KINDS = ("assistants", "agents")  # assistants have no updated_at: their edits leave windows
BATCH = 20_000
TARGET_AT, TARGET_EVENTS = 0.050, 0.300


def fill(engine, objects: int, versions: int, events: int, polls: int) -> None:
    """Write the synthetic record in batches (a statement per batch, not per row)."""
    rng = random.Random(7)
    with engine.begin() as connection:
        for number, name in enumerate(TARGETS, 1):
            connection.execute(insert(Target).values(id=number, name=name, base_url="http://bench/v1",
                                                     created_at=START))
    pairs = [(t, k) for t in range(1, len(TARGETS) + 1) for k in KINDS]
    per_event = max(objects * versions // max(events, 1), 1)  # versions between two events of one object
    resources, rows, drift = [], [], []
    event_id = 0
    started = time.monotonic()
    for rid in range(1, objects + 1):
        target_id, kind = pairs[rid % len(pairs)]
        first = START + timedelta(minutes=rid % 600)
        resources.append(dict(id=rid, target_id=target_id, kind=kind, remote_id=f"{kind[:5]}_{rid:08d}",
                              name=f"Bench {kind} {rid}", first_seen_at=first, deleted_at=None,
                              current_version=versions, current_hash=f"{rid:064x}"))
        for number in range(1, versions + 1):
            observed = first + STEP * (number - 1)
            updated = observed - timedelta(minutes=7) if kind == "agents" else None
            rows.append(dict(resource_id=rid, number=number, content_hash=f"{rid:032x}{number:032x}",
                             body=json.dumps({"id": rid, "instructions": f"version {number} " + "x" * 120}),
                             observed_at=observed, remote_updated_at=updated,
                             origin="baseline" if number == 1 else "poll", actor=None, note=None))
            if number > 1 and (rid * versions + number) % per_event == 0 and event_id < events:
                event_id += 1
                acked = rng.random() < 0.5
                drift.append(dict(id=event_id, resource_id=rid, poll_id=None, change="modified",
                                  from_version=number - 1, to_version=number,
                                  paths=["instructions"] if rng.random() < 0.5 else ["metadata.owner"],
                                  detected_at=observed, window_start=observed - STEP, remote_updated_at=updated,
                                  acked_by="bench" if acked else None, acked_at=observed if acked else None,
                                  note=None, severity="high" if rng.random() < 0.4 else "low", actor=None))
        if len(rows) >= BATCH:
            _flush(engine, resources, rows, drift)
    _flush(engine, resources, rows, drift)
    _fill_polls(engine, pairs, polls)
    print(f"filled {objects} objects, {objects * versions} versions, {event_id} events, {polls} polls "
          f"in {time.monotonic() - started:.0f} s", flush=True)


def _flush(engine, resources, rows, drift) -> None:
    with engine.begin() as connection:
        if resources:
            connection.execute(insert(Resource), resources)
        if rows:
            connection.execute(insert(Version), rows)
        if drift:
            connection.execute(insert(Event), drift)
    resources.clear()
    rows.clear()
    drift.clear()


def _fill_polls(engine, pairs, polls: int) -> None:
    batch = []
    for n in range(polls):
        target_id, kind = pairs[n % len(pairs)]
        started = START + timedelta(minutes=5 * (n // len(pairs)))
        status = "failed" if n % 97 == 0 else "complete"
        batch.append(dict(target_id=target_id, kind=kind, started_at=started, finished_at=started + timedelta(seconds=2),
                          status=status, objects=0, pages=1, changes=0, error=None, ignore=[], settings=None,
                          worker="bench"))
        if len(batch) >= BATCH:
            with engine.begin() as connection:
                connection.execute(insert(Poll), batch)
            batch.clear()
    if batch:
        with engine.begin() as connection:
            connection.execute(insert(Poll), batch)


def timed(connection: http.client.HTTPConnection, paths: list[str]) -> list[float]:
    """Seconds each GET took, from sending it to the last byte of the answer (status checked)."""
    seconds = []
    for path in paths:
        begun = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        seconds.append(time.perf_counter() - begun)
        if response.status not in (200, 404, 503):
            raise SystemExit(f"GET {path}: HTTP {response.status}")
    return seconds


def at_paths(engine, count: int, rng: random.Random) -> list[str]:
    with engine.connect() as connection:
        objects = connection.execute(select(Resource.id, Target.name, Resource.kind, Resource.remote_id,
                                            Resource.first_seen_at, Resource.current_version)
                                     .join(Target, Resource.target_id == Target.id)).all()
    paths = []
    for _ in range(count):
        _rid, target, kind, remote_id, first, current = rng.choice(objects)
        moment = first + (STEP * current) * (rng.random() * 1.05 - 0.03)  # a few before the first version
        paths.append(f"/api/v1/objects/{target}/{kind}/{quote(remote_id)}/at?time="
                     + quote(moment.isoformat().replace("+00:00", "Z")))
    return paths


def events_paths(engine, count: int, rng: random.Random) -> list[str]:
    with engine.connect() as connection:
        top = connection.scalar(select(func.max(Event.id))) or 1
    variants = [lambda: "/events", lambda: "/events?open=1",
                lambda: f"/events?target={rng.choice(TARGETS)}&kind={rng.choice(KINDS)}",
                lambda: "/events?severity=high&open=1",
                lambda: f"/events?before={rng.randint(1, top)}",
                lambda: f"/events?open=1&target={rng.choice(TARGETS)}&before={rng.randint(1, top)}"]
    return [variants[n % len(variants)]() for n in range(count)]


def report(label: str, seconds: list[float], target: float | None) -> None:
    ordered = sorted(seconds)
    p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
    verdict = "" if target is None else f"  target p95 < {target * 1000:.0f} ms: {'PASS' if p95 < target else 'MISS'}"
    print(f"{label:<28} n={len(seconds):<5} p50 {statistics.median(ordered) * 1000:7.1f} ms   "
          f"p95 {p95 * 1000:7.1f} ms   max {ordered[-1] * 1000:7.1f} ms{verdict}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--reuse", action="store_true", help="do not fill a database that already has objects")
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--versions", type=int, default=50, help="versions per object")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--polls", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=600, help="requests per measured set")
    args = parser.parse_args()

    folder = tempfile.TemporaryDirectory(prefix="watcher-bench-http-")
    url = args.database or f"sqlite:///{Path(folder.name) / 'watcher.db'}"
    engine = open_engine(url)
    with engine.connect() as connection:
        filled = connection.scalar(select(func.count()).select_from(Resource))
    if filled and not args.reuse:
        raise SystemExit(f"{url} already holds {filled} objects: pass --reuse to measure it as it is")
    if not filled:
        fill(engine, args.objects, args.versions, args.events, args.polls)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    with engine.connect() as connection:
        counts = {table.__tablename__: connection.scalar(select(func.count()).select_from(table))
                  for table in (Resource, Version, Event, Poll)}
    print(f"database: {engine.dialect.name}; " + ", ".join(f"{n} {name}" for name, n in counts.items()), flush=True)

    config = parse_config("[[targets]]\nname = \"prod\"\n[[targets]]\nname = \"staging\"\n", source="bench")
    server = HttpServer(Web(config, engine), "127.0.0.1", 0).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    rng = random.Random(11)
    try:
        timed(connection, ["/", "/events", at_paths(engine, 1, rng)[0]])  # warm the templates and the pool
        report("at lookup", timed(connection, at_paths(engine, args.requests, rng)), TARGET_AT)
        report("events page", timed(connection, events_paths(engine, args.requests // 2, rng)), TARGET_EVENTS)
        top = counts["events"]
        report("api events (100, after)", timed(connection, [f"/api/v1/events?after={rng.randint(0, top)}"
                                                             for _ in range(args.requests // 4)]), None)
        report("api events ?open&severity", timed(connection, ["/api/v1/events?open=1&severity=high"] * 20), None)
        report("overview page", timed(connection, ["/"] * 20), None)
        report("/metrics", timed(connection, ["/metrics"] * 20), None)
        report("/healthz", timed(connection, ["/healthz"] * 20), None)
    finally:
        connection.close()
        server.stop()
        engine.dispose()
        folder.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
