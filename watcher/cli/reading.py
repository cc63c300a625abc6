"""Reading the record: history, show, diff, events, objects, status.

Each opens the record in plain SQL (`App.database`): no SQLAlchemy, Alembic, pydantic or openai,
so that reading answers as fast as a bare SQLite client; `events --follow` and `diff` import what
only they need.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime

import click

from watcher.cli.app import EXIT_OK, App, pass_app
from watcher.cli.output import (
    echo_change,
    echo_table,
    known_kinds,
    print_json,
    printable_json,
    readable_time,
    resource_title,
)
from watcher.compare import diff
from watcher.display import actor_text, counted, header_text, json_text, printable
from watcher.record import documents, history_sql, overview_sql
from watcher.record.schema import RULES_CHANGED
from watcher.times import iso, json_time


@click.command("history")
@click.argument("obj", metavar="OBJECT")
@click.option("--target", metavar="NAME", help="When a name exists on several targets.")
@click.option("--kind", metavar="KIND", callback=known_kinds,
              help="When a name exists under several kinds (a skill and its versions).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def history_command(app: App, obj: str, target: str | None, kind: str | None, as_json: bool) -> None:
    """The versions of OBJECT (a remote id or a unique name), oldest first."""
    with app.database() as db:
        _check_target(app, db, target)
        resource = history_sql.find_resource(db, obj, target=target, kind=kind)
        rows = history_sql.versions(db, resource)
    if as_json:
        print_json([documents.version_document(r) for r in rows])
        return
    click.echo(resource_title(resource))
    table = [[str(r.number), iso(r.observed_at), r.origin, r.actor or "", r.content_hash[:12], r.note or ""]
             for r in rows]
    echo_table(["#", "observed", "origin", "actor", "hash", "note"], table)


@click.command()
@click.argument("obj", metavar="OBJECT")
@click.option("--version", "number", type=int, metavar="N", help="This version (default: the current one).")
@click.option("--at", "at", metavar="TIME", callback=readable_time,
              help="The version live at TIME (ISO 8601, or 2h for two hours ago).")
@click.option("--target", metavar="NAME", help="When a name exists on several targets.")
@click.option("--kind", metavar="KIND", callback=known_kinds,
              help="When a name exists under several kinds (a skill and its versions).")
@click.option("--json", "as_json", is_flag=True, help="Print the canonical body as JSON.")
@pass_app
def show(app: App, obj: str, number: int | None, at: datetime | None, target: str | None, kind: str | None,
         as_json: bool) -> None:
    """The recorded content of OBJECT: current, --version N or live --at TIME."""
    if number is not None and at is not None:
        raise click.UsageError("give --version or --at, not both")
    note = None
    with app.database() as db:
        _check_target(app, db, target)
        resource = history_sql.find_resource(db, obj, target=target, kind=kind)
        if at is not None:
            live = history_sql.version_at(db, resource, at)
            row = live.version
            if live.uncertain_since and live.uncertain_since == live.uncertain_until:
                note = (f"note: version {row.number + 1} was edited in at {iso(live.uncertain_since)}, "
                        f"within {iso(at)}: either version may have been live")
            elif live.uncertain_since:
                note = (f"note: version {row.number + 1} was edited in at some time after "
                        f"{iso(live.uncertain_since)}; {iso(at)} falls inside that window")
        else:
            row = history_sql.version(db, resource, resource.current_version if number is None else number)
    body = json.loads(row.body)
    if as_json:
        print_json(body)
    else:
        click.echo(f"{resource_title(resource)} — version {row.number} (observed {iso(row.observed_at)}, {row.origin})")
        click.echo(printable_json(body))
    if note:
        click.echo(note, err=True)


@click.command("diff")
@click.argument("obj", metavar="OBJECT")
@click.option("--from", "from_number", type=int, metavar="N", help="Older version (default: the one before --to).")
@click.option("--to", "to_number", type=int, metavar="M", help="Newer version (default: the current one).")
@click.option("--target", metavar="NAME", help="When a name exists on several targets.")
@click.option("--kind", metavar="KIND", callback=known_kinds,
              help="When a name exists under several kinds (a skill and its versions).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def diff_command(app: App, obj: str, from_number: int | None, to_number: int | None, target: str | None,
                 kind: str | None, as_json: bool) -> None:
    """What changed in OBJECT between two versions."""
    with app.database() as db:
        _check_target(app, db, target)
        resource = history_sql.find_resource(db, obj, target=target, kind=kind)
        to_number = resource.current_version if to_number is None else to_number
        newer = history_sql.version(db, resource, to_number)  # the number the user gave is checked first
        new = json.loads(newer.body)
        from_number = from_number if from_number is not None else max(to_number - 1, 1)
        old = json.loads(history_sql.version(db, resource, from_number).body)
    changes = diff.compare(old, new)
    if as_json:
        print_json({"object_id": resource.remote_id, "from": from_number, "to": to_number,
                    "changes": [c.as_json() for c in changes]})
        return
    if from_number == to_number == 1 and resource.current_version == 1:
        then = ("its deletion is an event, not a version" if resource.deleted_at else
                "a change the watcher records becomes version 2")
        click.echo(f"{resource_title(resource)}: only version 1 is recorded, nothing to compare it with ({then})")
        return
    click.echo(f"{resource_title(resource)}: version {from_number} → {to_number}")
    if newer.note == RULES_CHANGED:
        click.echo(f"note: version {to_number} was recorded because {newer.note}")
    if not changes:
        click.echo("no changes")
    for change in changes:
        echo_change(change)


@click.command()
@click.option("--open", "open_only", is_flag=True, help="Only events nobody acknowledged.")
@click.option("--since", metavar="TIME", callback=readable_time,
              help="Detected at or after TIME (ISO 8601, or 1d for a day ago).")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--follow", is_flag=True,
              help="Print each new event as it is recorded, by any process, until interrupted "
                   "(with --json: one JSON object per line, the webhook body's shape).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def events(app: App, open_only: bool, since: datetime | None, target: str | None, follow: bool,
           as_json: bool) -> None:
    """Drift events: created, modified, deleted, reappeared."""
    if follow and open_only:
        raise click.UsageError("--follow prints new events, which are all open: drop --open")
    with app.database() as db:
        _check_target(app, db, target)
        rows = [] if follow else [documents.event_document(e) for e in history_sql.list_events(
            db, open_only=open_only, since=since, target=target)]
    if follow:
        click.get_current_context().exit(_follow(app, target, since, as_json))
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no events")
        return
    table = [[str(e["id"]), e["detected_at"], f"{e['target']}/{e['kind']}", e["name"] or e["object_id"], e["change"],
              e["severity"], _versions(e), _what_changed(e), _who(e), _review(e)] for e in rows]
    echo_table(["id", "detected", "where", "object", "change", "severity", "versions", "paths", "who", "reviewed"],
               table)


def _review(event: dict, limit: int = 60) -> str:
    """Who acknowledged the event and their note (a restore that undid it says so in its note)."""
    if not event["acked_by"]:
        return ""
    text = f"{event['acked_by']}: {event['note']}" if event["note"] else event["acked_by"]
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Stop(Exception):
    """SIGTERM while following: leave like SIGINT does."""


def _follow(app: App, target: str | None, since, as_json: bool) -> int:
    """`events --follow`: one line per new event on stdout, flushed, until SIGINT, SIGTERM or a closed pipe."""
    from watcher.alerts import feed  # SQLAlchemy: only the feed reads the record that way

    def stop(_signum, _frame):
        raise _Stop

    def trouble(message: str | None) -> None:
        click.echo(printable(message) if message else "database readable again", err=True)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        # A bad config or an unreachable database at start is an error like any other (WatcherGroup).
        for drift in feed.follow(app.engine, target=target, since=since, trouble=trouble):
            sys.stdout.write(_feed_line(drift, as_json) + "\n")
            sys.stdout.flush()
    except (KeyboardInterrupt, _Stop):
        return EXIT_OK
    except BrokenPipeError:
        # The reader left (`| head`): nothing more to say, and nothing left to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def _feed_line(drift, as_json: bool) -> str:
    if as_json:
        return json_text(documents.drift_document(drift))
    versions = f"{drift.from_version or ''}→{drift.to_version or ''}"
    who = "" if drift.actor is None else f" by {actor_text(drift.actor)}"
    return printable(f"{json_time(drift.detected_at)} {drift.target}/{drift.kind} "
                     f"{drift.name or drift.object_id} {drift.change} {versions} [{drift.severity}] "
                     f"{_paths(drift.paths)}{who}".rstrip())


def _versions(event: dict) -> str:
    return f"{event['from_version'] or ''}→{event['to_version'] or ''}"


def _what_changed(event: dict) -> str:
    """The paths of drift; for a rule's event, the rule (and what it says is wrong)."""
    if event.get("rule"):
        return _paths([f"rule {event['rule']}" + (f": {event['message']}" if event.get("message") else "")])
    return _paths(event["paths"])


