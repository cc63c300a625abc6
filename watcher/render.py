"""Alert emails from drift events: subject, text and HTML, bounded and escaped. No I/O.

Python decides what an email says (severity, sections, diff lines cut to a byte budget,
a header-safe subject); Jinja2 templates decide how it looks. The built-in templates
are the package `watcher.templates` (the top-level `templates/` directory);
`[alerts] templates_dir` may override any of them, and those user templates render in
a sandboxed environment. Every remote value reaches the HTML through autoescaping.
"""

from __future__ import annotations

import difflib
import functools
import html
import importlib.resources
import json
import logging
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from jinja2 import (
    ChoiceLoader,
    DictLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from watcher import kinds
from watcher.display import (  # noqa: F401  (render.printable and render.actor_text stay names)
    SUBJECT_LIMIT, UNKNOWN_ACTOR, actor_text, header_text, printable)
from watcher.diff import Change, is_long_text, whole_body_changes
from watcher.errors import ConfigError
from watcher.history import iso
from watcher.snapshot import format_path, parse_path

log = logging.getLogger("watcher.render")

# Bytes of diff content (as escaped HTML, markup included) one email may carry.
BUDGET_BYTES = 72 * 1024
LINE_LIMIT = 400
# What the HTML template adds around one line: a styled <div> (context lines get a bare one).
LINE_OVERHEAD = 72
_PLAIN_LINE_OVERHEAD = 16
# Bytes for word highlights and changed-word notes, on top of BUDGET_BYTES.
MARKS_BYTES = 12 * 1024
# What the HTML template adds around one highlighted word run (a styled <span>).
MARK_OVERHEAD = 64
# A line pair with more changed runs than this is a rewrite: highlighting it would not help.
MAX_MARKS = 6
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
_TEMPLATE_SUFFIX = ".j2"



@dataclass(frozen=True)
class RenderedEmail:
    """An email's subject (header-safe) and its two bodies."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class DiffLine:
    """One displayed line: `kind` is add | del | hunk | ctx.

    A removed line paired with its replacement carries `segments` ((text, changed) pairs
    for word highlighting in HTML); the replacement also carries `words`, a one-line
    summary of the changed words for the text part.
    """

    kind: str
    text: str
    segments: tuple[tuple[str, bool], ...] | None = None
    words: str | None = None


@dataclass
class Section:
    """One changed path as shown: a before → after pair (`scalar`) or diff lines (`lines`)."""

    path: str
    op: str
    label: str | None = None
    style: str = "lines"
    before: str | None = None
    after: str | None = None
    lines: list[DiffLine] = field(default_factory=list)
    cut: int = 0  # lines left out to keep the email bounded


class Budget:
    """How many bytes of diff content an email may still carry."""

    def __init__(self, limit: int = BUDGET_BYTES):
        self.left = limit

    @property
    def exhausted(self) -> bool:
        return self.left <= 0

    def admit(self, text: str, overhead: int = LINE_OVERHEAD) -> bool:
        """Spend the cost of `text` as one HTML line if it fits; once something does not fit, nothing more does."""
        return self.spend(len(html.escape(text).encode("utf-8")) + overhead)

    def spend(self, cost: int) -> bool:
        if cost > self.left:
            self.left = 0
            return False
        self.left -= cost
        return True


# --- small text helpers ---------------------------------------------------------------------


def _clip(text: str, limit: int = LINE_LIMIT) -> str:
    text = printable(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def kind_label(kind: str) -> str:
    return kinds.label(kind)


def _display_name(name: str | None, object_id: str, limit: int = 80) -> str:
    return header_text(name, limit) if name and name.strip() else header_text(object_id, limit)


def _natural(path: str) -> tuple:
    """Sort key putting tools[2] before tools[10]."""
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in _parts(path))


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
    tag = " [high]" if level == "high" else ""
    head = (f"[{header_text(event.target, 100)}]{tag} {kind_label(event.kind)} "
            f"\"{_display_name(event.name, event.object_id)}\" {event.change}")
    paths = subject_paths(event.paths, SUBJECT_LIMIT - len(head) - 12) if event.change == "modified" else ""
    return header_text(f"{head}: {paths}" if paths else head)


# --- sections: what changed, bounded --------------------------------------------------------


def sections_for(changes: list[Change], budget: Budget) -> tuple[list[Section], int]:
    """The sections for `changes` within `budget`, and how many changes did not fit at all."""
    sections: list[Section] = []
    hidden = 0
    marks = Budget(MARKS_BYTES)
    for change in changes:
        if budget.exhausted or not budget.admit(change.path):
            hidden += 1
            continue
        sections.append(_section(change, budget, marks))
    return sections, hidden


def _section(change: Change, budget: Budget, marks: Budget) -> Section:
    shown = change.old if change.op == "removed" else change.new
    section = Section(path=printable(change.path), op=change.op, label=_describe(shown))
    if change.text_diff:
        section.lines, section.cut = _take(change.text_diff, budget)
        section.lines = _mark_changed_words(section.lines, marks)
    elif _is_text_block(change):
        text = change.new if change.op == "added" else change.old
        sign = "+" if change.op == "added" else "-"
        section.lines, section.cut = _take([sign + line for line in text.splitlines()], budget)
    elif isinstance(change.old, (dict, list)) or isinstance(change.new, (dict, list)):
        section.lines, section.cut = _take(_structure_lines(change), budget)
    else:
        _scalar(section, change, budget)
    return section


def _is_text_block(change: Change) -> bool:
    return change.op in ("added", "removed") and is_long_text(change.new if change.op == "added" else change.old)


def _scalar(section: Section, change: Change, budget: Budget) -> None:
    section.style = "scalar"
    before = "(absent)" if change.op == "added" else _clip(_json(change.old))
    after = "(absent)" if change.op == "removed" else _clip(_json(change.new))
    if budget.admit(before + after):
        section.before, section.after = before, after
    else:
        section.style, section.cut = "lines", 1


def _structure_lines(change: Change) -> list[str]:
    """A structural list: every leaf of the old value as `-`, of the new one as `+`."""
    base = _parts(change.path)
    lines: list[str] = []
    if change.op != "added":
        lines += [f"- {format_path(path)} = {_json(value)}" for path, value in _leaves(change.old, base)]
    if change.op != "removed":
        lines += [f"+ {format_path(path)} = {_json(value)}" for path, value in _leaves(change.new, base)]
    return lines


def _parts(path: str) -> tuple:
    try:
        return parse_path(path)
    except ValueError:
        return (path,)


def _leaves(value: Any, path: tuple) -> Iterator[tuple[tuple, Any]]:
    """Every leaf under `value` with its path, keys sorted, depth first; iterative, so any depth."""
    stack = [(value, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict) and value:
            stack.extend((value[key], (*path, key)) for key in sorted(value, reverse=True))
        elif isinstance(value, list) and value:
            stack.extend((value[n], (*path, n)) for n in reversed(range(len(value))))
        else:
            yield path, value


def _describe(value: Any) -> str | None:
    """A short label for a tool-like object: `function lookup_invoice`, `file_search`."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return None
    name = value.get("name") or (value.get("function") or {}).get("name")
    return _clip(f"{value['type']} {name}" if isinstance(name, str) else value["type"], 120)


def _diff_kind(line: str) -> str:
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "ctx")


