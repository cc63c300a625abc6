"""The JSON API under /api/v1: the CLI's `--json` shapes (`watcher.record.documents`), paged.

A list answers at most `limit` rows (default 100, at most 1000); when there are more, the
response carries `Link: <URL>; rel="next"` (RFC 8288), so the body stays exactly the CLI's list.
Errors are `{"error": "one line"}` with a fitting status.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from werkzeug.wrappers import Response

from watcher.compare import diff
from watcher.errors import NotLive, RecordError
from watcher.kinds import registry
from watcher.record import documents, history_orm, overview_orm
from watcher.record.models import Event, Target
from watcher.times import json_time, parse_time
from watcher.web.call import Call, Refused, presented_token

SEVERITIES = ("high", "low")
_SPACED_OFFSET = re.compile(r"(\d) (\d\d(:?\d\d)?)$")


# --- reading ------------------------------------------------------------------------------------


def status(call: Call) -> Response:
    """`GET /api/v1/status`: as `status --json`."""
    with call.reading() as session:
        rows = overview_orm.kind_statuses(session, call.config.configured_kinds, disabled=call.config.disabled_targets)
        document = documents.status_document(rows, overview_orm.deliveries(session),
                                             overview_orm.platform_states(session), overview_orm.fighting(session))
    return call.json(document)


def events(call: Call) -> Response:
    """`GET /api/v1/events?open=&target=&kind=&severity=&since=&after=&limit=`: oldest first."""
    where = event_filter(call)
    limit = page_limit(call)
    after = integer_arg(call, "after")
    with call.reading() as session:
        rows = overview_orm.events_page(session, where, after=after, limit=limit + 1)
        document = [documents.event_document(row) for row in rows[:limit]]
    return call.json(document, headers=next_link(call, rows, limit, lambda row: row.id))


def objects(call: Call) -> Response:
    """`GET /api/v1/objects?target=&kind=&deleted=&after=&limit=`: as `objects --json`."""
    kind, target = kind_arg(call), target_arg(call)  # read before the session: target_arg may open its own
    limit = page_limit(call)
    with call.reading() as session:
        rows = overview_orm.list_objects(session, target=target, kind=kind,
                                     deleted=flag(call, "deleted"), after=integer_arg(call, "after"),
                                     limit=limit + 1)
    return call.json([documents.object_document(row) for row in rows[:limit]],
                     headers=next_link(call, rows, limit, lambda row: row.resource_id))


def versions(call: Call, target: str, kind: str, object_id: str) -> Response:
    """`GET /api/v1/objects/{target}/{kind}/{id}/versions`: as `history --json`, oldest first."""
    limit = page_limit(call)
    with call.reading() as session:
        resource = overview_orm.find_object(session, target, kind, object_id)
        rows = overview_orm.versions_page(session, resource, after=integer_arg(call, "after"), limit=limit + 1)
        document = [documents.version_document(row) for row in rows[:limit]]
    return call.json(document, headers=next_link(call, rows, limit, lambda row: row.number))


def version(call: Call, target: str, kind: str, object_id: str, number: int) -> Response:
    """`GET /api/v1/objects/{target}/{kind}/{id}/versions/{n}`: as `show --json` (the canonical body)."""
    with call.reading() as session:
        resource = overview_orm.find_object(session, target, kind, object_id)
        return call.json(history_orm.body(history_orm.version(session, resource, number)))


def diff_versions(call: Call, target: str, kind: str, object_id: str) -> Response:
    """`GET /api/v1/objects/{target}/{kind}/{id}/diff?from=N&to=M`: as `diff --json`."""
    with call.reading() as session:
        resource = overview_orm.find_object(session, target, kind, object_id)
        to_number = integer_arg(call, "to") or resource.current_version
        from_number = integer_arg(call, "from") or max(to_number - 1, 1)
        old = history_orm.body(history_orm.version(session, resource, from_number))
        new = history_orm.body(history_orm.version(session, resource, to_number))
    changes = diff.compare(old, new)
    return call.json({"object_id": object_id, "from": from_number, "to": to_number,
                      "changes": [c.as_json() for c in changes]})


def at(call: Call, target: str, kind: str, object_id: str) -> Response:
    """`GET /api/v1/objects/{target}/{kind}/{id}/at?time=T`: the version live at T.

    404 with `reason` before_first_seen or deleted when no version was live then.
    """
    moment = time_arg(call, "time", required=True)
    with call.reading() as session:
        resource = overview_orm.find_object(session, target, kind, object_id)
        try:
            live = history_orm.version_at(session, resource, moment)
        except NotLive as exc:
            raise Refused(404, str(exc), **_not_live_details(exc)) from None
        return call.json(documents.live_version_document(live))


def _not_live_details(exc: NotLive) -> dict[str, Any]:
    if exc.reason == "deleted":
        return {"reason": "deleted", "deleted_at": json_time(exc.since),
                "listed_again_at": json_time(exc.back)}
    return {"reason": "before_first_seen", "first_seen_at": json_time(exc.since)}


# --- acknowledging ------------------------------------------------------------------------------


def ack(call: Call, event_id: int) -> Response:
    """`POST /api/v1/events/{id}/ack` with `{"by", "note"}` and `Authorization: Bearer TOKEN`."""
    check_ack_token(call, presented_token(call.request))
    body = call.request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused(400, 'the body must be a JSON object: {"by": "who reviewed it", "note": "why it is fine"}')
    by, note = body.get("by"), body.get("note")
    if not isinstance(by, str) or not by.strip():
        raise Refused(400, '"by" must name who acknowledges the event')
    if note is not None and not isinstance(note, str):
        raise Refused(400, '"note" must be a string')
    return call.json(acknowledge(call, event_id, by, note))


def check_ack_token(call: Call, presented: str | None) -> None:
    """Refused unless `presented` is the token (401 when none was given, 403 when it is wrong)."""
    if not call.web.has_token:
        raise Refused(403, "acknowledging over HTTP needs a token: set [http] token_file or token_env")
    if not presented:
        raise Refused(401, "acknowledging needs the token: Authorization: Bearer TOKEN",
                      challenge=['Bearer realm="assistant-watcher"'])
    if not call.web.token_matches(presented):
        raise Refused(403, "wrong token")


def acknowledge(call: Call, event_id: int, by: str, note: str | None) -> dict[str, Any]:
    """Acknowledge event `event_id` and answer its document: 404 if there is none, 409 if someone already did."""
    by, note = by.strip()[:200], (note or "").strip() or None
    with call.writing() as session:
        try:
            return documents.event_document(history_orm.acknowledge(session, event_id, by, note))
        except RecordError as exc:
            raise Refused(404 if session.get(Event, event_id) is None else 409, str(exc)) from None


# --- arguments ----------------------------------------------------------------------------------


def event_filter(call: Call) -> overview_orm.EventFilter:
    severity = call.request.args.get("severity") or None
    if severity is not None and severity not in SEVERITIES:
        raise Refused(400, f"severity must be one of {', '.join(SEVERITIES)}")
    return overview_orm.EventFilter(open_only=flag(call, "open"), target=target_arg(call),
                                kind=kind_arg(call), severity=severity, since=time_arg(call, "since"))


def target_arg(call: Call) -> str | None:
    """`target=`: configured, or in the record (removed from the config since); else a 400, not an empty answer."""
    target = call.request.args.get("target") or None
    if target is None or target in {t.name for t in call.config.targets}:
        return target
    with call.reading() as session:
        if session.scalar(select(Target.id).where(Target.name == target)) is not None:
            return target
    configured = ", ".join(t.name for t in call.config.targets) or "none"
    raise Refused(400, f"no target named {target!r} (configured: {configured})")


def kind_arg(call: Call) -> str | None:
    kind = call.request.args.get("kind") or None
    if kind is not None and kind not in registry.names():
        raise Refused(400, f"unknown kind {kind!r}; known kinds: {', '.join(registry.names())}")
    return kind


def flag(call: Call, name: str) -> bool:
    value = call.request.args.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise Refused(400, f"{name} must be true or false")


def integer_arg(call: Call, name: str) -> int | None:
    value = call.request.args.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise Refused(400, f"{name} must be a whole number")
    return int(value)


def page_limit(call: Call) -> int:
    limit = integer_arg(call, "limit")
    if limit is None:
        return overview_orm.PAGE_LIMIT
    if not 1 <= limit <= overview_orm.MAX_PAGE_LIMIT:
        raise Refused(400, f"limit must be between 1 and {overview_orm.MAX_PAGE_LIMIT}")
    return limit


def time_arg(call: Call, name: str, required: bool = False):
    value = call.request.args.get(name, "").strip()
    if not value:
        if required:
            raise Refused(400, f"{name} is required: ISO 8601 such as 2026-11-23T10:00:00Z")
        return None
    # An unescaped "+" in a query string arrives as a space: "10:00:00 01:00" meant "+01:00".
    value = _SPACED_OFFSET.sub(r"\1+\2", value)
    try:
        return parse_time(value)
    except RecordError as exc:
        raise Refused(400, f"{name}: {exc}") from None


def next_link(call: Call, rows: list, limit: int, cursor) -> dict[str, str]:
    """The `Link` header to the next page when `rows` (fetched one past `limit`) has more."""
    if len(rows) <= limit:
        return {}
    args = call.request.args.copy()
    args["after"] = str(cursor(rows[limit - 1]))
    args["limit"] = str(limit)
    return {"Link": f'<{call.request.base_url}?{urlencode(list(args.items(multi=True)))}>; rel="next"'}
