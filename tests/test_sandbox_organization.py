"""The sandbox's organization plane and audit log, driven through the real SDK's admin resources."""

from __future__ import annotations

import json
import time

import openai
import pytest
from openai.types.admin.organization import (
    AdminAPIKey,
    AuditLogListResponse,
    Group,
    Invite,
    OrganizationDataRetention,
    OrganizationUser,
    Project,
    Role,
)
from openai.types.admin.organization.projects import (
    ProjectAPIKey,
    ProjectDataRetention,
    ProjectHostedToolPermissions,
    ProjectModelPermissions,
    ProjectRateLimit,
    ProjectServiceAccount,
    ProjectSpendLimit,
    ProjectUser,
)
from sandbox_helpers import assert_model, control, make_client, raw_json

from watcher.sandbox.server import Sandbox

PER_PROJECT = {  # kind: (model, the resource that lists it under a project)
    "project_users": (ProjectUser, lambda org: org.projects.users.with_raw_response.list),
    "project_service_accounts": (ProjectServiceAccount, lambda org: org.projects.service_accounts.with_raw_response.list),
    "project_api_keys": (ProjectAPIKey, lambda org: org.projects.api_keys.with_raw_response.list),
    "project_rate_limits": (ProjectRateLimit, lambda org: org.projects.rate_limits.with_raw_response.list_rate_limits),
}
ORG_WIDE = {
    "projects": (Project, lambda org: org.projects), "org_users": (OrganizationUser, lambda org: org.users),
    "invites": (Invite, lambda org: org.invites), "roles": (Role, lambda org: org.roles),
    "groups": (Group, lambda org: org.groups), "admin_api_keys": (AdminAPIKey, lambda org: org.admin_api_keys),
}


def admin(sb: Sandbox, key: str | None = None):
    """The SDK's organization resources, as an admin-key-only client reaches them."""
    return openai.OpenAI(base_url=sb.url, admin_api_key=key or sb.admin_key, api_key="",
                         max_retries=0).admin.organization


def entries_since(sb: Sandbox, started: int, **filters) -> list[dict]:
    page = raw_json(admin(sb).audit_logs.with_raw_response.list(effective_at={"gte": started}, limit=100, **filters))
    return page["data"]


@pytest.fixture
def org():
    with Sandbox() as sb:
        yield sb


# --- every endpoint, strictly -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ORG_WIDE))
def test_every_organization_list_pages_and_validates(kind):
    model, resource = ORG_WIDE[kind]
    with Sandbox(**{kind: 25}) as sb:
        listed = [o.id for o in resource(admin(sb)).list(limit=10)]
        assert listed == [o["id"] for o in sb.objects(kind)], "oldest first, every object once"
        path = {"org_users": "users"}.get(kind, kind)
        assert sb.count_requests("GET", f"/v1/organization/{path}?") == 3
        after = None
        while True:
            page = raw_json(resource(admin(sb)).with_raw_response.list(limit=10, **({"after": after} if after else {})))
            for obj in page["data"]:
                assert_model(model, obj)
            if not page["has_more"]:
                break
            after = page["last_id"]


@pytest.mark.parametrize("kind", sorted(PER_PROJECT))
def test_every_per_project_list_pages_and_validates(kind):
    model, lister = PER_PROJECT[kind]
    with Sandbox(projects=2, org_users=15, **{kind: 12}) as sb:
        for project in sb.objects("projects"):
            first = raw_json(lister(admin(sb))(project["id"], limit=5))
            assert len(first["data"]) == 5 and first["has_more"] is True
            rest = raw_json(lister(admin(sb))(project["id"], limit=100, after=first["last_id"]))
            assert len(first["data"]) + len(rest["data"]) == 12 and rest["has_more"] is False
            for obj in first["data"] + rest["data"]:
                assert_model(model, obj)


def test_each_project_settings_endpoint_validates(org):
    settings = admin(org).projects
    for project in org.objects("projects"):
        pid = project["id"]
        assert_model(ProjectModelPermissions, raw_json(settings.model_permissions.with_raw_response.retrieve(pid)))
        assert_model(ProjectHostedToolPermissions,
                     raw_json(settings.hosted_tool_permissions.with_raw_response.retrieve(pid)))
        assert_model(ProjectDataRetention, raw_json(settings.data_retention.with_raw_response.retrieve(pid)))
        assert_model(ProjectSpendLimit, raw_json(settings.spend_limit.with_raw_response.retrieve(pid)))
    assert_model(OrganizationDataRetention, raw_json(admin(org).data_retention.with_raw_response.retrieve()))


