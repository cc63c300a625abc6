"""kill -9 of `snapshot` at random moments of a whole run, and of its delivery phase (bench/faults.py)."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from child import KEY, Record, Row, Run, edit_round, message_ids, mib, run_watcher, secs, verdict, write_config
from sqlalchemy import text

from watcher.demo import SmtpSink
from watcher.sandbox.server import Sandbox


def database(tmp: str, postgres: str | None) -> str:
    """The database a row runs on: a new SQLite file in `tmp`, or `postgres` with its schema dropped."""
    if postgres is None:
        return f"sqlite:///{tmp}/watcher.db"
    wipe = Record(postgres)
    with wipe.engine.begin() as connection:  # a fresh, unmigrated database, as the test fixtures do
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    wipe.close()
    return postgres


def _on(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


def whole_run(args, rng: random.Random, postgres: str | None = None) -> Row:
    with tempfile.TemporaryDirectory(prefix="faults-kills-") as tmp, \
            Sandbox(assistants=300, agents=100, api_key=KEY) as api, SmtpSink() as sink:
        url = database(tmp, postgres)
        config = write_config(Path(tmp), api.url, url, smtp=sink)
        record = Record(url)
        runs = [run_watcher(config, "snapshot", cap=args.cap)]  # the baseline: no alerts
        rounds = [edit_round(api, rng, 0)]
        calibration, first_request, first_mail = _timed_run(config, api, sink, args.cap)
        runs.append(calibration)
        # Half the kills fall in listing and recording (up to the first e-mail), half anywhere after the first request.
        spans = (first_mail - first_request, calibration.seconds - first_request)
        phases: dict[str, int] = {}
        integrity, window, kills = 0, set(), 0
        while kills < args.kills and len(rounds) <= 3 * args.kills:  # a run that ends before its moment: again
            rounds.append(edit_round(api, rng, len(rounds)))
            polls_before, mail_before = len(record.polls()), len(sink.messages)
            moment = rng.uniform(0, spans[len(rounds) % 2])
            run = run_watcher(config, "snapshot", cap=args.cap, kill_when=_after_first_request(api, moment))
            time.sleep(0.3)  # let the sink finish a message the kill cut short
            where = _phase(record, polls_before, sink, mail_before, run)
            phases[where] = phases.get(where, 0) + 1
            if run.killed:
                kills += 1
                integrity += record.integrity_ok()
                window |= record.unsent() & set(message_ids(sink))
                record.expire_claims()
            runs.append(run_watcher(config, "snapshot", cap=args.cap) if run.killed else run)
        once, total = sum(e.recorded_once(record) for e in rounds), sum(e.count() for e in rounds)
        events, expected = record.events(), 5 * len(rounds)
        versions_twice, events_twice = record.duplicates()
        mail = _mail_figures(record, sink, window)
        record.close()
    clean_exits = sum(1 for r in runs if r.code == 0)
    ok = (once == total and events == expected and integrity == kills == args.kills
          and versions_twice == events_twice == 0 and mail["other"] == mail["lost"] == 0 and clean_exits == len(runs))
    return Row(f"kill -9 of snapshot ({kills} kills, {_on(url)})",
               f"killed x{kills}; others 0 x{clean_exits}/{len(runs)}",
               secs(calibration), mib(calibration), verdict(ok), [
                   f"300 assistants, 100 agents, e-mail on; kills uniform over 0..{spans[0]:.1f} s (to the first "
                   f"e-mail) or 0..{spans[1]:.1f} s (to the end), in turn, after the run's first API request, as an "
                   f"uninterrupted run (wall time shown) spent them: "
                   + ", ".join(f"{n} {p}" for p, n in sorted(phases.items(), key=lambda item: -item[1])),
                   f"edits recorded exactly once: {once}/{total}; events {events} (expected {expected}); "
                   f"integrity_check ok after {integrity}/{kills} kills; duplicate versions {versions_twice}, "
                   f"duplicate events {events_twice}",
                   _mail_line(mail),
               ] + _unclean(runs))


def _unclean(runs: list[Run]) -> list[str]:
    """One line per run that was not killed and still did not exit 0: its code and first stderr line."""
    return [f"a run that was not killed on purpose exited {r.exit}: {r.first_error}"
            for r in runs if r.killed != "kill -9" and r.code != 0]


def _after_first_request(api: Sandbox, delay: float):
    """A kill_when that fires `delay` seconds after the run's first API request (imports take what they take)."""
    seen, first = len(api.requests), []

    def due(elapsed: float) -> bool:
        if not first and len(api.requests) > seen:
            first.append(elapsed)
        return bool(first) and elapsed - first[0] >= delay

    return due


def _timed_run(config: Path, api: Sandbox, sink: SmtpSink, cap: float) -> tuple[Run, float, float]:
    """An uninterrupted snapshot, and the seconds from its start to its first API request and first e-mail."""
    requests, mails, first = len(api.requests), len(sink.messages), {}

    def watch(elapsed: float) -> bool:
        if "request" not in first and len(api.requests) > requests:
            first["request"] = elapsed
        if "mail" not in first and len(sink.messages) > mails:
            first["mail"] = elapsed
        return False

    run = run_watcher(config, "snapshot", cap=cap, kill_when=watch)
    return run, first.get("request", 0.0), first.get("mail", run.seconds)


