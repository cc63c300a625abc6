"""Attribution benchmark: what naming who changed it costs a poll, in requests and in time.

Run: .venv/bin/python bench/attribution.py [--projects 20] [--repeat 3]

Two parts, each printing figures and asserting nothing:

1. the matching core (`watcher.poll.attribution.match`, plain values, no I/O) for W waiting events against
   E audit entries, best of `--repeat`: it must stay far below a poll's own time;
2. a real poll of `project_rate_limits` against a sandbox with `--projects` projects (4 rate limits each,
   so the same ids repeat in every project) after every limit was lowered by one of two people: the poll
   with attribution, the same poll with attribution switched off (on a copy of the database taken before
   it), the audit log requests it made (counted by the sandbox), and the ratio; then a poll where every
   event still waits for a late entry (the steady cost of waiting). Both polls of a pair run minutes
   apart at most in one process: compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

ADMIN_ENV = "WATCHER_BENCH_ADMIN_KEY"


def _best(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def bench_match(repeat: int) -> None:
    from watcher.kinds import registry
    from watcher.poll import attribution
    from watcher.poll.attribution import Waiting

    kind = registry.get("project_rate_limits")
    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    print("matching core (watcher.poll.attribution.match), best of", repeat)
    print(f"  {'waiting':>8} {'entries':>8} {'named':>6} {'seconds':>9}")
    for waiting_count, entry_count in ((50, 500), (500, 2_000), (500, 20_000)):
        waiting = [Waiting(i, i, f"proj_{i % 50}/rl-model-{i // 50}", "modified", now - timedelta(minutes=5), now)
                   for i in range(waiting_count)]
        entries = [{"id": f"audit_log-{n}", "type": "rate_limit.updated",
                    "effective_at": int(now.timestamp()) - 60 - n % 200, "project": {"id": f"proj_{n % 50}"},
                    "rate_limit.updated": {"id": f"rl-model-{n // 50 % 40}"},
                    "actor": {"type": "session", "session": {"ip_address": "203.0.113.5",
                                                             "user": {"id": f"user-{n % 7}",
                                                                      "email": f"u{n % 7}@acme.example"}}}}
                   for n in range(entry_count)]
        found: dict = {}

        def run(found=found, waiting=waiting, entries=entries):
            found.clear()
            found.update(attribution.match(kind, waiting, entries, {}))

        seconds = _best(repeat, run)
        print(f"  {waiting_count:>8} {entry_count:>8} {len(found):>6} {seconds:>9.4f}")


def bench_poll(projects: int, repeat: int) -> None:
    from watcher.config.model import parse_config
    from watcher.poll import attribution
    from watcher.poll.run import poll_target
    from watcher.record.engine import open_engine
    from watcher.sandbox.server import Sandbox

    print(f"\na poll of project_rate_limits, {projects} projects x 4 limits, every limit lowered (best of {repeat})")
    with Sandbox(assistants=0, agents=0, projects=projects, org_users=8, project_users=3) as sandbox:
        os.environ[ADMIN_ENV] = sandbox.admin_key
        target = parse_config(f'[[targets]]\nname = "org"\nbase_url = "{sandbox.url}"\nadmin_key_env = "{ADMIN_ENV}"\n'
                              'kinds = ["projects", "project_rate_limits"]\n').targets[0]
        people = ({"email": "priya.nair@acme.example", "ip": "198.51.100.23"},
                  {"email": "li.wei@acme.example", "ip": "192.0.2.10"})
        on, off, requests, named = [], [], [], 0
        for round_ in range(repeat):
            folder = tempfile.mkdtemp()
            try:
                base = os.path.join(folder, "base.db")
                engine = open_engine(f"sqlite:///{base}")
                poll_target(engine, target)
                engine.dispose()
                for n, limit in enumerate(sandbox.objects("project_rate_limits")):
                    address = f"{sandbox.objects('projects')[n // 4]['id']}/{limit['id']}"
                    sandbox.edit("project_rate_limits", address, actor=people[n % 2],
                                 max_tokens_per_1_minute=limit["max_tokens_per_1_minute"] // 2 + round_)
                shutil.copy(base, os.path.join(folder, "copy.db"))
                before = sandbox.count_requests("GET", "/v1/organization/audit_logs")
                engine = open_engine(f"sqlite:///{base}")
                started = time.perf_counter()
                outcomes = poll_target(engine, target)
                on.append(time.perf_counter() - started)
                requests.append(sandbox.count_requests("GET", "/v1/organization/audit_logs") - before)
                named = sum(1 for o in outcomes for e in o.events if e.actor)
                engine.dispose()
                engine = open_engine(f"sqlite:///{os.path.join(folder, 'copy.db')}")
                real, attribution.attribute = attribution.attribute, lambda *_args: {}
                try:
                    started = time.perf_counter()
                    poll_target(engine, target)
                    off.append(time.perf_counter() - started)
                finally:
                    attribution.attribute = real
                engine.dispose()
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        events = projects * 4
        print(f"  events {events}, named {named}, audit log requests {min(requests)}-{max(requests)}")
        print(f"  poll with attribution {min(on):.3f} s, without {min(off):.3f} s, ratio {min(on) / min(off):.2f}")

    # The steady cost while every event waits for an entry that has not arrived (a fresh organization,
    # so no entry of the rounds above can fall in these events' windows).
    with Sandbox(assistants=0, agents=0, projects=projects, org_users=8, project_users=3) as sandbox:
        os.environ[ADMIN_ENV] = sandbox.admin_key
        target = parse_config(f'[[targets]]\nname = "org"\nbase_url = "{sandbox.url}"\nadmin_key_env = "{ADMIN_ENV}"\n'
                              'kinds = ["projects", "project_rate_limits"]\n').targets[0]
        folder = tempfile.mkdtemp()
        try:
            engine = open_engine(f"sqlite:///{os.path.join(folder, 'w.db')}")
            poll_target(engine, target)
            sandbox.hold_audit()
            for n, limit in enumerate(sandbox.objects("project_rate_limits")):
                address = f"{sandbox.objects('projects')[n // 4]['id']}/{limit['id']}"
                sandbox.edit("project_rate_limits", address, max_tokens_per_1_minute=7)
            recorded = sum(len(o.events) for o in poll_target(engine, target))
            before = sandbox.count_requests("GET", "/v1/organization/audit_logs")
            started = time.perf_counter()
            poll_target(engine, target)
            seconds = time.perf_counter() - started
            asked = sandbox.count_requests("GET", "/v1/organization/audit_logs") - before
            engine.dispose()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"  a later poll while {recorded} events wait for late entries: {asked} audit log request(s), "
          f"{seconds:.3f} s for the whole poll")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_match(args.repeat)
    bench_poll(args.projects, args.repeat)


if __name__ == "__main__":
    main()
