"""Platform-set state is not an edit: a spend limit that starts or stops enforcing, an automation the service
paused, are never drift; what people change beside them still is."""

import pytest
from config_text import ADMIN_KEY_ENV, KEY_ENV, target_toml
from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.compare.normalize import normalize, rules_for
from watcher.config.model import parse_config
from watcher.kinds import registry
from watcher.poll.run import poll_target
from watcher.record.models import Event
from watcher.sandbox.server import Sandbox

FLIPS = 100


@pytest.fixture
def org():
    with Sandbox(assistants=1, agents=1, agent_automations=2) as sb:
        yield sb


@pytest.fixture
def watching(org, monkeypatch):
    """A target with both keys, watching the kinds that carry platform-set state."""
    monkeypatch.setenv(ADMIN_KEY_ENV, org.admin_key)
    monkeypatch.setenv(KEY_ENV, org.api_key)
    return parse_config(target_toml(org.url, admin_key=True,
                                    kinds=["project_settings", "project_api_keys", "agent_automations"])).targets[0]


def changes(engine) -> list[tuple[str, str, list[str]]]:
    with Session(engine) as session:
        return [(e.resource.kind, e.change, e.paths) for e in session.scalars(select(Event).order_by(Event.id))]


def _enforcing(org, status: str) -> None:
    """The platform starts (or stops) blocking requests: the project's spend limit and a key's."""
    project = org.objects("projects")[0]["id"]
    limit = org.get("project_settings", project)["spend_limit"]
    org.edit("project_settings", project, spend_limit={**limit, "enforcement": {"status": status}})
    org.edit("project_api_keys", _a_key(org), spend_limit={"currency": "USD", "interval": "month",
                                                           "threshold_amount": 2_000, "enforcement": {"status": status}})


def _a_key(org) -> str:
    """The control address ("project/key") of the first project API key."""
    key = org.objects("project_api_keys")[0]["id"]
    for project in org.objects("projects"):
        try:
            org.get("project_api_keys", f"{project['id']}/{key}")
        except KeyError:
            continue
        return f"{project['id']}/{key}"
    raise AssertionError("the sandbox seeds project API keys")


def test_spend_limits_that_start_and_stop_enforcing_are_no_drift_over_a_hundred_flips(engine, org, watching):
    _enforcing(org, "inactive")
    poll_target(engine, watching)
    for flip in range(FLIPS):
        _enforcing(org, "enforcing" if flip % 2 == 0 else "inactive")
        assert all(outcome.status == "complete" for outcome in poll_target(engine, watching))
    assert changes(engine) == []


def test_a_spend_limit_a_person_changes_is_still_high_drift(engine, org, watching):
    _enforcing(org, "inactive")
    poll_target(engine, watching)
    project = org.objects("projects")[0]["id"]
    limit = org.get("project_settings", project)["spend_limit"]
    org.edit("project_settings", project, spend_limit={**limit, "threshold_amount": 1,
                                                       "enforcement": {"status": "enforcing"}})
    [outcome] = [o for o in poll_target(engine, watching) if o.kind == "project_settings"]
    [event] = outcome.events
    assert (event.change, event.paths, event.severity) == ("modified", ["spend_limit.threshold_amount"], "high")


def test_an_automation_the_service_paused_is_no_drift(engine, org, watching):
    poll_target(engine, watching)
    automation = org.objects("agent_automations")[0]
    org.edit("agent_automations", automation["id"], status="paused", pause_reason="target_session_failed")
    poll_target(engine, watching)
    org.edit("agent_automations", automation["id"], status="active", pause_reason=None)
    poll_target(engine, watching)
    assert changes(engine) == []


def test_an_automation_a_person_paused_is_high_drift(engine, org, watching):
    poll_target(engine, watching)
    automation = org.objects("agent_automations")[0]
    org.edit("agent_automations", automation["id"], status="paused")
    poll_target(engine, watching)
    assert changes(engine) == [("agent_automations", "modified", ["status"])]