def _take(lines: list[str], budget: Budget) -> tuple[list[DiffLine], int]:
    """As many of `lines` as the budget allows, and how many were left out."""
    kept: list[DiffLine] = []
    for n, line in enumerate(lines):
        text = _clip(line)
        kind = _diff_kind(line)
        if not budget.admit(text, _PLAIN_LINE_OVERHEAD if kind == "ctx" else LINE_OVERHEAD):
            return kept, len(lines) - n
        kept.append(DiffLine(kind, text))
    return kept, 0


def _mark_changed_words(lines: list[DiffLine], marks: Budget) -> list[DiffLine]:
    """Pair each run of removed lines with the added run after it, and mark the words that differ."""
    out = list(lines)
    n = 0
    while n < len(out):
        removed = _run(out, n, "del")
        added = _run(out, n + removed, "add")
        for i in range(min(removed, added) if added else 0):
            pair = _marked_pair(out[n + i], out[n + removed + i], marks)
            if pair:
                out[n + i], out[n + removed + i] = pair
        n += max(removed + added, 1)
    return out


def _run(lines: list[DiffLine], start: int, kind: str) -> int:
    end = start
    while end < len(lines) and lines[end].kind == kind:
        end += 1
    return end - start


def _marked_pair(old: DiffLine, new: DiffLine, marks: Budget) -> tuple[DiffLine, DiffLine] | None:
    """The two lines with their differing words marked, or None when that would not help or fit."""
    a, b = _TOKEN.findall(old.text[1:]), _TOKEN.findall(new.text[1:])
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() < 0.5:
        return None
    changes = _merged_changes(matcher.get_opcodes(), a)
    words = "; ".join(_word_change(a[i1:i2], b[j1:j2]) for i1, i2, j1, j2 in changes)
    cost = MARK_OVERHEAD * 2 * len(changes) + len(html.escape(words).encode("utf-8")) + LINE_OVERHEAD
    if not changes or len(changes) > MAX_MARKS or not marks.spend(cost):
        return None
    old_segments = _segments(old.text[0], a, [(i1, i2) for i1, i2, _j1, _j2 in changes])
    new_segments = _segments(new.text[0], b, [(j1, j2) for _i1, _i2, j1, j2 in changes])
    return (DiffLine(old.kind, old.text, old_segments),
            DiffLine(new.kind, new.text, new_segments, _clip(words) if len(new.text) > 80 else None))


