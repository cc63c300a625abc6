"""Self-heal: an out-of-band modification put back within the poll that found it, recorded and told."""

import pytest


@pytest.fixture
def healing(sandbox, mail_config, smtp_server, store_url):
    """A config whose target heals what `heal` says, mailing a watchlist; (config path, mail server)."""
    def write(heal: str = "true") -> tuple[str, object]:
        server = smtp_server()
        return mail_config(sandbox, server, url=store_url, target_extra=f"heal = {heal}"), server

    return write


def test_an_out_of_band_modification_is_put_back_recorded_and_told(healing, sandbox, cli, cli_json):
    config, server = healing()
    assert cli(config, "snapshot").exit_code == 0
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], model="gpt-4.1-nano")
    result = cli(config, "snapshot")
    assert result.exit_code == 0, result.output
    assert "put back to version 1 (self-heal; recorded as version 3)" in result.stdout
    assert sandbox.get("agents", agent["id"])["model"] == agent["model"]
    history = cli_json(config, "history", agent["id"])
    assert [(v["origin"], v["actor"]) for v in history] == [("baseline", None), ("poll", None),
                                                            ("heal", "assistant-watcher (heal)")]
    [event] = cli_json(config, "events")
    assert (event["change"], event["acked_at"]) == ("modified", None)  # still a person's to look at
    subjects = [m.subject for m in server.wait_for(2)]
    assert any(s.endswith(f'agent "{agent["name"]}" reverted automatically: model') for s in subjects), subjects
    assert cli(config, "snapshot").exit_code == 0
    assert len(cli_json(config, "events")) == 1  # the watcher's own write is no drift


def test_heal_on_some_kinds_leaves_the_others_alone(healing, sandbox, cli):
    config, _server = healing('["assistants"]')
    cli(config, "snapshot")
    agent, assistant = sandbox.objects("agents")[0], sandbox.objects("assistants")[0]
    sandbox.edit("agents", agent["id"], model="gpt-4.1-nano")
    sandbox.edit("assistants", assistant["id"], model="gpt-4.1-nano")
    cli(config, "snapshot")
    assert sandbox.get("agents", agent["id"])["model"] == "gpt-4.1-nano"
    assert sandbox.get("assistants", assistant["id"])["model"] == assistant["model"]


def test_a_deletion_is_never_healed(healing, sandbox, cli, cli_json):
    config, _server = healing()
    cli(config, "snapshot")
    gone = sandbox.objects("agents")[0]
    sandbox.remove("agents", gone["id"])
    result = cli(config, "snapshot")
    assert "put back" not in result.stdout
    assert [e["change"] for e in cli_json(config, "events")] == ["deleted"]


def test_an_object_put_back_twice_within_the_backoff_is_left_alone_told_and_listed(healing, sandbox, cli, cli_json):
    config, server = healing()
    cli(config, "snapshot")
    agent = sandbox.objects("agents")[0]
    for round_number in range(3):
        sandbox.edit("agents", agent["id"], model=f"gpt-4.1-nano-{round_number}")
        result = cli(config, "snapshot")
    assert "not put back: something keeps changing it" in result.stderr
    assert sandbox.get("agents", agent["id"])["model"] == "gpt-4.1-nano-2"
    subjects = [m.subject for m in server.wait_for(6)]
    assert any("something keeps changing it; not reverted again" in s for s in subjects), subjects
    [fighting] = cli_json(config, "status")["fighting"]
    assert (fighting["kind"], fighting["object_id"]) == ("agents", agent["id"])
    assert "fighting: prod/agents" in cli(config, "status").stdout


def test_heal_max_bounds_the_objects_put_back_in_one_poll(sandbox, write_config, store_url, cli):
    config = write_config(sandbox, store_url, target_extra="heal = true\nheal_max = 2")
    cli(config, "snapshot", "--no-email")
    for agent in sandbox.objects("agents"):
        sandbox.edit("agents", agent["id"], model="gpt-4.1-nano")
    result = cli(config, "snapshot", "--no-email")
    assert result.stdout.count("put back to version 1") == 2
    assert sum(1 for a in sandbox.objects("agents") if a["model"] == "gpt-4.1-nano") == 3


def test_status_stops_listing_an_object_once_the_watcher_writes_it_again(healing, sandbox, cli, cli_json, tmp_path):
    import json

    config, _server = healing()
    cli(config, "snapshot")
    agent = sandbox.objects("agents")[0]
    for round_number in range(3):
        sandbox.edit("agents", agent["id"], model=f"gpt-4.1-nano-{round_number}")
        cli(config, "snapshot")
    assert len(cli_json(config, "status")["fighting"]) == 1
    file = tmp_path / "fixed.json"
    file.write_text(json.dumps({**cli_json(config, "show", agent["id"]), "model": agent["model"]}))
    assert cli(config, "apply", str(file), "--by", "alice").exit_code == 0
    assert cli_json(config, "status")["fighting"] == []


def test_fighting_read_in_plain_sql_is_what_the_models_give(healing, sandbox, cli, engine, store_url):
    from sqlalchemy.orm import Session

    from watcher.record import overview_orm, overview_sql
    from watcher.record.connection import open_database

    config, _server = healing()
    cli(config, "snapshot")
    agent = sandbox.objects("agents")[0]
    for round_number in range(3):
        sandbox.edit("agents", agent["id"], model=f"gpt-4.1-nano-{round_number}")
        cli(config, "snapshot")
    with Session(engine) as session, open_database(store_url) as db:
        assert overview_sql.fighting(db) == overview_orm.fighting(session) != []

