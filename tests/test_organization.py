"""The organization plane through the watcher: every admin-key kind listed, recorded and drifted,
with changes made through the real SDK's admin resources against the sandbox."""

import json
import re

import openai
import pytest
from config_text import ADMIN_KEY_ENV, target_toml
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from watcher.compare.normalize import normalize, rules_for
from watcher.config.model import parse_config
from watcher.kinds import registry
from watcher.kinds.base import ADMIN
from watcher.poll.run import poll_target
from watcher.record.models import Event, Resource
from watcher.sandbox.server import Sandbox

ADMIN_KINDS = [k.name for k in registry.all_kinds() if k.key == ADMIN]
ADMIN_ENV = ADMIN_KEY_ENV


@pytest.fixture
def org():
    with Sandbox(assistants=1, agents=1) as sb:
        yield sb


@pytest.fixture
def admin_target(org, monkeypatch):
    """A target with only an admin key (and a project key in the environment that it must never use)."""
    monkeypatch.setenv(ADMIN_ENV, org.admin_key)
    monkeypatch.setenv("OPENAI_API_KEY", org.api_key)
    return parse_config(target_toml(org.url, name="org", api_key=False, admin_key=True)).targets[0]


def api(org: Sandbox):
    """The SDK's organization resources, as a person with the admin key reaches them."""
    return openai.OpenAI(base_url=org.url, admin_api_key=org.admin_key, api_key="", max_retries=0).admin.organization


def drift(engine) -> list[tuple]:
    """(kind, change, the top-level fields changed, severity) of every event."""
    with Session(engine) as session:
        return sorted((e.resource.kind, e.change, tuple(sorted({re.split(r"[.\[]", p)[0] for p in e.paths})),
                       e.severity) for e in session.scalars(select(Event)))


def rows_of(engine) -> str:
    with engine.connect() as connection:
        return "\n".join(repr(tuple(row)) for table in inspect(engine).get_table_names()
                         for row in connection.execute(text(f"SELECT * FROM {table}")))


def test_the_organization_kinds_are_registered_with_the_admin_key():
    assert ADMIN_KINDS == ["org_users", "invites", "roles", "groups", "admin_api_keys", "projects", "project_users",
                           "project_service_accounts", "project_api_keys", "project_rate_limits", "project_settings"]


def test_an_admin_key_alone_watches_every_organization_kind_by_default(admin_target):
    assert admin_target.kinds == ADMIN_KINDS


def test_both_keys_watch_every_kind_by_default(org, monkeypatch):
    target = parse_config(target_toml(org.url, name="both", admin_key=True)).targets[0]
    assert target.kinds == registry.names()


def test_every_organization_kind_is_listed_and_recorded_as_a_baseline(engine, org, admin_target):
    outcomes = {o.kind: o for o in poll_target(engine, admin_target)}
    assert {k: (o.status, o.baseline) for k, o in outcomes.items()} == {k: ("complete", True) for k in ADMIN_KINDS}
    for kind in ADMIN_KINDS:
        expected = len(org.objects("projects")) if kind == "project_settings" else len(org.objects(kind))
        assert outcomes[kind].objects == expected > 0, kind


def test_an_admin_key_only_target_sends_no_project_key_and_reads_only_the_organization(engine, org, admin_target):
    poll_target(engine, admin_target)
    assert org.request_headers and {h["authorization"] for h in org.request_headers} == {"admin"}
    assert all(path.startswith("/v1/organization/") for _method, path in org.requests)


def test_lists_longer_than_a_page_are_read_whole_by_their_cursors(engine, make_target):
    counts = {"org_users": 130, "invites": 101, "roles": 120, "groups": 150, "admin_api_keys": 101}
    with Sandbox(assistants=0, agents=0, projects=1, project_users=3, **counts) as sb:
        target = make_target(sb.url, name="org", api_key=False, admin_key=sb.admin_key, kinds=list(counts))
        outcomes = {o.kind: o for o in poll_target(engine, target)}
    assert {k: (o.status, o.objects, o.pages) for k, o in outcomes.items()} == \
        {k: ("complete", n, 2) for k, n in counts.items()}


def test_a_rate_limit_id_repeated_in_two_projects_is_one_object_in_each(engine, org, admin_target):
    poll_target(engine, admin_target)
    with Session(engine) as session:
        ids = session.scalars(select(Resource.remote_id).where(Resource.kind == "project_rate_limits")).all()
    assert sorted(i for i in ids if i.endswith("/rl-gpt-4o")) == sorted(f"{p['id']}/rl-gpt-4o"
                                                                      for p in org.objects("projects"))


def test_what_lives_under_a_project_is_named_with_the_projects_name(engine, org, admin_target):
    poll_target(engine, admin_target)
    first = org.objects("projects")[0]
    with Session(engine) as session:
        name = session.scalar(select(Resource.name).where(Resource.remote_id == f"{first['id']}/rl-gpt-4o"))
        settings = session.scalar(select(Resource.name).where(Resource.remote_id == first["id"],
                                                              Resource.kind == "project_settings"))
    assert (name, settings) == (f"{first['name']} / gpt-4o", first["name"])


def _first_project(org):
    return org.objects("projects")[0]["id"]