def test_state_fields_are_kept_beside_the_body_not_in_it():
    rules = rules_for(registry.get("project_api_keys"))
    snap = normalize({"id": "key_1", "name": "ci", "spend_limit": {"threshold_amount": 5, "enforcement":
                                                                   {"status": "enforcing"}}}, rules=rules)
    assert snap.state == {"spend_limit.enforcement.status": "enforcing"}
    assert snap.body["spend_limit"] == {"threshold_amount": 5}


def test_a_paused_automation_keeps_what_people_set_in_its_body():
    rules = rules_for(registry.get("agent_automations"))
    snap = normalize({"id": "auto_1", "status": "paused", "pause_reason": "target_session_failed"}, rules=rules)
    assert snap.body["status"] == "active"
    assert snap.state == {"status": "paused", "pause_reason": "target_session_failed"}


@pytest.fixture
def mailed(org, mail_config, smtp_server, monkeypatch):
    """A config watching the kinds with platform-set state, mailing a watchlist; (config path, mail server)."""
    monkeypatch.setenv(ADMIN_KEY_ENV, org.admin_key)
    server = smtp_server()
    kinds = '["project_settings", "project_api_keys", "agent_automations"]'
    config = mail_config(org, server, target_extra=f'admin_key_env = "{ADMIN_KEY_ENV}"\nkinds = {kinds}')
    return config, server


def test_a_spend_limit_that_starts_enforcing_is_one_high_state_notice_and_leaving_it_a_low_one(org, mailed, cli):
    config, server = mailed
    _enforcing(org, "inactive")
    assert cli(config, "snapshot").exit_code == 0
    _enforcing(org, "enforcing")
    assert cli(config, "snapshot").exit_code == 0
    mails = server.wait_for(2)
    subjects = sorted(m.subject for m in mails)
    assert all("[high]" in s and "the platform set spend_limit.enforcement.status inactive → enforcing" in s
               for s in subjects), subjects
    assert {"project settings", "project API key"} == {s.split("] ", 2)[2].split(' "')[0] for s in subjects}
    _enforcing(org, "inactive")
    assert cli(config, "snapshot").exit_code == 0
    back = [m.subject for m in server.wait_for(4)[2:]]
    assert all("[high]" not in s and "enforcing → inactive" in s for s in back), back


def test_status_shows_what_the_platform_holds_in_an_alarming_state(org, mailed, cli, cli_json):
    config, _server = mailed
    _enforcing(org, "enforcing")
    automation = org.objects("agent_automations")[0]
    org.edit("agent_automations", automation["id"], status="paused", pause_reason="target_session_failed")
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    states = cli_json(config, "status")["platform_state"]
    assert sorted((s["kind"], tuple(sorted(s["state"].items()))) for s in states) == [
        ("agent_automations", (("pause_reason", "target_session_failed"), ("status", "paused"))),
        ("project_api_keys", (("spend_limit.enforcement.status", "enforcing"),)),
        ("project_settings", (("spend_limit.enforcement.status", "enforcing"),)),
    ]
    shown = cli(config, "status").stdout
    assert "platform state: prod/project_settings" in shown and "spend_limit.enforcement.status = enforcing" in shown
    _enforcing(org, "inactive")
    org.edit("agent_automations", automation["id"], status="active", pause_reason=None)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    assert cli_json(config, "status")["platform_state"] == []


def test_a_first_poll_after_the_state_was_unknown_sends_no_notice(org, mailed, cli, engine):
    config, server = mailed
    _enforcing(org, "enforcing")
    assert cli(config, "snapshot").exit_code == 0  # the baseline records the state: nothing to say
    assert cli(config, "snapshot").exit_code == 0
    assert server.messages == []


def test_the_platform_state_read_in_plain_sql_is_the_one_the_models_give(org, watching, engine, store_url):
    from watcher.record import overview_orm, overview_sql
    from watcher.record.connection import open_database

    _enforcing(org, "enforcing")
    poll_target(engine, watching)
    with Session(engine) as session, open_database(store_url) as db:
        models, plain = overview_orm.platform_states(session), overview_sql.platform_states(db)
    assert plain == models and {row.kind for row in plain} == {"project_settings", "project_api_keys"}
