"""Changing the record and the objects: ack, prune, apply, restore. Each is recorded with its author."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from watcher.apply import apply_document, load_apply_file, restore_version
from watcher.cli.app import EXIT_FAILED, App, pass_app
from watcher.cli.output import echo_change, known_kinds
from watcher.display import counted, printable
from watcher.record import history_orm
from watcher.record import prune as retention
from watcher.record.engine import installation_key
from watcher.times import iso, utcnow


@click.command()
@click.argument("event_id", metavar="EVENT", type=int)
@click.option("--by", "by", required=True, metavar="WHO", help="Who reviewed the event.")
@click.option("--note", metavar="TEXT", help="Why it is fine (or what was done).")
@pass_app
def ack(app: App, event_id: int, by: str, note: str | None) -> None:
    """Acknowledge a drift event as reviewed."""
    with app.session() as session, session.begin():
        row = history_orm.acknowledge(session, event_id, by, note)
        click.echo(f"event {row.id} acknowledged by {row.acked_by}")


@click.command()
@click.option("--keep-days", type=click.IntRange(1, None), required=True, metavar="N",
              help="Keep everything of the last N days; older history may go.")
@click.option("--yes", "confirmed", is_flag=True, help="Delete. Without it, only say what would be deleted.")
@pass_app
def prune(app: App, keep_days: int, confirmed: bool) -> None:
    """Forget history older than N days: never an object's last version, nor an open event.

    A dry run unless --yes is given.
    """
    cutoff = utcnow() - timedelta(days=keep_days)
    with app.session() as session, session.begin():
        counted = retention.prune(session, cutoff, dry_run=not confirmed)
    what = (f"{counted.versions} versions, {counted.events} acknowledged events, {counted.alerts} alerts with "
            f"{counted.deliveries} finished deliveries, {counted.polls} polls older than {iso(cutoff)}")
    if not confirmed:
        click.echo(f"dry run: prune would delete {what}; run again with --yes to delete them")
        return
    click.echo(f"deleted {what}")
    if counted.total and app.engine.dialect.name == "sqlite":
        click.echo("SQLite keeps the freed pages for new rows; `sqlite3 FILE 'VACUUM'` shrinks the file")


@click.command("apply")
@click.argument("file", metavar="FILE", type=click.Path())
@click.option("--by", "by", required=True, metavar="WHO", help="Who makes the change (recorded as its author).")
@click.option("--note", metavar="TEXT", help="Why.")
@click.option("--target", metavar="NAME", help="When the id exists on several targets.")
@click.option("--dry-run", is_flag=True, help="Print the change it would make, and make none.")
@pass_app
def apply_command(app: App, file: str, by: str, note: str | None, target: str | None, dry_run: bool) -> None:
    """Change an object to match FILE (JSON, as `show --json` prints it), recorded with its author.

    Only the fields the kind lets the API change are sent; a file naming an unknown field or
    changing a read-only one is refused by name. FILE may be a declared directory (see `check`):
    each object that differs from its file is changed to match it; nothing is deleted.
    """
    if Path(file).is_dir():
        _apply_directory(app, Path(file), by=by, note=note, target=target, dry_run=dry_run)
        return
    result = apply_document(app.engine, app.config, load_apply_file(file), by=by, note=note, target=target,
                            dry_run=dry_run)
    _report_write(result, "apply", "applied", dry_run)


def _apply_directory(app: App, directory: Path, *, by: str, note: str | None, target: str | None,
                     dry_run: bool) -> None:
    """Converge: every declared object that differs is applied from its file; missing ones are said, not made."""
    from watcher.declared.check import check, read_declared  # the fresh listing: only apply DIR needs it

    config = app.config
    targets = [config.target(target)] if target else list(config.enabled_targets)
    declared = read_declared(directory, [t.name for t in targets])
    report = check(targets, declared, [], installation_key(app.engine))
    documents = {str(item.file): item.document for item in declared}
    for item in report.differs:
        document = {**documents[item["file"]], "id": item["object_id"]}
        result = apply_document(app.engine, config, document, by=by, note=note, target=item["target"],
                                dry_run=dry_run)
        _report_write(result, "apply", "applied", dry_run)
    for item in report.missing:
        click.echo(printable(f"{item['file']}: declared but not live; not created (apply DIR does not create "
                             "objects yet: create it on the platform, then apply again)"), err=True)
    if not report.differs:
        click.echo(f"in sync: {counted(len(declared), 'declared object')}, nothing to apply")
    if report.missing:
        click.get_current_context().exit(EXIT_FAILED)


@click.command()
@click.argument("obj", metavar="OBJECT")
@click.option("--version", "number", type=int, required=True, metavar="N", help="The recorded version to bring back.")
@click.option("--by", "by", required=True, metavar="WHO", help="Who makes the change (recorded as its author).")
@click.option("--note", metavar="TEXT", help="Why.")
@click.option("--target", metavar="NAME", help="When the name or id exists on several targets.")
@click.option("--kind", metavar="KIND", callback=known_kinds,
              help="When a name exists under several kinds (a skill and its versions).")
@click.option("--dry-run", is_flag=True, help="Print the change it would make, and make none.")
@pass_app
def restore(app: App, obj: str, number: int, by: str, note: str | None, target: str | None, kind: str | None,
            dry_run: bool) -> None:
    """Put OBJECT back to a recorded version, recorded with its author.

    The open drift events it undoes are acknowledged with its author and note.
    """
    result = restore_version(app.engine, app.config, obj, number, by=by, note=note, target=target, kind=kind,
                             dry_run=dry_run)
    _report_write(result, "restore", f"restored to version {number}", dry_run)


def _report_write(result, action: str, verb: str, dry_run: bool) -> None:
    label = printable(f'{result.object_id} "{result.name}"' if result.name else result.object_id)
    if dry_run:
        click.echo(f"{label}: dry run, nothing sent; {action} would change version {result.previous}:"
                   if result.changes else f"{label}: dry run: {action} would change nothing")
        for change in result.changes:
            echo_change(change)
        return
    if result.version is None:
        click.echo(f"{label}: {verb}; the content was already the same, no new version")
        return
    click.echo(f"{label}: {verb}, recorded as version {result.version} (was {result.previous})")
    if result.answered:
        ids = ", ".join(str(i) for i in result.answered)
        click.echo(f"answers open {'event' if len(result.answered) == 1 else 'events'} {ids} "
                   "(acknowledged with this restore's author and note)")
