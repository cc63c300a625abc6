"""A unified line diff whose work is bounded, however the text was edited. No I/O.

difflib matches lines in time that grows with the square of the lines between edits:
230k characters of short lines with every other line edited took 52 s. So:

- while difflib's matching fits in `WORK_BUDGET` steps (counted as it goes) and the part
  of the texts that differs is small, the diff is difflib's, exactly as it always was;
- past that, lines that occur once in each text anchor the alignment (the longest run of
  them in the same order, as in patience diff), and only the stretches between anchors
  are matched by difflib, charged to a second budget of the same size;
- on the stretch that exhausts it, a window at its start is aligned and the diff stops
  there: a first line says how many lines changed in all (counted, not aligned) and the
  hunks that follow are the first ones, each true.
"""

from __future__ import annotations

import bisect
import difflib
import itertools
from collections import Counter

# Steps of matching work one diff may spend: a step is 0.1 to 0.3 µs (bench/render.py prints the worst cases).
WORK_BUDGET = 1_000_000
# Lines of each side aligned at the start of the stretch that exhausts the budget.
_WINDOW = 400

Block = tuple[int, int, int]  # a[i:i+size] == b[j:j+size]
Opcode = tuple[str, int, int, int, int]


def unified_diff(old: str, new: str, *, context: int = 3, budget: int = WORK_BUDGET) -> list[str]:
    """The unified diff of two texts by line, without file headers, in bounded work.

    When the texts are too scattered with changes to align within `budget`, the first
    line is `@@ not aligned in full: … @@` and only the first hunks follow.
    """
    a, b = old.splitlines(), new.splitlines()
    alignment = _Alignment(a, b, budget)
    lines = _hunks(_opcodes(alignment.blocks, alignment.cut or (len(a), len(b))), a, b, context)
    if alignment.cut:
        lines.insert(0, _summary(a, b))
    return lines


def _summary(a: list[str], b: list[str]) -> str:
    """How many lines changed in all, counted as lines of one text missing from the other."""
    old, new = Counter(a), Counter(b)
    removed, added = sum((old - new).values()), sum((new - old).values())
    return (f"@@ not aligned in full: {removed:,} of {len(a):,} lines removed, {added:,} added; "
            f"the first hunks follow @@")


class _Alignment:
    """The matching blocks of `a` and `b`, in at most about twice `budget` steps of work.

    `cut` is None when everything is aligned, else the (i, j) past which nothing is.
    """

    def __init__(self, a: list[str], b: list[str], budget: int):
        self.a, self.b = a, b
        self.blocks: list[Block] = []
        self.cut: tuple[int, int] | None = None
        head = _common_head(a, b, 0, len(a), 0, len(b))
        tail = _common_tail(a, b, head, len(a), head, len(b))
        if (len(a) - head - tail) * (len(b) - head - tail) <= budget and self._match(0, len(a), 0, len(b), budget) >= 0:
            return  # difflib's own alignment of the whole texts, as the watcher always showed
        self.blocks, self.left = [], budget
        stretches = [(0, len(a), 0, len(b))]
        while stretches and self.cut is None:
            stretches.extend(reversed(self._align(*stretches.pop())))

    def _align(self, alo: int, ahi: int, blo: int, bhi: int) -> list[tuple[int, int, int, int]]:
        """Align one stretch; returns the smaller stretches left to align, in document order."""
        head = _common_head(self.a, self.b, alo, ahi, blo, bhi)
        tail = _common_tail(self.a, self.b, alo + head, ahi, blo + head, bhi)
        self._keep(alo, blo, head)
        self._keep(ahi - tail, bhi - tail, tail)
        alo, ahi, blo, bhi = alo + head, ahi - tail, blo + head, bhi - tail
        self.left -= head + tail
        if alo == ahi or blo == bhi or (ahi - alo == 1 and bhi - blo == 1):
            return []  # nothing left on one side, or one line replaced by another
        self.left -= (ahi - alo) + (bhi - blo)
        anchors = _unique_anchors(self.a, self.b, alo, ahi, blo, bhi) if self.left > 0 else []
        if anchors:
            for i, j in anchors:
                self._keep(i, j, 1)
            edges = [(alo - 1, blo - 1), *anchors, (ahi, bhi)]
            return [(i + 1, i2, j + 1, j2) for (i, j), (i2, j2) in zip(edges, edges[1:])]
        spent = self._match(alo, ahi, blo, bhi, self.left) if self.left > 0 else -1
        if spent >= 0:
            self.left -= spent
            return []
        # Out of budget: align a window at the stretch's start, and stop the diff after it.
        before = len(self.blocks)
        self._match(alo, min(ahi, alo + _WINDOW), blo, min(bhi, blo + _WINDOW), _WINDOW * _WINDOW)
        last = max(self.blocks[before:], default=None)
        self.cut = (last[0] + last[2], last[1] + last[2]) if last else (alo, blo)
        return []

    def _match(self, alo: int, ahi: int, blo: int, bhi: int, budget: int) -> int:
        """Match a stretch with difflib within `budget`; returns the work spent, or -1 when it ran out."""
        matcher = _BoundedMatcher(self.a[alo:ahi], self.b[blo:bhi], budget)
        try:
            blocks = matcher.get_matching_blocks()
        except _OutOfBudget:
            return -1
        for i, j, size in blocks:
            self._keep(alo + i, blo + j, size)
        return matcher.spent

    def _keep(self, i: int, j: int, size: int) -> None:
        if size:
            self.blocks.append((i, j, size))


