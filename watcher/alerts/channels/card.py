"""What a chat message says about an alert, before Slack or Teams lays it out. No I/O.

Both chat channels show the same things: a headline, facts (severity, what, when, who,
where), a bounded diff or list, and the commands that show everything. Every value here is
plain, printable text; each channel escapes it for its own markup.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from watcher import display
from watcher.alerts import render
from watcher.alerts.channels.base import Alert
from watcher.compare import sections
from watcher.record.schema import Purpose
from watcher.times import iso


@dataclass
class Card:
    headline: str
    summary: str  # one line for notifications and clients that show no cards
    severity: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # (path|add|del|hunk|ctx|item, text)
    more: str | None = None  # what was left out of `lines`, and how to see it
    error: str | None = None
    commands: list[tuple[str, str]] = field(default_factory=list)


def card(alert: Alert, *, line_chars: int) -> Card:
    """The card for `alert`; its `lines` hold at most `line_chars` characters."""
    if alert.purpose == Purpose.EVENT:
        return _event_card(alert, line_chars)
    if alert.purpose == Purpose.DIGEST:
        return _digest_card(alert, line_chars)
    return _notice_card(alert)


def _event_card(alert: Alert, line_chars: int) -> Card:
    event = alert.events[0]
    context = render.event_context(event, sections.Budget(0))  # the diff comes bounded by characters below
    lines, cut = render.diff_lines(event, line_chars)
    headline = f"{context['kind_label'].capitalize()} “{context['title']}” {event.change} on {context['target']}"
    return Card(
        headline=headline, summary=alert.title, severity=event.severity,
        facts=[("Severity", event.severity), ("What", context["what"]), ("When", context["when"]),
               ("Who", context["who"]), ("Where", context["where"])],
        lines=lines, more=f"more changes: run {context['command']}" if cut else None,
        commands=[("Full diff", context["command"]), ("Acknowledge", context["ack_command"])],
    )


def _digest_card(alert: Alert, line_chars: int) -> Card:
    events = list(alert.events)
    first = events[0]
    lines: list[tuple[str, str]] = []
    left = line_chars
    for event in events:
        text = _digest_line(event)
        if len(text) + 1 > left:
            break
        lines.append(("item", text))
        left -= len(text) + 1
    command = (f"assistant-watcher events --target {shlex.quote(display.printable(first.target))} "
               f"--since {iso(first.detected_at)}")
    hidden = len(events) - len(lines)
    return Card(
        headline=display.printable(alert.title), summary=alert.title, severity=alert.severity,
        facts=[("Target", display.printable(first.target)), ("Kind", first.kind), ("Events", str(len(events))),
               ("Detected", iso(first.detected_at) or "")],
        lines=lines, more=f"{hidden} more events: run {command}" if hidden else None,
        commands=[("All of them", command)],
    )


def _digest_line(event) -> str:
    versions = {"created": f"v{event.to_version}", "deleted": f"v{event.from_version}"}.get(
        event.change, f"v{event.from_version} → v{event.to_version}")
    name = display.header_text(event.name or event.object_id, 80)
    paths = render.subject_paths([display.printable(p) for p in event.paths], 120)
    head = f"{event.severity} {event.change} {render.kind_label(event.kind)} “{display.printable(name)}” ({versions})"
    who = f" — by {display.actor_text(event.actor)}" if getattr(event, "actor", None) else ""
    return (f"{head}: {paths}" if paths else head) + who


def _notice_card(alert: Alert) -> Card:
    notice = alert.notice
    if notice is None:  # alerts.load gives every alert without events its notice
        raise ValueError(f"alert {alert.id} ({alert.purpose}) has no notice to show")
    return Card(
        headline=display.printable(notice.headline), summary=alert.title, severity=alert.severity,
        facts=[(label, display.printable(value)) for label, value in notice.facts],
        paragraphs=[display.printable(p) for p in notice.paragraphs],
        error=display.printable(notice.error) if notice.error else None,
        commands=([("Deliveries", "assistant-watcher outbox")] if alert.purpose in (Purpose.DEAD, Purpose.DISABLED)
                  else []),
    )
