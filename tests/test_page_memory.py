"""A long-lived process does not read again the pages that come back byte for byte, and misses nothing for it."""

import json
import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.compare.normalize import rules_for
from watcher.kinds import registry
from watcher.poll.run import poll_target
from watcher.record.models import Event, Resource
from watcher.source.page_memory import PageMemory, PageSummary


def _page(*objects, has_more=False) -> bytes:
    return json.dumps({"object": "list", "data": list(objects), "has_more": has_more}).encode()


def _assistant(object_id: str, instructions: str) -> dict:
    return {"id": object_id, "object": "assistant", "created_at": 1700000000, "name": object_id,
            "model": "gpt-4o", "instructions": instructions, "tools": []}


@pytest.fixture
def served(scripted_api, make_target):
    """A server whose one page of assistants is whatever `served.page` holds; returns (holder, target)."""

    class Holder:
        page = _page(_assistant("asst_1", "Be kind."), _assistant("asst_2", "Be brief."))

    url = scripted_api(lambda _path: (200, Holder.page))
    return Holder, make_target(url, kinds=["assistants"])


def _changes(engine) -> list[tuple[str, str, int | None]]:
    with Session(engine) as session:
        rows = session.execute(select(Event.change, Resource.remote_id, Event.to_version)
                               .join(Resource, Event.resource_id == Resource.id).order_by(Event.id))
        return [tuple(row) for row in rows]


def _unread_pages(caplog) -> list[str]:
    return [r.getMessage().rsplit("(", 1)[-1] for r in caplog.records
            if r.name == "watcher.poll" and "not read again" in r.getMessage()]


def test_an_unchanged_page_is_not_read_again_by_a_process_that_remembers(engine, served, caplog):
    _holder, target = served
    memory = PageMemory()
    poll_target(engine, target, memory=memory)
    with caplog.at_level(logging.DEBUG, logger="watcher.poll"):
        [outcome] = poll_target(engine, target, memory=memory)
    assert (outcome.status, outcome.objects, outcome.events) == ("complete", 2, [])
    assert _unread_pages(caplog) == ["1 page not read again)"]


def test_a_page_with_other_bytes_is_read_and_its_change_recorded(engine, served):
    holder, target = served
    memory = PageMemory()
    poll_target(engine, target, memory=memory)
    holder.page = _page(_assistant("asst_1", "Be rude."), _assistant("asst_2", "Be brief."))
    poll_target(engine, target, memory=memory)
    assert _changes(engine) == [("modified", "asst_1", 2)]


def test_a_page_back_to_remembered_bytes_is_read_when_another_process_recorded_a_change_meanwhile(engine, served):
    holder, target = served
    memory = PageMemory()
    original = holder.page
    poll_target(engine, target, memory=memory)  # this process remembers the original page
    holder.page = _page(_assistant("asst_1", "Be rude."), _assistant("asst_2", "Be brief."))
    poll_target(engine, target)  # another process records the edit
    holder.page = original  # and the edit is undone: the bytes are the remembered ones
    poll_target(engine, target, memory=memory)
    assert _changes(engine) == [("modified", "asst_1", 2), ("modified", "asst_1", 3)]


def test_an_object_deleted_and_back_on_a_remembered_page_reappears(engine, served):
    holder, target = served
    memory = PageMemory()
    original = holder.page
    poll_target(engine, target, memory=memory)
    holder.page = _page(_assistant("asst_2", "Be brief."))
    poll_target(engine, target)  # another process sees asst_1 gone
    holder.page = original
    poll_target(engine, target, memory=memory)
    assert [change for change, _id, _v in _changes(engine)] == ["deleted", "reappeared"]


def test_what_is_remembered_lapses_when_the_rules_change():
    memory = PageMemory()
    rules = rules_for(registry.get("assistants"), secret_key=b"k" * 32)
    pages = {b"digest": PageSummary(("asst_1",), ("a",), ("hash",), False, None)}
    memory.keep("t", "assistants", rules, pages)
    assert memory.recall("t", "assistants", rules) == pages
    assert memory.recall("t", "assistants", rules_for(registry.get("assistants"),
        ignore=["model"], secret_key=b"k" * 32)) == {}
    assert memory.recall("t", "assistants", rules_for(registry.get("assistants"), secret_key=b"j" * 32)) == {}


def test_what_is_no_longer_polled_is_forgotten():
    memory = PageMemory()
    rules = rules_for(registry.get("assistants"))
    pages = {b"digest": PageSummary(("asst_1",), ("a",), ("hash",), False, None)}
    for target, kind in (("kept", "assistants"), ("kept", "agents"), ("gone", "assistants")):
        memory.keep(target, kind, rules, pages)
    memory.forget({("kept", "assistants")})
    assert [memory.recall(target, kind, rules) for target, kind in (
        ("kept", "assistants"), ("kept", "agents"), ("gone", "assistants"))] == [pages, {}, {}]


def test_a_new_version_under_a_remembered_skill_is_a_created_event(engine, sandbox, make_target):
    target = make_target(sandbox.url, key=sandbox.api_key, kinds=["skills", "skill_versions"])
    memory = PageMemory()
    poll_target(engine, target, memory=memory)
    skill = sandbox.objects("skills")[0]
    sandbox.add("skill_versions", parent=skill["id"], version="99", name=skill["name"])
    outcomes = {o.kind: o for o in poll_target(engine, target, memory=memory)}
    assert [(e.change, e.object_id) for e in outcomes["skill_versions"].events] == [
        ("created", f"{skill['id']}/99")]
    assert outcomes["skills"].events == []
