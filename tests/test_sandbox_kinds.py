"""Every project-key kind of the registry, served by the sandbox and driven through the real SDK."""

from __future__ import annotations

import json

import openai
import pytest
from sandbox_helpers import MODELS, RESOURCES, assert_valid, control, http, make_client, raw_json, skill_md

from watcher.kinds import registry
from watcher.kinds.base import PROJECT
from watcher.sandbox.server import Sandbox

TOP_LEVEL = ["assistants", "agents", "skills", "webhook_endpoints", "vector_stores", "agent_environments",
             "agent_automations", "vaults"]
ALL_COUNTS = {name: 0 for name in TOP_LEVEL}

# client.beta.assistants is deprecated in the SDK; these tests exercise it on purpose
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def only(kind: str, n: int, **extra) -> Sandbox:
    """A sandbox with n objects of one kind and none of the others (but what `extra` adds)."""
    return Sandbox(**{**ALL_COUNTS, kind: n, **extra})


def test_every_project_kind_of_the_registry_is_served_under_its_path():
    project = [k for k in registry.all_kinds() if k.key == PROJECT]
    assert {k.name for k in project} == set(TOP_LEVEL) | {"skill_versions"}
    with Sandbox() as sb:
        for kind in project:
            parent = sb.objects(kind.parent)[0]["id"] if kind.parent else None
            headers = {"Authorization": f"Bearer {sb.api_key}", **({"OpenAI-Beta": kind.beta} if kind.beta else {})}
            status, page = http(sb, "GET", kind.list_path(parent), headers)
            assert status == 200, (kind.name, page)
            assert page["data"] and all(assert_valid(kind.name, o) is None for o in page["data"])


# --- listing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TOP_LEVEL)
def test_the_sdk_pages_through_every_object_of_a_kind(kind):
    with only(kind, 45) as sb:
        listed = [o.id for o in RESOURCES[kind](make_client(sb)).list(limit=20)]
        assert sorted(listed) == sorted(o["id"] for o in sb.objects(kind)) and len(set(listed)) == 45
        path = registry.get(kind).list_path()
        assert sb.count_requests("GET", f"/v1{path}?") == 3


@pytest.mark.parametrize("kind", TOP_LEVEL)
def test_every_page_validates_strictly_against_the_sdk_model(kind):
    with only(kind, 30, seed=5) as sb:
        resource, after, seen = RESOURCES[kind](make_client(sb)).with_raw_response, None, 0
        while True:
            page = raw_json(resource.list(limit=12, **({"after": after} if after else {})))
            assert page["object"] == "list" and page["first_id"] == page["data"][0]["id"]
            for obj in page["data"]:
                assert_valid(kind, obj)
            seen += len(page["data"])
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert seen == 30


def test_skill_versions_page_under_each_skill():
    with Sandbox(skills=3, versions_per_skill=25) as sb:
        client = make_client(sb)
        for skill in sb.objects("skills"):
            versions = list(client.skills.versions.list(skill["id"], limit=10, order="asc"))
            assert [v.version for v in versions] == [str(n) for n in range(1, 26)]
            assert {v.skill_id for v in versions} == {skill["id"]}
            for version in versions:
                assert_valid("skill_versions", version.model_dump(mode="json", exclude_unset=True))
        assert sb.count_requests("GET", "/v1/skills/") == 9


def test_vault_credentials_page_under_each_vault_and_validate():
    with Sandbox(vaults=2, vault_credentials=3) as sb:
        client = make_client(sb)
        for vault in sb.objects("vaults"):
            page = raw_json(client.beta.agents.vaults.credentials.with_raw_response.list(vault["id"]))
            assert len(page["data"]) == 3 and {c["vault_id"] for c in page["data"]} == {vault["id"]}
            for credential in page["data"]:
                assert_valid("vault_credentials", credential)


def test_a_kind_without_order_pages_newest_first(sandbox):
    ids = [o["id"] for o in sandbox.objects("webhook_endpoints")]
    assert [w.id for w in make_client(sandbox).webhooks.list()] == ids[::-1]


def test_environments_list_filters_by_type():
    with only("agent_environments", 8) as sb:
        hosted = [e for e in sb.objects("agent_environments") if e["type"] == "openai_hosted"]
        listed = make_client(sb).beta.agents.environments.list(type="openai_hosted")
        assert sorted(e.id for e in listed) == sorted(e["id"] for e in hosted) and len(hosted) < 8


def test_a_missing_parent_is_not_found(sandbox):
    with pytest.raises(openai.NotFoundError, match="No skill found with id 'skill_nope'"):
        make_client(sandbox).skills.versions.list("skill_nope")


