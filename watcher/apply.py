"""The in-channel way to change an object: `apply` a JSON file, `restore` a version.

A write happens under the same per-(target, kind) lock as a poll, and only when the
remote object still matches the record (otherwise the out-of-band change would be
overwritten unseen: the user is told to snapshot first). What the server returns is
recorded at once as a version with origin apply|restore and its author, so the next
poll finds nothing new: the watcher's own writes are never reported as drift.

Only the fields the kind registry lists as writable are sent. A file that names an
unknown field, or changes a read-only one, is refused by name: a typo must never look
like success. `dry_run` shows the change without making it.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher.compare import diff
from watcher.compare.normalize import REDACTED, fingerprint, is_fingerprint, normalize, rules_for, scrubbed_text
from watcher.config.model import Config
from watcher.config.targets import TargetConfig
from watcher.errors import RecordError, WatcherError, one_line
from watcher.kinds import registry
from watcher.kinds.base import EventChange, Kind
from watcher.kinds.paths import format_path, matching_keys, parse_path
from watcher.poll.outcome import PollOutcome
from watcher.record import history_orm
from watcher.record.drift import DriftEvent
from watcher.record.engine import installation_key
from watcher.record.locks import poll_lock
from watcher.record.models import Event, Resource, Target, Version, rows_updated
from watcher.record.schema import Origin, PollStatus
from watcher.source.listing import Source
from watcher.times import as_datetime, iso, utcnow

_PLATFORM_FIELDS = ("id", "object", "created_at")  # set by the platform; a file may carry them as listed


@dataclass(frozen=True)
class WriteResult:
    """What an apply or restore did: the object, the version it recorded (None: no change), the events it answered."""

    object_id: str
    name: str | None
    version: int | None
    previous: int
    answered: list[int] = field(default_factory=list)
    changes: list[diff.Change] = field(default_factory=list)  # a dry run: what would change


def load_apply_file(path: str) -> dict[str, Any]:
    """The object described by a JSON file (as `show --json` prints it), with an `id`."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise RecordError(f"{path}: expected a JSON object with the \"id\" of a recorded object")
    return document


def apply_document(engine: Engine, config: Config, document: dict[str, Any], *, by: str, note: str | None = None,
                   target: str | None = None, dry_run: bool = False) -> WriteResult:
    """Make the remote object look like `document`, recorded as origin "apply"."""
    with Session(engine) as session:
        resource = _document_resource(session, document["id"], target)
        kind = _writable_kind(resource)
        current = history_orm.body(history_orm.version(session, resource, resource.current_version))
        _refuse_what_cannot_be_written(kind, document, current)
        where = (resource.target.name, resource.remote_id, resource.current_version, resource.name)
    if dry_run:
        _require_live_recorded(engine, config.target(where[0]), kind, where[1])
        return _dry_run(kind, where, current, document)
    return _write(engine, config.target(where[0]), kind, where[1], document, origin=Origin.APPLY, by=by, note=note)


def _document_resource(session: Session, object_id: str, target: str | None) -> Resource:
    """The recorded object a file's `id` names; a child kind's body carries only its own part of the id."""
    try:
        return history_orm.find_resource(session, object_id, target=target)
    except RecordError:
        # autoescape: an id's "_" is a character, not LIKE's wildcard
        query = select(Resource).join(Target).where(Resource.remote_id.endswith(f"/{object_id}", autoescape=True))
        if target:
            query = query.where(Target.name == target)
        matches = list(session.scalars(query))
        if not matches:
            raise
        return history_orm.choose_resource(matches, object_id, target=target)


def restore_version(engine: Engine, config: Config, ref: str, number: int, *, by: str, note: str | None = None,
                    target: str | None = None, kind: str | None = None, dry_run: bool = False) -> WriteResult:
    """Make the remote object look like its recorded version `number`, as origin "restore".

    Open drift events since that version are acknowledged by `by`: the restore answers them.
    """
    with Session(engine) as session:
        resource = history_orm.find_resource(session, ref, target=target, kind=kind)
        writable = _writable_kind(resource)
        body = history_orm.body(history_orm.version(session, resource, number))
        if resource.deleted_at is not None:
            raise RecordError(
                f"{resource.remote_id} was deleted at {iso(resource.deleted_at)}; restore cannot bring "
                f"back a deleted object. Recreate it on the platform from its last version "
                f"(assistant-watcher show {resource.remote_id} --version {resource.current_version} --json), "
                f"then run snapshot")
        current = history_orm.body(history_orm.version(session, resource, resource.current_version))
        where = (resource.target.name, resource.remote_id, resource.current_version, resource.name)
    if dry_run:
        _require_live_recorded(engine, config.target(where[0]), writable, where[1])
        return _dry_run(writable, where, current, body)
    note = note or f"restored version {number}"
    result = _write(engine, config.target(where[0]), writable, where[1], body, origin=Origin.RESTORE, by=by, note=note)
    return _answer_open_events(engine, where[0], result, number, by, note)


