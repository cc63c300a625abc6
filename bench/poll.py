"""Poll benchmark: the watcher against a bare SDK listing, at 1k, 5k and 10k assistants.

Run: .venv/bin/python bench/poll.py [--sizes 1000,5000,10000] [--repeat 3] [--growth-polls 10]
                                   [--profile | --no-profile]

What runs where (every process is started with the "spawn" method, so none inherits another's heap):

- the sandbox (watcher.sandbox.server.Sandbox, N seeded assistants, no agents) runs in its OWN process, one per
  size, and sends its URL back through a Pipe; its CPU time is therefore never charged to the client
  being timed, and its memory never counts in the client's RSS;
- a TIMING child per size interleaves, `--repeat` times: the bare SDK listing, the watcher's baseline
  poll into a fresh SQLite file (new temp dir per repetition) and the unchanged second poll; the best
  (min) of the repetitions is kept, so a noisy neighbour only ever makes a figure worse, never better,
  and both sides of each ratio were measured in the same process minutes apart;
- RSS children per size: one runs only the baseline poll, a second (on that database) only an unchanged
  poll, a third only the bare listing; each reports `ru_maxrss`, the high-water mark of its own process.
  Splitting them means the unchanged poll's peak is not hidden under the baseline's, and the bare
  listing's list-of-everything does not inflate the watcher's figure.

Requests are counted by the sandbox itself (list GETs on /v1/assistants?..., read through its
loopback control endpoint, which records no request of its own).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

KEY_ENV = "WATCHER_BENCH_SANDBOX_KEY"
LIST_PREFIX = "/v1/assistants?"  # list requests only (a retrieve would be /v1/assistants/asst_...)

TARGET_UNCHANGED = 1.2
TARGET_BASELINE = 2.0
TARGET_BYTES = 1024
TARGET_RSS = 1.5


# --- the sandbox process ------------------------------------------------------------------------


def sandbox_process(ctx, assistants: int):
    """A sandbox of `assistants` assistants serving from its own spawned process (see bench/floor.py)."""
    from floor import SandboxProcess

    return SandboxProcess(ctx, {"assistants": assistants, "agents": 0})


def count_list_requests(url: str) -> int:
    """List GETs the sandbox has served so far (its control endpoint is loopback-only, unrecorded)."""
    import json
    import urllib.request

    root = url.rsplit("/v1", 1)[0]
    body = json.dumps({"action": "count_requests", "method": "GET", "path_prefix": LIST_PREFIX}).encode()
    request = urllib.request.Request(f"{root}/_sandbox/control", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(json.loads(response.read())["result"])


# --- what is measured (these run in the spawned children) --------------------------------------


def bare_listing(url: str, api_key: str) -> int:
    """What a cron script would do: list every assistant with the SDK and dump them as JSON."""
    import json
    import warnings

    import openai

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = openai.OpenAI(base_url=url, api_key=api_key)
        try:
            objects = [a.model_dump(mode="json") for a in client.beta.assistants.list(limit=100)]
            text = json.dumps(objects)
        finally:
            client.close()
    assert text
    return len(objects)


def warm_sdk(url: str) -> None:
    """Trigger the SDK's lazy imports (`client.beta` builds ~1000 pydantic classes on first use, ~1.4 s).

    Both the daemon and any long-lived script pay that once per process, not per listing; doing it before
    the first timed call keeps a one-off import out of whichever side happens to run first.
    """
    import warnings

    import openai

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = openai.OpenAI(base_url=url, api_key="warm-up")
        client.beta.assistants  # noqa: B018 - the attribute access is the import
        client.close()


def _target(url: str, api_key: str):
    from watcher.config.targets import TargetConfig

    os.environ[KEY_ENV] = api_key
    return TargetConfig(name="bench", kinds=["assistants"], base_url=url, api_key_env=KEY_ENV)


def watcher_poll(engine, target, expected: int, *, baseline: bool):
    from watcher.poll.run import poll_target

    (outcome,) = poll_target(engine, target)
    if outcome.status != "complete" or outcome.objects != expected or outcome.baseline != baseline:
        raise RuntimeError(f"unexpected poll outcome: status={outcome.status} objects={outcome.objects} "
                           f"baseline={outcome.baseline} error={outcome.error}")
    if not baseline and outcome.events:
        raise RuntimeError(f"an unchanged poll recorded {len(outcome.events)} events")
    return outcome


def _db_url(path: str) -> str:
    return f"sqlite:///{path}"


def db_size(path: str) -> tuple[int, int]:
    """(bytes on disk, bytes in use) of a SQLite database, after folding its WAL into it.

    `PRAGMA wal_checkpoint(TRUNCATE)` copies every committed page from the -wal file into the main
    file and truncates the -wal file to zero bytes. Without it, "db + wal" would mostly measure when
    SQLite last checkpointed (the WAL is reused, not shrunk, and sits at ~4 MB after any big write),
    not how much the record grew. After it, the main file's size is the real on-disk footprint, but it
    only moves in whole pages (4096 bytes): one small poll row adds either 0 or 4096 bytes. So the
    second figure, the sum over every page of (page size - unused bytes) from the `dbstat` virtual
    table, counts the bytes actually used by rows, indexes and page headers, to the byte.
    """
    import sqlite3

    connection = sqlite3.connect(path, timeout=30)
    try:
        busy, _log, _done = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise RuntimeError("could not checkpoint the WAL: another connection is reading")
        used = connection.execute("SELECT sum(pgsize - unused) FROM dbstat").fetchone()[0]
    finally:
        connection.close()
    wal = path + "-wal"
    on_disk = os.path.getsize(path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
    return on_disk, int(used)


def timing_child(url: str, api_key: str, n: int, repeat: int, growth_polls: int) -> dict:
    """Interleaved repetitions of bare / baseline / unchanged; min of each; requests; bytes."""
    import watcher.poll.run  # noqa: F401 - imports out of the timed region, for both sides
    from watcher.record.engine import open_engine

    warm_sdk(url)
    target = _target(url, api_key)
    result = {"bare": [], "baseline": [], "unchanged": [], "open": [], "bare_requests": set(),
              "baseline_requests": set(), "unchanged_requests": set(), "used_bytes": [], "file_bytes": []}
    for _ in range(repeat):
        before = count_list_requests(url)
        t0 = time.perf_counter()
        listed = bare_listing(url, api_key)
        result["bare"].append(time.perf_counter() - t0)
        result["bare_requests"].add(count_list_requests(url) - before)
        if listed != n:
            raise RuntimeError(f"the bare listing saw {listed} assistants, not {n}")

        with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
            path = os.path.join(tmp, "watcher.db")
            t0 = time.perf_counter()
            engine = open_engine(_db_url(path))  # creation and migrations: reported, not in the poll time
            result["open"].append(time.perf_counter() - t0)
            try:
                before = count_list_requests(url)
                t0 = time.perf_counter()
                watcher_poll(engine, target, n, baseline=True)
                result["baseline"].append(time.perf_counter() - t0)
                result["baseline_requests"].add(count_list_requests(url) - before)

                disk0, used0 = db_size(path)
                before = count_list_requests(url)
                t0 = time.perf_counter()
                watcher_poll(engine, target, n, baseline=False)
                result["unchanged"].append(time.perf_counter() - t0)
                result["unchanged_requests"].add(count_list_requests(url) - before)
                disk1, used1 = db_size(path)
                result["used_bytes"].append(used1 - used0)
                result["file_bytes"].append(disk1 - disk0)
                if growth_polls:
                    # Amortized on-disk growth: many unchanged polls, so page granularity averages out.
                    for _ in range(growth_polls):
                        watcher_poll(engine, target, n, baseline=False)
                    disk2, used2 = db_size(path)
                    result["amortized_file"] = (disk2 - disk1) / growth_polls
                    result["amortized_used"] = (used2 - used1) / growth_polls
                    result["db_bytes"] = disk2
            finally:
                engine.dispose()
    for key in ("bare_requests", "baseline_requests", "unchanged_requests"):
        result[key] = sorted(result[key])
    return result


def _maxrss() -> int:
    """This process's peak resident set size in bytes (Linux reports KiB)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def rss_watcher_child(url: str, api_key: str, n: int, path: str, baseline: bool) -> dict:
    """Peak RSS of a process that does one watcher poll (baseline into `path`, or an unchanged one)."""
    import watcher.poll.run  # noqa: F401
    from watcher.record.engine import open_engine

    warm_sdk(url)
    target = _target(url, api_key)
    engine = open_engine(_db_url(path))
    ready = _maxrss()  # imports done, engine open and migrated: the floor every size shares
    watcher_poll(engine, target, n, baseline=baseline)
    engine.dispose()
    return {"ready": ready, "peak": _maxrss()}


