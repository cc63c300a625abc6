"""The change list: paths, ops and line diffs that follow the edit, not the field."""

import random

from watcher.diff import compare


def test_changed_scalar_has_old_and_new():
    [change] = compare({"model": "gpt-4.1-mini"}, {"model": "gpt-4.1"})
    assert (change.path, change.op, change.old, change.new) == ("model", "changed", "gpt-4.1-mini", "gpt-4.1")


def test_added_and_removed_keys():
    changes = compare({"metadata": {"a": "1"}}, {"metadata": {"b": "2"}})
    assert [(c.path, c.op) for c in changes] == [("metadata.a", "removed"), ("metadata.b", "added")]


def test_nested_tool_change_has_an_indexed_path():
    old = {"tools": [{"type": "code_interpreter"}, {"type": "function", "function": {"name": "refund", "strict": False}}]}
    new = {"tools": [{"type": "code_interpreter"}, {"type": "function", "function": {"name": "refund", "strict": True}}]}
    [change] = compare(old, new)
    assert change.path == "tools[1].function.strict"


def test_added_tool_is_reported_at_its_index():
    changes = compare({"tools": [{"type": "a"}]}, {"tools": [{"type": "a"}, {"type": "b"}]})
    assert [(c.path, c.op, c.new) for c in changes] == [("tools[1]", "added", {"type": "b"})]


def test_identical_bodies_have_no_changes():
    assert compare({"a": [1, {"b": "c"}]}, {"a": [1, {"b": "c"}]}) == []


def test_long_text_gets_a_unified_line_diff():
    old = "\n".join(f"rule {i}" for i in range(50))
    new = old.replace("rule 25", "rule 25 (changed)")
    [change] = compare({"instructions": old}, {"instructions": new})
    assert change.path == "instructions" and change.op == "changed"
    assert "-rule 25" in change.text_diff and "+rule 25 (changed)" in change.text_diff
    assert change.old == old and change.new == new


def _huge_instructions(edited_share: float):
    rng = random.Random(7)
    lines = [f"{i}: " + " ".join(rng.choice(["refund", "policy", "customer", "escalate"]) for _ in range(8))
             for i in range(5000)]
    old = "\n".join(lines)
    for i in rng.sample(range(len(lines)), int(len(lines) * edited_share)):
        lines[i] += " (edited)"
    return old, "\n".join(lines)


def test_huge_text_diff_is_proportional_to_the_edit_not_the_field():
    old, new = _huge_instructions(0.02)
    assert len(old) > 250_000
    [change] = compare({"instructions": old}, {"instructions": new})
    edited = sum(1 for line in change.text_diff if line.startswith("+"))
    assert edited == 100
    # each edit carries at most 3+3 lines of context and a hunk header: far below the 5000 lines
    assert len(change.text_diff) <= 100 * 9
