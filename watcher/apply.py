"""The in-channel way to change an object: `apply` a JSON file, `restore` a version.

A write happens under the same per-(target, kind) lock as a poll, and only when the
remote object still matches the record (otherwise the out-of-band change would be
overwritten unseen: the user is told to snapshot first). What the server returns is
recorded at once as a version with origin apply|restore and its author, so the next
poll finds nothing new: the watcher's own writes are never reported as drift.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher import history
from watcher.config import Config, TargetConfig
from watcher.errors import RecordError
from watcher.snapshot import as_datetime, matching_keys, normalize, parse_path
from watcher.source import make_client, retrieve, update
from watcher.store import Resource, Target, Version, poll_lock, utcnow

# Fields a client may set, per kind; absent from a canonical body means "empty".
WRITABLE = {
    "assistants": ("description", "instructions", "metadata", "model", "name", "response_format", "temperature",
                   "tool_resources", "tools", "top_p"),
    "agents": ("compaction", "experimental", "instructions", "metadata", "model", "multi_agent", "name", "reasoning",
               "service_tier", "text", "tools"),
}
# What to send for a writable field the desired body does not have, so it is cleared.
_CLEARED = {"metadata": {}, "tools": [], "name": None, "description": None, "instructions": None}


@dataclass(frozen=True)
class WriteResult:
    """What an apply or restore did: the object and the version it recorded (None: no change)."""

    object_id: str
    name: str | None
    version: int | None
    previous: int


def load_apply_file(path: str) -> dict[str, Any]:
    """The object described by a JSON file (as `show --json` prints it), with an `id`."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise RecordError(f"{path}: expected a JSON object with the \"id\" of a recorded assistant or agent")
    return document


def apply_document(engine: Engine, config: Config, document: dict[str, Any], *, by: str,
                   note: str | None = None) -> WriteResult:
    """Make the remote object look like `document`, recorded as origin "apply"."""
    with Session(engine) as session:
        resource = history.find_resource(session, document["id"])
        target_name, kind, remote_id = resource.target.name, resource.kind, resource.remote_id
    return _write(engine, config.target(target_name), kind, remote_id, document, origin="apply", by=by, note=note)


def restore_version(engine: Engine, config: Config, ref: str, number: int, *, by: str,
                    note: str | None = None) -> WriteResult:
    """Make the remote object look like its recorded version `number`, as origin "restore"."""
    with Session(engine) as session:
        resource = history.find_resource(session, ref)
        body = history.body(history.version(session, resource, number))
        target_name, kind, remote_id = resource.target.name, resource.kind, resource.remote_id
    note = note or f"restored version {number}"
    return _write(engine, config.target(target_name), kind, remote_id, body, origin="restore", by=by, note=note)


def _write(engine: Engine, target: TargetConfig, kind: str, remote_id: str, desired: dict[str, Any], *,
           origin: str, by: str, note: str | None) -> WriteResult:
    if not by or not by.strip():
        raise RecordError("--by must name who makes the change")
    client = make_client(target)
    try:
        with poll_lock(engine, target.name, kind):
            live = retrieve(client, target.name, kind, remote_id)
            _require_recorded(engine, target, kind, remote_id, live)
            fields = writable_fields(kind, desired, live, target.ignore)
            stored = update(client, target.name, kind, remote_id, fields)
            return _record_write(engine, target, kind, remote_id, stored, origin, by.strip(), note)
    finally:
        client.close()


def _require_recorded(engine: Engine, target: TargetConfig, kind: str, remote_id: str, live: dict[str, Any]) -> None:
    """Refuse to overwrite a change the record has not seen yet."""
    with Session(engine) as session:
        resource = _resource(session, target.name, kind, remote_id)
        if resource.deleted_at is not None:
            raise RecordError(f"{remote_id} is recorded as deleted; run snapshot first")
        if normalize(live, target.ignore).content_hash != resource.current_hash:
            raise RecordError(f"{remote_id} has changed since the last poll (out of band); "
                              "run `assistant-watcher snapshot` to record that change first")


def writable_fields(kind: str, desired: dict[str, Any], live: dict[str, Any], ignore) -> dict[str, Any]:
    """The update to send: every writable field of `desired`, cleared when absent, ignored paths kept live."""
    fields = {}
    for name in WRITABLE[kind]:
        if name in desired:
            fields[name] = copy.deepcopy(desired[name])
        elif name in _CLEARED:
            fields[name] = copy.deepcopy(_CLEARED[name])
    for rule in ignore:
        _copy_paths(live, fields, parse_path(rule))
    return fields


def _copy_paths(source: Any, dest: Any, parts: tuple) -> None:
    """Copy the values `parts` names from source into dest (ignored paths are not ours to change)."""
    if not parts or not isinstance(dest, (dict, list)):
        return
    head, rest = parts[0], parts[1:]
    keys = matching_keys(source, head)
    for key in keys:
        if not rest:
            if isinstance(dest, dict):
                dest[key] = copy.deepcopy(source[key])
            elif isinstance(key, int) and key < len(dest):
                dest[key] = copy.deepcopy(source[key])
            continue
        if isinstance(dest, dict) and key not in dest and isinstance(source[key], dict):
            dest[key] = {}
        child = dest.get(key) if isinstance(dest, dict) else (dest[key] if isinstance(key, int) and key < len(dest) else None)
        _copy_paths(source[key], child, rest)


def _resource(session: Session, target: str, kind: str, remote_id: str) -> Resource:
    resource = session.scalar(
        select(Resource).join(Target).where(Target.name == target, Resource.kind == kind, Resource.remote_id == remote_id)
    )
    if resource is None:
        raise RecordError(f"{remote_id} is not in the record of {target}/{kind}")
    return resource


def _record_write(engine: Engine, target: TargetConfig, kind: str, remote_id: str, stored: dict[str, Any],
                  origin: str, by: str, note: str | None) -> WriteResult:
    snap = normalize(stored, target.ignore)
    with Session(engine) as session, session.begin():
        resource = _resource(session, target.name, kind, remote_id)
        previous = resource.current_version
        resource.name = snap.name
        if snap.content_hash == resource.current_hash:
            return WriteResult(remote_id, snap.name, None, previous)
        resource.current_version += 1
        resource.current_hash = snap.content_hash
        updated = as_datetime(snap.remote_updated_at)
        session.add(Version(resource_id=resource.id, number=resource.current_version, content_hash=snap.content_hash,
                            body=snap.canonical, observed_at=utcnow(), remote_updated_at=updated, origin=origin,
                            actor=by, note=note))
        return WriteResult(remote_id, snap.name, resource.current_version, previous)
