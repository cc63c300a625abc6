"""In-channel changes: recorded with their author, never reported as drift (invariant 10)."""

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.poll.run import poll_target
from watcher.record.models import Event, Version


@pytest.fixture
def setup(write_config, sandbox, store_url, engine):
    path = write_config(sandbox, store_url, target_extra='ignore = ["metadata.hwm"]')
    from watcher.config.model import load_config

    config = load_config(path)
    poll_target(engine, config.targets[0])
    return path, config


def versions_of(engine, remote_id):
    from watcher.record.models import Resource

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


def test_a_restore_says_which_open_events_it_answers_and_acknowledges_them(setup, sandbox, engine, cli, cli_json):
    path, config = setup
    victim = sandbox.objects("assistants")[3]
    sandbox.edit("assistants", victim["id"], instructions="tampered")
    poll_target(engine, config.targets[0])
    [event] = cli_json(path, "events", "--open")
    result = cli(path, "restore", victim["id"], "--version", "1", "--by", "carol", "--note", "INC-12")
    assert f"answers open event {event['id']}" in result.stdout
    assert cli_json(path, "events", "--open") == []
    [acked] = cli_json(path, "events")
    assert acked["acked_by"] == "carol" and acked["note"].startswith("INC-12 (undone by restore to version 1")
    assert "carol: INC-12 (undone by restore" in cli(path, "events").stdout


def test_apply_refuses_an_unknown_field_by_name(setup, sandbox, cli, cli_json, tmp_path):
    path, _config = setup
    victim = sandbox.objects("assistants")[0]
    body = cli_json(path, "show", victim["id"])
    body["instructons"] = "typo"
    file = tmp_path / "change.json"
    file.write_text(json.dumps(body))
    result = cli(path, "apply", str(file), "--by", "alice")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown field 'instructons' (did you mean 'instructions'?)")
    assert sandbox.get("assistants", victim["id"]) == victim


def test_apply_refuses_a_changed_read_only_field_by_name():
    from watcher.apply import _refuse_what_cannot_be_written
    from watcher.errors import RecordError
    from watcher.kinds import registry

    skill = {"id": "skill_1", "object": "skill", "name": "Refunds", "default_version": "1", "latest_version": "2"}
    _refuse_what_cannot_be_written(registry.get("skills"), {**skill, "default_version": "2"}, skill)  # writable
    with pytest.raises(RecordError, match="^latest_version is read-only for skills: apply can change only "
                                          "default_version$"):
        _refuse_what_cannot_be_written(registry.get("skills"), {**skill, "latest_version": "3"}, skill)


def test_apply_dry_run_prints_the_diff_and_changes_nothing(setup, sandbox, engine, cli, cli_json, tmp_path):
    path, _config = setup
    victim = sandbox.objects("assistants")[0]
    body = {**cli_json(path, "show", victim["id"]), "model": "gpt-4.1-mini-2"}
    file = tmp_path / "change.json"
    file.write_text(json.dumps(body))
    result = cli(path, "apply", str(file), "--by", "alice", "--dry-run")
    assert result.exit_code == 0 and "dry run, nothing sent" in result.stdout
    assert "changed model" in result.stdout and '+ "gpt-4.1-mini-2"' in result.stdout
    assert sandbox.get("assistants", victim["id"]) == victim
    assert versions_of(engine, victim["id"]) == [(1, "baseline", None, None)]


def test_restoring_a_deleted_object_says_when_and_how_to_recreate_it(setup, sandbox, engine, cli):
    path, config = setup
    victim = sandbox.objects("assistants")[4]
    sandbox.remove("assistants", victim["id"])
    poll_target(engine, config.targets[0])
    result = cli(path, "restore", victim["id"], "--version", "1", "--by", "carol")
    assert result.exit_code == 1
    assert "was deleted at" in result.stderr and "Recreate it on the platform" in result.stderr
    assert f"show {victim['id']} --version 1 --json" in result.stderr


def test_a_read_only_kind_is_refused_clearly():
    from watcher.apply import _writable_kind
    from watcher.errors import RecordError
    from watcher.record.models import Resource

    with pytest.raises(RecordError, match="^the watcher does not write skill_versions"):
        _writable_kind(Resource(kind="skill_versions", remote_id="skill_1/2"))


def test_apply_refuses_a_changed_created_at_or_object_by_name(setup, sandbox, cli, cli_json, tmp_path):
    path, _config = setup
    victim = sandbox.objects("assistants")[0]
    body = {**cli_json(path, "show", victim["id"]), "created_at": 1}
    file = tmp_path / "change.json"
    file.write_text(json.dumps(body))
    result = cli(path, "apply", str(file), "--by", "alice")
    assert result.exit_code == 1 and result.stderr.startswith("error: created_at is read-only for assistants")


def test_a_dry_run_sees_an_out_of_band_change_as_a_real_run_would(setup, sandbox, cli, cli_json, tmp_path):
    path, _config = setup
    victim = sandbox.objects("assistants")[0]
    body = {**cli_json(path, "show", victim["id"]), "model": "gpt-4.1-mini"}
    sandbox.edit("assistants", victim["id"], instructions="changed on the platform, not yet polled")
    file = tmp_path / "change.json"
    file.write_text(json.dumps(body))
    result = cli(path, "apply", str(file), "--by", "alice", "--dry-run")
    assert result.exit_code == 1 and "has changed since the last poll" in result.stderr


@pytest.mark.parametrize("remembering", [False, True], ids=["snapshot", "daemon"])
def test_the_same_edit_made_again_after_a_restore_is_drift(setup, sandbox, engine, remembering):
    """The listing after the edit is byte for byte the listing before the restore: it must not pass as restored."""
    from watcher.apply import restore_version
    from watcher.source.page_memory import PageMemory

    _path, config = setup
    target = config.targets[0]
    memory = PageMemory() if remembering else None
    poll_target(engine, target, memory=memory)
    victim = sandbox.objects("assistants")[1]
    tampered = sandbox.edit("assistants", victim["id"], instructions="tampered")
    poll_target(engine, target, memory=memory)
    restore_version(engine, config, victim["id"], 1, by="carol")
    # As a server lists it (in its own field order, whatever the request's): exactly the tampered bytes again.
    sandbox.edit("assistants", victim["id"], **{k: v for k, v in tampered.items() if k != "id"})
    assert list(sandbox.get("assistants", victim["id"]).items()) == list(tampered.items())
    poll_target(engine, target, memory=memory)
    assert [(number, origin) for number, origin, _actor, _note in versions_of(engine, victim["id"])] == [
        (1, "baseline"), (2, "poll"), (3, "restore"), (4, "poll")]
    with Session(engine) as session:
        assert [e.change for e in session.scalars(select(Event).order_by(Event.id))] == ["modified", "modified"]