def _merged_changes(opcodes, tokens: list[str]) -> list[tuple[int, int, int, int]]:
    """Changed spans (i1, i2, j1, j2); two changes a short word apart read better as one."""
    spans: list[list[int]] = []
    gap: tuple[int, int] | None = None
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            gap = (i1, i2)
            continue
        if spans and gap and gap[1] - gap[0] <= 3 and len("".join(tokens[gap[0]:gap[1]])) <= 12:
            spans[-1][1], spans[-1][3] = i2, j2
        else:
            spans.append([i1, i2, j1, j2])
        gap = None
    return [tuple(span) for span in spans]


def _segments(sign: str, tokens: list[str], changed: list[tuple[int, int]]) -> tuple[tuple[str, bool], ...]:
    segments, at = [(sign, False)], 0
    for start, end in changed:
        segments += [("".join(tokens[at:start]), False), ("".join(tokens[start:end]), True)]
        at = end
    segments.append(("".join(tokens[at:]), False))
    return tuple((text, changed) for text, changed in segments if text)


def _word_change(before: list[str], after: list[str]) -> str:
    old, new = "".join(before).strip(), "".join(after).strip()
    if not old:
        return f"added “{_clip(new, 120)}”"
    if not new:
        return f"removed “{_clip(old, 120)}”"
    return f"“{_clip(old, 120)}” → “{_clip(new, 120)}”"


def _whole_body_changes(event) -> list[Change]:
    """A created object as all-added fields; a deleted one shows none (the record keeps it, the alert says where)."""
    return whole_body_changes(event.change, event.old_body, event.new_body)


# --- the event email ------------------------------------------------------------------------


def full_diff_command(event) -> str:
    """The command that shows everything about this event."""
    ref = shlex.quote(printable(event.object_id))
    target = shlex.quote(printable(event.target))
    if event.change == "created":
        return f"assistant-watcher show {ref} --target {target} --version {event.to_version or 1}"
    if event.change == "deleted":
        return f"assistant-watcher show {ref} --target {target} --version {event.from_version}"
    return f"assistant-watcher diff {ref} --target {target} --from {event.from_version} --to {event.to_version}"


def _when(event) -> str:
    detected = iso(event.detected_at)
    if event.remote_updated_at is not None and event.change != "deleted":
        return f"{iso(event.remote_updated_at)} (the {kind_label(event.kind)}'s updated_at); detected {detected}"
    if event.window_start is not None:
        return f"between {iso(event.window_start)} and {detected} (between two polls)"
    return f"before {detected}"


def _where(event) -> str:
    head = f"target {printable(event.target)} · {event.kind} · {printable(event.object_id)}"
    if event.change == "created":
        return f"{head} · version {event.to_version}"
    if event.change == "deleted":
        return f"{head} · last version {event.from_version}"
    return f"{head} · version {event.from_version} → {event.to_version}"




