"""What an alert says about drift: subject, what/when/where, the sections of its diff. No I/O.

Python decides what an alert says (severity, subject, the changed sections cut to a byte budget:
`watcher.compare.sections`); Jinja2 templates decide how an email looks (`watcher.alerts.templating`); the other
channels lay out the same context themselves. Notices (failing, recovered, ...) are `watcher.alerts.notices`.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from watcher.alerts.notices import Notice, failing_notice, settings_notice
from watcher.alerts.templating import RenderedEmail, Templates
from watcher.alerts.templating import render as render_templates
from watcher.compare.diff import Change, whole_body_changes
from watcher.compare.sections import Budget, clip, path_parts, sections_for
from watcher.display import SUBJECT_LIMIT, actor_text, header_text, printable
from watcher.kinds import registry
from watcher.kinds.base import EventChange, Severity
from watcher.kinds.paths import format_path, parse_path
from watcher.times import iso

# --- small text helpers ---------------------------------------------------------------------


def kind_label(kind: str) -> str:
    return registry.label(kind)


def _display_name(name: str | None, object_id: str, limit: int = 80) -> str:
    return header_text(name, limit) if name and name.strip() else header_text(object_id, limit)


def _natural(path: str) -> tuple:
    """Sort key putting tools[2] before tools[10]."""
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in path_parts(path))


def _short_path(path: str) -> str:
    """A path cut to its first two parts: `tools[1].function.name` → `tools[1]`."""
    try:
        return format_path(parse_path(path)[:2])
    except ValueError:
        return path


# --- severity and subject -------------------------------------------------------------------


def subject_paths(paths: Iterable[str], room: int) -> str:
    """The changed places, shortened and deduplicated, fitting in about `room` characters."""
    short = sorted(dict.fromkeys(_short_path(p) for p in paths), key=_natural)
    shown: list[str] = []
    for n, path in enumerate(short):
        if shown and len(", ".join([*shown, path])) > room:
            return ", ".join(shown) + f", +{len(short) - n} more"
        shown.append(path)
    return ", ".join(shown)


def event_subject(event, level: str) -> str:
    """`[prod] [high] assistant "Billing Bot" modified: instructions, tools[1]`."""
    tag = " [high]" if level == Severity.HIGH else ""
    shown = _display_name(event.name, event.object_id)
    who = f"[{header_text(event.target, 100)}]{tag} {kind_label(event.kind)} \"{shown}\""
    if getattr(event, "rule", None):
        said = f"breaks rule {event.rule}: {event.message}" if event.change == EventChange.VIOLATION \
            else f"satisfies rule {event.rule} again"
        return header_text(f"{who} {said}")
    head = f"{who} {event.change}"
    paths = subject_paths(event.paths, SUBJECT_LIMIT - len(head) - 12) if event.change == EventChange.MODIFIED else ""
    return header_text(f"{head}: {paths}" if paths else head)


def _whole_body_changes(event) -> list[Change]:
    """A created object as all-added fields; a deleted one shows none (the record keeps it, the alert says where)."""
    return whole_body_changes(event.change, event.old_body, event.new_body)


# --- the event email ------------------------------------------------------------------------


def full_diff_command(event) -> str:
    """The command that shows everything about this event."""
    ref = shlex.quote(printable(event.object_id))
    target = shlex.quote(printable(event.target))
    if event.change in (EventChange.CREATED, EventChange.VIOLATION, EventChange.RESOLVED):
        return f"assistant-watcher show {ref} --target {target} --version {event.to_version or 1}"
    if event.change == EventChange.DELETED:
        return f"assistant-watcher show {ref} --target {target} --version {event.from_version}"
    return f"assistant-watcher diff {ref} --target {target} --from {event.from_version} --to {event.to_version}"


def _when(event) -> str:
    detected = iso(event.detected_at)
    if event.remote_updated_at is not None and event.change != EventChange.DELETED:
        return f"{iso(event.remote_updated_at)} (the {kind_label(event.kind)}'s updated_at); detected {detected}"
    if event.window_start is not None:
        return f"between {iso(event.window_start)} and {detected} (between two polls)"
    return f"before {detected}"


def _where(event) -> str:
    head = f"target {printable(event.target)} · {event.kind} · {printable(event.object_id)}"
    if event.change == EventChange.CREATED:
        return f"{head} · version {event.to_version}"
    if event.change == EventChange.DELETED:
        return f"{head} · last version {event.from_version}"
    return f"{head} · version {event.from_version} → {event.to_version}"




def _what(event, limit: int = 30) -> str:
    if event.change == EventChange.VIOLATION:
        return f"version {event.to_version} breaks rule {printable(event.rule or '')}: {printable(event.message or '')}"
    if event.change == EventChange.RESOLVED:
        return f"version {event.to_version} satisfies rule {printable(event.rule or '')} again"
    if event.change == EventChange.CREATED:
        return "a new object, not seen before"
    if event.change == EventChange.DELETED:
        model = event.old_body.get("model") if isinstance(event.old_body, dict) else None
        kept = f"its last version {event.from_version}" + (f" (model {printable(str(model))})" if model else "")
        return f"no longer listed by a complete listing; {kept} is kept in the record: {full_diff_command(event)}"
    paths = [printable(p) for p in event.paths]
    listed = ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
    if event.change == EventChange.REAPPEARED:
        return "listed again after being deleted" + (f"; changed: {listed}" if listed else "")
    return listed or "no visible path (ignore rules changed)"


def _happened(event) -> str:
    """`was modified`; for a rule's event `breaks rule approved-models` or `satisfies rule approved-models again`."""
    rule = printable(getattr(event, "rule", None) or "")
    if event.change == EventChange.VIOLATION:
        return f"breaks rule {rule}"
    if event.change == EventChange.RESOLVED:
        return f"satisfies rule {rule} again"
    return f"was {event.change}"