def test_rate_limit_ids_repeat_across_projects_as_one_object_each(org):
    first, second = (p["id"] for p in org.objects("projects"))
    limits = {pid: {r.id: r for r in admin(org).projects.rate_limits.list_rate_limits(pid)} for pid in (first, second)}
    assert "rl-gpt-4o" in limits[first] and "rl-gpt-4o" in limits[second]
    admin(org).projects.rate_limits.update_rate_limit("rl-gpt-4o", project_id=first, max_tokens_per_1_minute=1_000)
    assert org.get("project_rate_limits", f"{first}/rl-gpt-4o")["max_tokens_per_1_minute"] == 1_000
    assert org.get("project_rate_limits", f"{second}/rl-gpt-4o")["max_tokens_per_1_minute"] != 1_000


def test_seeded_audit_history_validates_and_pages_by_last_id(org):
    log = admin(org).audit_logs
    first = raw_json(log.with_raw_response.list(limit=4))
    assert first["has_more"] is True and len(first["data"]) == 4
    second = raw_json(log.with_raw_response.list(limit=4, after=first["last_id"]))
    assert not {e["id"] for e in first["data"]} & {e["id"] for e in second["data"]}
    for entry in first["data"] + second["data"]:
        assert_model(AuditLogListResponse, entry)
    assert [e["effective_at"] for e in first["data"] + second["data"]] == sorted(
        (e["effective_at"] for e in first["data"] + second["data"]), reverse=True)


# --- keys -------------------------------------------------------------------------------------------


def test_a_project_key_is_refused_on_organization_endpoints(org):
    with pytest.raises(openai.AuthenticationError, match="admin API key"):
        admin(org, key=org.api_key).projects.list()


def test_the_admin_key_is_refused_on_project_endpoints(org):
    client = openai.OpenAI(base_url=org.url, api_key=org.admin_key, max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="/v1/organization"):
        client.beta.agents.list()
    assert org.request_headers[-1]["authorization"] == "admin"
    assert org.admin_key not in json.dumps(org.request_headers)


def test_no_answer_shows_a_key_value_only_hints(org):
    bodies = [admin(org).projects.api_keys.with_raw_response.list(p["id"]).text for p in org.objects("projects")]
    bodies.append(admin(org).admin_api_keys.with_raw_response.list().text)
    assert org.admin_key not in "".join(bodies)
    assert all(k["redacted_value"].count("...") == 1 for k in org.objects("project_api_keys"))


def test_new_keys_are_told_once(org):
    created = raw_json(admin(org).admin_api_keys.with_raw_response.create(name="Exporter"))
    value = created["value"]
    pid = org.objects("projects")[0]["id"]
    account = raw_json(admin(org).projects.service_accounts.with_raw_response.create(pid, name="deployer"))
    sa_value = account["api_key"]["value"]
    later = admin(org).admin_api_keys.with_raw_response.list().text + json.dumps(org.objects("project_api_keys"))
    assert value not in later and sa_value not in later
    assert created["redacted_value"].endswith(value[-4:])
    owners = [k["owner"] for k in org.objects("project_api_keys") if k["id"] == account["api_key"]["id"]]
    assert owners[0]["service_account"]["id"] == account["id"]


# --- the audit log ----------------------------------------------------------------------------------


def test_every_change_through_the_api_appends_one_entry_naming_the_admin_key(org):
    started = int(time.time())
    own_key = next(k for k in org.objects("admin_api_keys") if org.admin_key.endswith(k["redacted_value"][-4:]))
    pid = org.objects("projects")[0]["id"]
    user = org.objects("project_users")[1]
    api = admin(org)
    api.projects.users.update(user["id"], project_id=pid, role="owner")
    api.projects.spend_limit.update(pid, currency="USD", interval="month", threshold_amount=50)
    api.invites.create(email="new.hire@acme.example", role="reader")
    api.roles.create(role_name="Auditor", permissions=["api.organization.audit_logs.read"])
    entries = entries_since(org, started)
    assert [e["type"] for e in entries] == ["role.created", "invite.sent", "project.updated", "user.updated"]
    owner = org.get("org_users", own_key["owner"]["id"])
    assert all(e["actor"] == {"api_key": {"id": own_key["id"], "type": "user", "user": {
        "email": owner["email"], "id": owner["id"]}}, "type": "api_key"} for e in entries)
    assert entries[3]["user.updated"] == {"id": user["id"], "changes_requested": {"role": "owner"}}
    assert entries[2]["project"]["id"] == pid and entries[3]["project"]["id"] == pid
    for entry in entries:
        assert_model(AuditLogListResponse, entry)


