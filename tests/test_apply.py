"""In-channel changes: recorded with their author, never reported as drift (invariant 10)."""

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.poll import poll_target
from watcher.store import Event, Version


@pytest.fixture
def setup(write_config, sandbox, store_url, engine):
    path = write_config(sandbox, store_url, target_extra='ignore = ["metadata.hwm"]')
    from watcher.config import load_config

    config = load_config(path)
    poll_target(engine, config.targets[0])
    return path, config


def versions_of(engine, remote_id):
    from watcher.store import Resource

    with Session(engine) as session:
        rows = session.scalars(select(Version).join(Resource, Version.resource_id == Resource.id)
                               .where(Resource.remote_id == remote_id).order_by(Version.number))
        return [(v.number, v.origin, v.actor, v.note) for v in rows]


def test_apply_changes_the_object_and_records_its_author(setup, sandbox, engine, cli, cli_json, tmp_path):
    path, _config = setup
    victim = sandbox.objects("assistants")[0]
    body = cli_json(path, "show", victim["id"])
    body["instructions"] = "Reviewed and approved instructions."
    file = tmp_path / "change.json"
    file.write_text(json.dumps(body))
    result = cli(path, "apply", str(file), "--by", "alice", "--note", "ticket 42")
    assert result.exit_code == 0, result.output
    assert "recorded as version 2 (was 1)" in result.stdout
    assert sandbox.get("assistants", victim["id"])["instructions"] == "Reviewed and approved instructions."
    assert versions_of(engine, victim["id"]) == [(1, "baseline", None, None), (2, "apply", "alice", "ticket 42")]


def test_applied_change_is_not_drift_on_the_next_poll(setup, sandbox, engine, tmp_path):
    from watcher.apply import apply_document

    _path, config = setup
    victim = sandbox.objects("agents")[0]
    apply_document(engine, config, {**victim, "model": "gpt-5"}, by="bob")
    poll_target(engine, config.targets[0])
    with Session(engine) as session:
        assert session.scalars(select(Event)).all() == []


def test_restore_brings_back_a_version_as_origin_restore(setup, sandbox, engine, cli):
    path, config = setup
    victim = sandbox.objects("assistants")[1]
    sandbox.edit("assistants", victim["id"], model="gpt-4o", instructions="tampered")
    poll_target(engine, config.targets[0])
    result = cli(path, "restore", victim["id"], "--version", "1", "--by", "carol")
    assert result.exit_code == 0, result.output
    restored = sandbox.get("assistants", victim["id"])
    assert (restored["model"], restored["instructions"]) == (victim["model"], victim["instructions"])
    assert versions_of(engine, victim["id"])[-1] == (3, "restore", "carol", "restored version 1")
    poll_target(engine, config.targets[0])
    with Session(engine) as session:
        assert [e.change for e in session.scalars(select(Event))] == ["modified"]  # the tampering, only


def test_restore_keeps_ignored_live_values(setup, sandbox, engine):
    from watcher.apply import restore_version

    _path, config = setup
    victim = sandbox.objects("agents")[1]
    sandbox.edit("agents", victim["id"], name="Renamed", metadata={"hwm": "777"})
    poll_target(engine, config.targets[0])
    restore_version(engine, config, victim["id"], 1, by="dan")
    live = sandbox.get("agents", victim["id"])
    assert live["name"] == victim["name"]
    assert live["metadata"]["hwm"] == "777"


def test_apply_refuses_to_overwrite_an_unrecorded_change(setup, sandbox, engine, cli, tmp_path):
    path, _config = setup
    victim = sandbox.objects("assistants")[2]
    sandbox.edit("assistants", victim["id"], model="gpt-4o")  # out of band, not yet polled
    file = tmp_path / "change.json"
    file.write_text(json.dumps({**victim, "name": "Mine"}))
    result = cli(path, "apply", str(file), "--by", "alice")
    assert result.exit_code == 1
    assert "has changed since the last poll" in result.stderr
    assert sandbox.get("assistants", victim["id"])["model"] == "gpt-4o"


def test_apply_of_a_bad_file_is_one_line(setup, cli, tmp_path):
    path, _config = setup
    file = tmp_path / "bad.json"
    file.write_text("{not json")
    result = cli(path, "apply", str(file), "--by", "alice")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {file} is not valid JSON")
