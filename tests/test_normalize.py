"""Canonical snapshots: the same content always hashes the same, ignore rules apply first."""

import pytest

from watcher.compare.normalize import normalize
from watcher.kinds.paths import format_path, parse_path

ASSISTANT = {
    "id": "asst_1",
    "object": "assistant",
    "created_at": 1_750_000_000,
    "name": "Billing Bot",
    "model": "gpt-4.1",
    "instructions": "Be kind.",
    "tools": [{"type": "function", "function": {"name": "refund", "parameters": {"type": "object"}}},
              {"type": "file_search", "file_search": {"ranking_options": {"ranker": "auto"}}}],
    "metadata": {"team": "billing", "hwm": "41"},
}


def test_canonical_json_has_sorted_keys_and_no_whitespace():
    snap = normalize({"model": "m", "id": "a", "name": "x"})
    assert snap.canonical == '{"id":"a","model":"m","name":"x"}'


def test_key_order_does_not_change_the_hash():
    reordered = dict(reversed(list(ASSISTANT.items())))
    assert normalize(reordered).content_hash == normalize(ASSISTANT).content_hash


def test_hash_is_sha256_of_the_canonical_json():
    import hashlib

    snap = normalize(ASSISTANT)
    assert snap.content_hash == hashlib.sha256(snap.canonical.encode()).hexdigest()


def test_any_content_change_changes_the_hash():
    assert normalize({**ASSISTANT, "instructions": "Be kind!"}).content_hash != normalize(ASSISTANT).content_hash


def test_milliseconds_timestamps_become_seconds():
    assert normalize({**ASSISTANT, "created_at": 1_750_000_000_123}).content_hash == normalize(ASSISTANT).content_hash


@pytest.mark.parametrize("empty", [None, [], {}])
def test_null_and_empty_values_are_the_same_content(empty):
    with_empty = {**ASSISTANT, "tools": empty, "metadata": empty, "description": empty}
    without = {k: v for k, v in ASSISTANT.items() if k not in ("tools", "metadata")}
    assert normalize(with_empty).content_hash == normalize(without).content_hash


def test_updated_at_is_kept_beside_the_body_not_in_it():
    snap = normalize({**ASSISTANT, "updated_at": 1_750_000_500})
    assert snap.remote_updated_at == 1_750_000_500
    assert "updated_at" not in snap.body
    assert snap.content_hash == normalize(ASSISTANT).content_hash


def test_ignore_rule_removes_one_key():
    snap = normalize(ASSISTANT, ["metadata.hwm"])
    assert snap.body["metadata"] == {"team": "billing"}
    assert snap.content_hash == normalize({**ASSISTANT, "metadata": {"team": "billing", "hwm": "42"}}, ["metadata.hwm"]).content_hash


def test_ignore_rule_star_matches_any_key():
    snap = normalize(ASSISTANT, ["metadata.*"])
    assert "metadata" not in snap.body


def test_ignore_rule_star_matches_any_index():
    snap = normalize(ASSISTANT, ["tools[*].file_search.ranking_options"])
    assert snap.body["tools"][1] == {"type": "file_search"}
    assert snap.body["tools"][0]["function"]["name"] == "refund"


def test_ignore_rule_on_a_missing_path_is_harmless():
    assert normalize(ASSISTANT, ["reasoning.effort", "tools[9].x"]).content_hash == normalize(ASSISTANT).content_hash


def test_an_object_without_an_id_is_refused():
    with pytest.raises(ValueError):
        normalize({"name": "no id"})


@pytest.mark.parametrize("path, parts", [
    ("instructions", ("instructions",)),
    ("metadata.hwm", ("metadata", "hwm")),
    ("tools[2].function.description", ("tools", 2, "function", "description")),
    ("tools[*].file_search", ("tools", "*", "file_search")),
    ("metadata.*", ("metadata", "*")),
    ('metadata["app.version"]', ("metadata", "app.version")),
])
def test_paths_parse_and_format_back(path, parts):
    assert parse_path(path) == parts
    if "*" not in parts:  # a wildcard reads the same as [*] or .*, so it has no one spelling
        assert format_path(parts) == path


@pytest.mark.parametrize("bad", ["", ".x", "tools[", "tools[x]", "a..b", "a."])
def test_bad_paths_are_refused(bad):
    with pytest.raises(ValueError):
        parse_path(bad)
