"""The command line: `assistant-watcher [--config PATH] [-v] COMMAND`.

This is the one place where errors become exit codes and one-line messages:
ConfigError exits 2, every other WatcherError exits 1, and nothing prints a
traceback unless -v is given twice.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import click
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from watcher import documents, history
from watcher.config import Config, config_path, load_config
from watcher.display import actor_text, header_text, printable
from watcher.errors import ConfigError, WatcherError, one_line

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
log = logging.getLogger("watcher")


class WatcherGroup(click.Group):
    """Turns the watcher's typed errors into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(ctx, f"config error: {exc}", EXIT_CONFIG)
        except WatcherError as exc:
            _fail(ctx, f"error: {exc}", EXIT_FAILED)
        except SQLAlchemyError as exc:
            _fail(ctx, f"database error: {one_line(exc)}", EXIT_FAILED)


def _fail(ctx: click.Context, message: str, code: int) -> None:
    app = ctx.obj
    if isinstance(app, App) and app.verbose >= 2:
        raise
    click.echo(printable(message), err=True)  # messages may quote the server: never let it drive the terminal
    ctx.exit(code)


@dataclass
class App:
    """What every command shares: where the config is, how loud to be, the open store."""

    config_option: str | None
    verbose: int
    _config: Config | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(config_path(self.config_option))
            log.debug("config %s: %d targets", self._config.path, len(self._config.targets))
        return self._config

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from watcher.store import open_engine

            self._engine = open_engine(self.config.database.url)
        return self._engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


pass_app = click.make_pass_decorator(App)


def _setup_logging(verbose: int) -> None:
    """Log to stderr, one line per event; with sd-daemon level prefixes when stderr is the journal."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JournalFormatter() if _stderr_is_journal() else
                         logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # -v: the watcher's own debug lines; -vv: tracebacks and the libraries' internals too.
    logging.basicConfig(level=logging.DEBUG if verbose >= 2 else logging.INFO, handlers=[handler])
    logging.getLogger("watcher").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("watcher.traceback").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    for noisy in ("openai", "alembic", "mail.log", "apscheduler", "aiosmtplib", "asyncio", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    # Never below WARNING: the HTTP clients log every URL, and a Slack or Teams webhook URL is a secret.
    for client in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(client).setLevel(logging.WARNING)


def _stderr_is_journal() -> bool:
    """True when systemd connected stderr to the journal ($JOURNAL_STREAM names its device:inode)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(sys.stderr.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


class _JournalFormatter(logging.Formatter):
    """`<N>name: message` (sd-daemon priority prefix); a traceback is folded into the same line."""

    _PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        priority = self._PRIORITY.get(record.levelno, 3 if record.levelno > logging.WARNING else 6)
        # journald makes one entry per line: a multi-line event must stay one entry.
        return f"<{priority}>{record.name}: " + " \\ ".join(line for line in text.splitlines() if line.strip())


@click.group(cls=WatcherGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_option", metavar="PATH",
              help="Config file (default: $ASSISTANT_WATCHER_CONFIG, else /etc/assistant-watcher/config.toml).")
@click.option("-v", "--verbose", count=True, help="The watcher's debug lines; twice for tracebacks and libraries.")
@click.version_option(package_name="assistant-watcher")
@click.pass_context
def main(ctx: click.Context, config_option: str | None, verbose: int) -> None:
    """Keep a versioned, audited history of every assistant and agent, and email drift."""
    _setup_logging(verbose)
    ctx.obj = App(config_option, verbose)


def _print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False))


def printable_json(document: Any) -> str:
    """Indented JSON for a terminal: still JSON (its own newlines kept), remote text escaped line by line."""
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)
    return "\n".join(printable(line) for line in text.split("\n"))


# --- snapshot -----------------------------------------------------------------------------


@main.command()
@click.option("--target", "target_name", metavar="NAME", help="Poll only this target.")
@click.option("--kind", "kind_names", metavar="KIND", multiple=True,
              help="Poll only this kind (repeatable); asked even if it was not served before.")