def rss_bare_child(url: str, api_key: str, n: int) -> dict:
    warm_sdk(url)
    ready = _maxrss()
    listed = bare_listing(url, api_key)
    if listed != n:
        raise RuntimeError(f"the bare listing saw {listed} assistants, not {n}")
    return {"ready": ready, "peak": _maxrss()}


def profile_child(url: str, api_key: str, n: int, which: str) -> str:
    """cProfile of one watcher poll at size n (top 25 by cumulative time)."""
    import cProfile
    import io
    import pstats

    import watcher.poll.run  # noqa: F401
    from watcher.record.engine import open_engine

    warm_sdk(url)
    target = _target(url, api_key)
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
        engine = open_engine(_db_url(os.path.join(tmp, "watcher.db")))
        profiler = cProfile.Profile()
        if which == "baseline":
            profiler.enable()
        watcher_poll(engine, target, n, baseline=True)
        if which == "unchanged":
            profiler.enable()
            watcher_poll(engine, target, n, baseline=False)
        profiler.disable()
        engine.dispose()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    return out.getvalue()


# --- the parent: orchestration and the table ---------------------------------------------------


def in_child(ctx, func, *args):
    """Run func(*args) in a brand-new spawned process and return its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(func, *args).result()


def expected_requests(n: int) -> int:
    # One request per 100 objects; plus one when the last page is exactly full and says has_more=false:
    # the watcher asks once more rather than trust a server that might be truncating (see source.py).
    return math.ceil(n / 100) + (1 if n % 100 == 0 else 0)


def measure(ctx, n: int, args) -> dict:
    sandbox = sandbox_process(ctx, n)
    try:
        print(f"  {n:>6} assistants: timing ({args.repeat} repetitions) ...", file=sys.stderr, flush=True)
        row = in_child(ctx, timing_child, sandbox.url, sandbox.api_key, n, args.repeat, args.growth_polls)
        print(f"  {n:>6} assistants: peak RSS children ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="watcher-bench-rss-") as tmp:
            path = os.path.join(tmp, "watcher.db")
            row["rss_baseline"] = in_child(ctx, rss_watcher_child, sandbox.url, sandbox.api_key, n, path, True)
            row["rss_unchanged"] = in_child(ctx, rss_watcher_child, sandbox.url, sandbox.api_key, n, path, False)
        row["rss_bare"] = in_child(ctx, rss_bare_child, sandbox.url, sandbox.api_key, n)
        if args.profile_at == n:
            row["profiles"] = {which: in_child(ctx, profile_child, sandbox.url, sandbox.api_key, n, which)
                               for which in args.profile_which}
    finally:
        sandbox.close()
    return row


def _mib(b: float) -> str:
    return f"{b / 2**20:.1f}"


def _reqs(values: list[int]) -> str:
    return "/".join(str(v) for v in values)


def render(sizes: list[int], rows: dict[int, dict], args) -> tuple[str, list[str]]:
    import platform
    import sqlite3

    import openai

    lines = []
    missed = []
    width = max(10, *(len(f"{n:,}") + 2 for n in sizes))
    label_w = 50

    def line(label: str, cells: list[str], target: str = "", verdict: str = "") -> None:
        lines.append(f"{label:<{label_w}}" + "".join(f"{c:>{width}}" for c in cells)
                     + (f"   {target:<22} {verdict}" if target or verdict else ""))

    def verdict(ok: bool, name: str) -> str:
        if not ok:
            missed.append(name)
        return "PASS" if ok else "MISS"

    lines.append("assistant-watcher poll benchmark")
    lines.append(f"python {platform.python_version()}, openai {openai.__version__}, SQLite {sqlite3.sqlite_version}, "
                 f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}")
    lines.append("sandbox: in its own process (one per size); every timing and RSS below is a client process's "
                 "alone.")
    lines.append(f"timings: best (min) of {args.repeat} interleaved repetitions (bare, baseline on a fresh DB, "
                 "unchanged), all in one child process per size;")
    lines.append("         the SDK's one-off lazy import of client.beta (~1.4 s per process) is done before timing.")
    lines.append("")
    line("assistants (N)", [f"{n:,}" for n in sizes], "target", "")
    lines.append("-" * (label_w + width * len(sizes) + 30))

    bare = [min(rows[n]["bare"]) for n in sizes]
    base = [min(rows[n]["baseline"]) for n in sizes]
    unch = [min(rows[n]["unchanged"]) for n in sizes]
    line("bare SDK listing + model_dump + json.dumps (s)", [f"{t:.3f}" for t in bare])
    line("watcher baseline poll, fresh SQLite (s)", [f"{t:.3f}" for t in base])
    line("watcher unchanged poll (s)", [f"{t:.3f}" for t in unch])
    line("  (not in the above: open_engine + migrations (s))", [f"{min(rows[n]['open']):.3f}" for n in sizes])
    r_unch = [u / b for u, b in zip(unch, bare)]
    r_base = [u / b for u, b in zip(base, bare)]
    line("unchanged / bare", [f"{r:.2f}x" for r in r_unch], f"<= {TARGET_UNCHANGED}x",
         verdict(all(r <= TARGET_UNCHANGED for r in r_unch), "unchanged/bare"))
    line("baseline / bare", [f"{r:.2f}x" for r in r_base], f"<= {TARGET_BASELINE}x",
         verdict(all(r <= TARGET_BASELINE for r in r_base), "baseline/bare"))
    lines.append("")

    line("list GETs: ceil(N/100)", [str(math.ceil(n / 100)) for n in sizes])
    line("list GETs: bare SDK listing", [_reqs(rows[n]["bare_requests"]) for n in sizes])
    line("list GETs: watcher baseline poll", [_reqs(rows[n]["baseline_requests"]) for n in sizes])
    line("list GETs: watcher unchanged poll", [_reqs(rows[n]["unchanged_requests"]) for n in sizes])
    line("list GETs expected of the watcher (*)", [str(expected_requests(n)) for n in sizes], "ceil(N/100) (+1 *)",
         verdict(all(rows[n]["baseline_requests"] == rows[n]["unchanged_requests"] == [expected_requests(n)]
                     for n in sizes), "requests"))
    lines.append("")

    used = [max(rows[n]["used_bytes"]) for n in sizes]
    filed = [max(rows[n]["file_bytes"]) for n in sizes]
    line("DB bytes used, added by an unchanged poll (**)", [str(u) for u in used], f"< {TARGET_BYTES} B",
         verdict(all(u < TARGET_BYTES for u in used), "bytes used per unchanged poll"))
    line("DB file bytes added by that one poll (**)", [str(f) for f in filed], "(whole 4 KiB pages)")
    if args.growth_polls:
        am_used = [rows[n]["amortized_used"] for n in sizes]
        am_file = [rows[n]["amortized_file"] for n in sizes]
        line(f"  same, mean over {args.growth_polls} more unchanged polls: used", [f"{u:.0f}" for u in am_used],
             f"< {TARGET_BYTES} B", verdict(all(u < TARGET_BYTES for u in am_used), "mean bytes used"))
        line(f"  same, mean over {args.growth_polls} more unchanged polls: file", [f"{f:.0f}" for f in am_file],
             f"< {TARGET_BYTES} B", verdict(all(f < TARGET_BYTES for f in am_file), "mean file growth"))
        line("  DB file size after those polls (MiB)", [_mib(rows[n]["db_bytes"]) for n in sizes])
    lines.append("")

    line("RSS after imports + open_engine (MiB)", [_mib(rows[n]["rss_baseline"]["ready"]) for n in sizes])
    line("peak RSS, baseline-poll process (MiB)", [_mib(rows[n]["rss_baseline"]["peak"]) for n in sizes])
    line("peak RSS, unchanged-poll process (MiB)", [_mib(rows[n]["rss_unchanged"]["peak"]) for n in sizes])
    line("peak RSS, bare-listing process (MiB, reference)", [_mib(rows[n]["rss_bare"]["peak"]) for n in sizes])
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for kind in ("baseline", "unchanged"):
            ratio = rows[hi][f"rss_{kind}"]["peak"] / rows[lo][f"rss_{kind}"]["peak"]
            line(f"peak RSS {kind} poll at {hi:,} / at {lo:,}", [""] * (len(sizes) - 1) + [f"{ratio:.2f}x"],
                 f"<= {TARGET_RSS}x", verdict(ratio <= TARGET_RSS, f"peak RSS {kind}"))
        ratio = rows[hi]["rss_bare"]["peak"] / rows[lo]["rss_bare"]["peak"]
        line(f"peak RSS bare listing at {hi:,} / at {lo:,} (reference)", [""] * (len(sizes) - 1) + [f"{ratio:.2f}x"])
    lines.append("")
    lines.append("(*) the watcher asks for one page more than the SDK when the last page is exactly full (100 "
                 "objects) and says")
    lines.append("    has_more=false: a safety rule against servers that truncate a listing while claiming it is "
                 "complete.")
    lines.append("    So for N a multiple of 100 it makes ceil(N/100)+1 list requests; the bare SDK trusts has_more "
                 "and makes ceil(N/100).")
    lines.append("(**) sizes measured after PRAGMA wal_checkpoint(TRUNCATE) before and after the poll (WAL folded "
                 "in, -wal file emptied);")
    lines.append("    'used' = sum(pgsize - unused) over dbstat, byte-exact; 'file' = db + wal file sizes, which "
                 "move by whole pages.")
    lines.append("")
    lines.append("targets missed: " + (", ".join(missed) if missed else "none"))
    return "\n".join(lines), missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,10000", help="comma-separated assistant counts")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per timing (the min is kept)")
    parser.add_argument("--growth-polls", type=int, default=10,
                        help="extra unchanged polls for the mean on-disk growth (0 skips)")
    parser.add_argument("--no-floor", action="store_true", help="skip bench/floor.py's comparisons")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--profile", action="store_true", help="always profile the largest size's polls")
    group.add_argument("--no-profile", action="store_true", help="never profile, even if a target is missed")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < 1 or args.repeat < 1 or args.growth_polls < 0:
        parser.error("sizes must be positive integers, --repeat >= 1, --growth-polls >= 0")
    args.profile_at = sizes[-1] if args.profile else None
    args.profile_which = ("unchanged", "baseline")

    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    rows = {n: measure(ctx, n, args) for n in sizes}
    table, missed = render(sizes, rows, args)
    print(table, flush=True)

    profiles = rows[sizes[-1]].get("profiles")
    if profiles is None and missed and not args.no_profile:
        # Show where the time goes: always the unchanged poll; the baseline too if its target was missed.
        which = ["unchanged"] + (["baseline"] if "baseline/bare" in missed else [])
        print(f"\nprofiling at {sizes[-1]:,} assistants (a target was missed) ...", file=sys.stderr, flush=True)
        sandbox = sandbox_process(ctx, sizes[-1])
        try:
            profiles = {w: in_child(ctx, profile_child, sandbox.url, sandbox.api_key, sizes[-1], w) for w in which}
        finally:
            sandbox.close()
    for which, text in (profiles or {}).items():
        print(f"\n=== cProfile: watcher {which} poll at {sizes[-1]:,} assistants (top 25, cumulative) ===")
        print(text.rstrip())
    if not args.no_floor:
        import floor  # bench/floor.py: the floor, whole processes, the daemon, the mixed account

        print(floor.run(sizes, args.repeat), flush=True)
    print(f"\n(total benchmark time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
