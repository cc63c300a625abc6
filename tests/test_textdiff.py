"""The line diff: difflib's unified diff while it is cheap, linear work past that, never a stall or a lie."""

import difflib
import random
import re
from collections import Counter

from watcher.compare.textdiff import WORK_BUDGET, unified_diff

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$")


def difflib_lines(old: str, new: str) -> list[str]:
    """What the watcher showed before the budget: difflib's unified diff without file headers."""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), "a/", "b/", lineterm="", n=3)
    return [line for line in lines if not line.startswith(("--- ", "+++ "))]


def assert_hunks_agree_with_both_texts(old: str, new: str, lines: list[str]) -> None:
    """Each hunk's context and removed lines are the old text at its range, context and added the new."""
    a, b = old.splitlines(), new.splitlines()
    hunks = [line for line in lines if _HUNK.match(line)]
    assert hunks, lines
    at = None
    for line in lines:
        match = _HUNK.match(line)
        if match:
            start_a, len_a, start_b, len_b = (int(g) if g is not None else 1 for g in match.groups())
            at = [start_a - 1 if len_a else start_a, start_b - 1 if len_b else start_b]
            continue
        if at is None:
            continue  # the summary line of a cut diff
        sign, text = line[:1], line[1:]
        if sign in " -":
            assert a[at[0]] == text, (line, at)
            at[0] += 1
        if sign in " +":
            assert b[at[1]] == text, (line, at)
            at[1] += 1


def short_lines(chars: int) -> list[str]:
    """Numbered short lines: every line unique, as in a long list of rules."""
    lines, size = [], 0
    while size < chars:
        lines.append(f"line {len(lines)}")
        size += len(lines[-1]) + 1
    return lines


def every_other_line_edited(lines: list[str]) -> str:
    return "\n".join(line + " (edited)" if n % 2 else line for n, line in enumerate(lines))


def test_a_small_edit_gives_exactly_difflibs_unified_diff():
    old = "\n".join(f"rule {n}: be brief" for n in range(40))
    new = old.replace("rule 7: be brief", "rule 7: be very brief").replace("rule 30: be brief\n", "")
    assert unified_diff(old, new) == difflib_lines(old, new)


def test_hunk_headers_match_difflib_for_insertions_at_the_edges_and_empty_texts():
    for old, new in [("", "a\nb"), ("a\nb", ""), ("a", "x\na"), ("a", "a\nx"), ("x\n" * 9 + "a", "a")]:
        assert unified_diff(old, new) == difflib_lines(old, new), (old, new)


def test_within_budget_random_edits_give_exactly_difflibs_diff():
    rng = random.Random(11)
    for _ in range(300):
        old = [rng.choice("abcdefgh") for _ in range(rng.randint(0, 40))]
        new = list(old)
        for _ in range(rng.randint(0, 8)):
            at = rng.randint(0, len(new))
            if rng.random() < 0.5:
                new.insert(at, rng.choice("abcxyz"))
            else:
                del new[at:at + 2]
        old_text, new_text = "\n".join(old), "\n".join(new)
        for context in (0, 1, 3):
            expected = [line for line in difflib.unified_diff(old, new, lineterm="", n=context)
                        if not line.startswith(("--- ", "+++ "))]
            assert unified_diff(old_text, new_text, context=context) == expected, (old, new, context)


def test_past_the_difflib_budget_unique_lines_still_give_difflibs_diff():
    rng = random.Random(3)
    lines = [f"{n}: " + " ".join(rng.choice(["refund", "policy", "customer"]) for _ in range(6)) for n in range(5000)]
    old = "\n".join(lines)
    for n in rng.sample(range(len(lines)), 100):
        lines[n] += " (edited)"
    for n in sorted(rng.sample(range(len(lines)), 20), reverse=True):
        del lines[n]
    lines[2500:2500] = ["a new paragraph", "of two lines"]
    new = "\n".join(lines)
    assert 5000 * 5000 > WORK_BUDGET
    assert unified_diff(old, new) == difflib_lines(old, new)


def test_every_other_line_edited_is_aligned_exactly_in_linear_work():
    lines = short_lines(230_000)
    old, new = "\n".join(lines), every_other_line_edited(lines)
    # a budget of a few passes over the lines: difflib alone would need ~len(lines)² steps
    diff = unified_diff(old, new, budget=8 * len(lines))
    assert not diff[0].startswith("@@ not aligned")
    assert sum(1 for line in diff if line.startswith("+")) == len(lines) // 2
    assert sum(1 for line in diff if line.startswith("-")) == len(lines) // 2
    assert_hunks_agree_with_both_texts(old, new, diff)


def scattered_repeats(rng: random.Random, count: int = 6000) -> tuple[str, str]:
    """Lines drawn from a small vocabulary (none unique), a third of them replaced: no anchor to align on."""
    vocabulary = [f"step {n}" for n in range(300)]
    lines = [rng.choice(vocabulary) for _ in range(count)]
    edited = [rng.choice(vocabulary) + " (edited)" if rng.random() < 0.33 else line for line in lines]
    return "\n".join(lines), "\n".join(edited)


def test_past_its_budget_the_diff_says_how_many_lines_changed_and_shows_true_first_hunks():
    old, new = scattered_repeats(random.Random(5))
    diff = unified_diff(old, new, budget=200_000)
    a, b = Counter(old.splitlines()), Counter(new.splitlines())
    removed, added = sum((a - b).values()), sum((b - a).values())
    assert diff[0] == (f"@@ not aligned in full: {removed:,} of 6,000 lines removed, {added:,} added; "
                       f"the first hunks follow @@")
    assert len(diff) > 10
    assert_hunks_agree_with_both_texts(old, new, diff)
