"""Every kind of the registry, listed through the real SDK against the sandbox and recorded."""

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.config.model import parse_config
from watcher.kinds import registry
from watcher.kinds.base import PROJECT
from watcher.poll.run import poll_target
from watcher.record.models import Event, Resource
from watcher.sandbox.server import Sandbox

PROJECT_KINDS = [k.name for k in registry.all_kinds() if k.key == PROJECT]


@pytest.fixture
def account():
    with Sandbox(assistants=3, agents=3, skills=3, webhook_endpoints=2, vector_stores=3, agent_environments=2,
                 agent_automations=2, vaults=2, versions_per_skill=2) as sandbox:
        yield sandbox


@pytest.fixture
def every_kind(account, make_target):
    return make_target(account.url, key=account.api_key)


def drift(engine) -> list[tuple]:
    with Session(engine) as session:
        return [(e.resource.kind, e.change, e.paths, e.severity) for e in session.scalars(select(Event).order_by(Event.id))]


def test_a_project_key_watches_every_project_kind_by_default(every_kind):
    assert every_kind.kinds == PROJECT_KINDS


def test_every_kind_is_listed_and_recorded_as_a_baseline(engine, account, every_kind):
    outcomes = {o.kind: o for o in poll_target(engine, every_kind)}
    assert {k: (o.status, o.baseline) for k, o in outcomes.items()} == {k: ("complete", True) for k in PROJECT_KINDS}
    for kind in PROJECT_KINDS:
        assert outcomes[kind].objects == len(account.objects(kind)), kind
    with Session(engine) as session:
        versions = session.scalars(select(Resource.remote_id).where(Resource.kind == "skill_versions")).all()
    skill = account.objects("skills")[0]
    assert f"{skill['id']}/1" in versions and len(versions) == 3 * 2


def test_skill_versions_reuse_the_skills_listing_of_the_same_poll(engine, account, every_kind):
    poll_target(engine, every_kind)
    assert account.count_requests("GET", "/v1/skills?") == 1  # not listed a second time for its versions


def test_a_webhook_endpoints_url_change_is_high(engine, account, every_kind):
    poll_target(engine, every_kind)
    endpoint = account.objects("webhook_endpoints")[0]
    account.edit("webhook_endpoints", endpoint["id"], url="https://attacker.example.net/hook")
    poll_target(engine, every_kind)
    assert drift(engine) == [("webhook_endpoints", "modified", ["url"], "high")]


def test_a_new_skill_version_is_created_and_the_default_version_change_is_high(engine, account, every_kind):
    poll_target(engine, every_kind)
    skill = account.objects("skills")[0]
    number = str(int(skill["latest_version"]) + 1)
    account.add("skill_versions", parent=skill["id"], description="Refund policy, v3", name=skill["name"],
                skill_id=skill["id"], version=number)
    account.edit("skills", skill["id"], default_version=number, latest_version=number)
    poll_target(engine, every_kind)
    assert sorted(drift(engine)) == [
        ("skill_versions", "created", [], "low"),
        ("skills", "modified", ["default_version", "latest_version"], "high"),
    ]


def test_using_a_vector_store_is_not_drift(engine, account, every_kind):
    poll_target(engine, every_kind)
    for store in account.objects("vector_stores"):
        account.use("vector_stores", store["id"])
    poll_target(engine, every_kind)
    assert drift(engine) == []


def test_a_vaults_credentials_are_never_requested(engine, account, every_kind):
    poll_target(engine, every_kind)
    assert not any("/credentials" in path for _method, path in account.requests)


def test_a_kind_the_server_does_not_serve_costs_no_request_after_its_first_poll(engine, account, every_kind):
    account.retire("vaults")
    poll_target(engine, every_kind)
    poll_target(engine, every_kind)
    assert account.count_requests("GET", "/v1/vaults") == 1


# --- Azure OpenAI --------------------------------------------------------------------------------------


@pytest.fixture
def azure(account, monkeypatch):
    monkeypatch.setenv("AZ_KEY", account.api_key)
    return parse_config(f'[[targets]]\nname = "azure-eu"\nprovider = "azure"\nazure_endpoint = '
                        f'"{account.azure_endpoint}"\napi_version = "2025-04-01-preview"\napi_key_env = "AZ_KEY"\n'
                        ).targets[0]


def test_an_azure_target_lists_its_assistants_through_azure_openai(engine, account, azure):
    [outcome] = poll_target(engine, azure)
    assert (outcome.kind, outcome.status, outcome.objects) == ("assistants", "complete", 3)
    azure_requests = [h for h in account.request_headers if h.get("used") == "azure" or "api-key" in h]
    assert azure_requests and all("authorization" not in h for h in azure_requests)
    assert all("api-version=2025-04-01-preview" in path for _m, path in account.requests if "/openai/" in path)


def test_drift_and_restore_work_on_an_azure_target(engine, account, azure, tmp_path, monkeypatch):
    from watcher.apply import restore_version
    from watcher.config.model import Config

    poll_target(engine, azure)
    victim = account.objects("assistants")[0]
    account.edit("assistants", victim["id"], instructions="tampered on Azure")
    [outcome] = poll_target(engine, azure)
    assert [(e.change, e.paths) for e in outcome.events] == [("modified", ["instructions"])]
    config = Config(targets=[azure])
    result = restore_version(engine, config, victim["id"], 1, by="ops")
    assert result.version == 3 and account.get("assistants", victim["id"])["instructions"] == victim["instructions"]
    assert poll_target(engine, azure)[0].events == []
