"""Hostile servers against `snapshot` (bench/faults.py): each one of issue 9, and `interval = "1ms"`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import hostile
from child import KEY, MIB, Record, Row, config_accepts, mib, run_watcher, secs, verdict, write_config

from watcher.demo import SmtpSink
from watcher.sandbox.server import Sandbox


def _hostile(prefix: str, behaviour, cap: float, schedule: str = "", runs: int = 1, between=None):
    """`runs` snapshots of a HostileServer (with e-mail), `between(n)` called before run n > 0."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, SmtpSink() as sink:
        server = hostile.HostileServer(behaviour)
        try:
            url = f"sqlite:///{tmp}/watcher.db"
            config = write_config(Path(tmp), server.url, url, smtp=sink, kinds=("assistants",), schedule=schedule)
            results = []
            for n in range(runs):
                if n and between:
                    between(n)
                results.append(run_watcher(config, "snapshot", cap=cap))
            record = Record(url)
            figures = {"polls": record.polls(), "deleted": record.events("deleted"),
                       "reappeared": record.events("reappeared"), "modified": record.events("modified"),
                       "mail": len(sink.messages)}
            record.close()
        finally:
            server.close()
    return results, figures


def no_has_more(args, _rng) -> Row:
    behaviour = hostile.NoHasMore(count=150, page=20)
    phases = {1: False, 2: True}

    def between(n: int) -> None:
        behaviour.honest = phases[n]

    (baseline, hostile_run, honest), figures = _hostile("faults-nhm-", behaviour, args.cap, runs=3, between=between)
    ok = figures["deleted"] == 0 and hostile_run.code in (0, 1)
    return Row("no has_more, 20 a page", f"{baseline.exit}, {hostile_run.exit}, {honest.exit}", secs(hostile_run),
               mib(hostile_run), verdict(ok), [
                   "baseline of 150 while the server honoured limit and has_more; then 20 a page whatever limit "
                   f"says, has_more left out: {figures['deleted']} deletions recorded; then honest again: "
                   f"{figures['reappeared']} reappeared; {figures['mail']} e-mails",
                   f"that poll: {_last_poll(figures, 1)}",
               ])


def trickle(args, _rng) -> Row:
    deadline = 'poll_timeout = "20s"'
    supported = config_accepts(deadline)
    (run,), figures = _hostile("faults-trickle-", hostile.Trickle(), args.cap, schedule=deadline if supported else "")
    failed = [p for p in figures["polls"] if p[2] == "failed"]
    ok = run.killed is None and run.code == 1 and bool(failed)
    return Row("trickle: 16 bytes every 2 s", run.exit, secs(run), mib(run), verdict(ok), [
        ("[schedule] poll_timeout = \"20s\"" if supported else "this watcher has no [schedule] poll_timeout: "
         "nothing bounds a whole poll") + f"; the bench's cap is {args.cap:.0f} s",
        f"polls recorded: {len(figures['polls'])}, failed: {len(failed)}"
        + (f" ({failed[-1][3]})" if failed else ""),
    ])


def huge_page(args, _rng) -> Row:
    behaviour = hostile.HugePage(count=100, size=3 * MIB)
    (run,), figures = _hostile("faults-huge-", behaviour, max(args.cap, 180))
    answer = 100 * 3 * MIB
    ok = run.code == 1 and run.peak < answer
    return Row("one page of 100 x 3 MB", run.exit, secs(run), mib(run), verdict(ok), [
        f"the answer is {answer // MIB} MiB in one page that ignores limit; the promise: the poll fails naming the "
        f"page, and memory stays below the answer's size",
        f"that poll: {_last_poll(figures)}",
    ])


def _last_poll(figures: dict, index: int = -1) -> str:
    if len(figures["polls"]) <= index or not figures["polls"]:
        return "none recorded"
    _id, kind, status, error = figures["polls"][index]
    return f"{kind} {status}" + (f": {error[:150]}" if error else "")