def _what(event, limit: int = 30) -> str:
    if event.change == "created":
        return "a new object, not seen before"
    if event.change == "deleted":
        model = event.old_body.get("model") if isinstance(event.old_body, dict) else None
        kept = f"its last version {event.from_version}" + (f" (model {printable(str(model))})" if model else "")
        return f"no longer listed by a complete listing; {kept} is kept in the record: {full_diff_command(event)}"
    paths = [printable(p) for p in event.paths]
    listed = ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
    if event.change == "reappeared":
        return "listed again after being deleted" + (f"; changed: {listed}" if listed else "")
    return listed or "no visible path (ignore rules changed)"


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
    """The email for one drift event (a `watcher.poll.DriftEvent`)."""
    context = event_context(event)
    return _render(templates, "event", context)


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
    high = sum(1 for e in events if e.severity == "high")
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
    return _render(templates, "digest", context)


def digest_subject(events: list) -> str:
    """`[prod] [high] 12 assistants changed in one poll: 12 modified`."""
    tag = " [high]" if any(e.severity == "high" for e in events) else ""
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
        "object_id": _clip(event.object_id, 120),
        "versions": versions,
        "paths": subject_paths([printable(p) for p in event.paths], 120),
        "who": actor_text(event.actor) if getattr(event, "actor", None) else None,  # said only when known
        "command": full_diff_command(event),
    }


# --- notices: failing, recovered, retired, dead, disabled, test --------------------------------


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
    return Notice("failing", subject, f"Watcher failing on {target}/{kind}", facts, body, error)


def recovered_notice(target: str, kind: str, failures: int, since: datetime | None) -> Notice:
    """A poll of (target, kind) succeeded after a streak that raised a failing or retired alert."""
    polls = "1 failed poll" if failures == 1 else f"{failures} failed polls"
    subject = header_text(f"[{target}] watcher recovered: {kind} polled again after {polls}")
    facts = [("Target", target), ("Kind", kind), ("Failed polls", str(failures)),
             ("Failing since", iso(since) or "unknown")]
    body = [f"A poll of {target}/{kind} completed again. Drift that happened during the outage is reported "
            f"by the usual alerts; their time window covers the outage."]
    return Notice("recovered", subject, f"Watcher recovered on {target}/{kind}", facts, body, severity="low")


def retired_notice(target: str, kind: str, error: str) -> Notice:
    """The endpoint answers 404 for a kind that has recorded objects."""
    subject = header_text(f"[{target}] [high] {kind} no longer served by this endpoint")
    facts = [("Target", target), ("Kind", kind)]
    body = [f"The endpoint of {target} answers 404 for every {kind} request. The recorded {kind} are kept "
            f"as they were; nothing is marked deleted. Each poll keeps failing until the endpoint serves "
            f"{kind} again or `kinds` in the config drops it."]
    return Notice("retired", subject, f"{kind} retired on {target}", facts, body, error)


def dead_notice(channel: str, given_up: list[dict[str, Any]], give_up_after: str) -> Notice:
    """Deliveries to `channel` failed for longer than `give_up_after`: those alerts never reached it."""
    count = len(given_up)
    alerts = "1 alert" if count == 1 else f"{count} alerts"
    subject = header_text(f"[high] {alerts} could not be delivered to {channel}")
    facts = [("Channel", channel), ("Undelivered", str(count)), ("Gave up after", give_up_after)]
    facts += [(f"#{d['id']}", f"{d['title']} (queued {d['created_at']}, {d['attempts']} attempts)")
              for d in given_up[:10]]
    body = [f"{alerts} for {channel} kept failing for {give_up_after} and are no longer retried. They are "
            f"still in the record: `assistant-watcher events` lists the drift, `assistant-watcher outbox` "
            f"the deliveries."]
    return Notice("dead", subject, f"Alerts could not be delivered to {channel}", facts, body,
                  given_up[0].get("last_error") if given_up else None)


def disabled_notice(channel: str, reason: str) -> Notice:
    """The receiver of `channel` answered 410 Gone: nothing more is sent there until someone acts."""
    subject = header_text(f"[high] channel {channel} disabled: its receiver answered 410 Gone")
    facts = [("Channel", channel)]
    body = [f"The receiver of {channel} says it is gone for good, so alerts are no longer sent to it: they wait "
            f"in the outbox. Point the channel at a new URL (it is enabled again when its URL changes), or run "
            f"`assistant-watcher outbox --retry-now` once the receiver is back."]
    return Notice("disabled", subject, f"Channel {channel} disabled", facts, body, reason)


def settings_notice(facts: list[tuple[str, str]]) -> Notice:
    body = ["This message proves that assistant-watcher can deliver alerts with these settings."]
    return Notice("test", "assistant-watcher test email", "assistant-watcher test email", facts, body,
                  severity="low")