def test_an_out_of_band_edit_names_the_session_user_and_ip(org):
    started = int(time.time())
    pid = org.objects("projects")[1]["id"]
    org.edit("project_rate_limits", f"{pid}/rl-gpt-5", max_requests_per_1_minute=10,
             actor={"email": "priya.nair@acme.example", "ip": "198.51.100.23"})
    [entry] = entries_since(org, started)
    priya = next(u for u in org.objects("org_users") if u["email"] == "priya.nair@acme.example")
    assert entry["actor"] == {"session": {"ip_address": "198.51.100.23", "user": {
        "email": "priya.nair@acme.example", "id": priya["id"]}}, "type": "session"}
    assert entry["rate_limit.updated"] == {"id": "rl-gpt-5", "changes_requested": {"max_requests_per_1_minute": 10}}
    assert entry["project"] == {"id": pid, "name": org.get("projects", pid)["name"]}


def test_a_change_made_with_a_service_account_key_names_that_account(org):
    started = int(time.time())
    key = next(k for k in org.objects("project_api_keys") if k["owner"]["type"] == "service_account")
    pid = org.objects("projects")[0]["id"]
    org.edit("project_settings", pid, data_retention={"object": "project.data_retention", "type": "none"},
             api_key_id=key["id"])
    [entry] = entries_since(org, started)
    assert entry["actor"] == {"api_key": {"id": key["id"], "service_account": {
        "id": key["owner"]["service_account"]["id"]}, "type": "service_account"}, "type": "api_key"}


def test_more_project_members_than_organization_users_is_refused():
    with pytest.raises(ValueError, match="project_users"):
        Sandbox(org_users=2, project_users=3)
    assert len(Sandbox(org_users=1, projects=2).objects("project_users")) == 2, "one member each by default"


def test_an_unknown_api_key_id_changes_nothing(org):
    pid = org.objects("projects")[0]["id"]
    before = org.get("project_rate_limits", f"{pid}/rl-gpt-4o")
    with pytest.raises(KeyError):
        org.edit("project_rate_limits", f"{pid}/rl-gpt-4o", max_tokens_per_1_minute=1, api_key_id="key_nope")
    assert org.get("project_rate_limits", f"{pid}/rl-gpt-4o") == before


def test_filters_tell_two_projects_sharing_an_id_apart(org):
    started = int(time.time())
    first, second = (p["id"] for p in org.objects("projects"))
    org.edit("project_rate_limits", f"{first}/rl-gpt-4o", max_tokens_per_1_minute=5,
             actor={"email": "li.wei@acme.example", "ip": "192.0.2.10"})
    org.edit("project_rate_limits", f"{second}/rl-gpt-4o", max_tokens_per_1_minute=6,
             actor={"email": "jonas.berg@acme.example", "ip": "192.0.2.11"})
    both = entries_since(org, started, resource_ids=["rl-gpt-4o"], event_types=["rate_limit.updated"])
    assert len(both) == 2
    [mine] = entries_since(org, started, resource_ids=["rl-gpt-4o"], project_ids=[second])
    assert mine["actor"]["session"]["user"]["email"] == "jonas.berg@acme.example"
    [by_email] = entries_since(org, started, actor_emails=["li.wei@acme.example"])
    assert by_email["project"]["id"] == first


def test_a_late_entry_sorts_into_the_past(org):
    before_it = int(time.time()) - 600
    late = org.audit({"type": "rate_limit.updated", "effective_at": before_it,
                      "actor": {"email": "sofia.rossi@acme.example", "ip": "203.0.113.99"},
                      "rate_limit.updated": {"id": "rl-gpt-5", "changes_requested": {"max_tokens_per_1_minute": 9}}})
    assert late["id"] not in [e["id"] for e in entries_since(org, int(time.time()) - 60)]
    window = entries_since(org, before_it - 1)
    assert [e["id"] for e in window] == [late["id"]]
    assert_model(AuditLogListResponse, window[0])
    assert window[0]["actor"]["session"]["ip_address"] == "203.0.113.99"


def test_the_audit_control_answers_over_http(org):
    status, answer = control(org, {"action": "audit", "entry": {"type": "project.updated",
                                                                 "project.updated": {"id": "proj_x"}}})
    assert status == 200 and answer["result"]["id"].startswith("audit_log-")
    status, answer = control(org, {"action": "audit", "entry": {"effective_at": 1}})
    assert status == 400 and "needs a 'type'" in answer["error"]["message"]


def test_project_kinds_leave_the_audit_log_alone(org):
    started = int(time.time())
    make_client(org).beta.agents.update(org.objects("agents")[0]["id"], name="Renamed")
    org.edit("skills", org.objects("skills")[0]["id"], default_version="1")
    assert entries_since(org, started) == []


def test_using_a_key_is_not_an_audited_change(org):
    started = int(time.time())
    key = org.objects("project_api_keys")[0]
    used = org.use("project_api_keys", f"{org.objects('projects')[0]['id']}/{key['id']}")
    assert used["last_used_at"] > key["last_used_at"]
    assert entries_since(org, started) == []


