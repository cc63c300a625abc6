"""Who changed it: drift on organization kinds names its actor from the audit log, against the sandbox's
organization plane driven through the real SDK, with the CLI, real SMTP and HTTP receivers."""

import json
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import openai
import pytest
from config_text import ADMIN_KEY_ENV, target_toml
from conftest import WEBHOOK_SECRET
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from watcher.config.model import parse_config
from watcher.kinds import registry
from watcher.kinds.base import ADMIN
from watcher.poll import attribution
from watcher.poll.attribution import Waiting
from watcher.poll.run import poll_target
from watcher.record.models import Event
from watcher.sandbox.server import Sandbox
from watcher.times import as_datetime, json_time

ADMIN_ENV = ADMIN_KEY_ENV
PRIYA = {"email": "priya.nair@acme.example", "ip": "198.51.100.23"}
LI = {"email": "li.wei@acme.example", "ip": "192.0.2.10"}
RATE_LIMITS = registry.get("project_rate_limits")


@pytest.fixture
def org():
    with Sandbox(assistants=1, agents=1) as sb:
        yield sb


@pytest.fixture
def org_target(org, monkeypatch):
    """A parsed target that watches `kinds` with the sandbox's admin key (and its project key if asked)."""
    monkeypatch.setenv(ADMIN_ENV, org.admin_key)
    monkeypatch.setenv("WATCHER_TEST_PROJECT_KEY", org.api_key)

    def target(*names: str, project_key: bool = False):
        kinds = list(names or ("project_rate_limits",))
        key = 'api_key_env = "WATCHER_TEST_PROJECT_KEY"' if project_key else ""
        return parse_config(target_toml(org.url, name="org", api_key=False, admin_key=True, kinds=kinds,
                                        extra=key)).targets[0]

    return target


@pytest.fixture
def org_config(org, tmp_path, monkeypatch, store_url):
    """Writes a config file for the CLI: the sandbox's organization with `extra` TOML after the target."""
    monkeypatch.setenv(ADMIN_ENV, org.admin_key)

    def write(*, kinds_toml: str = '["project_rate_limits"]', extra: str = "") -> str:
        path = tmp_path / "config.toml"
        block = target_toml(org.url, name="org", api_key=False, admin_key=True, extra=f"kinds = {kinds_toml}")
        path.write_text(f'[database]\nurl = "{store_url}"\n\n{block}\n{extra}\n')
        return str(path)

    return write


def projects(org) -> list[str]:
    return [p["id"] for p in org.objects("projects")]


def lower(org, project: str, actor=None, **ids):
    """Lower a project's gpt-4o token limit out of band, as a person in the platform UI (or with a key)."""
    current = org.get("project_rate_limits", f"{project}/rl-gpt-4o")["max_tokens_per_1_minute"]
    org.edit("project_rate_limits", f"{project}/rl-gpt-4o", max_tokens_per_1_minute=current // 2, actor=actor, **ids)


def newest_entry(org) -> dict:
    return org.audit_log()[0]


def actors(engine) -> dict[str, dict | None]:
    """The actor of every event, by object id (one event per object in these tests)."""
    with Session(engine) as session:
        return {e.resource.remote_id: e.actor for e in session.scalars(select(Event).order_by(Event.id))}


def audit_requests(org) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(path).query) for method, path in org.requests if "/organization/audit_logs" in path]


# --- the promise: who, from where, and when ------------------------------------------------------


def test_events_shows_who_lowered_a_rate_limit_from_which_ip_and_when(org, org_config, cli, cli_json):
    config = org_config()
    assert cli(config, "snapshot").exit_code == 0
    lower(org, projects(org)[0], actor=PRIYA)
    assert cli(config, "snapshot").exit_code == 0
    entry = newest_entry(org)
    when = as_datetime(entry["effective_at"])

    [line] = cli(config, "events").stdout.splitlines()[1:]
    assert f"user priya.nair@acme.example from 198.51.100.23 at {when:%Y-%m-%dT%H:%M:%S}Z" in line
    [event] = cli_json(config, "events")
    priya = next(u for u in org.objects("org_users") if u["email"] == PRIYA["email"])
    assert event["actor"] == {"type": "user", "id": priya["id"], "email": PRIYA["email"], "ip": PRIYA["ip"],
                              "source": "audit_log", "audit_event_id": entry["id"], "at": json_time(when)}
    assert event["window_start"][:19] <= event["actor"]["at"][:19] <= event["detected_at"][:19]  # whole seconds