def event_context(event, budget: Budget | None = None) -> dict[str, Any]:
    """Everything the event templates show, already bounded and made printable."""
    budget = budget or Budget()
    level = event.severity
    sections, hidden = sections_for(event.changes or _whole_body_changes(event), budget)
    return {
        "purpose": "event",
        "subject": event_subject(event, level),
        "event_id": event.event_id,
        "target": printable(event.target),
        "kind": event.kind,
        "kind_label": kind_label(event.kind),
        "object_id": printable(event.object_id),
        "name": printable(event.name) if event.name else None,
        "title": _display_name(event.name, event.object_id),
        "change": event.change,
        "happened": _happened(event),
        "rule": printable(event.rule) if getattr(event, "rule", None) else None,
        "message": printable(event.message) if getattr(event, "message", None) else None,
        "severity": level,
        "from_version": event.from_version,
        "to_version": event.to_version,
        "paths": [printable(p) for p in event.paths],
        "what": _what(event),
        "when": _when(event),
        "who": actor_text(getattr(event, "actor", None)),
        "where": _where(event),
        "detected_at": iso(event.detected_at),
        "window_start": iso(event.window_start),
        "remote_updated_at": iso(event.remote_updated_at),
        "command": full_diff_command(event),
        "ack_command": f"assistant-watcher ack {event.event_id} --by WHO",
        "sections": sections,
        "hidden": hidden,
    }


def render_event(event, templates: Templates | None = None) -> RenderedEmail:
    """The email for one drift event (a `watcher.record.drift.DriftEvent`)."""
    context = event_context(event)
    return render_templates(templates, "event", context)