def render_failing(target: str, kind: str, error: str, failures: int, since: datetime | None,
                   templates: Templates | None = None) -> RenderedEmail:
    return render_notice(failing_notice(target, kind, error, failures, since), templates)


def render_recovered(target: str, kind: str, failures: int, since: datetime | None,
                     templates: Templates | None = None) -> RenderedEmail:
    return render_notice(recovered_notice(target, kind, failures, since), templates)


def render_retired(target: str, kind: str, error: str, templates: Templates | None = None) -> RenderedEmail:
    return render_notice(retired_notice(target, kind, error), templates)


def render_test(facts: list[tuple[str, str]], templates: Templates | None = None) -> RenderedEmail:
    """The `test-email` message: which settings delivered it."""
    return render_notice(settings_notice(facts), templates)


def render_notice(notice: Notice, templates: Templates | None = None) -> RenderedEmail:
    """The email for any notice."""
    context = {
        "purpose": notice.purpose, "subject": notice.subject, "headline": printable(notice.headline),
        "facts": [(label, _clip(value, 300)) for label, value in notice.facts],
        "paragraphs": [printable(p) for p in notice.paragraphs],
        "error": [_clip(line) for line in (notice.error or "").splitlines()[:40]],
    }
    return _render(templates, "notice", context)


# --- templates ------------------------------------------------------------------------------


def _render(templates: Templates | None, stem: str, context: dict[str, Any]) -> RenderedEmail:
    templates = templates or default_templates()
    # Whatever a (user) subject template produces, the header is made safe and capped here.
    subject = header_text(templates.render(f"{stem}.subject.j2", context)) or context["subject"]
    text = templates.render(f"{stem}.txt.j2", context)
    page = templates.render(f"{stem}.html.j2", context)
    return RenderedEmail(subject, text, page)


def _autoescape(name: str | None) -> bool:
    return bool(name) and name.endswith((".html.j2", ".html", ".htm"))


def _environment(cls, loader) -> Environment:
    return cls(loader=loader, autoescape=_autoescape, trim_blocks=True, lstrip_blocks=True,
               keep_trailing_newline=True)


@functools.cache
def builtin_sources() -> dict[str, str]:
    """The shipped templates, read through importlib.resources (editable or from a wheel)."""
    root = importlib.resources.files("watcher.templates")
    return {entry.name: entry.read_text(encoding="utf-8") for entry in root.iterdir()
            if entry.name.endswith(_TEMPLATE_SUFFIX)}


class Templates:
    """The built-in templates, overridden file by file by `[alerts] templates_dir` if set.

    User templates run in a `SandboxedEnvironment` and may extend a built-in one as
    `builtin/NAME`. A user template that fails at render time is logged and the built-in
    one is used instead: a template mistake must never stop a poll from recording.
    """

    def __init__(self, templates_dir: str | None = None):
        builtin = DictLoader(builtin_sources())
        self._builtin = _environment(Environment, builtin)
        self._user: Environment | None = None
        if templates_dir:
            self._user = _environment(SandboxedEnvironment, ChoiceLoader([
                FileSystemLoader(_existing_dir(templates_dir)), builtin, PrefixLoader({"builtin": builtin})]))
            _compile_all(self._user, Path(templates_dir))

    def render(self, name: str, context: dict[str, Any]) -> str:
        if self._user is not None:
            try:
                return self._user.get_template(name).render(context)
            except Exception as exc:  # a user's template may fail in any way; the built-in one will not
                log.warning("template %s failed (%s: %s); using the built-in one", name, type(exc).__name__, exc)
        return self._builtin.get_template(name).render(context)


def _existing_dir(path: str) -> str:
    if not Path(path).is_dir():
        raise ConfigError(f"alerts.templates_dir: {path} is not a directory")
    return path


def _compile_all(environment: Environment, root: Path) -> None:
    """Syntax errors in user templates are config errors, found before any poll."""
    for path in sorted(root.glob(f"*{_TEMPLATE_SUFFIX}")):
        try:
            environment.get_template(path.name)
        except TemplateSyntaxError as exc:
            raise ConfigError(f"alerts.templates_dir: {path.name}: line {exc.lineno}: {exc.message}") from None


@functools.cache
def default_templates() -> Templates:
    return Templates(None)