@click.option("--no-email", is_flag=True, help="Record only; leave the outbox for later delivery.")
@pass_app
def snapshot(app: App, target_name: str | None, kind_names: tuple[str, ...], no_email: bool) -> None:
    """Poll every target once, record drift, deliver the outbox.

    Exits 0 when every poll completed, 1 when one failed, 2 on a bad config.
    """
    from watcher import poll

    config = app.config
    # A disabled target is polled only when named: its record is kept, its polling stopped.
    targets = [config.target(target_name)] if target_name else list(config.enabled_targets)
    if not targets:
        raise ConfigError(f"{config.path}: " + ("every target has enabled = false" if config.targets
                                                 else "no [[targets]] configured"))
    for target in targets:
        target.read_keys()  # a missing key is a config error, found before anything is polled
    _check_kinds(targets, kind_names)
    for channel in config.channels:
        channel.check_secrets()
    compose = _composer(config)
    outcomes: list = []
    failed_targets: list[str] = []
    interrupted = _Interruption()
    try:
        for target in targets:
            only = [k for k in kind_names if k in target.kinds] if kind_names else None
            first = len(outcomes)
            for outcome in poll.poll_kinds(app.engine, target, compose=compose, progress=_progress_printer(),
                                           only=only, poll_timeout=config.schedule.poll_timeout,
                                           cancelled=interrupted.is_set):
                click.echo(printable(poll.summary_line(outcome)))
                outcomes.append(outcome)  # at once: an interruption later in this target still names it
            if only is None and poll.nothing_served(outcomes[first:]):
                click.echo(printable(poll.nothing_served_line(target)), err=True)
                failed_targets.append(target.name)
    except KeyboardInterrupt:
        _interrupted(outcomes)
    finally:
        interrupted.close()
    if not no_email:
        _deliver_after_snapshot(app)
    ok = all(o.ok for o in outcomes) and not failed_targets
    click.get_current_context().exit(EXIT_OK if ok else EXIT_FAILED)


def _check_kinds(targets: list, kind_names: tuple[str, ...]) -> None:
    """Every --kind is a kind, and one of the chosen targets watches it."""
    from watcher import kinds

    for name in kind_names:
        if name not in kinds.names():
            raise click.UsageError(f"--kind: {name!r} is not a kind; known kinds: {', '.join(kinds.names())}")
        if not any(name in target.kinds for target in targets):
            raise click.UsageError(f"--kind: no chosen target watches {name} (set its `kinds` in the config)")


class _Interruption:
    """Ctrl-C during a snapshot, remembered: a library that swallows the KeyboardInterrupt its signal
    raised (inside a C call) cannot make the snapshot go on; the next request or record stops it."""

    def __init__(self):
        import signal
        import threading

        self._event = threading.Event()
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, _signum, _frame) -> None:
        self._event.set()
        raise KeyboardInterrupt

    def is_set(self) -> bool:
        return self._event.is_set()

    def close(self) -> None:
        import signal

        signal.signal(signal.SIGINT, self._previous)


def _interrupted(outcomes: list) -> None:
    """Ctrl-C during snapshot: say what was recorded (whole polls) and that the rest was not."""
    done = ", ".join(f"{o.target}/{o.kind}" for o in outcomes) or "nothing"
    click.echo(f"interrupted: recorded {done}; the poll in progress was not recorded (a poll is all or nothing); "
               "alerts already queued are delivered by the next snapshot or the daemon", err=True)
    click.get_current_context().exit(130)


def _composer(config: Config):
    from watcher import alerts

    return alerts.composer(config)


def _deliver_after_snapshot(app: App) -> None:
    from watcher import outbox

    report = outbox.deliver_pending(app.engine, app.config)
    line = report.summary()
    if line:
        click.echo(line)


def _progress_printer():
    """A progress callback that rewrites one line on a terminal, and does nothing when piped."""
    if not sys.stderr.isatty():
        return None

    def show(label: str, pages: int, objects: int, done: bool = False) -> None:
        end = "\n" if done else ""
        sys.stderr.write(f"\r\x1b[2K{label}: page {pages}, {objects} objects{end}")
        sys.stderr.flush()

    return show


# --- reading the record ---------------------------------------------------------------------