def diff_lines(event, limit: int) -> tuple[list[tuple[str, str]], bool]:
    """An event's changes as plain (kind, text) lines of at most `limit` characters in all, for chat
    cards; kind is path | add | del | hunk | ctx. True when something was left out."""
    sections, hidden = sections_for(event.changes or _whole_body_changes(event), Budget(4 * limit))
    lines: list[tuple[str, str]] = []
    left = limit
    for section in sections:
        label = f": {section.label}" if section.label else ""
        block = [("path", f"{section.path} ({section.op}{label})")]
        if section.style == "scalar":
            block += [("del", f"- {section.before}"), ("add", f"+ {section.after}")]
        else:
            block += [(line.kind, line.text) for line in section.lines]
        for kind, text in block:
            if len(text) + 1 > left:
                return lines, True
            lines.append((kind, text))
            left -= len(text) + 1
        hidden += 1 if section.cut else 0
    return lines, hidden > 0


# --- the digest -----------------------------------------------------------------------------


def render_digest(events: list, templates: Templates | None = None) -> RenderedEmail:
    """One email for many events of one poll of one target and kind."""
    first = events[0]
    budget = Budget()
    entries, hidden = [], 0
    for event in events:
        entry = _digest_entry(event)
        if budget.exhausted or not budget.admit(" ".join(str(v) for v in entry.values())):
            hidden += 1
            continue
        entries.append(entry)
    high = sum(1 for e in events if e.severity == Severity.HIGH)
    summary = _digest_summary(events)
    subject = digest_subject(events)
    command = (f"assistant-watcher events --target {shlex.quote(printable(first.target))} "
               f"--since {iso(first.detected_at)}")
    context = {
        "purpose": "digest", "subject": subject, "target": printable(first.target), "kind": first.kind,
        "kind_label": kind_label(first.kind), "count": len(events), "summary": summary, "high": high,
        "when": _when(first), "detected_at": iso(first.detected_at), "entries": entries, "hidden": hidden,
        "command": command,
    }
    return render_templates(templates, "digest", context)


def digest_subject(events: list) -> str:
    """`[prod] [high] 12 assistants changed in one poll: 12 modified`."""
    tag = " [high]" if any(e.severity == Severity.HIGH for e in events) else ""
    first = events[0]
    return header_text(f"[{first.target}]{tag} {len(events)} {first.kind} changed in one poll: "
                       f"{_digest_summary(events)}")


def _digest_summary(events: list) -> str:
    counts = Counter(e.change for e in events)
    return ", ".join(f"{counts[c]} {c}" for c in ("created", "modified", "deleted", "reappeared") if counts[c])


def _digest_entry(event) -> dict[str, Any]:
    versions = {"created": f"v{event.to_version}", "deleted": f"v{event.from_version}"}.get(
        event.change, f"v{event.from_version} → v{event.to_version}")
    return {
        "event_id": event.event_id,
        "severity": event.severity,
        "change": event.change,
        "title": _display_name(event.name, event.object_id),
        "object_id": clip(event.object_id, 120),
        "versions": versions,
        "paths": subject_paths([printable(p) for p in event.paths], 120),
        "who": actor_text(event.actor) if getattr(event, "actor", None) else None,  # said only when known
        "command": full_diff_command(event),
    }


def render_failing(target: str, kind: str, error: str, failures: int, since: datetime | None,
                   templates: Templates | None = None) -> RenderedEmail:
    return render_notice(failing_notice(target, kind, error, failures, since), templates)


def render_test(facts: list[tuple[str, str]], templates: Templates | None = None) -> RenderedEmail:
    """The `test-email` message: which settings delivered it."""
    return render_notice(settings_notice(facts), templates)


def render_notice(notice: Notice, templates: Templates | None = None) -> RenderedEmail:
    """The email for any notice."""
    context = {
        "purpose": notice.purpose, "subject": notice.subject, "headline": printable(notice.headline),
        "facts": [(label, clip(value, 300)) for label, value in notice.facts],
        "paragraphs": [printable(p) for p in notice.paragraphs],
        "error": [clip(line) for line in (notice.error or "").splitlines()[:40]],
    }
    return render_templates(templates, "notice", context)


