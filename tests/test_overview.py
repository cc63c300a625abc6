"""The `objects` and `status` commands: what is tracked and how each target and kind is doing."""

import json

import pytest

OBJECT_KEYS = ["target", "kind", "object_id", "name", "version", "deleted", "last_change_at"]
POLL_KEYS = ["target", "kind", "status", "finished_at", "objects", "error", "open_events", "worker", "enabled"]


@pytest.fixture
def config(write_config, sandbox, store_url):
    return write_config(sandbox, store_url)


@pytest.fixture
def changed(config, cli, sandbox):
    """A baseline; then one assistant edited and one agent deleted, seen by a second snapshot."""
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    edited = sandbox.objects("assistants")[0]
    gone = sandbox.objects("agents")[0]
    sandbox.edit("assistants", edited["id"], model="gpt-4.1-nano")
    sandbox.remove("agents", gone["id"])
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    return edited, gone


def test_objects_json_lists_every_live_object_with_its_version(changed, config, cli_json):
    edited, gone = changed
    listed = cli_json(config, "objects")
    assert len(listed) == 9 and all(list(o) == OBJECT_KEYS for o in listed)
    by_id = {o["object_id"]: o for o in listed}
    assert gone["id"] not in by_id
    assert (by_id[edited["id"]]["version"], by_id[edited["id"]]["name"]) == (2, edited["name"])
    assert {o["kind"] for o in listed} == {"assistants", "agents"}
    assert all(o["last_change_at"].endswith("Z") and o["deleted"] is False for o in listed)


def test_objects_deleted_adds_the_deleted_ones_with_when(changed, config, cli_json):
    _edited, gone = changed
    [deleted] = [o for o in cli_json(config, "objects", "--deleted") if o["deleted"]]
    assert deleted["object_id"] == gone["id"]
    [event] = [e for e in cli_json(config, "events") if e["change"] == "deleted"]
    assert deleted["last_change_at"] == event["detected_at"]


def test_objects_filter_by_target_and_kind(changed, config, cli_json):
    assert {o["kind"] for o in cli_json(config, "objects", "--kind", "agents")} == {"agents"}
    assert {o["target"] for o in cli_json(config, "objects", "--target", "prod")} == {"prod"}


def test_objects_with_an_unknown_kind_is_a_usage_error(config, cli):
    result = cli(config, "objects", "--kind", "robots")
    assert result.exit_code == 2
    assert "unknown kind 'robots'" in result.stderr


def test_objects_prints_a_table(changed, config, cli):
    lines = cli(config, "objects").stdout.splitlines()
    assert lines[0].split() == ["where", "id", "name", "version", "last", "change"]
    assert len(lines) == 10


def test_status_json_has_the_contract_shape(changed, config, cli_json):
    document = cli_json(config, "status")
    assert list(document) == ["polls", "open_events", "deliveries", "platform_state", "fighting"]
    assert [list(p) for p in document["polls"]] == [POLL_KEYS, POLL_KEYS]
    agents, assistants = document["polls"]
    assert (agents["kind"], agents["status"], agents["objects"], agents["open_events"]) == ("agents", "complete", 4, 1)
    assert (assistants["objects"], assistants["open_events"], assistants["error"]) == (5, 1, None)
    assert document["open_events"] == 2
    assert document["deliveries"] == {"pending": 0, "dead": 0}
    assert document["platform_state"] == []  # nothing the platform holds in an alarming state here


def test_status_shows_a_failed_poll_with_its_error(changed, config, cli, cli_json, sandbox):
    sandbox.fail_next(10, status=502, message="bad gateway")
    cli(config, "snapshot", "--no-email")
    failed = cli_json(config, "status")["polls"][1]
    assert (failed["kind"], failed["status"], failed["objects"]) == ("assistants", "failed", 5)
    assert "HTTP 502: bad gateway" in failed["error"]


def test_status_lists_a_configured_target_before_its_first_poll(write_config, sandbox, store_url, cli_json):
    config = write_config(sandbox, store_url, target_extra='kinds = ["agents"]')
    assert cli_json(config, "status")["polls"] == [
        {"target": "prod", "kind": "agents", "status": None, "finished_at": None, "objects": 0, "error": None,
         "open_events": 0, "worker": None, "enabled": True}]


def test_status_counts_pending_deliveries(changed, config, cli_json, engine, queue_mail):
    queue_mail(engine, 2)
    assert cli_json(config, "status")["deliveries"] == {"pending": 2, "dead": 0}


def test_status_prints_one_line_per_target_and_kind_and_a_summary(changed, config, cli):
    lines = cli(config, "status").stdout.splitlines()
    assert lines[1].split()[:2] == ["prod/agents", "complete"]
    assert lines[-1] == "2 open events; deliveries: 0 pending, 0 dead"


def test_status_says_one_open_event_in_the_singular(changed, config, cli):
    first = cli(config, "events", "--json")
    event_id = json.loads(first.stdout)[0]["id"]
    assert cli(config, "ack", str(event_id), "--by", "alice").exit_code == 0
    assert cli(config, "status").stdout.splitlines()[-1] == "1 open event; deliveries: 0 pending, 0 dead"
