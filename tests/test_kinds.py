"""The kind registry: one place that knows each kind, and the severity it gives a change."""

import pytest

from watcher.kinds import registry
from watcher.kinds.base import PROJECT


@pytest.mark.parametrize(("kind", "change", "paths", "level"), [
    ("assistants", "modified", ["name"], "low"),
    ("assistants", "modified", ["description", "metadata.team"], "low"),
    ("assistants", "modified", ["metadata.team", "model"], "high"),
    ("assistants", "modified", ["instructions"], "high"),
    ("assistants", "modified", ["tools[2].function.description"], "high"),
    ("assistants", "modified", ["tool_resources.file_search.vector_store_ids[0]"], "high"),
    ("assistants", "modified", ["response_format.json_schema.schema.properties.total"], "high"),
    ("assistants", "modified", ["temperature"], "low"),  # sampling, as the README documents
    ("agents", "modified", ["reasoning.effort"], "high"),
    ("agents", "modified", ["text.verbosity"], "high"),
    ("agents", "modified", ["metadata.owner"], "low"),
    ("skills", "modified", ["default_version"], "high"),
    ("skills", "modified", ["description"], "low"),
    ("webhook_endpoints", "modified", ["url"], "high"),
    ("webhook_endpoints", "modified", ["event_types[1]"], "high"),
    ("webhook_endpoints", "modified", ["name"], "low"),
    ("assistants", "created", ["model"], "low"),
    ("assistants", "deleted", [], "high"),
    ("agents", "reappeared", [], "high"),
])
def test_severity_comes_from_the_kind(kind, change, paths, level):
    assert registry.get(kind).severity(change, paths) == level


def test_a_change_above_a_high_path_is_high():
    assert registry.get("assistants").is_high_path("tool_resources")
    assert registry.get("webhook_endpoints").is_high_path("event_types")


def test_every_project_key_kind_is_registered_with_a_label_and_a_path():
    names = [k.name for k in registry.all_kinds() if k.key == PROJECT]
    assert names == ["assistants", "agents", "skills", "skill_versions", "webhook_endpoints", "vector_stores",
                     "agent_environments", "agent_automations", "vaults"]
    assert all(registry.get(n).label and registry.get(n).path.startswith("/") for n in names)


def test_parents_are_registered_before_the_kinds_listed_under_them():
    order = registry.names()
    for kind in registry.all_kinds():
        if kind.parent:
            assert order.index(kind.parent) < order.index(kind.name)


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="known kinds: assistants, agents"):
        registry.get("assistant")


def test_a_kind_listed_under_a_parent_is_identified_under_it():
    assert registry.get("skill_versions").object_id({"id": "skillver_1", "version": "2"}, "skill_9") == "skill_9/2"
    assert registry.get("agents").object_id({"id": "agent_1"}, None) == "agent_1"
    assert registry.get("agents").object_id({"id": ""}, None) is None


def test_docs_kinds_md_is_written_from_the_registry():
    from pathlib import Path

    from watcher.kinds.reference import markdown

    documented = (Path(__file__).parent.parent / "docs" / "kinds.md").read_text()
    assert documented == markdown(), "run: python -m watcher.kinds.reference > docs/kinds.md"
