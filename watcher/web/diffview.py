"""Side by side rows from the diff lines the emails show (`watcher.compare.sections.DiffLine`). No I/O.

A run of removed lines is set beside the run of added lines that follows it, line by line, so
the word highlights `render` computed for each pair land on the same row. Hunk headers
(`@@ -a,b +c,d @@`) give line numbers; structural lists (`- path = value`) have none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from watcher.compare.sections import DiffLine

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class Cell:
    """One side of a row: the line (without its +/- sign) and its number in that version."""

    kind: str  # add | del | ctx
    number: int | None
    segments: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class Row:
    """A hunk header across both sides, or a left and a right cell (either may be empty)."""

    hunk: str | None = None
    left: Cell | None = None
    right: Cell | None = None


def content(line: DiffLine) -> tuple[tuple[str, bool], ...]:
    """The line's text without its leading sign, as (text, changed) segments."""
    if line.segments:
        segments = list(line.segments)
        first_text, first_changed = segments[0]
        segments[0] = (first_text[1:], first_changed)
        return tuple(s for s in segments if s[0])
    return ((line.text[1:], False),) if len(line.text) > 1 else ()


def side_by_side(lines: list[DiffLine]) -> list[Row]:
    """The rows of a two-column diff of `lines`."""
    rows: list[Row] = []
    old_no = new_no = None
    n = 0
    while n < len(lines):
        line = lines[n]
        if line.kind == "hunk":
            match = _HUNK.match(line.text)
            old_no, new_no = (int(match.group(1)), int(match.group(2))) if match else (None, None)
            rows.append(Row(hunk=line.text))
            n += 1
            continue
        if line.kind == "ctx":
            rows.append(Row(left=Cell("ctx", old_no, content(line)), right=Cell("ctx", new_no, content(line))))
            old_no, new_no = _next(old_no), _next(new_no)
            n += 1
            continue
        removed = _run(lines, n, "del")
        added = _run(lines, n + len(removed), "add")
        for i in range(max(len(removed), len(added))):
            left = right = None
            if i < len(removed):
                left, old_no = Cell("del", old_no, content(removed[i])), _next(old_no)
            if i < len(added):
                right, new_no = Cell("add", new_no, content(added[i])), _next(new_no)
            rows.append(Row(left=left, right=right))
        n += len(removed) + len(added)
    return rows


def _run(lines: list[DiffLine], start: int, kind: str) -> list[DiffLine]:
    end = start
    while end < len(lines) and lines[end].kind == kind:
        end += 1
    return lines[start:end]


def _next(number: int | None) -> int | None:
    return None if number is None else number + 1
