"""The change list: paths, ops and line diffs that follow the edit, not the field."""

import random

from watcher.compare import diff
from watcher.compare.diff import MAX_DEPTH, _mask, compare, tree_digest
from watcher.compare.normalize import canonical_json, content_hash


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


# --- deep structures: any depth compares, and a change deep down is still reported -------------------


def nested(depth: int, leaf, *, key: str = "k"):
    value = leaf
    for _ in range(depth):
        value = {key: value}
    return value


def nested_lists(depth: int, leaf):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_a_change_500_levels_deep_is_reported_at_the_depth_limit_with_both_subtrees():
    old, new = {"metadata": nested(500, "a")}, {"metadata": nested(500, "b")}
    [change] = compare(old, new)
    assert change.path == "metadata" + ".k" * (MAX_DEPTH - 1)
    assert change.op == "changed"
    assert (change.old, change.new) == (nested(501 - MAX_DEPTH, "a"), nested(501 - MAX_DEPTH, "b"))


def test_lists_nested_900_deep_compare_too():
    old, new = {"tools": nested_lists(900, "a")}, {"tools": nested_lists(900, "b")}
    [change] = compare(old, new)
    assert change.path == "tools" + "[0]" * (MAX_DEPTH - 1) and change.op == "changed"


def test_equal_deep_subtrees_have_no_changes_and_a_shallow_change_beside_them_keeps_its_path():
    deep = nested(3000, "same")
    changes = compare({"metadata": deep, "model": "a"}, {"metadata": nested(3000, "same"), "model": "b"})
    assert [(c.path, c.op) for c in changes] == [("model", "changed")]


def test_a_deep_subtree_added_is_reported_whole():
    [change] = compare({"model": "a"}, {"model": "a", "metadata": nested(700, 1)})
    assert (change.path, change.op, change.new) == ("metadata", "added", nested(700, 1))


def test_a_string_that_looks_like_a_fingerprint_cannot_hide_a_change():
    text = "rule\n" * 100
    forged = _mask({"instructions": text}, {})["instructions"]  # what deepdiff is shown in place of the text
    [change] = compare({"instructions": text}, {"instructions": forged})
    assert (change.op, change.old, change.new) == ("changed", text, forged)


def test_the_tree_digest_is_the_hash_of_the_canonical_json():
    value = {"b": [1, 2.5, None, True, {"é": "x\n\"y"}], "a": {}, "c": [], "d": "z"}
    assert tree_digest(value) == content_hash(canonical_json(value))


# --- the walk that spares deepdiff's import agrees with deepdiff -----------------------------------

def _random_value(rng, depth):
    roll = rng.random()
    if depth < 4 and roll < 0.3:
        return {rng.choice(["a", "b", "c", "__private", "model", "tools"]): _random_value(rng, depth + 1)
                for _ in range(rng.randint(0, 4))}
    if depth < 4 and roll < 0.4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.choice([0, 1, 1.0, 2.5, True, False, None, "", "x", "gpt-4o", "long\ntext", 7])


def _mutated(rng, value):
    if isinstance(value, dict):
        copy = {k: _mutated(rng, v) if rng.random() < 0.5 else v for k, v in value.items()}
        if rng.random() < 0.3:
            copy[rng.choice(["a", "d", "__private", "e"])] = _random_value(rng, 3)
        if copy and rng.random() < 0.2:
            copy.pop(rng.choice(sorted(copy)))
        return copy
    if isinstance(value, list) and rng.random() < 0.7:
        return list(value)  # lists mostly unchanged, so the walk answers most pairs itself
    return _random_value(rng, 3) if rng.random() < 0.5 else value


def _as_set(found):
    return {(diff.format_path(path), op, repr(old) if op != "added" else None, repr(new) if op != "removed" else None)
            for path, op, old, new in found}


def test_changes_found_without_deepdiff_are_the_ones_deepdiff_finds():
    rng = random.Random(20261130)
    answered = 0
    for _ in range(3000):
        old = {"model": "gpt-4o", "settings": _random_value(rng, 0)}
        new = _mutated(rng, old)
        walked = diff._dict_changes(old, new)
        if walked is None:
            continue  # a list differs: deepdiff decides
        answered += 1
        assert _as_set(walked) == _as_set(diff._deepdiff_changes(old, new)), (old, new)
    assert answered > 1000


def test_a_differing_list_is_left_to_deepdiff():
    assert diff._dict_changes({"tools": [1, 2]}, {"tools": [2]}) is None
    assert diff._dict_changes({"tools": [1]}, {"tools": [1.0]}) is None
    assert diff.compare({"tools": [1, 2]}, {"tools": [2]}) == [diff.Change("tools[0]", "removed", 1, None)]


def test_a_key_that_starts_with_two_underscores_is_compared_like_any_other():
    [change] = compare({"metadata": {"__owner": "alice"}}, {"metadata": {"__owner": "mallory"}})
    assert (change.path, change.op, change.old, change.new) == ("metadata.__owner", "changed", "alice", "mallory")
    with_a_list = compare({"metadata": {"__owner": "alice"}, "tools": [1]}, {"metadata": {"__owner": "bob"}, "tools": [2]})
    assert sorted(c.path for c in with_a_list) == ["metadata.__owner", "tools[0]"]  # deepdiff's path, too