HEALER = "assistant-watcher (heal)"


def heal_version(engine: Engine, config: Config, target: str, kind: str, remote_id: str, number: int, *,
                 event_id: int) -> WriteResult:
    """Put the object back to its recorded version `number`, as origin "heal" (self-heal after event `event_id`).

    Raises RecordError where it cannot: a read-only kind, a secret it cannot read back, a live object that
    moved again since the poll recorded it.
    """
    with Session(engine) as session:
        resource = _resource(session, target, kind, remote_id)
        writable = _writable_kind(resource)
        body = history_orm.body(history_orm.version(session, resource, number))
    return _write(engine, config.target(target), writable, remote_id, body, origin=Origin.HEAL, by=HEALER,
                  note=f"reverted automatically: event {event_id} undone, back to version {number}")


def _writable_kind(resource: Resource) -> Kind:
    kind = registry.get(resource.kind)
    if kind.read_only:
        raise RecordError(f"the watcher does not write {kind.name}: change {resource.remote_id} on the platform "
                          "and the next poll records it (and who did it, where an audit log says)")
    return kind


def _refuse_what_cannot_be_written(kind: Kind, document: dict[str, Any], current: dict[str, Any]) -> None:
    """RecordError naming the first field the file may not set: unknown, or read-only and changed."""
    managed = {*_PLATFORM_FIELDS, *kind.timestamps, *kind.volatile}
    for name in document:
        if name in kind.writable:
            continue
        if name in current:
            if document[name] != current[name]:
                raise RecordError(f"{name} is read-only for {kind.name}: apply can change only "
                                  f"{', '.join(kind.writable)}")
            continue
        if name in managed:  # set by the platform and not recorded (updated_at): the file may carry it as listed
            continue
        close = difflib.get_close_matches(name, [*kind.writable, *current], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RecordError(f"unknown field {name!r}{hint}: {kind.name} take {', '.join(kind.writable)}")


def _dry_run(kind: Kind, where: tuple, current: dict[str, Any], desired: dict[str, Any]) -> WriteResult:
    """What applying `desired` would change in the recorded body, without calling the API."""
    _target, remote_id, version, name = where
    after = {k: v for k, v in current.items() if k not in kind.writable}
    for key in kind.writable:
        if desired.get(key) not in (None, [], {}):
            after[key] = copy.deepcopy(desired[key])
    return WriteResult(remote_id, name, None, version, changes=diff.compare(current, after))


def _write(engine: Engine, target: TargetConfig, kind: Kind, remote_id: str, desired: dict[str, Any], *,
           origin: str, by: str, note: str | None) -> WriteResult:
    if not by or not by.strip():
        raise RecordError("--by must name who makes the change")
    rules = rules_for(kind, ignore=target.ignore, redact=target.redact, secret_key=installation_key(engine))
    with Source(target) as source, poll_lock(engine, target.name, kind.name):
        live = source.retrieve(kind, remote_id)
        _require_recorded(engine, target, kind, remote_id, normalize(live, rules=rules).content_hash)
        fields = writable_fields(kind, desired, live, target.ignore)
        _put_back_secrets(fields, live, rules.secret_key, remote_id)
        stored = source.update(kind, remote_id, fields)
        return _record_write(engine, target, kind, remote_id, normalize(stored, rules=rules), origin, by.strip(),
                             note)


def _require_live_recorded(engine: Engine, target: TargetConfig, kind: Kind, remote_id: str) -> None:
    """A dry run reads the live object too: what it shows is what a real run would do, or its refusal."""
    rules = rules_for(kind, ignore=target.ignore, redact=target.redact, secret_key=installation_key(engine))
    with Source(target) as source:
        live = source.retrieve(kind, remote_id)
    _require_recorded(engine, target, kind, remote_id, normalize(live, rules=rules).content_hash)


def _require_recorded(engine: Engine, target: TargetConfig, kind: Kind, remote_id: str, live_hash: str) -> None:
    """Refuse to overwrite a change the record has not seen yet."""
    with Session(engine) as session:
        resource = _resource(session, target.name, kind.name, remote_id)
        if resource.deleted_at is not None:
            raise RecordError(f"{remote_id} is recorded as deleted; run snapshot first")
        if live_hash != resource.current_hash:
            raise RecordError(f"{remote_id} has changed since the last poll (out of band); "
                              "run `assistant-watcher snapshot` to record that change first")


def writable_fields(kind: Kind, desired: dict[str, Any], live: dict[str, Any], ignore) -> dict[str, Any]:
    """The update to send: every writable field of `desired`, cleared when absent, ignored paths kept live."""
    fields = {}
    for name in kind.writable:
        if name in desired:
            fields[name] = copy.deepcopy(desired[name])
        elif name in kind.cleared:
            fields[name] = copy.deepcopy(kind.cleared[name])
    for rule in ignore:
        _copy_paths(live, fields, parse_path(rule))
    return fields


def _put_back_secrets(fields: Any, live: Any, key: bytes, remote_id: str, path: tuple = ()) -> None:
    """Replace each fingerprint in `fields` by the live secret it stands for, or refuse.

    The record never holds a secret, only its fingerprint: sending the fingerprint would overwrite
    the real value. Where the live object holds a value with that fingerprint, it is sent back
    unchanged; where it holds another (rotated since) or none, the watcher cannot write it.
    """
    items = fields.items() if isinstance(fields, dict) else enumerate(fields) if isinstance(fields, list) else ()
    for key_or_index, value in list(items):
        here = (*path, key_or_index)
        if isinstance(value, (dict, list)):
            _put_back_secrets(value, live, key, remote_id, here)
        elif is_fingerprint(value) or (isinstance(value, str) and REDACTED in value):
            current = _value_at(live, here)
            if current is _MISSING or _as_recorded(current, key) != value:
                raise RecordError(
                    f"{remote_id}: {format_path(here)} is a secret the watcher keeps only as a fingerprint, and the "
                    "live value is not that one (rotated since, or gone): set it on the platform, or put the value "
                    "itself in the file")
            fields[key_or_index] = copy.deepcopy(current)


_MISSING = object()


def _as_recorded(live_value: Any, key: bytes) -> Any:
    """What the record keeps of a live value holding a secret: its fingerprint, or (a text with a credential
    inside, such as a URL's userinfo) the text with that credential fingerprinted where it stands."""
    if isinstance(live_value, str) and not live_value.startswith(REDACTED):
        scrubbed = scrubbed_text(live_value, key)
        if scrubbed != live_value:
            return scrubbed
    return fingerprint(live_value, key)


def _value_at(node: Any, path: tuple) -> Any:
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return _MISSING
    return node


def _copy_paths(source: Any, dest: Any, parts: tuple) -> None:
    """Copy the values `parts` names from source into dest (ignored paths are not ours to change)."""
    if not parts or not isinstance(dest, (dict, list)):
        return
    head, rest = parts[0], parts[1:]
    for key in matching_keys(source, head):
        if not rest:
            if isinstance(dest, dict):
                dest[key] = copy.deepcopy(source[key])
            elif isinstance(key, int) and key < len(dest):
                dest[key] = copy.deepcopy(source[key])
            continue
        if isinstance(dest, dict) and key not in dest and isinstance(source[key], dict):
            dest[key] = {}
        _copy_paths(source[key], _child(dest, key), rest)


def _child(dest: Any, key: Any) -> Any:
    if isinstance(dest, dict):
        return dest.get(key)
    return dest[key] if isinstance(key, int) and key < len(dest) else None


def _resource(session: Session, target: str, kind: str, remote_id: str) -> Resource:
    resource = session.scalar(
        select(Resource).join(Target)
        .where(Target.name == target, Resource.kind == kind, Resource.remote_id == remote_id)
    )
    if resource is None:
        raise RecordError(f"{remote_id} is not in the record of {target}/{kind}")
    return resource


def _record_write(engine: Engine, target: TargetConfig, kind: Kind, remote_id: str, snap, origin: str, by: str,
                  note: str | None) -> WriteResult:
    with Session(engine) as session, session.begin():
        resource = _resource(session, target.name, kind.name, remote_id)
        previous = resource.current_version
        if snap.content_hash == resource.current_hash:
            resource.name = snap.name
            return WriteResult(remote_id, snap.name, None, previous)
        moved = rows_updated(session,  # compare-and-set: a poll that recorded meanwhile must not be overwritten
                             update(Resource).where(Resource.id == resource.id, Resource.current_version == previous)
                             # raw_hash cleared: the bytes listed before the write must not pass for this version
                             .values(current_version=previous + 1, current_hash=snap.content_hash, name=snap.name,
                                     raw_hash=None))
        if moved != 1:
            raise RecordError(f"{remote_id} was recorded by another process meanwhile; run snapshot to see it")
        session.add(Version(resource_id=resource.id, number=previous + 1, content_hash=snap.content_hash,
                            body=snap.canonical, observed_at=utcnow(), remote_updated_at=as_datetime(
                                snap.remote_updated_at), origin=origin, actor=by, note=note))
        return WriteResult(remote_id, snap.name, previous + 1, previous)


def _answer_open_events(engine: Engine, target: str, result: WriteResult, number: int, by: str,
                        note: str) -> WriteResult:
    """Acknowledge the open drift events a restore to version `number` undid."""
    if result.version is None:
        return result
    with Session(engine) as session, session.begin():
        resource = session.scalar(select(Resource).join(Target).where(
            Target.name == target, Resource.remote_id == result.object_id, Resource.current_version == result.version))
        if resource is None:
            return result
        rows = session.scalars(select(Event).where(
            Event.resource_id == resource.id, Event.acked_at.is_(None),
            Event.change.in_((EventChange.MODIFIED, EventChange.REAPPEARED)),
            Event.from_version >= number, Event.to_version < result.version).order_by(Event.id)).all()
        now = utcnow()
        for row in rows:
            row.acked_by, row.acked_at = by, now
            row.note = f"{note} (undone by restore to version {number}, recorded as version {result.version})"
        answered = [row.id for row in rows]
    return WriteResult(result.object_id, result.name, result.version, result.previous, answered)


# --- self-heal (DESIGN "Self-heal"): an out-of-band modification put back within the poll that found it ------
#
# After a poll records `modified` events on a target with `heal` set for that kind, each object is written
# back to the version before the edit through the in-channel write above (origin `heal`, actor HEALER), so
# the next poll sees no drift. Never a deletion, a read-only kind, or a secret it cannot read back; at most
# `heal_max` objects a poll; an object already put back twice within `heal_backoff` is left alone
# (`fighting`: something keeps changing it). Only the process that recorded an event heals it, so several
# daemons on one database put each edit back once.

heal_log = logging.getLogger("watcher.heal")
FIGHTING_AFTER = 2  # put back this many times within heal_backoff: the next edit is left alone


@dataclass
class HealReport:
    """What self-heal did after one poll: each event put back (with its write), left alone, or failed."""

    healed: list[tuple[DriftEvent, WriteResult]] = field(default_factory=list)
    fighting: list[DriftEvent] = field(default_factory=list)
    failed: list[tuple[DriftEvent, str]] = field(default_factory=list)


def heal(engine: Engine, config: Config, target: TargetConfig, outcome: PollOutcome) -> HealReport:
    """Put back the out-of-band modifications `outcome` recorded, where the target heals its kind."""
    report = HealReport()
    if outcome.status != PollStatus.COMPLETE or not target.heals(outcome.kind) \
            or registry.get(outcome.kind).read_only:
        return report
    edits = [e for e in outcome.events if e.change == EventChange.MODIFIED and e.from_version and e.to_version]
    for event in edits[:target.heal_max]:
        if _reverted(engine, target.name, event, timedelta(seconds=target.heal_backoff)) >= FIGHTING_AFTER:
            heal_log.warning("%s/%s %s: put back %d times within heal_backoff; left alone", target.name, event.kind,
                        event.object_id, FIGHTING_AFTER)
            report.fighting.append(event)
            continue
        try:
            result = heal_version(engine, config, target.name, event.kind, event.object_id,
                                  event.from_version or 1, event_id=event.event_id)
        except WatcherError as exc:
            heal_log.warning("%s/%s %s: not put back: %s", target.name, event.kind, event.object_id, one_line(exc))
            report.failed.append((event, one_line(exc)))
            continue
        heal_log.debug("%s/%s %s: put back to version %d (recorded as version %s)", target.name, event.kind,
                       event.object_id, event.from_version, result.version)  # said by the caller: one line each
        report.healed.append((event, result))
    if len(edits) > target.heal_max:
        heal_log.warning("%s/%s: %d modifications, heal_max %d: the rest are left as they are", target.name,
                    outcome.kind, len(edits), target.heal_max)
    return report


def heal_and_tell(engine: Engine, config: Config, target: TargetConfig, outcome: PollOutcome) -> HealReport:
    """`heal`, then one notice per object put back or left alone, routed as its drift is (snapshot and run both
    call it after each poll)."""
    report = heal(engine, config, target, outcome)
    if (report.healed or report.fighting) and not config.alerts_go_nowhere:
        from watcher.alerts import compose  # jinja and the channels: only when something is told

        with Session(engine) as session, session.begin():
            compose.queue_heal_notices(session, config, target.name, outcome.kind, report.healed, report.fighting)
    return report


def _reverted(engine: Engine, target: str, event: DriftEvent, backoff: timedelta) -> int:
    """How many times self-heal put this object back within `backoff`."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Version)
                              .join(Resource, Resource.id == Version.resource_id)
                              .join(Target, Target.id == Resource.target_id)
                              .where(Target.name == target, Resource.kind == event.kind,
                                     Resource.remote_id == event.object_id, Version.origin == Origin.HEAL,
                                     Version.observed_at >= utcnow() - backoff)) or 0