@pytest.mark.parametrize("kind", [k for k in TOP_LEVEL + ["skill_versions"] if k != "agent_automations"])
def test_the_nulls_for_empty_quirk_nulls_only_fields_the_sdk_marks_optional(kind):
    from watcher.sandbox.catalog import FAMILIES

    fields = MODELS[kind].model_fields
    optional = {f.alias or name for name, f in fields.items() if not f.is_required()}
    assert set(FAMILIES[kind].optional) <= optional


# --- seeding ------------------------------------------------------------------------------------


def test_default_counts_seed_two_of_each_newer_kind_and_three_versions_per_skill():
    sb = Sandbox()
    assert {k: len(sb.objects(k)) for k in TOP_LEVEL} == {
        "assistants": 5, "agents": 5, "skills": 2, "webhook_endpoints": 2, "vector_stores": 2,
        "agent_environments": 2, "agent_automations": 2, "vaults": 2}
    assert len(sb.objects("skill_versions")) == 6


@pytest.mark.parametrize("kind", TOP_LEVEL + ["skill_versions", "vault_credentials"])
def test_seed_is_deterministic_for_every_kind(kind):
    assert Sandbox(seed=4).objects(kind) == Sandbox(seed=4).objects(kind)


def test_an_unknown_kind_count_is_refused():
    with pytest.raises(ValueError, match="unknown kind 'skillz'"):
        Sandbox(skillz=3)


def test_seeded_skills_point_at_their_versions():
    sb = Sandbox(skills=6, versions_per_skill=4)
    for skill in sb.objects("skills"):
        assert skill["latest_version"] == "4"
        assert sb.get("skill_versions", f"{skill['id']}/{skill['default_version']}")["skill_id"] == skill["id"]
    assert {s["default_version"] for s in sb.objects("skills")} == {"3", "4"}, "some skills pin an older version"


def test_some_seeded_agents_carry_an_mcp_bearer_token_and_some_assistants_a_metadata_token():
    sb = Sandbox(assistants=10, agents=8)
    tokens = [o["metadata"]["zendesk_api_token"] for o in sb.objects("assistants") if "zendesk_api_token" in o["metadata"]]
    assert len(tokens) == 2 and all(t.startswith("zd_live_") for t in tokens)
    agent_headers = [t["transport"]["headers"] for o in sb.objects("agents") for t in o["tools"] if t["type"] == "mcp"]
    assert any(h.get("Authorization", "").startswith("Bearer ") for h in agent_headers)


# --- changes through the API ----------------------------------------------------------------------


def test_agent_and_webhook_updates_advance_updated_at(sandbox):
    client = make_client(sandbox)
    agent, hook = sandbox.objects("agents")[0], sandbox.objects("webhook_endpoints")[0]
    assert client.beta.agents.update(agent["id"], name="Renamed").updated_at > agent["updated_at"]
    assert client.webhooks.update(hook["id"], name="Renamed").updated_at > hook["updated_at"]


def test_a_webhook_update_that_changes_nothing_keeps_updated_at(sandbox):
    hook = sandbox.objects("webhook_endpoints")[0]
    same = make_client(sandbox).webhooks.update(hook["id"], name=hook["name"], url=hook["url"])
    assert same.updated_at == hook["updated_at"]


@pytest.mark.parametrize("kind", ["skills", "skill_versions", "vector_stores", "agent_environments",
                                  "agent_automations", "vaults"])
def test_kinds_without_updated_at_never_grow_one(kind):
    sb = Sandbox()
    obj = sb.objects(kind)[0]
    address = f"{obj['skill_id']}/{obj['version']}" if kind == "skill_versions" else obj["id"]
    assert "updated_at" not in sb.edit(kind, address, name="edited out of band")


def test_a_webhook_secret_is_told_once(sandbox):
    client = make_client(sandbox)
    created = raw_json(client.webhooks.with_raw_response.create(
        name="Ledger", url="https://ledger.acme.example/hooks", event_types=["batch.completed"]))
    secret = created["signing_secret"]
    assert secret.startswith("whsec_") and created["signing_secret_hint"].endswith(secret[-4:])
    assert_valid("webhook_endpoints", {k: v for k, v in created.items() if k != "signing_secret"})
    listed = client.webhooks.with_raw_response.list().text
    retrieved = client.webhooks.with_raw_response.retrieve(created["id"]).text
    assert secret not in listed + retrieved + json.dumps(sandbox.objects("webhook_endpoints"))
    assert "signing_secret\"" not in listed + retrieved


def test_rotating_a_webhook_secret_changes_its_hint_and_updated_at(sandbox):
    hook = sandbox.objects("webhook_endpoints")[1]
    rotated = make_client(sandbox).webhooks.rotate_secret(hook["id"])
    assert rotated.signing_secret.startswith("whsec_")
    assert rotated.signing_secret_hint != hook["signing_secret_hint"] and rotated.updated_at > hook["updated_at"]