def _who(event: dict) -> str:
    """Who made the change; a rule's event is about a version, not an edit: nobody to name."""
    return "" if event.get("rule") else actor_text(event["actor"])


def _paths(paths: list[str], limit: int = 60) -> str:
    text = ", ".join(paths)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_target(app: App, db, name: str | None) -> None:
    """A --target neither configured nor in the record is a typo: say so rather than answer "nothing"."""
    if name is None:
        return
    configured = sorted({target for target, _kind in app.configured_kinds()})
    if name in configured or history_sql.has_target(db, name):
        return
    raise click.BadParameter(f"no target named {name!r} (configured: {', '.join(configured) or 'none'})",
                             param_hint="'--target'")


@click.command("objects")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--kind", "kinds", metavar="KIND", multiple=True, callback=known_kinds,
              help="Only this kind (assistants, agents, skills, ...); repeatable.")
@click.option("--deleted", is_flag=True, help="Also objects that are deleted now.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def objects_command(app: App, target: str | None, kinds: tuple[str, ...], deleted: bool, as_json: bool) -> None:
    """Every tracked object: target, kind, id, name, current version, last change."""
    with app.database() as db:
        _check_target(app, db, target)
        rows = overview_sql.list_objects(db, target=target, kind=kinds, deleted=deleted)
    if as_json:
        print_json([documents.object_document(r) for r in rows])
        return
    if not rows:
        click.echo("no objects recorded" + (" (deleted ones are shown with --deleted)" if not deleted else ""))
        return
    table = [[f"{r.target}/{r.kind}", r.object_id, r.name or "", str(r.version), iso(r.last_change_at),
              "deleted" if r.deleted else ""] for r in rows]
    echo_table(["where", "id", "name", "version", "last change", ""], table)


@click.command("rules")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def rules_command(app: App, as_json: bool) -> None:
    """Every rule ([[rules]]) and the objects that break it now."""
    rules = app.configured_rules()
    with app.database() as db:
        document = documents.rules_document(rules, overview_sql.breaking(db))
    if as_json:
        print_json(document)
        return
    if not document:
        click.echo("no rules configured ([[rules]] in the config)")
        return
    for rule in document:
        kinds = ", ".join(rule["kinds"]) if rule["kinds"] else "every kind"
        click.echo(printable(f"{rule['name']} ({rule['severity']}, {kinds}): "
                             f"{counted(len(rule['breaking']), 'object')} breaking it"))
        for b in rule["breaking"]:
            click.echo(printable(f"  {b['target']}/{b['kind']} {b['name'] or b['object_id']} "
                                 f"(version {b['version']}): {b['message']}"))


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def status_command(app: App, as_json: bool) -> None:
    """Per target and kind: last poll, status, objects, open events; deliveries pending and dead."""
    expected = app.configured_kinds()
    with app.database() as db:
        rows = overview_sql.kind_statuses(db, expected, app.disabled_targets())
        deliveries = overview_sql.deliveries(db)
        states = overview_sql.platform_states(db)
        fighting = overview_sql.fighting(db)
    document = documents.status_document(rows, deliveries, states, fighting)
    if as_json:
        print_json(document)
        return
    if rows:
        table = [[f"{r.target}/{r.kind}", (r.status or "never polled") + ("" if r.enabled else " (disabled)"),
                  iso(r.finished_at) or "", r.worker or "", str(r.objects), str(r.open_events),
                  header_text(r.error or "", 80)] for r in rows]
        echo_table(["where", "last poll", "finished", "by", "objects", "open events", "error"], table)
    else:
        click.echo("nothing recorded yet")
    totals = document["deliveries"]
    open_events = document["open_events"]
    click.echo(f"{counted(open_events, 'open event')}; deliveries: {totals['pending']} pending, "
               f"{totals['dead']} dead")
    for row in states:  # the platform's own state, not drift: a spend limit blocking, an automation paused
        said = ", ".join(f"{path} = {value}" for path, value in sorted(row.state.items()))
        click.echo(printable(f"platform state: {row.target}/{row.kind} {row.name or row.object_id}: {said}"))
    for item in fighting:  # self-heal left these alone: something keeps changing them
        click.echo(printable(f"fighting: {item.target}/{item.kind} {item.name or item.object_id}: something keeps "
                             f"changing it (left alone since {iso(item.since)})"))
