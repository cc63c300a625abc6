"""Remote content is hostile: a bad answer fails the poll loudly and never reads as deletions or a crash."""

import json
from datetime import timedelta

import pytest
from config_text import KEY_ENV, target_toml
from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.compare.normalize import MAX_DEPTH  # the record folds deep structure first; diff never sees deeper
from watcher.config.model import parse_config
from watcher.errors import RecordError
from watcher.poll.run import poll_target
from watcher.record import history_orm
from watcher.record.models import Event, Poll, Resource

KEY = "acme-live-4c1d9a7e2b6f48e0a3d5c7b9e1f2a4c6d8e0f1a3"


def target(url: str, monkeypatch, kinds: tuple[str, ...] = ("assistants",), key: str = KEY):
    monkeypatch.setenv(KEY_ENV, key)
    return parse_config(target_toml(url, kinds=list(kinds))).targets[0]


def listing(*objects, has_more=False) -> bytes:
    return json.dumps({"object": "list", "data": list(objects), "has_more": has_more}).encode()


def assistant(n: int, **fields) -> dict:
    return {"id": f"asst_{n}", "object": "assistant", "created_at": 1_700_000_000, "model": "gpt-4o",
            "name": f"Bot {n}", "tools": [], **fields}


def live_ids(engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.scalars(select(Resource.remote_id).where(Resource.deleted_at.is_(None))))


@pytest.mark.parametrize("second_answer", [
    b'{"error": {"message": "upstream overloaded"}}',  # an error body sent with 200
    listing(has_more=True),  # an empty page that says more follow
])
def test_an_answer_that_is_not_a_complete_listing_fails_and_deletes_nothing(scripted_api, monkeypatch, engine,
                                                                           second_answer):
    answers = iter([listing(assistant(1), assistant(2)), second_answer])
    url = scripted_api(lambda _path: (200, next(answers)))
    prod = target(url, monkeypatch)
    assert poll_target(engine, prod)[0].status == "complete"
    [outcome] = poll_target(engine, prod)
    assert outcome.status == "failed" and "page 1" in outcome.error
    assert live_ids(engine) == ["asst_1", "asst_2"]
    with Session(engine) as session:
        assert session.scalars(select(Event)).all() == []


def test_data_null_is_an_empty_listing_not_an_error(scripted_api, monkeypatch, engine):
    body = b'{"object": "list", "data": null, "has_more": false}'  # how some Go servers say "none"
    prod = target(scripted_api(lambda _path: (200, body)), monkeypatch)
    [outcome] = poll_target(engine, prod)
    assert (outcome.status, outcome.objects) == ("complete", 0)


def test_a_page_of_lists_nested_100000_deep_is_a_recorded_failure_and_the_other_kind_is_still_polled(
        scripted_api, monkeypatch, engine):
    def answer(path):
        if path.startswith("/v1/assistants"):
            return 200, b'{"object": "list", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        return 200, listing()

    prod = target(scripted_api(answer), monkeypatch, kinds=("assistants", "agents"))
    assistants, agents = poll_target(engine, prod)
    assert (assistants.status, agents.status) == ("failed", "complete")
    assert assistants.error.startswith("prod/assistants: page 1")
    with Session(engine) as session:
        assert [p.status for p in session.scalars(select(Poll).order_by(Poll.id))] == ["failed", "complete"]


@pytest.mark.parametrize("depth", [500, 900, 1_000, 1_100, 100_000])
def test_metadata_nested_to_any_depth_is_recorded_and_its_edits_reported(scripted_api, monkeypatch, engine, depth):
    leaf = {"value": "a"}

    def answer(_path):
        deep = b'{"k":' * depth + json.dumps(leaf["value"]).encode() + b"}" * depth
        page = listing(assistant(1), assistant(2))
        return 200, page.replace(b'"name": "Bot 1"', b'"name": "Bot 1", "metadata": ' + deep)

    prod = target(scripted_api(answer), monkeypatch)
    assert poll_target(engine, prod)[0].status == "complete"
    leaf["value"] = "b"
    [outcome] = poll_target(engine, prod)
    assert outcome.status == "complete", outcome.error
    [event] = outcome.events
    assert (event.object_id, event.change) == ("asst_1", "modified")
    assert event.paths == ["metadata" + ".k" * (MAX_DEPTH - 1)]  # compared whole below the depth limit


def test_a_timestamp_that_is_not_a_number_does_not_stop_the_poll(scripted_api, monkeypatch, engine):
    body = b'{"object": "list", "has_more": false, "data": [{"id": "asst_1", "created_at": NaN, "model": "m"}]}'
    prod = target(scripted_api(lambda _path: (200, body)), monkeypatch)
    assert poll_target(engine, prod)[0].status == "complete"
    assert live_ids(engine) == ["asst_1"]


