"""HTML pages for people: the overview, events, objects, an object's versions, a diff, and ack.

Every remote value reaches the page through Jinja2's autoescaping and the `shown` filter (control
and bidi characters as escapes); the pages carry no script, so a `<script>` in an assistant's
name is text. Diffs reuse the email's sections (`watcher.alerts.render`) with a larger budget.
"""

from __future__ import annotations

import json
import mimetypes
import re
import shlex
from typing import Any

from sqlalchemy import select
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from watcher import display
from watcher.compare import diff, sections
from watcher.display import actor_text
from watcher.kinds import registry
from watcher.record import history_orm, overview_orm
from watcher.record.documents import event_severity
from watcher.record.models import Event, Target
from watcher.record.schema import RULES_CHANGED, Origin
from watcher.times import utcnow
from watcher.web import api
from watcher.web.call import HERE, Call, Refused, poll_intervals
from watcher.web.diffview import content, side_by_side
from watcher.web.metrics import STALE_AFTER

EVENTS_PER_PAGE = 50
OBJECTS_PER_PAGE = 100
EVENTS_ON_OBJECT = 50
DIFF_BUDGET = 2 * 1024 * 1024  # bytes of diff a page shows before it says how to get the rest
STATIC = {path.name: path for path in (HERE / "static").iterdir() if path.is_file()}


def overview_page(call: Call) -> Response:
    """`/`: every target and kind (last poll, status, objects, open events), deliveries, health."""
    with call.reading() as session:
        statuses = overview_orm.kind_statuses(session, call.config.configured_kinds,
                                          disabled=call.config.disabled_targets)
        deliveries = overview_orm.deliveries(session)
    stale = {(row.target, row.kind): reason
             for row, reason in overview_orm.stale(statuses, poll_intervals(call.config), utcnow(), STALE_AFTER)}
    return call.page("overview.html.j2", title="Overview", statuses=statuses, deliveries=deliveries, stale=stale,
                     label=registry.label)


def events(call: Call) -> Response:
    """`/events`: newest first, filtered by open, target, kind and severity, paged by id."""
    where = api.event_filter(call)
    before, after = api.integer_arg(call, "before"), api.integer_arg(call, "after")
    with call.reading() as session:
        if after is not None:
            rows = list(reversed(overview_orm.events_page(session, where, after=after, limit=EVENTS_PER_PAGE)))
        else:
            rows = overview_orm.events_page(session, where, before=before, limit=EVENTS_PER_PAGE, newest_first=True)
        newer = bool(rows) and overview_orm.has_events(session, where, after=rows[0].id)
        older = bool(rows) and overview_orm.has_events(session, where, before=rows[-1].id)
        targets = list(session.scalars(select(Target.name).order_by(Target.name)))
    filters = {"open": "1" if where.open_only else None, "target": where.target, "kind": where.kind,
               "severity": where.severity}
    return call.page("events.html.j2", title="Events", events=[_event_view(row) for row in rows], filters=filters,
                     targets=targets, kinds=registry.names(), newer=newer, older=older, label=registry.label,
                     back=call.request.full_path.rstrip("?"))


def ack(call: Call, event_id: int) -> Response:
    """`POST /events/{id}/ack` from the events page's form (by, note, token), then back to the list."""
    form = call.request.form
    api.check_ack_token(call, form.get("token", ""))
    by = form.get("by", "")
    if not by.strip():
        raise Refused(400, "say who acknowledges the event (the “by” field)")
    back = _local(form.get("next"))  # before acting: nothing about the answer may fail once the ack commits
    api.acknowledge(call, event_id, by, form.get("note"))
    return redirect(back, code=303)


# A path of this site: one slash then printable ASCII without spaces or backslashes (browsers drop tabs and
# newlines and read a backslash as a slash, so "/\t/evil.example" would leave the site).
_LOCAL_PATH = re.compile(r"/(?![/\\])[!#-\[\]-~]*")


def _local(target: str | None) -> str:
    """`target` if it is a path on this server, else the events page (never an open redirect)."""
    if target and _LOCAL_PATH.fullmatch(target):
        return target
    return "/events"


def objects(call: Call) -> Response:
    """`/objects`: tracked objects, filtered by target, kind and deleted, paged."""
    target = call.request.args.get("target") or None
    kind = api.kind_arg(call)
    deleted = api.flag(call, "deleted")
    after = api.integer_arg(call, "after")
    with call.reading() as session:
        rows = overview_orm.list_objects(session, target=target, kind=kind, deleted=deleted, after=after,
                                     limit=OBJECTS_PER_PAGE + 1)
        targets = list(session.scalars(select(Target.name).order_by(Target.name)))
    more = rows[OBJECTS_PER_PAGE - 1].resource_id if len(rows) > OBJECTS_PER_PAGE else None
    filters = {"target": target, "kind": kind, "deleted": "1" if deleted else None}
    return call.page("objects.html.j2", title="Objects", objects=rows[:OBJECTS_PER_PAGE], filters=filters,
                     targets=targets, kinds=registry.names(), more=more, label=registry.label)