def test_a_retired_audit_log_answers_not_found(org):
    org.retire("audit_logs")
    with pytest.raises(openai.NotFoundError, match="Invalid URL"):
        admin(org).audit_logs.list()


# --- changes through the organization API -------------------------------------------------------------


def test_archived_projects_are_listed_only_when_asked(org):
    pid = org.objects("projects")[0]["id"]
    archived = admin(org).projects.archive(pid)
    assert archived.status == "archived" and archived.archived_at
    assert pid not in [p.id for p in admin(org).projects.list()]
    assert pid in [p.id for p in admin(org).projects.list(include_archived=True)]


def test_deleting_a_spend_limit_leaves_none_and_deleting_model_permissions_opens_them(org):
    pid = org.objects("projects")[0]["id"]
    settings = admin(org).projects
    assert settings.spend_limit.delete(pid).deleted
    with pytest.raises(openai.NotFoundError):
        settings.spend_limit.retrieve(pid)
    settings.model_permissions.delete(pid)
    assert settings.model_permissions.retrieve(pid).mode == "deny_list"


def test_a_role_update_names_the_permissions_added_and_removed(org):
    role = admin(org).roles.create(role_name="Ops", permissions=["a.read", "b.read"])
    started = int(time.time())
    admin(org).roles.update(role.id, permissions=["b.read", "c.write"])
    [entry] = entries_since(org, started, event_types=["role.updated"])
    assert entry["role.updated"]["changes_requested"] == {"permissions_added": ["c.write"],
                                                          "permissions_removed": ["a.read"]}


def test_predefined_roles_cannot_change(org):
    owner = next(r for r in org.objects("roles") if r["name"] == "owner")
    with pytest.raises(openai.BadRequestError, match="Predefined"):
        admin(org).roles.update(owner["id"], description="mine now")


def test_project_members_come_from_the_organization(org):
    pid = org.objects("projects")[0]["id"]
    outsider = next(u for u in org.objects("org_users")
                    if u["id"] not in {m.id for m in admin(org).projects.users.list(pid)})
    added = admin(org).projects.users.create(pid, user_id=outsider["id"], role="member")
    assert (added.id, added.email) == (outsider["id"], outsider["email"])
    with pytest.raises(openai.NotFoundError):
        admin(org).projects.users.create(pid, user_id="user-nobody", role="member")
    assert admin(org).projects.users.delete(outsider["id"], project_id=pid).deleted


def test_groups_and_invites_round_trip(org):
    group = admin(org).groups.create(name="Auditors")
    assert admin(org).groups.update(group.id, name="External auditors").name == "External auditors"
    assert admin(org).groups.delete(group.id).deleted
    invite = admin(org).invites.create(email="x@acme.example", role="reader",
                                       projects=[{"id": org.objects("projects")[0]["id"], "role": "member"}])
    assert_model(Invite, raw_json(admin(org).invites.with_raw_response.retrieve(invite.id)))
    assert admin(org).invites.delete(invite.id).deleted


def test_a_lagging_audit_log_shows_held_entries_only_once_released_dated_when_made(org):
    started = int(time.time())
    pid = org.objects("projects")[0]["id"]
    org.hold_audit()
    org.edit("project_rate_limits", f"{pid}/rl-gpt-5", max_requests_per_1_minute=10,
             actor={"email": "priya.nair@acme.example", "ip": "198.51.100.23"})
    assert entries_since(org, started) == []
    [late] = org.release_audit()
    assert [e["id"] for e in entries_since(org, started)] == [late["id"]]
    assert started <= late["effective_at"] <= int(time.time())
    status, answer = control(org, {"action": "hold_audit"})
    assert status == 200 and control(org, {"action": "release_audit"})[1]["result"] == []


def test_a_new_project_starts_with_open_settings_and_no_spend_limit(org):
    project = admin(org).projects.create(name="Fraud Review")
    settings = admin(org).projects
    assert settings.model_permissions.retrieve(project.id).mode == "deny_list"
    assert settings.data_retention.retrieve(project.id).type == "organization_default"
    with pytest.raises(openai.NotFoundError):
        settings.spend_limit.retrieve(project.id)


def test_project_keys_are_listed_by_owner_access_as_asked(org):
    pid = org.objects("projects")[0]["id"]
    key = org.objects("project_api_keys")[0]
    org.edit("project_api_keys", f"{pid}/{key['id']}", owner_project_access="inactive")
    listed = lambda **q: [k.id for k in admin(org).projects.api_keys.list(pid, **q)]  # noqa: E731
    assert key["id"] not in listed() and key["id"] not in listed(owner_project_access="active")
    assert key["id"] in listed(owner_project_access="any") and key["id"] in listed(owner_project_access="inactive")