def test_a_webhook_endpoint_must_be_https(sandbox):
    with pytest.raises(openai.BadRequestError, match="HTTPS"):
        make_client(sandbox).webhooks.create(name="x", url="http://plain.example/h", event_types=["batch.failed"])


def test_a_new_skill_version_moves_latest_but_not_default(sandbox):
    client = make_client(sandbox)
    skill = client.skills.create(files=skill_md("triage", "Sorts tickets."))
    assert (skill.latest_version, skill.default_version, skill.name) == ("1", "1", "triage")
    version = client.skills.versions.create(skill.id, files=skill_md("triage", "Sorts tickets, faster."))
    assert version.version == "2" and version.description == "Sorts tickets, faster."
    assert_valid("skill_versions", version.model_dump(mode="json", exclude_unset=True))
    after = client.skills.retrieve(skill.id)
    assert (after.latest_version, after.default_version) == ("2", "1")
    assert client.skills.update(skill.id, default_version="2").default_version == "2"


def test_a_version_created_as_default_is_live_at_once(sandbox):
    client = make_client(sandbox)
    skill = sandbox.objects("skills")[0]
    version = client.skills.versions.create(skill["id"], files=skill_md(skill["name"], "v-next"), default=True)
    assert client.skills.retrieve(skill["id"]).default_version == version.version


def test_a_skill_upload_can_be_a_zip(sandbox, tmp_path):
    import zipfile

    archive = tmp_path / "skill.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pdf-tools/SKILL.md", "---\nname: pdf-tools\ndescription: Reads PDFs.\n---\n")
    skill = make_client(sandbox).skills.create(files=archive.open("rb"))
    assert (skill.name, skill.description) == ("pdf-tools", "Reads PDFs.")


def test_a_skill_without_skill_md_is_bad_request(sandbox):
    with pytest.raises(openai.BadRequestError, match="SKILL.md"):
        make_client(sandbox).skills.create(files=[("README.md", b"hello")])


def test_the_default_version_cannot_be_deleted_and_a_skill_takes_its_versions_along(sandbox):
    client = make_client(sandbox)
    skill = sandbox.objects("skills")[0]
    with pytest.raises(openai.BadRequestError, match="default version"):
        client.skills.versions.delete(skill["default_version"], skill_id=skill["id"])
    assert client.skills.delete(skill["id"]).deleted
    with pytest.raises(openai.NotFoundError):
        client.skills.versions.list(skill["id"])


def test_setting_a_default_version_that_does_not_exist_is_bad_request(sandbox):
    with pytest.raises(openai.BadRequestError, match="has no version '99'"):
        make_client(sandbox).skills.update(sandbox.objects("skills")[0]["id"], default_version="99")


def test_using_a_vector_store_moves_only_its_usage_fields(sandbox):
    store = sandbox.objects("vector_stores")[1]
    used = sandbox.use("vector_stores", store["id"])
    moved = {k for k in store if store[k] != used[k]}
    assert moved <= {"last_active_at", "usage_bytes", "file_counts", "expires_at"}
    assert {"last_active_at", "usage_bytes", "file_counts"} <= moved
    assert used["last_active_at"] > store["last_active_at"] and used["usage_bytes"] > store["usage_bytes"]


def test_editing_a_vector_store_leaves_its_usage_alone(sandbox):
    store = sandbox.objects("vector_stores")[0]
    edited = make_client(sandbox).vector_stores.update(store["id"], name="Renamed store")
    assert (edited.last_active_at, edited.usage_bytes) == (store["last_active_at"], store["usage_bytes"])


def test_use_is_refused_for_a_kind_that_has_no_usage(sandbox):
    with pytest.raises(ValueError, match="changes nothing"):
        sandbox.use("agents", sandbox.objects("agents")[0]["id"])