@main.command("history")
@click.argument("obj", metavar="OBJECT")
@click.option("--target", metavar="NAME", help="When a name exists on several targets.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def history_command(app: App, obj: str, target: str | None, as_json: bool) -> None:
    """The versions of OBJECT (a remote id or a unique name), oldest first."""
    with app.session() as session:
        resource = history.find_resource(session, obj, target=target)
        rows = history.versions(session, resource)
        if as_json:
            _print_json([documents.version_document(r) for r in rows])
            return
        click.echo(_resource_title(resource))
        table = [[str(r.number), history.iso(r.observed_at), r.origin, r.actor or "", r.content_hash[:12], r.note or ""]
                 for r in rows]
        _echo_table(["#", "observed", "origin", "actor", "hash", "note"], table)


@main.command()
@click.argument("obj", metavar="OBJECT")
@click.option("--version", "number", type=int, metavar="N", help="This version (default: the current one).")
@click.option("--at", "at", metavar="TIME", help="The version live at TIME (ISO 8601, or 2h for two hours ago).")
@click.option("--target", metavar="NAME", help="When a name exists on several targets.")
@click.option("--json", "as_json", is_flag=True, help="Print the canonical body as JSON.")
@pass_app
def show(app: App, obj: str, number: int | None, at: str | None, target: str | None, as_json: bool) -> None:
    """The recorded content of OBJECT: current, --version N or live --at TIME."""
    if number is not None and at is not None:
        raise click.UsageError("give --version or --at, not both")
    with app.session() as session:
        resource = history.find_resource(session, obj, target=target)
        note = None
        if at is not None:
            live = history.version_at(session, resource, history.parse_time(at))
            row = live.version
            if live.uncertain_since:
                note = (f"note: version {row.number + 1} was edited in at some time after "
                        f"{history.iso(live.uncertain_since)}; {at} falls inside that window")
        else:
            row = history.version(session, resource, resource.current_version if number is None else number)
        if as_json:
            _print_json(history.body(row))
        else:
            click.echo(f"{_resource_title(resource)} — version {row.number} "
                       f"(observed {history.iso(row.observed_at)}, {row.origin})")
            click.echo(printable_json(history.body(row)))
        if note:
            click.echo(note, err=True)


@main.command("diff")
@click.argument("obj", metavar="OBJECT")
@click.option("--from", "from_number", type=int, metavar="N", help="Older version (default: the one before --to).")
@click.option("--to", "to_number", type=int, metavar="M", help="Newer version (default: the current one).")
@click.option("--target", metavar="NAME", help="When a name exists on several targets.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def diff_command(app: App, obj: str, from_number: int | None, to_number: int | None, target: str | None,
                 as_json: bool) -> None:
    """What changed in OBJECT between two versions."""
    from watcher import diff

    with app.session() as session:
        resource = history.find_resource(session, obj, target=target)
        to_number = resource.current_version if to_number is None else to_number
        new = history.body(history.version(session, resource, to_number))  # the number the user gave is checked first
        from_number = from_number if from_number is not None else max(to_number - 1, 1)
        old = history.body(history.version(session, resource, from_number))
        title = _resource_title(resource)
    changes = diff.compare(old, new)
    if as_json:
        _print_json({"object_id": resource.remote_id, "from": from_number, "to": to_number,
                     "changes": [c.as_json() for c in changes]})
        return
    click.echo(f"{title}: version {from_number} → {to_number}")
    if not changes:
        click.echo("no changes")
    for change in changes:
        _echo_change(change)


def _echo_change(change) -> None:
    click.secho(printable(f"{change.op} {change.path}"), bold=True)
    if change.text_diff:
        for line in change.text_diff:
            color = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1])
            click.secho(f"    {printable(line)}", fg=color)
        return
    if change.op in ("changed", "removed"):
        click.secho(f"    - {_short(change.old)}", fg="red")
    if change.op in ("changed", "added"):
        click.secho(f"    + {_short(change.new)}", fg="green")