def object_page(call: Call, target: str, kind: str, object_id: str) -> Response:
    """`/objects/{target}/{kind}/{id}`: its versions (who and how each came), its events, one body."""
    with call.reading() as session:
        resource = overview_orm.find_object(session, target, kind, object_id)
        versions = overview_orm.versions_page(session, resource)
        object_events = overview_orm.events_page(session, overview_orm.EventFilter(resource_id=resource.id),
                                             limit=EVENTS_ON_OBJECT, newest_first=True)
        shown = history_orm.version(session, resource, api.integer_arg(call, "version") or resource.current_version)
    by_version = {e.to_version: e for e in object_events if e.to_version is not None}
    rows = [{"row": v, "how": _how(v), "who": _who(v, by_version.get(v.number))} for v in reversed(versions)]
    return call.page("object.html.j2", title=_title(resource), resource=resource, versions=rows,
                     events=[_event_view(e) for e in object_events], shown=shown,
                     fields=_fields(history_orm.body(shown)),
                     label=registry.label,
                     back=call.request.full_path.rstrip("?"))


def diff_page(call: Call, target: str, kind: str, object_id: str) -> Response:
    """`/objects/{target}/{kind}/{id}/diff?from=N&to=M&view=split|unified`: any two versions."""
    view = call.request.args.get("view", "split")
    if view not in ("split", "unified"):
        raise Refused(400, "view must be split or unified")
    with call.reading() as session:
        resource = overview_orm.find_object(session, target, kind, object_id)
        to_number = api.integer_arg(call, "to") or resource.current_version
        from_number = api.integer_arg(call, "from") or max(to_number - 1, 1)
        old_row = history_orm.version(session, resource, from_number)
        new_row = history_orm.version(session, resource, to_number)
        numbers = [v.number for v in overview_orm.versions_page(session, resource)]
    changes = diff.compare(history_orm.body(old_row), history_orm.body(new_row))
    shown, hidden = sections.sections_for(changes, sections.Budget(DIFF_BUDGET))
    views = [{"section": s, "rows": side_by_side(s.lines)} for s in shown]
    command = (f"assistant-watcher diff {shlex.quote(object_id)} --target {shlex.quote(target)} "
               f"--from {from_number} --to {to_number}")
    return call.page("diff.html.j2", title=f"{_title(resource)}: {from_number} → {to_number}", resource=resource,
                     old=old_row, new=new_row, sections=views, hidden=hidden, view=view, numbers=numbers,
                     content=content, command=display.printable(command), label=registry.label)


def static(call: Call, name: str) -> Response:
    """`/static/{name}`: the stylesheet and the icon shipped with the package."""
    path = STATIC.get(name)
    if path is None:
        raise Refused(404, f"no such file: {name[:100]}")
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = Response(path.read_bytes(), mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# --- what a row says ----------------------------------------------------------------------------


def _title(resource) -> str:
    return display.printable(f"{registry.label(resource.kind).capitalize()} “{resource.name or resource.remote_id}”")


def _fields(body: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(field, text, is_text) for each top-level field of a body: a string as its lines, anything else as JSON."""
    return [(key, value, True) if isinstance(value, str) and value else
            (key, json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True), False)
            for key, value in sorted(body.items())]


def _event_view(row: Event) -> dict[str, Any]:
    resource = row.resource
    return {"row": row, "target": resource.target.name, "kind": resource.kind, "object_id": resource.remote_id,
            "name": resource.name, "severity": event_severity(row), "who": actor_text(row.actor),
            "versions": _event_versions(row)}


def _event_versions(row: Event) -> tuple[int, int] | None:
    """The two versions a diff of this event compares, or None (a creation or deletion has one)."""
    if row.from_version and row.to_version:
        return row.from_version, row.to_version
    return None


def _how(version) -> str:
    if version.note == RULES_CHANGED:
        return "recorded when the watcher's rules changed (not an edit)"
    return {"baseline": "first seen (baseline)", "poll": "seen by a poll (out of band)",
            "apply": "applied through the watcher", "restore": "restored through the watcher"}.get(version.origin,
                                                                                             version.origin)


def _who(version, event: Event | None) -> str:
    if version.origin in (Origin.APPLY, Origin.RESTORE):
        return version.actor or "unknown"
    if version.origin == Origin.BASELINE or version.note == RULES_CHANGED:
        return "—"
    return actor_text(event.actor if event is not None else None)
