"""What an operational alert says (failing, recovered, retired, dead, disabled, test, and the platform's
own state moving), before any channel lays it out. Plain values in, a `Notice` out; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.display import counted, header_text
from watcher.kinds.base import Severity
from watcher.record.schema import Purpose
from watcher.times import iso


@dataclass(frozen=True)
class Notice:
    """What an operational alert says, before any channel lays it out (every value plain text)."""

    purpose: str  # failing | recovered | retired | dead | disabled | test
    subject: str
    headline: str
    facts: list[tuple[str, str]]
    paragraphs: list[str]
    error: str | None = None
    severity: str = "high"


def failing_notice(target: str, kind: str, error: str, failures: int, since: datetime | None) -> Notice:
    """`failures` polls of (target, kind) in a row have failed: nothing is being watched there."""
    times = "once" if failures == 1 else f"{failures} times in a row"
    subject = header_text(f"[{target}] [high] watcher failing: {kind} polls failed {times}")
    facts = [("Target", target), ("Kind", kind), ("Failed polls", str(failures)),
             ("Failing since", iso(since) or "unknown")]
    last = "The last poll" if failures == 1 else f"The last {failures} polls"
    body = [f"{last} of {target}/{kind} failed, so drift there is not being detected. "
            f"One email is sent per outage; another says when polls succeed again."]
    return Notice(Purpose.FAILING, subject, f"Watcher failing on {target}/{kind}", facts, body, error)


def recovered_notice(target: str, kind: str, failures: int, since: datetime | None) -> Notice:
    """A poll of (target, kind) succeeded after a streak that raised a failing or retired alert."""
    polls = counted(failures, "failed poll")
    subject = header_text(f"[{target}] watcher recovered: {kind} polled again after {polls}")
    facts = [("Target", target), ("Kind", kind), ("Failed polls", str(failures)),
             ("Failing since", iso(since) or "unknown")]
    body = [f"A poll of {target}/{kind} completed again. Drift that happened during the outage is reported "
            f"by the usual alerts; their time window covers the outage."]
    return Notice(Purpose.RECOVERED, subject, f"Watcher recovered on {target}/{kind}", facts, body,
                  severity=Severity.LOW)


def retired_notice(target: str, kind: str, error: str) -> Notice:
    """The endpoint answers 404 for a kind that has recorded objects."""
    subject = header_text(f"[{target}] [high] {kind} no longer served by this endpoint")
    facts = [("Target", target), ("Kind", kind)]
    body = [f"The endpoint of {target} answers 404 for every {kind} request. The recorded {kind} are kept "
            f"as they were; nothing is marked deleted. Each poll keeps failing until the endpoint serves "
            f"{kind} again or `kinds` in the config drops it."]
    return Notice(Purpose.RETIRED, subject, f"{kind} retired on {target}", facts, body, error)


def dead_notice(channel: str, given_up: list[dict[str, Any]], give_up_after: str) -> Notice:
    """Deliveries to `channel` failed for longer than `give_up_after`: those alerts never reached it."""
    count = len(given_up)
    alerts = counted(count, "alert")
    subject = header_text(f"[high] {alerts} could not be delivered to {channel}")
    facts = [("Channel", channel), ("Undelivered", str(count)), ("Gave up after", give_up_after)]
    facts += [(f"#{d['id']}", f"{d['title']} (queued {d['created_at']}, {d['attempts']} attempts)")
              for d in given_up[:10]]
    body = [f"{alerts} for {channel} kept failing for {give_up_after} and are no longer retried. They are "
            f"still in the record: `assistant-watcher events` lists the drift, `assistant-watcher outbox` "
            f"the deliveries."]
    return Notice(Purpose.DEAD, subject, f"Alerts could not be delivered to {channel}", facts, body,
                  given_up[0].get("last_error") if given_up else None)


def disabled_notice(channel: str, reason: str) -> Notice:
    """The receiver of `channel` answered 410 Gone: nothing more is sent there until someone acts."""
    subject = header_text(f"[high] channel {channel} disabled: its receiver answered 410 Gone")
    facts = [("Channel", channel)]
    body = [f"The receiver of {channel} says it is gone for good, so alerts are no longer sent to it: they wait "
            f"in the outbox. Point the channel at a new URL (it is enabled again when its URL changes), or run "
            f"`assistant-watcher outbox --retry-now` once the receiver is back."]
    return Notice(Purpose.DISABLED, subject, f"Channel {channel} disabled", facts, body, reason)


def state_notice(target: str, kind: str, detail: dict[str, Any]) -> Notice:
    """The platform set an object's state fields (`detail`: object_id, name, label, before, after, severity)."""
    after, before = detail.get("after") or {}, detail.get("before") or {}
    severity = detail.get("severity", Severity.LOW)
    label, name = detail.get("label") or kind, detail.get("name") or detail.get("object_id", "")
    moved = sorted(set(after) | set(before))
    said = "; ".join(f"{path} {_state_text(before.get(path))} → {_state_text(after.get(path))}" for path in moved)
    level = "[high] " if severity == Severity.HIGH else ""
    subject = header_text(f"[{target}] {level}{label} \"{name}\": the platform set {said}")
    facts = [("Target", target), ("Kind", kind), ("Object", f"{name} ({detail.get('object_id', '')})")]
    facts += [(path, f"{_state_text(before.get(path))} → {_state_text(after.get(path))}") for path in moved]
    body = ["This is the platform's own state, not an edit: nobody changed the object, so it is no drift event "
            "and no version. `assistant-watcher status` shows what is in such a state now."]
    return Notice(Purpose.STATE, subject, f"{label} {name}: state changed", facts, body, severity=severity)