def test_crud_round_trip_for_the_agent_platform(sandbox):
    client = make_client(sandbox)
    env = client.beta.agents.environments.create(environment={
        "type": "openai_hosted", "files": [{"type": "file_id", "file_id": "file-abc", "path": "/w/a.csv"}]})
    assert_valid("agent_environments", raw_json(client.beta.agents.environments.with_raw_response.retrieve(env.id)))
    auto = client.beta.agents.automations.create(
        type="periodic", name="Digest", expression="0 8 * * 1", timezone="UTC",
        target={"type": "new_session", "environment": {"type": "none"},
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Go"}]}]})
    assert client.beta.agents.automations.pause(auto.id).status == "paused"
    renamed = raw_json(client.beta.agents.automations.with_raw_response.update(auto.id, name="Weekly digest"))
    assert_valid("agent_automations", renamed)
    assert renamed["name"] == "Weekly digest" and renamed["status"] == "paused"
    vault = client.beta.agents.vaults.create(name="Ops", metadata={"env": "prod"})
    assert client.beta.agents.vaults.update(vault.id, name="Ops vault").name == "Ops vault"
    assert client.beta.agents.vaults.delete(vault.id).deleted
    assert client.beta.agents.automations.delete(auto.id).deleted


def test_an_assistant_takes_an_mcp_tool_as_compatible_servers_do(sandbox):
    tool = {"type": "mcp", "server_label": "zendesk", "server_url": "https://mcp.zendesk.acme.example/mcp",
            "headers": {"Authorization": "Bearer zd_live_x"}, "authorization": "oauth2-y", "require_approval": "never"}
    created = raw_json(make_client(sandbox).beta.assistants.with_raw_response.create(model="gpt-4o", tools=[tool]))
    assert created["tools"] == [tool]
    assert_valid("assistants", created)


@pytest.mark.parametrize("kind", TOP_LEVEL)
def test_objects_created_through_the_sdk_validate_strictly(sandbox, kind):
    client = make_client(sandbox)
    created = {
        "assistants": lambda: client.beta.assistants.with_raw_response.create(model="gpt-4o"),
        "agents": lambda: client.beta.agents.with_raw_response.create(model="gpt-5"),
        "skills": lambda: client.skills.with_raw_response.create(files=skill_md("a", "b")),
        "webhook_endpoints": lambda: client.webhooks.with_raw_response.create(
            name="n", url="https://h.example/x", event_types=["video.failed"]),
        "vector_stores": lambda: client.vector_stores.with_raw_response.create(name="Docs", file_ids=["file-1"]),
        "agent_environments": lambda: client.beta.agents.environments.with_raw_response.create(
            environment={"type": "openai_hosted"}),
        "agent_automations": lambda: client.beta.agents.automations.with_raw_response.create(
            type="once", name="Once", run_at=1_900_000_000,
            target={"type": "existing_session", "session_id": "sess_1", "instructions": "Go on."}),
        "vaults": lambda: client.beta.agents.vaults.with_raw_response.create(name="V"),
    }[kind]()
    body = raw_json(created)
    body.pop("signing_secret", None)
    assert_valid(kind, body)
    assert sandbox.objects(kind)[-1]["id"] == body["id"], "a new object lists last in ascending order"


def test_a_credential_secret_never_comes_back(sandbox):
    client = make_client(sandbox)
    vault = sandbox.objects("vaults")[0]
    secret = "lin_api_THIS-IS-THE-SECRET-VALUE"
    created = client.beta.agents.vaults.credentials.with_raw_response.create(
        vault["id"], name="linear", auth={"type": "static_bearer", "token": secret,
                                          "mcp_server_url": "https://mcp.linear.app/mcp"})
    cred = raw_json(created)
    rotated = client.beta.agents.vaults.credentials.with_raw_response.update(
        cred["id"], vault_id=vault["id"], auth={"type": "static_bearer", "token": secret + "-2"})
    answers = [created.text, rotated.text,
               client.beta.agents.vaults.credentials.with_raw_response.list(vault["id"]).text,
               client.beta.agents.vaults.credentials.with_raw_response.retrieve(cred["id"], vault_id=vault["id"]).text,
               json.dumps(sandbox.objects("vault_credentials")),
               json.dumps(control(sandbox, {"action": "get", "kind": "vault_credentials",
                                            "id": f"{vault['id']}/{cred['id']}"}))]
    assert all(secret not in answer for answer in answers)
    assert_valid("vault_credentials", raw_json(rotated))


# --- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [k.name for k in registry.all_kinds() if k.key == PROJECT and k.beta])
def test_the_beta_header_each_kind_needs_is_required(sandbox, kind):
    spec = registry.get(kind)
    parent = sandbox.objects(spec.parent)[0]["id"] if spec.parent else None
    status, body = http(sandbox, "GET", spec.list_path(parent), {"Authorization": f"Bearer {sandbox.api_key}"})
    assert status == 400 and f"OpenAI-Beta: {spec.beta}" in body["error"]["message"]


def test_kinds_without_a_beta_header_need_none(sandbox):
    plain = [k.name for k in registry.all_kinds() if k.key == PROJECT and k.beta is None and k.parent is None]
    assert "skills" in plain and "webhook_endpoints" in plain
    for name in plain:
        status, _ = http(sandbox, "GET", registry.get(name).path, {"Authorization": f"Bearer {sandbox.api_key}"})
        assert status == 200, name