def long_edit(args, _rng) -> Row:
    lines, size = [], 0
    while size < 230_000:
        lines.append(f"line {len(lines)}")
        size += len(lines[-1]) + 1
    edited = "\n".join(line + " (edited)" if n % 2 else line for n, line in enumerate(lines))
    with tempfile.TemporaryDirectory(prefix="faults-long-") as tmp, \
            Sandbox(assistants=20, agents=0, api_key=KEY) as api, SmtpSink() as sink:
        url = f"sqlite:///{tmp}/watcher.db"
        config = write_config(Path(tmp), api.url, url, smtp=sink, kinds=("assistants",))
        big = api.add("assistants", name="Long rules", model="gpt-4o", instructions="\n".join(lines))
        run_watcher(config, "snapshot", cap=args.cap)
        unchanged = min((run_watcher(config, "snapshot", cap=args.cap) for _ in range(3)), key=lambda r: r.seconds)
        api.edit("assistants", big["id"], instructions=edited)
        run = run_watcher(config, "snapshot", cap=max(args.cap, 300))
        record = Record(url)
        modified = record.events("modified")
        record.close()
        mail = len(sink.messages)
    ratio = run.seconds / unchanged.seconds
    ok = run.code == 0 and modified == 1 and ratio <= 4
    return Row("230k instructions, every other line", run.exit, secs(run), mib(run), verdict(ok), [
        f"{len(lines):,} lines, {len(lines) // 2:,} edited: that snapshot {run.seconds:.2f} s against an unchanged "
        f"one {unchanged.seconds:.2f} s (best of 3): {ratio:.1f}x (target <= 4x); {modified} modified event, "
        f"{mail} e-mail",
    ])


def deep(depth: int, args, _rng) -> Row:
    behaviour = hostile.DeepMetadata(depth)

    def between(_n: int) -> None:
        behaviour.leaf = "after"

    (first, second), figures = _hostile(f"faults-deep{depth}-", behaviour, args.cap, runs=2, between=between)
    ok = first.code == second.code == 0 and figures["modified"] == 1
    return Row(f"metadata nested {depth} deep", f"{first.exit}, then {second.exit}", secs(second), mib(second),
               verdict(ok), [
                   f"baseline, then the innermost value edited: {figures['modified']} modified event, "
                   f"{figures['mail']} e-mail; stderr {first.error_lines} + {second.error_lines} lines",
                   f"that poll: {_last_poll(figures)}",
               ])


def empty_listing(data: str, args, _rng) -> Row:
    behaviour = hostile.EmptyListing(data)

    def between(_n: int) -> None:
        behaviour.empty = True

    (baseline, run), figures = _hostile("faults-empty-", behaviour, args.cap, runs=2, between=between)
    ok = run.code == 1 and figures["deleted"] == 0
    return Row(f"an empty listing, data {data}", f"{baseline.exit}, then {run.exit}", secs(run), mib(run),
               verdict(ok), [
                   f"baseline of 5; then a listing of none, each still served by id: {figures['deleted']} "
                   f"deletions recorded, {figures['mail']} e-mails",
                   f"that poll: {_last_poll(figures)}",
               ])


def credentials(args, _rng) -> Row:
    behaviour = hostile.Credentials()
    with tempfile.TemporaryDirectory(prefix="faults-secrets-") as tmp, SmtpSink() as sink:
        server = hostile.HostileServer(behaviour)
        try:
            url = f"sqlite:///{tmp}/watcher.db"
            config = write_config(Path(tmp), server.url, url, smtp=sink, kinds=("assistants",))
            first = run_watcher(config, "snapshot", cap=args.cap)
            behaviour.rotate()
            second = run_watcher(config, "snapshot", cap=args.cap)
            shown = [run_watcher(config, *command, cap=args.cap) for command in
                     (["events", "--json"], ["show", "asst_000001", "--json"], ["diff", "asst_000001"])]
            record = Record(url)
            rows = "\n".join(repr(row) for table in ("resources", "versions", "events", "alerts", "outbox")
                             for row in record.rows(f"SELECT * FROM {table}"))  # noqa: S608 - our own names
            modified = record.events("modified")
            record.close()
        finally:
            server.close()
        outputs = {"database": rows, "mail": "\n".join(m.message.as_string() for m in sink.messages),
                   "CLI": "\n".join(run.out + run.err for run in (first, second, *shown))}
    leaks = sorted({where for where, text in outputs.items() for secret in behaviour.secrets() if secret in text})
    ok = first.code == second.code == 0 and modified == 1 and not leaks and len(sink.messages) == 1
    return Row("credentials in a URL and a key shape", f"{first.exit}, then {second.exit}", secs(second),
               mib(second), verdict(ok), [
                   "an MCP URL with user:password@ and ?token=, and an sk-proj- key under metadata; then all "
                   f"three rotated: {modified} modified event, {len(sink.messages)} e-mail",
                   f"cleartext found in: {', '.join(leaks) if leaks else 'nothing'} (database rows, e-mails, "
                   "events --json, show --json, diff)",
               ])