def healed_notice(target: str, kind: str, detail: dict[str, Any]) -> Notice:
    """Self-heal put an out-of-band modification back (`detail`: object_id, name, label, event_id, paths,
    back_to, recorded_as)."""
    label, name = detail.get("label") or kind, detail.get("name") or detail.get("object_id", "")
    paths = ", ".join(detail.get("paths") or []) or "its content"
    subject = header_text(f"[{target}] [high] {label} \"{name}\" reverted automatically: {paths}")
    facts = [("Target", target), ("Kind", kind), ("Object", f"{name} ({detail.get('object_id', '')})"),
             ("Undone", paths), ("Event", f"#{detail.get('event_id')}"),
             ("Back to", f"version {detail.get('back_to')} (recorded as version {detail.get('recorded_as')})")]
    body = ["Someone changed this object out of band, and self-heal (`heal` on the target) put it back to the "
            "version before. The edit is still an open event: find out who made it, and change the object "
            "through `assistant-watcher apply` if it was meant."]
    return Notice(Purpose.HEALED, subject, f"{label} {name} reverted automatically", facts, body)


def fighting_notice(target: str, kind: str, detail: dict[str, Any]) -> Notice:
    """Self-heal left an object alone: it was put back twice within heal_backoff and changed again."""
    label, name = detail.get("label") or kind, detail.get("name") or detail.get("object_id", "")
    subject = header_text(f"[{target}] [high] {label} \"{name}\": something keeps changing it; not reverted again")
    facts = [("Target", target), ("Kind", kind), ("Object", f"{name} ({detail.get('object_id', '')})"),
             ("Event", f"#{detail.get('event_id')}")]
    body = ["Self-heal put this object back twice within heal_backoff, and it was changed again: something (a "
            "script, a person, another tool) keeps changing it. It is left as it is now until heal_backoff has "
            "passed; find what changes it."]
    return Notice(Purpose.FIGHTING, subject, f"{label} {name}: self-heal is fighting", facts, body)


def _state_text(value: Any) -> str:
    return "(none)" if value is None else str(value)


def settings_notice(facts: list[tuple[str, str]]) -> Notice:
    body = ["This message proves that assistant-watcher can deliver alerts with these settings."]
    return Notice(Purpose.TEST, "assistant-watcher test email", "assistant-watcher test email", facts, body,
                  severity=Severity.LOW)


def notice_for(purpose: str, target: str | None, kind: str | None, detail: dict[str, Any]) -> Notice:
    """The notice an alert of `purpose` gives, from what its row keeps (`detail`)."""
    target, kind = target or "", kind or ""
    if purpose == Purpose.FAILING:
        return failing_notice(target, kind, detail.get("error", ""), detail.get("failures", 0),
                              _time(detail.get("since")))
    if purpose == Purpose.RECOVERED:
        return recovered_notice(target, kind, detail.get("failures", 0), _time(detail.get("since")))
    if purpose == Purpose.RETIRED:
        return retired_notice(target, kind, detail.get("error", ""))
    if purpose == Purpose.DEAD:
        return dead_notice(detail.get("channel", ""), detail.get("deliveries", []), detail.get("give_up_after", ""))
    if purpose == Purpose.DISABLED:
        return disabled_notice(detail.get("channel", ""), detail.get("reason", ""))
    if purpose == Purpose.STATE:
        return state_notice(target, kind, detail)
    if purpose == Purpose.HEALED:
        return healed_notice(target, kind, detail)
    if purpose == Purpose.FIGHTING:
        return fighting_notice(target, kind, detail)
    return Notice(purpose, purpose, purpose, [], [])


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