class _OutOfBudget(Exception):
    pass


class _BoundedMatcher(difflib.SequenceMatcher):
    """difflib's matcher, stopped once it has done `budget` steps of work.

    difflib finds matching blocks through `find_longest_match`, whose work is at most one
    step per line of `a` in range plus one per occurrence of that line in `b`: that bound
    is charged before each call, from prefix sums, so counting costs O(1) a call.
    """

    def __init__(self, a: list[str], b: list[str], budget: int):
        super().__init__(None, a, b)
        in_b = Counter(b)
        self.steps = [0, *itertools.accumulate(1 + in_b[line] for line in a)]
        self.budget, self.spent = budget, 0

    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):
        ahi = len(self.a) if ahi is None else ahi
        self.spent += self.steps[ahi] - self.steps[alo]
        if self.spent > self.budget:
            raise _OutOfBudget
        return super().find_longest_match(alo, ahi, blo, bhi)


def _common_head(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> int:
    n = 0
    while alo + n < ahi and blo + n < bhi and a[alo + n] == b[blo + n]:
        n += 1
    return n


def _common_tail(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> int:
    n = 0
    while ahi - n > alo and bhi - n > blo and a[ahi - n - 1] == b[bhi - n - 1]:
        n += 1
    return n


def _unique_anchors(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> list[tuple[int, int]]:
    """The longest run, in order on both sides, of lines that occur exactly once in each stretch."""
    count_a, count_b = Counter(a[alo:ahi]), Counter(b[blo:bhi])
    where_a = {a[i]: i for i in range(alo, ahi) if count_a[a[i]] == 1}
    pairs = [(where_a[b[j]], j) for j in range(blo, bhi) if count_b[b[j]] == 1 and b[j] in where_a]
    return _longest_increasing(pairs)


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest subsequence of `pairs` (increasing in j) whose i increase too, in O(n log n)."""
    tops: list[int] = []  # tops[k]: the smallest i ending an increasing run of length k + 1
    ends: list[int] = []  # ends[k]: the index in `pairs` of that run's last pair
    before = [-1] * len(pairs)
    for index, (i, _j) in enumerate(pairs):
        k = bisect.bisect_left(tops, i)
        before[index] = ends[k - 1] if k else -1
        if k == len(tops):
            tops.append(i)
            ends.append(index)
        else:
            tops[k], ends[k] = i, index
    run, index = [], ends[-1] if ends else -1
    while index >= 0:
        run.append(pairs[index])
        index = before[index]
    return run[::-1]


def _opcodes(blocks: list[Block], end: tuple[int, int]) -> list[Opcode]:
    """difflib-style opcodes from matching blocks, up to `end` (the blocks past it are dropped)."""
    merged: list[list[int]] = []
    for i, j, size in sorted(block for block in blocks if block[0] < end[0]):
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            merged[-1][2] += size
        else:
            merged.append([i, j, size])
    codes: list[Opcode] = []
    i = j = 0
    for bi, bj, size in [*merged, [end[0], end[1], 0]]:
        tag = "replace" if i < bi and j < bj else "delete" if i < bi else "insert" if j < bj else None
        if tag:
            codes.append((tag, i, bi, j, bj))
        if size:
            codes.append(("equal", bi, bi + size, bj, bj + size))
        i, j = bi + size, bj + size
    return codes


def _hunks(codes: list[Opcode], a: list[str], b: list[str], context: int) -> list[str]:
    """Unified hunks, in difflib's format: a header, then context, removed and added lines."""
    lines: list[str] = []
    for group in _groups(codes, context):
        first, last = group[0], group[-1]
        lines.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [" " + line for line in a[i1:i2]]
                continue
            lines += ["-" + line for line in a[i1:i2]]
            lines += ["+" + line for line in b[j1:j2]]
    return lines


def _groups(codes: list[Opcode], context: int) -> list[list[Opcode]]:
    """The changes with `context` equal lines around each; changes closer than twice that share a hunk."""
    codes = list(codes)
    if codes and codes[0][0] == "equal":
        _tag, i1, i2, j1, j2 = codes[0]
        codes[0] = ("equal", max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    if codes and codes[-1][0] == "equal":
        _tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = ("equal", i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    groups: list[list[Opcode]] = []
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append(("equal", i1, i1 + context, j1, j1 + context))
            groups.append(group)
            group = [("equal", i2 - context, i2, j2 - context, j2)]
            continue
        group.append((tag, i1, i2, j1, j2))
    groups.append(group)
    return [g for g in groups if any(code[0] != "equal" for code in g)]


def _range(start: int, stop: int) -> str:
    """A hunk header's range: 1-based start, and the length unless it is 1."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"