def test_two_projects_sharing_a_rate_limit_id_each_name_their_own_actor(engine, org, org_target):
    target = org_target()
    poll_target(engine, target)
    first, second = projects(org)
    lower(org, first, actor=PRIYA)
    lower(org, second, actor=LI)
    [outcome] = poll_target(engine, target)
    found = actors(engine)
    assert found[f"{first}/rl-gpt-4o"]["email"] == PRIYA["email"]
    assert (found[f"{second}/rl-gpt-4o"]["email"], found[f"{second}/rl-gpt-4o"]["ip"]) == (LI["email"], LI["ip"])
    assert {e.object_id: e.actor["email"] for e in outcome.events} == {f"{first}/rl-gpt-4o": PRIYA["email"],
                                                                       f"{second}/rl-gpt-4o": LI["email"]}


@pytest.mark.parametrize("settings_change", [
    {"data_retention": {"object": "project.data_retention", "type": "none"}},
    {"spend_limit": {"currency": "USD", "enforcement": {"status": "enforcing"}, "interval": "month",
                     "object": "project.spend_limit", "threshold_amount": 1}},
])
def test_a_project_settings_change_names_who_made_it_in_that_project(settings_change, engine, org, org_target):
    target = org_target("project_settings")
    poll_target(engine, target)
    first, second = projects(org)
    org.edit("project_settings", second, actor=LI, **settings_change)
    poll_target(engine, target)
    found = actors(engine)
    assert list(found) == [second] and found[second]["email"] == LI["email"]


def test_a_change_made_with_a_users_api_key_names_the_key_and_its_owner(engine, org, org_target):
    target = org_target()
    poll_target(engine, target)
    key = next(k for k in org.objects("project_api_keys") if k["owner"]["type"] == "user")
    lower(org, projects(org)[0], api_key_id=key["id"])
    poll_target(engine, target)
    [actor] = actors(engine).values()
    assert (actor["type"], actor["id"], actor["email"], actor["ip"]) == \
        ("api_key", key["id"], key["owner"]["user"]["email"], None)


def test_a_change_made_with_a_service_accounts_key_names_the_service_account(engine, org, org_target):
    target = org_target()
    poll_target(engine, target)
    key = next(k for k in org.objects("project_api_keys") if k["owner"]["type"] == "service_account")
    lower(org, projects(org)[0], api_key_id=key["id"])
    poll_target(engine, target)
    [actor] = actors(engine).values()
    assert (actor["type"], actor["id"]) == ("service_account", key["owner"]["service_account"]["id"])


def test_a_change_through_the_api_with_the_watchers_admin_key_names_that_key(engine, org, org_target):
    target = org_target("roles")
    poll_target(engine, target)
    client = openai.OpenAI(base_url=org.url, admin_api_key=org.admin_key, api_key="", max_retries=0)
    role = client.admin.organization.roles.create(role_name="Auditor", permissions=["api.organization.read"])
    poll_target(engine, target)
    actor = actors(engine)[role.id]
    own = next(k for k in org.objects("admin_api_keys") if org.admin_key.endswith(k["redacted_value"][-4:]))
    assert (actor["type"], actor["id"]) == ("api_key", own["id"])


# --- late entries, and entries already used ---------------------------------------------------------


def test_a_late_audit_entry_fills_the_actor_on_a_later_poll(engine, org, org_target):
    target = org_target()
    poll_target(engine, target)
    org.hold_audit()  # the platform's log lags behind the change
    lower(org, projects(org)[0], actor=PRIYA)
    [outcome] = poll_target(engine, target)
    assert [e.actor for e in outcome.events] == [None]
    [late] = org.release_audit()
    [again] = poll_target(engine, target)
    assert again.events == []  # nothing new changed
    [actor] = actors(engine).values()
    assert (actor["email"], actor["audit_event_id"]) == (PRIYA["email"], late["id"])


