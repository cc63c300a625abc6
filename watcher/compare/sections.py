"""The changes of an event laid out for people: bounded diff lines with changed words marked. No I/O.

Every channel and the web pages show a change the same way: a before → after pair for a scalar,
unified diff lines for text (the words that differ marked), a leaf list for structure. What one
alert may carry is bounded by a byte `Budget` (counted as escaped HTML, the costliest form), so a
256k-character edit stays readable and an email stays small.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from watcher.compare.diff import Change, is_long_text
from watcher.display import printable
from watcher.kinds.paths import format_path, parse_path

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


def clip(text: str, limit: int = LINE_LIMIT) -> str:
    text = printable(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def as_json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


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
    before = "(absent)" if change.op == "added" else clip(as_json_text(change.old))
    after = "(absent)" if change.op == "removed" else clip(as_json_text(change.new))
    if budget.admit(before + after):
        section.before, section.after = before, after
    else:
        section.style, section.cut = "lines", 1


def _structure_lines(change: Change) -> list[str]:
    """A structural list: every leaf of the old value as `-`, of the new one as `+`."""
    base = path_parts(change.path)
    lines: list[str] = []
    if change.op != "added":
        lines += [f"- {format_path(path)} = {as_json_text(value)}" for path, value in _leaves(change.old, base)]
    if change.op != "removed":
        lines += [f"+ {format_path(path)} = {as_json_text(value)}" for path, value in _leaves(change.new, base)]
    return lines


def path_parts(path: str) -> tuple:
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
    return clip(f"{value['type']} {name}" if isinstance(name, str) else value["type"], 120)


def _diff_kind(line: str) -> str:
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "ctx")


def _take(lines: list[str], budget: Budget) -> tuple[list[DiffLine], int]:
    """As many of `lines` as the budget allows, and how many were left out."""
    kept: list[DiffLine] = []
    for n, line in enumerate(lines):
        text = clip(line)
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
            DiffLine(new.kind, new.text, new_segments, clip(words) if len(new.text) > 80 else None))


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
    return [(i1, i2, j1, j2) for i1, i2, j1, j2 in spans]


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
        return f"added “{clip(new, 120)}”"
    if not new:
        return f"removed “{clip(old, 120)}”"
    return f"“{clip(old, 120)}” → “{clip(new, 120)}”"