def _short(value: Any, limit: int = 300) -> str:
    text = printable(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


@main.command()
@click.option("--open", "open_only", is_flag=True, help="Only events nobody acknowledged.")
@click.option("--since", metavar="TIME", help="Detected at or after TIME (ISO 8601, or 1d for a day ago).")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--follow", is_flag=True,
              help="Print each new event as it is recorded, by any process, until interrupted "
                   "(with --json: one JSON object per line, the webhook body's shape).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def events(app: App, open_only: bool, since: str | None, target: str | None, follow: bool, as_json: bool) -> None:
    """Drift events: created, modified, deleted, reappeared."""
    moment = history.parse_time(since) if since else None
    if follow:
        if open_only:
            raise click.UsageError("--follow prints new events, which are all open: drop --open")
        click.get_current_context().exit(_follow(app, target, moment, as_json))
    with app.session() as session:
        rows = [documents.event_document(e) for e in history.list_events(session, open_only=open_only, since=moment,
                                                                    target=target)]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("no events")
        return
    table = [[str(e["id"]), e["detected_at"], f"{e['target']}/{e['kind']}", e["name"] or e["object_id"], e["change"],
              _versions(e), _paths(e["paths"]), actor_text(e["actor"]), _review(e)] for e in rows]
    _echo_table(["id", "detected", "where", "object", "change", "versions", "paths", "who", "reviewed"], table)


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
    import signal

    from watcher import feed

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
        return json.dumps(documents.drift_document(drift), ensure_ascii=False)
    versions = f"{drift.from_version or ''}→{drift.to_version or ''}"
    who = "" if drift.actor is None else f" by {actor_text(drift.actor)}"
    return printable(f"{history.json_time(drift.detected_at)} {drift.target}/{drift.kind} "
                     f"{drift.name or drift.object_id} {drift.change} {versions} [{drift.severity}] "
                     f"{_paths(drift.paths)}{who}".rstrip())


def _versions(event: dict) -> str:
    return f"{event['from_version'] or ''}→{event['to_version'] or ''}"


def _paths(paths: list[str], limit: int = 60) -> str:
    text = ", ".join(paths)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@main.command()
@click.argument("event_id", metavar="EVENT", type=int)
@click.option("--by", "by", required=True, metavar="WHO", help="Who reviewed the event.")
@click.option("--note", metavar="TEXT", help="Why it is fine (or what was done).")
@pass_app
def ack(app: App, event_id: int, by: str, note: str | None) -> None:
    """Acknowledge a drift event as reviewed."""
    with app.session() as session, session.begin():
        row = history.acknowledge(session, event_id, by, note)
        click.echo(f"event {row.id} acknowledged by {row.acked_by}")


@main.command()
@click.option("--keep-days", type=click.IntRange(1, None), required=True, metavar="N",
              help="Keep everything of the last N days; older history may go.")
@click.option("--yes", "confirmed", is_flag=True, help="Delete. Without it, only say what would be deleted.")
@pass_app
def prune(app: App, keep_days: int, confirmed: bool) -> None:
    """Forget history older than N days: never an object's last version, nor an open event.

    A dry run unless --yes is given.
    """
    from datetime import timedelta

    from watcher import prune as retention
    from watcher.store import utcnow

    cutoff = utcnow() - timedelta(days=keep_days)
    with app.session() as session, session.begin():
        counted = retention.prune(session, cutoff, dry_run=not confirmed)
    what = (f"{counted.versions} versions, {counted.events} acknowledged events, {counted.alerts} alerts with "
            f"{counted.deliveries} finished deliveries, {counted.polls} polls older than {history.iso(cutoff)}")
    if not confirmed:
        click.echo(f"dry run: prune would delete {what}; run again with --yes to delete them")
        return
    click.echo(f"deleted {what}")
    if counted.total and app.engine.dialect.name == "sqlite":
        click.echo("SQLite keeps the freed pages for new rows; `sqlite3 FILE 'VACUUM'` shrinks the file")

@main.command("objects")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--kind", metavar="KIND", help="Only this kind (assistants, agents, skills, ...).")
@click.option("--deleted", is_flag=True, help="Also objects that are deleted now.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def objects_command(app: App, target: str | None, kind: str | None, deleted: bool, as_json: bool) -> None:
    """Every tracked object: target, kind, id, name, current version, last change."""
    from watcher import kinds, overview

    if kind is not None and kind not in kinds.names():
        raise click.BadParameter(f"unknown kind {kind!r}; known kinds: {', '.join(kinds.names())}",
                                 param_hint="--kind")
    with app.session() as session:
        rows = overview.list_objects(session, target=target, kind=kind, deleted=deleted)
    if as_json:
        _print_json([documents.object_document(r) for r in rows])
        return
    if not rows:
        click.echo("no objects recorded" + (" (deleted ones are shown with --deleted)" if not deleted else ""))
        return
    table = [[f"{r.target}/{r.kind}", r.object_id, r.name or "", str(r.version), history.iso(r.last_change_at),
              "deleted" if r.deleted else ""] for r in rows]
    _echo_table(["where", "id", "name", "version", "last change", ""], table)


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def status_command(app: App, as_json: bool) -> None:
    """Per target and kind: last poll, status, objects, open events; deliveries pending and dead."""
    from watcher import overview

    expected = [(t.name, kind) for t in app.config.targets for kind in t.kinds]
    with app.session() as session:
        rows = overview.kind_statuses(session, expected, disabled={t.name for t in app.config.targets if not t.enabled})
        deliveries = overview.deliveries(session)
    document = documents.status_document(rows, deliveries)
    if as_json:
        _print_json(document)
        return
    if rows:
        table = [[f"{r.target}/{r.kind}", (r.status or "never polled") + ("" if r.enabled else " (disabled)"),
                  history.iso(r.finished_at) or "", r.worker or "", str(r.objects), str(r.open_events),
                  header_text(r.error or "", 80)] for r in rows]
        _echo_table(["where", "last poll", "finished", "by", "objects", "open events", "error"], table)
    else:
        click.echo("nothing recorded yet")
    waiting = document["deliveries"]
    click.echo(f"{document['open_events']} open events; deliveries: {waiting['pending']} pending, "
               f"{waiting['dead']} dead")


# --- changing objects in-channel -------------------------------------------------------------


@main.command("apply")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--by", "by", required=True, metavar="WHO", help="Who makes the change (recorded as its author).")
@click.option("--note", metavar="TEXT", help="Why.")
@click.option("--target", metavar="NAME", help="When the id exists on several targets.")
@click.option("--dry-run", is_flag=True, help="Print the change it would make, and make none.")
@pass_app
def apply_command(app: App, file: str, by: str, note: str | None, target: str | None, dry_run: bool) -> None:
    """Change an object to match FILE (JSON, as `show --json` prints it), recorded with its author.

    Only the fields the kind lets the API change are sent; a file naming an unknown field or
    changing a read-only one is refused by name.
    """
    from watcher.apply import apply_document, load_apply_file

    result = apply_document(app.engine, app.config, load_apply_file(file), by=by, note=note, target=target,
                            dry_run=dry_run)
    _report_write(result, "apply", "applied", dry_run)


@main.command()
@click.argument("obj", metavar="OBJECT")
@click.option("--version", "number", type=int, required=True, metavar="N", help="The recorded version to bring back.")
@click.option("--by", "by", required=True, metavar="WHO", help="Who makes the change (recorded as its author).")
@click.option("--note", metavar="TEXT", help="Why.")
@click.option("--target", metavar="NAME", help="When the name or id exists on several targets.")
@click.option("--dry-run", is_flag=True, help="Print the change it would make, and make none.")
@pass_app
def restore(app: App, obj: str, number: int, by: str, note: str | None, target: str | None, dry_run: bool) -> None:
    """Put OBJECT back to a recorded version, recorded with its author.

    The open drift events it undoes are acknowledged with its author and note.
    """
    from watcher.apply import restore_version

    result = restore_version(app.engine, app.config, obj, number, by=by, note=note, target=target, dry_run=dry_run)
    _report_write(result, "restore", f"restored to version {number}", dry_run)


def _report_write(result, action: str, verb: str, dry_run: bool) -> None:
    label = printable(f'{result.object_id} "{result.name}"' if result.name else result.object_id)
    if dry_run:
        click.echo(f"{label}: dry run, nothing sent; {action} would change version {result.previous}:"
                   if result.changes else f"{label}: dry run: {action} would change nothing")
        for change in result.changes:
            _echo_change(change)
        return
    if result.version is None:
        click.echo(f"{label}: {verb}; the content was already the same, no new version")
        return
    click.echo(f"{label}: {verb}, recorded as version {result.version} (was {result.previous})")
    if result.answered:
        ids = ", ".join(str(i) for i in result.answered)
        click.echo(f"answers open {'event' if len(result.answered) == 1 else 'events'} {ids} "
                   "(acknowledged with this restore's author and note)")


# --- delivery ------------------------------------------------------------------------------


@main.command()
@click.option("--limit", default=50, show_default=True, help="How many recently sent or dead deliveries to show.")
@click.option("--retry-now", is_flag=True,
              help="After an outage is fixed: make every pending delivery due now, enable disabled channels "
                   "again, and deliver.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def outbox(app: App, limit: int, retry_now: bool, as_json: bool) -> None:
    """Deliveries: pending (with their next attempt), recently sent, and dead, per channel."""
    from watcher import outbox as box

    if retry_now:
        _retry_now(app, err=as_json)
    with app.session() as session:
        rows = box.rows(session, limit=limit)
        documents_ = [documents.outbox_document(r, **box.preview(r, app.config)) for r in rows]
        held = box.held_channels(session)
    if as_json:
        _print_json(documents_)
        return
    if not rows:
        click.echo("outbox is empty")
        return
    table = [[str(d["id"]), _delivery_state(d, held), str(d["attempts"]), d["channel"], _delivery_time(d),
              ", ".join(d["recipients"]), header_text(d["subject"] or "", 70), header_text(d["last_error"] or "", 60)]
             for d in documents_]
    _echo_table(["id", "state", "tries", "channel", "when", "to", "subject", "last error"], table)


def _retry_now(app: App, *, err: bool) -> None:
    from watcher import outbox as box

    waiting, enabled = box.retry_now(app.engine)
    for name in enabled:
        click.echo(f"channel {name} enabled again", err=err)
    click.echo(f"{waiting} pending {'delivery' if waiting == 1 else 'deliveries'} made due now", err=err)
    line = box.deliver_pending(app.engine, app.config).summary()
    if line:
        click.echo(printable(line), err=err)


def _delivery_state(document: dict, held: set[str]) -> str:
    if document["state"] != "pending":
        return document["state"]
    if document["channel"] in held:
        return "held"  # its channel is disabled (410)
    return "failing" if document["last_error"] else "pending"


def _delivery_time(document: dict) -> str:
    moment = document["sent_at"] or document["next_attempt_at"]
    return history.iso(history.parse_time(moment)) if moment else ""


@main.command("test-email")
@click.option("--to", "to", metavar="ADDR", help="Recipient (default: the watchlist).")
@pass_app
def test_email(app: App, to: str | None) -> None:
    """Send one message with the configured SMTP settings and report the server's answer."""
    from watcher.channels.email import send_test_email

    click.echo(send_test_email(app.config, to))


# --- the daemon and the demo ----------------------------------------------------------------


@main.command()
@pass_app
def run(app: App) -> None:
    """The daemon: poll on schedule and deliver alerts until SIGTERM (systemd Type=notify)."""
    from watcher import daemon

    click.get_current_context().exit(daemon.run(app.config_option, verbose=app.verbose))


@main.command()
@click.option("--listen", metavar="HOST:PORT", help="Where to listen (default: [http] listen, else 127.0.0.1:8080).")
@pass_app
def serve(app: App, listen: str | None) -> None:
    """The web UI, the JSON API, /metrics and /healthz, without polling (until SIGTERM or Ctrl-C)."""
    from watcher.config import HttpConfig
    from watcher.web.app import Web
    from watcher.web.server import HttpServer, serve_until_signal

    config = app.config
    http = config.http or HttpConfig()
    if listen is not None:
        try:
            http = HttpConfig.model_validate({**http.model_dump(), "listen": listen})
        except ValueError as exc:
            raise ConfigError(f"--listen: {_validation_line(exc)}") from None
        config = config.model_copy(update={"http": http})
    server = HttpServer(Web(config, app.engine), http.host, http.port)
    click.echo(f"serving {server.url}/ (pages), {server.url}/api/v1/, /metrics and /healthz; Ctrl-C stops",
               err=True)
    serve_until_signal(server)


def _validation_line(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return errors()[0]["msg"].removeprefix("Value error, ")
    return str(exc)


@main.command()
@click.option("--html", "html_path", metavar="FILE", help="Where to write the alert's HTML part.")
def demo(html_path: str | None) -> None:
    """The whole loop on this machine, no account needed: sandbox, drift, real SMTP, the alert."""
    from watcher.demo import run_demo

    click.get_current_context().exit(run_demo(html_path=html_path))


# --- the sandbox ----------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--seed", default=5, show_default=True, type=click.IntRange(0, 100_000),
              help="How many objects of each kind to create at start.")
@click.option("--api-key", default="sk-sandbox", show_default=True, help="The project key the sandbox accepts.")
@click.option("--admin-key", default="sk-admin-sandbox", show_default=True,
              help="The admin key its organization endpoints accept.")
def sandbox(host: str, port: int, seed: int, api_key: str, admin_key: str) -> None:
    """Run the local OpenAI-compatible server that tests and the demo use."""
    from watcher.sandbox import serve

    serve(host=host, port=port, seed=seed, api_key=api_key, admin_key=admin_key)


# --- tables ---------------------------------------------------------------------------------


def _resource_title(resource) -> str:
    name = f' "{resource.name}"' if resource.name else ""
    gone = f" (deleted {history.iso(resource.deleted_at)})" if resource.deleted_at else ""
    return printable(f"{resource.target.name}/{resource.kind}/{resource.remote_id}{name}{gone}")


def _echo_table(headers: list[str], rows: list[list[str]]) -> None:
    """Aligned columns; remote values are shown with control characters escaped, one row per line."""
    rows = [[printable(str(cell)) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    click.secho("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), bold=True)
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