def redirect(args, _rng) -> Row:
    from watcher.config.model import load_config
    from watcher.record.engine import open_engine
    from watcher.web.app import Web
    from watcher.web.server import HttpServer

    probes = ("//evil.example/", "/%09/evil.example", "/%5C/evil.example", "/%0D%0ALocation:%20//evil.example",
              "https://evil.example/", "/\u202e/evil.example")
    with tempfile.TemporaryDirectory(prefix="faults-redirect-") as tmp, \
            Sandbox(assistants=len(probes), agents=0, api_key=KEY) as api:
        config = write_config(Path(tmp), api.url, f"sqlite:///{tmp}/watcher.db", kinds=("assistants",))
        config.write_text(config.read_text() + f'[http]\nlisten = "127.0.0.1:8080"\ntoken_env = "{_TOKEN_ENV}"\n')
        os.environ[_TOKEN_ENV] = _TOKEN
        run_watcher(config, "snapshot", cap=args.cap)
        for assistant in api.objects("assistants"):  # an open event for each probe to acknowledge
            api.edit("assistants", assistant["id"], model="gpt-redirect")
        run_watcher(config, "snapshot", cap=args.cap)
        engine = open_engine(f"sqlite:///{tmp}/watcher.db")
        server = HttpServer(Web(load_config(config), engine), "127.0.0.1", 0).start()
        try:
            answers = [_post_ack(server.url, event_id, probe) for event_id, probe in enumerate(probes, 1)]
        finally:
            server.stop()
            engine.dispose()
    off_site = [(probe, where) for probe, (_status, where) in zip(probes, answers) if where not in ("/events",)]
    ok = not off_site and all(status == 303 for status, _where in answers)
    return Row("the acknowledge form's next", ", ".join(sorted({str(s) for s, _w in answers})), "-", "-",
               verdict(ok), [f"{len(probes)} hostile next values (//, tab, backslash, CRLF, a scheme, bidi): "
                             + (f"sent off-site: {off_site}" if off_site else "each one sent back to /events")])


_TOKEN_ENV, _TOKEN = "WATCHER_BENCH_HTTP_TOKEN", "bench-web-token-0123456789abcdef"


def _post_ack(base: str, event_id: int, next_value: str) -> tuple[int, str]:
    import http.client
    from urllib.parse import quote, urlsplit

    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    body = f"by=bench&note=&token={_TOKEN}&next={quote(next_value, safe='%/:')}"
    connection.request("POST", f"/events/{event_id}/ack", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    location = response.getheader("Location") or ""
    response.read()
    connection.close()
    return response.status, location.removeprefix(base)


def interval(args, _rng) -> Row:
    with tempfile.TemporaryDirectory(prefix="faults-interval-") as tmp, \
            Sandbox(assistants=5, agents=5, api_key=KEY) as api:
        database = Path(tmp) / "watcher.db"
        config = write_config(Path(tmp), api.url, f"sqlite:///{database}", schedule='interval = "1ms"')
        run = run_watcher(config, "run", cap=40, term_after=20)
        polls = 0
        if database.exists():
            record = Record(f"sqlite:///{database}")
            polls = len(record.polls())
            record.close()
    warnings = sum(1 for line in run.err.splitlines()
                   if "maximum number of running instances" in line or "was missed by" in line)
    ok = run.code == 2 and run.error_lines == 1
    return Row('interval = "1ms"', run.exit, secs(run), mib(run), verdict(ok), [
        f"`run` stopped with SIGTERM after 20 s unless it exits first: {polls} polls recorded, {warnings} scheduler "
        f"warnings, {run.error_lines} stderr lines; first: {run.first_error}",
    ])