def _phase(record: Record, polls_before: int, sink: SmtpSink, mail_before: int, run: Run) -> str:
    """Where in the run a kill landed, from what the record and the sink held after it."""
    if run.killed is None:
        return "ended before its moment (not counted)"
    polls = len(record.polls()) - polls_before
    if polls == 0:
        return "before any poll was recorded"
    if polls == 1:
        return "between the two kinds"
    return "during delivery" if len(sink.messages) > mail_before or record.unsent() else "after the last e-mail"


def _mail_figures(record: Record, sink: SmtpSink, window: set[str]) -> dict[str, int]:
    """Duplicates split by whether the kill left that message accepted but its row unmarked, and losses."""
    received: dict[str, int] = {}
    for message_id in message_ids(sink):
        received[message_id] = received.get(message_id, 0) + 1
    extra = {m: n - 1 for m, n in received.items() if n > 1}
    return {"rows": len(record.message_ids()), "received": sum(received.values()),
            "allowed": sum(n for m, n in extra.items() if m in window),
            "other": sum(n for m, n in extra.items() if m not in window),
            "lost": len(record.message_ids() - set(received)), "pending": len(record.unsent())}


def _mail_line(mail: dict[str, int]) -> str:
    return (f"e-mails: {mail['received']} received for {mail['rows']} outbox rows; duplicates: {mail['allowed']} "
            f"of a message accepted while its row was unmarked (allowed), {mail['other']} other; "
            f"{mail['lost']} lost, {mail['pending']} still pending")


# --- kill -9 during delivery ------------------------------------------------------------------------------


class SlowSink(SmtpSink):
    """An SMTP sink that takes `delay` seconds over each message before answering 250."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def accepted(self, mail) -> None:
        time.sleep(self.delay)  # the message counts as received only once it is answered
        super().accepted(mail)


def delivery(args, rng: random.Random, postgres: str | None = None) -> Row:
    per_round = 10
    with tempfile.TemporaryDirectory(prefix="faults-delivery-") as tmp, \
            Sandbox(assistants=60, agents=0, api_key=KEY) as api, SlowSink(0.08) as sink:
        url = database(tmp, postgres)
        config = write_config(Path(tmp), api.url, url, smtp=sink, kinds=("assistants",),
                              alerts="digest_threshold = 1000")
        record = Record(url)
        runs = [run_watcher(config, "snapshot", cap=args.cap)]
        _edit_many(api, rng, 0, per_round)
        before = len(sink.messages)
        runs.append(run_watcher(config, "snapshot", cap=args.cap))
        arrived = [m.accepted_at for m in sink.messages[before:]]
        span = arrived[-1] - arrived[0] if len(arrived) > 1 else 1.0
        window, in_window, kills, number = set(), 0, 0, 0
        while kills < args.delivery_kills and number <= 3 * args.delivery_kills:
            number += 1
            _edit_many(api, rng, number, per_round)
            before, moment = len(sink.messages), rng.uniform(0, span)

            def kill_when(_elapsed, before=before, moment=moment) -> bool:
                new = sink.messages[before:]
                return bool(new) and time.monotonic() - new[0].accepted_at >= moment

            run = run_watcher(config, "snapshot", cap=args.cap, kill_when=kill_when)
            if not run.killed:
                runs.append(run)  # it delivered everything before its moment came
                continue
            kills += 1
            time.sleep(0.3)  # the sink answers a message the kill cut short after its 80 ms: count it
            caught = record.unsent() & set(message_ids(sink))
            in_window += bool(caught)
            window |= caught
            record.expire_claims()
            runs.append(run_watcher(config, "snapshot", cap=args.cap))
        mail = _mail_figures(record, sink, window)
        record.close()
    clean_exits = sum(1 for r in runs if r.code == 0)
    ok = (mail["other"] == mail["lost"] == mail["pending"] == 0 and clean_exits == len(runs)
          and kills == args.delivery_kills)
    return Row(f"kill -9 during delivery ({kills} kills, {_on(url)})",
               f"killed x{kills}; others 0 x{clean_exits}/{len(runs)}", f"{span:.1f}", mib(runs[1]), verdict(ok), _unclean(runs) + [
                   f"{per_round} e-mails a round, 80 ms each at the sink; kills uniform over the {span:.1f} s "
                   f"from the first to the last of them (the wall time shown); {in_window} kills landed between "
                   f"an acceptance and its row being marked",
                   _mail_line(mail),
               ])


def _edit_many(api: Sandbox, rng: random.Random, number: int, count: int) -> None:
    for object_id in rng.sample([o["id"] for o in api.objects("assistants")], count):
        api.edit("assistants", object_id, metadata={"round": str(number)})