# Each change made through the SDK, and the drift it must make: (kind, change, top-level fields, severity).
CHANGES = {
    "an organization role": (lambda org: api(org).users.update(org.objects("org_users")[1]["id"], role="owner"),
                             [("org_users", "modified", ("role",), "high")]),
    "an invite": (lambda org: api(org).invites.create(email="new.hire@acme.example", role="reader"),
                  [("invites", "created", (), "low")]),
    "a new role": (lambda org: api(org).roles.create(role_name="Auditor", permissions=["api.organization.read"]),
                   [("roles", "created", (), "high")]),
    "a group's name": (lambda org: api(org).groups.update(org.objects("groups")[0]["id"], name="Platform"),
                       [("groups", "modified", ("name",), "low")]),
    "a new admin key": (lambda org: api(org).admin_api_keys.create(name="Exporter"),
                        [("admin_api_keys", "created", (), "high")]),
    "an archived project": (lambda org: api(org).projects.archive(_first_project(org)),
                            [("projects", "modified", ("archived_at", "status"), "high")]),
    "a new project": (lambda org: api(org).projects.create(name="Fraud Review"),
                      [("project_settings", "created", (), "low"), ("projects", "created", (), "low")]),
    "a project role": (lambda org: api(org).projects.users.update(org.objects("project_users")[1]["id"],
                                                                   project_id=_first_project(org), role="owner"),
                       [("project_users", "modified", ("role",), "high")]),
    "a new service account and its key": (
        lambda org: api(org).projects.service_accounts.create(_first_project(org), name="deployer"),
        [("project_api_keys", "created", (), "high"), ("project_service_accounts", "created", (), "low")]),
    "a deleted project key": (lambda org: api(org).projects.api_keys.delete(
        org.objects("project_api_keys")[0]["id"], project_id=_first_project(org)),
        [("project_api_keys", "deleted", (), "high")]),
    "a lowered rate limit": (lambda org: api(org).projects.rate_limits.update_rate_limit(
        "rl-gpt-4o", project_id=_first_project(org), max_tokens_per_1_minute=1_000),
        [("project_rate_limits", "modified", ("max_tokens_per_1_minute",), "low")]),
    "model permissions": (lambda org: api(org).projects.model_permissions.update(
        _first_project(org), mode="allow_list", model_ids=["gpt-5-nano"]),  # never seeded
        [("project_settings", "modified", ("model_permissions",), "high")]),
    "a hosted tool": (lambda org: api(org).projects.hosted_tool_permissions.update(
        _first_project(org), web_search={"enabled": False}),
        [("project_settings", "modified", ("hosted_tool_permissions",), "high")]),
    "data retention": (lambda org: api(org).projects.data_retention.update(
        _first_project(org), retention_type="enhanced_modified_abuse_monitoring"),  # never seeded
        [("project_settings", "modified", ("data_retention",), "high")]),
    "a removed spend limit": (lambda org: api(org).projects.spend_limit.delete(_first_project(org)),
                              [("project_settings", "modified", ("spend_limit",), "high")]),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_a_change_through_the_sdk_is_drift_of_its_kind_with_its_severity(case, engine, org, admin_target):
    make, expected = CHANGES[case]
    poll_target(engine, admin_target)
    make(org)
    outcomes = poll_target(engine, admin_target)
    assert all(o.status == "complete" for o in outcomes)
    assert drift(engine) == sorted(expected)


def test_no_key_value_told_at_creation_reaches_the_record(engine, org, admin_target):
    poll_target(engine, admin_target)
    admin_key = api(org).admin_api_keys.with_raw_response.create(name="Exporter").parse()
    account = api(org).projects.service_accounts.create(_first_project(org), name="deployer")
    poll_target(engine, admin_target)
    stored = rows_of(engine)
    assert admin_key.value and admin_key.value not in stored
    assert account.api_key.value and account.api_key.value not in stored
    assert org.admin_key not in stored
    assert admin_key.redacted_value in stored  # the hint the platform shows is what identifies a key


def test_a_key_value_a_server_sends_anyway_is_stored_as_a_fingerprint():
    rules = rules_for(registry.get("project_api_keys"), secret_key=b"k" * 32)
    body = normalize({"id": "key_1", "name": "Leaky", "value": "sk-proj-live-0123456789"}, rules=rules).canonical
    assert "sk-proj-live" not in body and "redacted:" in body


def test_renaming_a_project_is_its_own_drift_not_its_settings(engine, org, admin_target):
    poll_target(engine, admin_target)
    api(org).projects.update(_first_project(org), name="Support Bots EU")
    poll_target(engine, admin_target)
    assert drift(engine) == [("projects", "modified", ("name",), "low")]


@pytest.mark.parametrize(("kind", "path", "cursor"), [("roles", "/v1/organization/roles", "next"),
                                                      ("invites", "/v1/organization/invites", "last_id")])
def test_a_list_pages_by_the_cursor_its_answers_give_not_the_last_objects_id(kind, path, cursor, scripted_api, engine,
                                                                           make_target):
    first = [{"id": f"{kind}-{n:03d}", "object": "role", "name": f"r{n}", "permissions": [], "predefined_role": False,
              "resource_type": "api.organization"} for n in range(100)]
    second = [{**first[0], "id": f"{kind}-100", "name": "r100"}]
    asked = []

    def answer(request: str):
        asked.append(request)
        if not request.startswith(path + "?"):
            return 404, b'{"error": {"message": "not here"}}'
        if "after=" not in request:
            return 200, json.dumps({"object": "list", "data": first, "has_more": True, cursor: "opaque-cursor-1",
                                    **({"last_id": first[-1]["id"]} if cursor == "next" else {})}).encode()
        if "after=opaque-cursor-1" in request:
            return 200, json.dumps({"object": "list", "data": second, "has_more": False, cursor: None}).encode()
        return 400, b'{"error": {"message": "Invalid after"}}'

    target = make_target(scripted_api(answer), name="org", api_key=False, admin_key="sk-admin-scripted", kinds=[kind])
    [outcome] = poll_target(engine, target)
    assert (outcome.status, outcome.objects, outcome.pages) == ("complete", 101, 2), outcome.error
    assert len(asked) == 2
