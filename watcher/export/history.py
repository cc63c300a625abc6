"""`export git`: the record's versions, read in the order they were observed, appended to a history
repository (`watcher.export.git`) from where its last export stopped."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher.display import header_text
from watcher.errors import ExportError
from watcher.export.git import ExportedVersion, History, object_path
from watcher.kinds import registry
from watcher.record.locks import export_lock
from watcher.record.models import Event, Resource, Target, Version

UNKNOWN_AUTHOR = "unknown (out of band) <unknown@assistant-watcher.invalid>"
BATCH = 1_000  # versions read (and committed) at a time: memory stays flat over any history
SCOPE_FILE = "watcher-scope"  # in the repository's .git: the target an export was limited to, if any


@dataclass
class ExportReport:
    """What one export did: commits added, and the record's version id the history now ends at."""

    commits: int = 0
    last_version: int | None = None


def export_git(engine: Engine, directory: str | os.PathLike[str], *, target: str | None = None,
               progress: Callable[[int], None] | None = None) -> ExportReport:
    """Append every version recorded since the last export to the history at `directory` (created when
    absent); `target` limits a new history to one target, and must be given again for it after. One process
    writes a history at a time (the daemon's `[export] git` beside a hand-run export)."""
    with export_lock(engine):
        return _export(engine, directory, target, progress)


def _export(engine: Engine, directory: str | os.PathLike[str], target: str | None,
            progress: Callable[[int], None] | None) -> ExportReport:
    history = History(directory)
    _check_scope(history, target)
    report = ExportReport(last_version=history.last_version())
    after = report.last_version or 0
    while True:
        with Session(engine) as session:
            batch = list(_exported(session, after, target))
        if not batch:
            return report
        report.commits += history.append(batch)
        after = report.last_version = batch[-1].version_id
        if progress:
            progress(report.commits)


def _check_scope(history: History, target: str | None) -> None:
    scope = history.directory / ".git" / SCOPE_FILE
    held = scope.read_text().strip() if scope.exists() else None
    if history.last_version() is None:
        if target is not None:
            scope.write_text(target + "\n")
        elif scope.exists():
            scope.unlink()
        return
    if held != target:
        holds = f"target {held} only" if held else "every target"
        asked = f"--target {target}" if target else "every target"
        raise ExportError(f"{history.directory}: this history holds {holds}; {asked} goes into another directory")


def _exported(session: Session, after: int, target: str | None) -> Iterator[ExportedVersion]:
    query = (select(Version, Resource.kind, Resource.remote_id, Resource.name, Target.name)
             .join(Resource, Resource.id == Version.resource_id).join(Target, Target.id == Resource.target_id)
             .where(Version.id > after).order_by(Version.id).limit(BATCH))
    if target is not None:
        query = query.where(Target.name == target)
    rows = session.execute(query).all()
    events = _events_of(session, [(row[0].resource_id, row[0].number) for row in rows])
    for version, kind, remote_id, name, target_name in rows:
        event = events.get((version.resource_id, version.number))
        yield ExportedVersion(version_id=version.id, path=object_path(target_name, kind, remote_id),
                              content=_pretty(version.body), author=_author(version, event),
                              authored_at=_edited_at(version, event), committed_at=version.observed_at,
                              message=_message(version, event, kind, remote_id, name, target_name))


def _events_of(session: Session, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], Event]:
    """The drift event that recorded each (resource, version number), where one did (the first, if several)."""
    if not pairs:
        return {}
    found: dict[tuple[int, int], Event] = {}
    for event in session.scalars(select(Event).where(tuple_(Event.resource_id, Event.to_version).in_(pairs),
                                                     Event.change != "deleted").order_by(Event.id)):
        found.setdefault((event.resource_id, event.to_version or 0), event)
    return found


def _pretty(canonical: str) -> bytes:
    return (json.dumps(json.loads(canonical), indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def _author(version: Version, event: Event | None) -> str:
    """The audit log's user, or the author `apply`/`restore` was given, as `Name <email>`."""
    if version.actor:
        who = _clean(version.actor)
        return f"{who} <{who if '@' in who else 'unknown@assistant-watcher.invalid'}>"
    actor = event.actor if event is not None else None
    if actor and (actor.get("email") or actor.get("id")):
        email = _clean(str(actor.get("email") or ""))
        who = email or _clean(str(actor["id"]))
        return f"{who} <{email or 'unknown@assistant-watcher.invalid'}>"
    return UNKNOWN_AUTHOR


def _clean(text: str) -> str:
    return header_text(text, 200).replace("<", "").replace(">", "")  # one line, no brackets: a valid git ident


def _edited_at(version: Version, event: Event | None):
    """When the edit was made: the remote's updated_at, else the end of the event's window, else when seen."""
    return version.remote_updated_at or (event.detected_at if event is not None else None) or version.observed_at


def _message(version: Version, event: Event | None, kind: str, remote_id: str, name: str | None,
             target: str) -> str:
    label = registry.get(kind).label if kind in registry.names() else kind
    what = {"baseline": "baseline", "apply": "applied", "restore": "restored", "heal": "reverted"}.get(version.origin)
    change = what or (event.change if event is not None else "recorded")
    title = header_text(f"{change}: {label} {name or remote_id} ({target})", 200)
    lines = [f"Object: {target}/{kind}/{remote_id}", f"Version: {version.number} (origin {version.origin})"]
    if event is not None:
        lines.append(f"Event: #{event.id} {event.change}" + (f", {', '.join(event.paths)}" if event.paths else ""))
    if version.note:
        lines.append(f"Note: {header_text(version.note, 500)}")
    return title + "\n\n" + "\n".join(lines)