def test_an_entry_that_explained_an_earlier_change_is_not_reused_for_a_later_one(engine, org, org_target):
    target = org_target()
    poll_target(engine, target)
    pid = projects(org)[0]
    lower(org, pid, actor=PRIYA)
    poll_target(engine, target)
    org.hold_audit()
    lower(org, pid, actor=LI)
    poll_target(engine, target)
    with Session(engine) as session:
        first, second = [e.actor for e in session.scalars(select(Event).order_by(Event.id))]
    assert first["email"] == PRIYA["email"] and second is None  # unknown rather than wrong
    org.release_audit()
    poll_target(engine, target)
    with Session(engine) as session:
        assert [e.actor["email"] for e in session.scalars(select(Event).order_by(Event.id))] == \
            [PRIYA["email"], LI["email"]]


def test_an_entry_from_before_the_events_window_names_nobody(engine, org, org_target):
    target = org_target()
    long_ago = int(datetime.now(UTC).timestamp()) - 60
    poll_target(engine, target)
    pid = projects(org)[0]
    org.audit({"type": "rate_limit.updated", "effective_at": long_ago, "actor": LI, "project": {"id": pid},
               "rate_limit.updated": {"id": "rl-gpt-4o", "changes_requested": {}}})  # before the last poll began
    org.hold_audit()  # the change's own entry has not arrived
    lower(org, pid, actor=PRIYA)
    poll_target(engine, target)
    assert list(actors(engine).values()) == [None]


def test_an_alert_still_pending_when_the_actor_arrives_names_it(org, org_config, smtp_server, cli):
    mail = smtp_server()
    config = org_config(extra=mail.smtp_section() + '\n[alerts]\nwatchlist = ["ops@example.com"]\n')
    cli(config, "snapshot")
    org.hold_audit()
    lower(org, projects(org)[0], actor=PRIYA)
    assert cli(config, "snapshot", "--no-email").exit_code == 0  # queued without knowing who
    org.release_audit()
    assert cli(config, "snapshot").exit_code == 0  # the actor arrives, then the queued alert is sent
    [email] = mail.wait_for(1)
    assert "Who:   user priya.nair@acme.example from 198.51.100.23 at " in email.text
    assert "priya.nair@acme.example from 198.51.100.23" in email.html


# --- every channel says who ----------------------------------------------------------------------------