@pytest.mark.parametrize("bad_id", ["", "x" * 201, "asst_\x00evil", 42])
def test_an_object_without_a_usable_id_fails_the_listing(scripted_api, monkeypatch, engine, bad_id):
    prod = target(scripted_api(lambda _path: (200, listing({"id": bad_id, "model": "m"}))), monkeypatch)
    [outcome] = poll_target(engine, prod)
    assert outcome.status == "failed" and "an object has no usable id" in outcome.error


@pytest.mark.parametrize("name", ["N" * 600, "Bill\x00ing"])
def test_a_long_or_nul_name_is_recorded_on_every_store(sandbox, monkeypatch, engine, name):
    victim = sandbox.add("assistants", name=name)
    [outcome, _agents] = poll_target(engine, target(sandbox.url, monkeypatch, ("assistants", "agents"), sandbox.api_key))
    assert outcome.status == "complete", outcome.error
    with Session(engine) as session:
        label = session.scalar(select(Resource.name).where(Resource.remote_id == victim["id"]))
    assert label == name.replace("\x00", "")[:500]


def test_a_404_after_the_first_page_is_a_failure_not_a_retired_kind(monkeypatch, engine):
    from watcher.sandbox.server import Sandbox

    with Sandbox(assistants=150, agents=0) as api:
        prod = target(api.url, monkeypatch, key=api.api_key)
        poll_target(engine, prod)
        api.fail_pages_after_first(404)
        [outcome] = poll_target(engine, prod)
    assert (outcome.status, outcome.retired) == ("failed", False)
    assert outcome.error.startswith("prod/assistants: HTTP 404")


def test_the_key_never_reaches_an_error_even_when_the_message_is_cut(monkeypatch, engine):
    from watcher.sandbox.server import Sandbox

    with Sandbox(api_key=KEY) as api:  # a key of no known shape: only the exact key can be scrubbed
        api.fail_next(10, status=401, message="x" * 270 + f" Received: {KEY}")
        outcomes = poll_target(engine, target(api.url, monkeypatch, kinds=("assistants", "agents")))
    for outcome in outcomes:
        assert outcome.status == "failed" and "authentication failed" in outcome.error
        assert KEY[:12] not in outcome.error and "[redacted]" in outcome.error


def test_apply_accepts_a_server_that_sends_whole_numbers_for_decimals(sandbox, monkeypatch, engine, tmp_path):
    from watcher.apply import apply_document

    victim = sandbox.add("assistants", temperature=1, top_p=1)
    prod = target(sandbox.url, monkeypatch, key=sandbox.api_key)
    config = parse_config(target_toml(sandbox.url, kinds=["assistants"]))
    poll_target(engine, prod)
    result = apply_document(engine, config, {**victim, "model": "gpt-5"}, by="alice")
    assert result.version == 2
    [outcome] = poll_target(engine, prod)
    assert outcome.events == []  # the write is the record, not drift


def test_no_version_is_live_while_the_object_was_deleted(sandbox, monkeypatch, engine):
    prod = target(sandbox.url, monkeypatch, key=sandbox.api_key)
    victim = sandbox.objects("assistants")[0]
    poll_target(engine, prod)
    sandbox.remove("assistants", victim["id"])
    poll_target(engine, prod)
    sandbox.add("assistants", **{k: v for k, v in victim.items() if k != "object"})
    poll_target(engine, prod)
    with Session(engine) as session:
        resource = history_orm.find_resource(session, victim["id"])
        [deleted, reappeared] = session.scalars(select(Event).where(Event.resource_id == resource.id)
                                                .order_by(Event.id)).all()
        assert (deleted.change, reappeared.change) == ("deleted", "reappeared")
        gap = deleted.detected_at + (reappeared.detected_at - deleted.detected_at) / 2
        with pytest.raises(RecordError, match="was deleted at"):
            history_orm.version_at(session, resource, gap)
        assert history_orm.version_at(session, resource, reappeared.detected_at + timedelta(seconds=1)).version.number == 1


def test_an_object_a_listing_hides_but_the_server_still_serves_is_kept_and_the_rest_recorded(scripted_api,
                                                                                             monkeypatch, engine):
    hidden = {"on": False}

    def answer(path):
        if path.startswith("/v1/assistants/asst_2"):
            return 200, json.dumps(assistant(2)).encode()
        listed = [assistant(1, model="gpt-5")] if hidden["on"] else [assistant(1), assistant(2)]
        return 200, listing(*listed)

    prod = target(scripted_api(answer), monkeypatch)
    poll_target(engine, prod)
    hidden["on"] = True
    [outcome] = poll_target(engine, prod)
    assert outcome.status == "complete"
    assert [(e.object_id, e.change) for e in outcome.events] == [("asst_1", "modified")]
    assert live_ids(engine) == ["asst_1", "asst_2"]
