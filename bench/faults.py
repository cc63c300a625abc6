"""Fault injection: what kill -9, a broken database and hostile servers do to the watcher, as one table.

Run: .venv/bin/python bench/faults.py [--kills 24] [--delivery-kills 10] [--cap 60] [--seed 1]
                                     [--postgres URL] [--only NAME,NAME] [--watcher DIR]

The machinery is in child.py, the rows in fault_kills.py, fault_storage.py and fault_servers.py (with
the servers of hostile.py); bench/README.md says how each row is judged.

Every `snapshot` (and the one `run`) is a child process, `python -m watcher`, with a wall-clock cap
(--cap, killed with SIGKILL past it) so the bench always finishes; its exit code, wall time and peak
RSS (`ru_maxrss` from wait4, the child alone) are what the table shows. The sandbox API, the SMTP
sink and the hostile servers run in this process, over loopback. Rows (names for --only):

  kills         kill -9 of `snapshot` at --kills random moments of a poll-and-deliver run, each
                followed by a recovery run: every edit recorded once, integrity_check ok, no
                duplicate versions or events, and e-mail duplicates counted
  kills-pg, delivery-pg  the same two rows on the --postgres database (skipped without it)
  delivery      kill -9 at --delivery-kills random moments of the delivery phase (a sink that takes
                80 ms a message): a duplicate is allowed only for a message the sink had accepted
                while its row was not yet marked sent; any other duplicate, or a loss, is a failure
  readonly      the SQLite database read-only (a tmpfs remounted ro when root, else chmod), then back
  full          the SQLite database full (RLIMIT_FSIZE of 8 KiB in the child), then not
  unreachable   PostgreSQL on a closed port, then the same port forwarding to --postgres (skipped
                without it; the fixtures' rule applies: that database's schema is dropped)
  no-has-more   a server that serves 20 a page whatever `limit` says and leaves `has_more` out,
                after a baseline taken while it behaved
  trickle       a server that sends a listing 16 bytes every 2 s
  huge-page     a page that ignores `limit`: 100 objects of 3 MB
  long-edit     230k characters of instructions with every other line edited: that snapshot
                against an unchanged one (the issue's target: at most 4x)
  empty-page, data-null  after a baseline of 5, a listing of none (`[]`, then null) while each is
                still served by its id: no deletion may be recorded
  deep-500, deep-900, deep-1000, deep-100000
                metadata nested 500 to 100,000 levels, then its innermost value edited
  credentials   an MCP URL with user:password@ and ?token=, and an sk-proj- key in metadata, then rotated:
                one modified event, and no cleartext in the database, the e-mail or the CLI's output
  redirect      the web UI's acknowledge form posted with hostile `next` values: none leaves the site
  interval-1ms  `run` with interval = "1ms" for 20 s

A row's verdict is the promise of issue 9 it checks; FAIL rows are printed as they are.
Kills of the delivery phase hold a claim on a row for its lease (smtp timeout x 6 + 60 s); the bench
expires those claims by hand (UPDATE outbox SET claimed_until = NULL) rather than wait them out.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import fault_kills  # noqa: E402
import fault_servers  # noqa: E402
import fault_storage  # noqa: E402
from child import Row, print_table, use_tree  # noqa: E402

SCENARIOS = {
    "kills": fault_kills.whole_run,
    "delivery": fault_kills.delivery,
    "kills-pg": lambda args, rng: _on_postgres(fault_kills.whole_run, "kill -9 of snapshot", args, rng),
    "delivery-pg": lambda args, rng: _on_postgres(fault_kills.delivery, "kill -9 during delivery", args, rng),
    "readonly": fault_storage.read_only,
    "full": fault_storage.full,
    "unreachable": fault_storage.unreachable,
    "no-has-more": fault_servers.no_has_more,
    "trickle": fault_servers.trickle,
    "huge-page": fault_servers.huge_page,
    "long-edit": fault_servers.long_edit,
    "deep-500": lambda args, rng: fault_servers.deep(500, args, rng),
    "deep-900": lambda args, rng: fault_servers.deep(900, args, rng),
    "empty-page": lambda args, rng: fault_servers.empty_listing("[]", args, rng),
    "data-null": lambda args, rng: fault_servers.empty_listing("null", args, rng),
    "deep-1000": lambda args, rng: fault_servers.deep(1_000, args, rng),
    "deep-100000": lambda args, rng: fault_servers.deep(100_000, args, rng),
    "credentials": fault_servers.credentials,
    "redirect": fault_servers.redirect,
    "interval-1ms": fault_servers.interval,
}


def _on_postgres(scenario, name: str, args, rng) -> Row:
    if not args.postgres:
        return Row(f"{name} (PostgreSQL)", "-", "-", "-", "SKIP", ["needs --postgres URL (its schema is dropped)"])
    return scenario(args, rng, postgres=args.postgres)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24, help="kill -9 moments of a whole snapshot (>= 20)")
    parser.add_argument("--delivery-kills", type=int, default=10, help="kill -9 moments of the delivery phase")
    parser.add_argument("--cap", type=float, default=60.0, help="wall-clock seconds a snapshot may run")
    parser.add_argument("--seed", type=int, default=1, help="the seed of every random choice")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database the bench may wipe")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--watcher", metavar="DIR", help="a source tree whose watcher package the children run "
                                                          "(default: this one)")
    args = parser.parse_args(argv)
    tree = use_tree(args.watcher)
    only = [name.strip() for name in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = [name for name in only if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    started = time.monotonic()
    rows = []
    for name in only:
        print(f"faults: {name} ...", file=sys.stderr, flush=True)
        rows.append(SCENARIOS[name](args, random.Random(f"{args.seed}:{name}")))
    print(f"assistant-watcher fault injection (seed {args.seed}); watcher from {tree}; "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}")
    print("wall and peak RSS are those of the watcher process that met the fault")
    print_table(rows)
    failed = [row.name for row in rows if row.verdict == "FAIL"]
    print(f"\nrows failing their promise: {', '.join(failed) if failed else 'none'}; "
          f"bench time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