def test_email_webhook_slack_and_teams_name_who_changed_it(org, org_config, smtp_server, receiver, cli, tmp_path,
                                                            monkeypatch):
    mail, hook, slack, teams = smtp_server(), receiver(), receiver(secret=None), receiver(secret=None)
    monkeypatch.setenv("WATCHER_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("WATCHER_TEST_SLACK_URL", slack.url("/services/T1/B2/xyz"))
    monkeypatch.setenv("WATCHER_TEST_TEAMS_URL", teams.url("/workflows/abc"))
    channels = (f'[[channels]]\nname = "siem"\ntype = "webhook"\nurl = "{hook.url()}"\n'
                'secret_env = "WATCHER_TEST_WEBHOOK_SECRET"\n'
                '[[channels]]\nname = "ops-slack"\ntype = "slack"\nurl_env = "WATCHER_TEST_SLACK_URL"\n'
                '[[channels]]\nname = "ops-teams"\ntype = "teams"\nurl_env = "WATCHER_TEST_TEAMS_URL"\n')
    config = org_config(extra=mail.smtp_section() + '\n[alerts]\nwatchlist = ["ops@example.com"]\n\n' + channels)
    cli(config, "snapshot")
    lower(org, projects(org)[0], actor=PRIYA)
    assert cli(config, "snapshot").exit_code == 0
    who = "user priya.nair@acme.example from 198.51.100.23"

    [email] = mail.wait_for(1)
    project = org.objects("projects")[0]["name"]
    assert email.subject == f'[org] rate limit "{project} / gpt-4o" modified: max_tokens_per_1_minute'
    assert f"Who:   {who}" in email.text and who in email.html
    [post] = hook.wait_for(1)
    assert post.verified and post.json["actor"]["email"] == PRIYA["email"] and post.json["actor"]["ip"] == PRIYA["ip"]
    [message] = slack.wait_for(1)
    assert any(f"*Who*\n{who}" in f["text"] for f in message.json["blocks"][1]["fields"])
    [card] = teams.wait_for(1)
    assert who in json.dumps(card.json)


def test_a_digest_names_who_made_each_change_it_lists(org, org_config, smtp_server, receiver, cli, monkeypatch):
    mail, slack = smtp_server(), receiver(secret=None)
    monkeypatch.setenv("WATCHER_TEST_SLACK_URL", slack.url("/services/T1/B2/xyz"))
    config = org_config(extra=mail.smtp_section() + '\n[alerts]\nwatchlist = ["ops@example.com"]\n'
                        'digest_threshold = 1\n\n[[channels]]\nname = "ops-slack"\ntype = "slack"\n'
                        'url_env = "WATCHER_TEST_SLACK_URL"\n')
    cli(config, "snapshot")
    first, second = projects(org)
    lower(org, first, actor=PRIYA)
    lower(org, second, actor=LI)
    assert cli(config, "snapshot").exit_code == 0
    [digest] = mail.wait_for(1)
    for person in (PRIYA, LI):
        assert f"by user {person['email']} from {person['ip']}" in digest.text
        assert f"by user {person['email']} from {person['ip']}" in digest.html
    [message] = slack.wait_for(1)
    assert "by user priya.nair@acme.example" in json.dumps(message.json)


def test_an_event_nobody_can_attribute_says_unknown_out_of_band(org, org_config, smtp_server, cli):
    mail = smtp_server()
    config = org_config(extra=mail.smtp_section() + '\n[alerts]\nwatchlist = ["ops@example.com"]\n')
    cli(config, "snapshot")
    org.hold_audit()  # and it never arrives
    lower(org, projects(org)[0], actor=PRIYA)
    cli(config, "snapshot")
    [email] = mail.wait_for(1)
    assert "Who:   unknown (out of band)" in email.text
    assert "unknown (out of band)" in cli(config, "events").stdout


# --- bounded, and never in the way ---------------------------------------------------------------------


def test_no_audit_request_while_no_event_waits(engine, org, org_target):
    target = org_target(*[k.name for k in registry.all_kinds() if k.key == ADMIN])
    poll_target(engine, target)
    poll_target(engine, target)
    assert audit_requests(org) == []


def test_the_audit_log_is_read_for_the_events_window_by_their_ids(engine, org, org_target):
    target = org_target()
    poll_target(engine, target)
    started = datetime.now(UTC)
    lower(org, projects(org)[0], actor=PRIYA)
    poll_target(engine, target)
    [query] = audit_requests(org)
    assert query["resource_ids[]"] == ["rl-gpt-4o"]
    assert query["event_types[]"] == ["rate_limit.updated", "rate_limit.deleted"]
    since = int(query["effective_at[gte]"][0])
    assert started.timestamp() - 60 < since <= started.timestamp()  # the window since the last complete poll


def test_reading_the_audit_log_stops_at_its_request_cap(engine, org, org_target, monkeypatch):
    target = org_target()
    poll_target(engine, target)
    pid = projects(org)[0]
    for _ in range(5):  # five changes in one window: five entries for one id
        lower(org, pid, actor=PRIYA)
    monkeypatch.setattr(attribution, "MAX_REQUESTS", 2)
    monkeypatch.setattr("watcher.source.listing.PAGE_LIMIT", 2)
    poll_target(engine, target)
    assert len(audit_requests(org)) == 2  # three pages of entries name the object; two were read
    assert [a["email"] for a in actors(engine).values()] == [PRIYA["email"]]  # the newest come first


def test_an_audit_log_that_cannot_be_read_costs_the_poll_nothing(engine, org, org_target, caplog):
    target = org_target()
    poll_target(engine, target)
    lower(org, projects(org)[0], actor=PRIYA)
    org.retire("audit_logs")
    with caplog.at_level(logging.WARNING, logger="watcher"):
        [outcome] = poll_target(engine, target)
    assert outcome.status == "complete" and [e.change for e in outcome.events] == ["modified"]
    assert list(actors(engine).values()) == [None]
    [line] = [r.getMessage() for r in caplog.records if r.name == "watcher.attribution"]
    assert "audit log could not be read" in line and "HTTP 404" in line and "\n" not in line
    org.restore_kind("audit_logs")
    poll_target(engine, target)
    assert [a["email"] for a in actors(engine).values()] == [PRIYA["email"]]


def test_kinds_without_an_audit_trail_are_never_looked_up(engine, org, org_target):
    target = org_target("agents", project_key=True)
    poll_target(engine, target)
    agent = org.objects("agents")[0]
    org.edit("agents", agent["id"], instructions="Edited in the platform UI.")
    [outcome] = poll_target(engine, target)
    assert [e.actor for e in outcome.events] == [None] and audit_requests(org) == []


# --- the admin key stays secret ---------------------------------------------------------------------------


def rows_of(engine) -> str:
    with engine.connect() as connection:
        return "\n".join(repr(tuple(row)) for table in inspect(engine).get_table_names()
                         for row in connection.execute(text(f"SELECT * FROM {table}")))


def test_the_admin_key_is_in_no_output_row_or_log(org, org_config, cli, cli_json, caplog, engine):
    every = "[" + ", ".join(f'"{k.name}"' for k in registry.all_kinds() if k.key == ADMIN) + "]"
    config = org_config(kinds_toml=every)
    with caplog.at_level(logging.DEBUG):
        outputs = [cli(config, "snapshot")]
        lower(org, projects(org)[0], actor=PRIYA)
        org.fail_next(1, 401, f"Incorrect API key provided: {org.admin_key}.")  # a server that echoes it
        outputs.append(cli(config, "snapshot"))
        outputs += [cli(config, "events"), cli(config, "events", "--json"), cli(config, "history", "rl-gpt-4o")]
    assert "FAILED" in outputs[1].stdout and "[redacted]" in outputs[1].stdout
    assert cli_json(config, "events")[0]["actor"]["email"] == PRIYA["email"]
    for result in outputs:
        assert org.admin_key not in result.stdout + result.stderr
    assert org.admin_key not in caplog.text
    assert org.admin_key not in rows_of(engine)


def test_an_audit_log_error_that_echoes_the_admin_key_is_logged_without_it(engine, scripted_api, monkeypatch,
                                                                         caplog):
    key = "sk-admin-echoed-0123456789abcdef"
    limits = {"max_tokens_per_1_minute": 100}

    def answer(path: str):
        if path.startswith("/v1/organization/projects?"):
            return 200, json.dumps({"object": "list", "data": [{"id": "proj_1", "object": "organization.project",
                                                                 "name": "P", "created_at": 1}],
                                    "has_more": False, "last_id": "proj_1"}).encode()
        if path.startswith("/v1/organization/projects/proj_1/rate_limits?"):
            return 200, json.dumps({"object": "list", "data": [{"id": "rl-gpt-4o", "model": "gpt-4o",
                                                                 "object": "project.rate_limit",
                                                                 "max_requests_per_1_minute": 1, **limits}],
                                    "has_more": False, "last_id": "rl-gpt-4o"}).encode()
        return 500, json.dumps({"error": {"message": f"audit store down for key {key}"}}).encode()

    monkeypatch.setenv(ADMIN_ENV, key)
    target = parse_config(target_toml(scripted_api(answer), name="org", api_key=False, admin_key=True,
                                      kinds=["project_rate_limits"], extra='timeout = "2s"')).targets[0]
    poll_target(engine, target)
    limits["max_tokens_per_1_minute"] = 50
    with caplog.at_level(logging.DEBUG):
        [outcome] = poll_target(engine, target)
    assert outcome.status == "complete" and len(outcome.events) == 1
    assert "audit log could not be read" in caplog.text and key not in caplog.text


# --- the matching itself, on plain values ------------------------------------------------------------------


NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
WAITING = Waiting(7, 1, "proj_a/rl-gpt-4o", "modified", NOW - timedelta(minutes=5), NOW)


def entry(**fields) -> dict:
    base = {"id": "audit_log-1", "type": "rate_limit.updated", "effective_at": int(NOW.timestamp()) - 60,
            "project": {"id": "proj_a"}, "rate_limit.updated": {"id": "rl-gpt-4o"},
            "actor": {"type": "session", "session": {"ip_address": "203.0.113.5",
                                                     "user": {"id": "user-1", "email": "a@acme.example"}}}}
    return {**base, **fields}


@pytest.mark.parametrize("hostile", [
    {"project": {"id": "proj_b"}},  # another project's limit of the same id
    {"project": None},
    {"type": "rate_limit.deleted", "rate_limit.deleted": None},
    {"rate_limit.updated": {"id": ["rl-gpt-4o"]}},
    {"effective_at": int((NOW - timedelta(minutes=6)).timestamp())},  # before the window
    {"effective_at": "soon"},
    {"id": ["audit_log-1"]},
    {"actor": "root"},
    {"actor": {"type": "session", "session": {"user": {}}}},
    {"type": "project.updated"},
])
def test_an_entry_that_does_not_name_the_change_names_nobody(hostile):
    assert attribution.match(RATE_LIMITS, [WAITING], [entry(**hostile)], {}) == {}


def test_remote_text_in_an_actor_is_one_bounded_line():
    actor = attribution.actor_of(entry(actor={"type": "session", "session": {
        "ip_address": "203.0.113.5\r\nX-Injected: 1" + "9" * 500,
        "user": {"id": "user-1", "email": "a@acme.example\n" + "x" * 5000}}}))
    assert all(ch >= " " for value in actor.values() if isinstance(value, str) for ch in value)
    assert len(actor["email"]) <= 320 and len(actor["ip"]) <= 64


def test_the_latest_entry_in_the_window_names_the_change():
    early = entry(id="audit_log-early", effective_at=int(NOW.timestamp()) - 200)
    late = entry(id="audit_log-late", actor={"type": "api_key", "api_key": {
        "id": "key_9", "type": "user", "user": {"id": "user-2", "email": "b@acme.example"}}})
    [actor] = attribution.match(RATE_LIMITS, [WAITING], [late, early], {}).values()
    assert (actor["type"], actor["id"], actor["email"], actor["audit_event_id"]) == \
        ("api_key", "key_9", "b@acme.example", "audit_log-late")
    assert attribution.match(RATE_LIMITS, [WAITING], [late, early], {1: {"audit_log-late"}})[7]["audit_event_id"] \
        == "audit_log-early"


def test_a_creation_is_named_only_by_an_entry_that_creates():
    keys = registry.get("project_api_keys")
    created = Waiting(8, 2, "proj_a/key_1", "created", NOW - timedelta(minutes=5), NOW)
    updated = entry(type="api_key.updated", **{"api_key.updated": {"id": "key_1"}})
    made = entry(id="audit_log-2", type="api_key.created", **{"api_key.created": {"id": "key_1"}})
    assert attribution.match(keys, [created], [updated], {}) == {}
    assert attribution.match(keys, [created], [updated, made], {})[8]["audit_event_id"] == "audit_log-2"


def test_an_organization_member_is_not_named_by_a_project_membership_entry():
    users = registry.get("org_users")
    member = Waiting(9, 3, "user-1", "modified", NOW - timedelta(minutes=5), NOW)
    in_project = entry(type="user.updated", **{"user.updated": {"id": "user-1"}})
    assert attribution.match(users, [member], [in_project], {}) == {}
    assert attribution.match(users, [member], [{**in_project, "project": None}], {})[9]["email"] == "a@acme.example"
