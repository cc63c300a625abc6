"""The sandbox misbehaving on purpose for every kind, its control endpoint, and its Azure OpenAI path."""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest
from sandbox_helpers import control, http, make_client, raw_json

from watcher.sandbox.server import Sandbox

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
AZURE_VERSION = "2025-04-01-preview"


def azure_client(sb: Sandbox, api_key: str | None = None) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=sb.azure_endpoint, api_key=api_key or sb.api_key,
                              api_version=AZURE_VERSION, max_retries=0)


# --- quirks on every kind ---------------------------------------------------------------------------


def test_omit_has_more_leaves_it_out_of_every_page():
    with Sandbox(vector_stores=30) as sb:
        sb.set_quirk("omit_has_more")
        page = raw_json(make_client(sb).vector_stores.with_raw_response.list(limit=10))
        assert "has_more" not in page and len(page["data"]) == 10 and page["last_id"]


@pytest.mark.parametrize("limit", [5, 100])
def test_fixed_page_20_serves_twenty_whatever_the_limit(limit):
    with Sandbox(skills=30) as sb:
        sb.set_quirk("fixed_page_20")
        page = raw_json(make_client(sb).skills.with_raw_response.list(limit=limit))
        assert len(page["data"]) == 20 and page["has_more"] is True


def test_ignore_limit_serves_the_whole_collection_in_one_page():
    with Sandbox(webhook_endpoints=30) as sb:
        sb.set_quirk("ignore_limit")
        page = raw_json(make_client(sb).webhooks.with_raw_response.list(limit=5))
        assert len(page["data"]) == 30 and page["has_more"] is False


def test_timestamps_ms_multiplies_every_timestamp_of_the_kind(sandbox):
    sandbox.set_quirk("timestamps_ms")
    store = sandbox.objects("vector_stores")[0]
    served = raw_json(make_client(sandbox).vector_stores.with_raw_response.retrieve(store["id"]))
    assert served["created_at"] == store["created_at"] * 1000
    assert served["last_active_at"] == store["last_active_at"] * 1000


def test_nulls_for_empty_applies_to_the_newer_kinds(sandbox):
    vault = sandbox.add("vaults", metadata={}, name=None)
    sandbox.set_quirk("nulls_for_empty")
    served = raw_json(make_client(sandbox).beta.agents.vaults.with_raw_response.retrieve(vault["id"]))
    assert served["metadata"] is None and served["name"] is None


def test_stuck_cursor_on_a_per_parent_kind():
    with Sandbox(skills=1, versions_per_skill=10) as sb:
        sb.set_quirk("stuck_cursor")
        versions = make_client(sb).skills.versions.with_raw_response
        skill = sb.objects("skills")[0]["id"]
        first = raw_json(versions.list(skill, limit=4))
        again = raw_json(versions.list(skill, limit=4, after=first["last_id"]))
        assert again["data"] == first["data"] and again["has_more"] is True


# --- trickle ----------------------------------------------------------------------------------------


def test_a_trickled_answer_arrives_whole_but_slowly(sandbox):
    vault = sandbox.objects("vaults")[0]
    expected = raw_json(make_client(sandbox).beta.agents.vaults.with_raw_response.retrieve(vault["id"]))
    body = json.dumps(expected, separators=(",", ":")).encode()
    sandbox.set_trickle(16, 0.05)
    started = time.monotonic()
    again = raw_json(make_client(sandbox).beta.agents.vaults.with_raw_response.retrieve(vault["id"]))
    assert again == expected
    assert time.monotonic() - started >= 0.05 * (len(body) // 16 - 1)


def test_a_trickle_slower_than_the_clients_read_timeout_times_out_and_stop_is_prompt():
    sb = Sandbox().start()
    sb.set_trickle(16, 2)
    with pytest.raises(openai.APITimeoutError):
        make_client(sb, timeout=0.5).beta.agents.list()
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 2


def test_trickle_off_again_with_zero_bytes(sandbox):
    sandbox.set_trickle(16, 2)
    sandbox.set_trickle(0, 0)
    assert len(make_client(sandbox, timeout=1).beta.agents.list().data) == 5


def test_reset_faults_clears_the_trickle(sandbox):
    sandbox.set_trickle(1, 5)
    sandbox.reset_faults()
    assert len(make_client(sandbox, timeout=1).skills.list().data) == 2


# --- retire, fail, keys ------------------------------------------------------------------------------


def test_a_retired_child_kind_is_gone_while_its_parent_is_served(sandbox):
    client = make_client(sandbox)
    skill = sandbox.objects("skills")[0]["id"]
    sandbox.retire("skill_versions")
    with pytest.raises(openai.NotFoundError, match="Invalid URL"):
        client.skills.versions.list(skill)
    assert len(client.skills.list().data) == 2
    sandbox.restore_kind("skill_versions")
    assert len(client.skills.versions.list(skill).data) == 3


def test_fail_next_hits_any_kind(sandbox):
    sandbox.fail_next(1, status=503)
    with pytest.raises(openai.InternalServerError):
        make_client(sandbox).beta.agents.automations.list()
    assert len(make_client(sandbox).beta.agents.automations.list().data) == 2


def test_fail_pages_after_first_hits_a_per_parent_kind():
    with Sandbox(skills=1, versions_per_skill=10) as sb:
        sb.fail_pages_after_first(status=502)
        first = make_client(sb).skills.versions.list(sb.objects("skills")[0]["id"], limit=4)
        with pytest.raises(openai.InternalServerError):
            first.get_next_page()


def test_which_key_each_request_used_is_recorded_never_the_key(sandbox):
    make_client(sandbox).skills.list()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=sandbox.url, api_key="sk-wrong", max_retries=0).skills.list()
    azure_client(sandbox).beta.assistants.list()
    http(sandbox, "GET", "/skills")
    used = [h.get("authorization") or h.get("api-key") or "none" for h in sandbox.request_headers]
    assert used == ["project", "wrong", "azure", "none"]
    assert "sk-wrong" not in json.dumps(sandbox.request_headers) and sandbox.api_key not in json.dumps(
        sandbox.request_headers)


def test_no_key_is_unauthorized(sandbox):
    status, body = http(sandbox, "GET", "/skills")
    assert status == 401 and "didn't provide an API key" in body["error"]["message"]


# --- the control endpoint ---------------------------------------------------------------------------


def test_control_adds_a_child_object_under_its_parent(sandbox):
    skill = sandbox.objects("skills")[0]
    status, answer = control(sandbox, {"action": "add", "kind": "skill_versions", "parent": skill["id"],
                                       "fields": {"version": "9", "name": skill["name"], "description": "x",
                                                  "skill_id": skill["id"]}})
    assert status == 200 and answer["result"]["version"] == "9"
    assert make_client(sandbox).skills.versions.retrieve("9", skill_id=skill["id"]).description == "x"


def test_control_edits_removes_and_uses_any_kind(sandbox):
    hook, store = sandbox.objects("webhook_endpoints")[0], sandbox.objects("vector_stores")[0]
    assert control(sandbox, {"action": "edit", "kind": "webhook_endpoints", "id": hook["id"],
                             "fields": {"url": "https://evil.example/x"}})[0] == 200
    assert make_client(sandbox).webhooks.retrieve(hook["id"]).url == "https://evil.example/x"
    status, answer = control(sandbox, {"action": "use", "kind": "vector_stores", "id": store["id"]})
    assert status == 200 and answer["result"]["usage_bytes"] > store["usage_bytes"]
    assert control(sandbox, {"action": "remove", "kind": "vector_stores", "id": store["id"]})[0] == 200
    with pytest.raises(openai.NotFoundError):
        make_client(sandbox).vector_stores.retrieve(store["id"])


def test_control_sets_trickle_and_quirks_and_reports_requests(sandbox):
    assert control(sandbox, {"action": "set_quirk", "name": "ignore_limit"})[0] == 200
    assert len(make_client(sandbox).beta.agents.list(limit=2).data) == 5
    assert control(sandbox, {"action": "set_trickle", "bytes_per_chunk": 64, "seconds_between": 0.01})[0] == 200
    assert len(make_client(sandbox).beta.agents.vaults.list().data) == 2
    status, answer = control(sandbox, {"action": "requests"})
    assert status == 200 and [m for m, _ in answer["result"]] == ["GET", "GET"]
    status, answer = control(sandbox, {"action": "request_headers"})
    assert answer["result"][-1]["authorization"] == "project"


def test_control_on_an_unknown_kind_or_object_is_one_line(sandbox):
    status, answer = control(sandbox, {"action": "get", "kind": "threads", "id": "x"})
    assert status == 400 and "unknown kind 'threads'" in answer["error"]["message"]
    status, answer = control(sandbox, {"action": "get", "kind": "skill_versions", "id": "skill_nope/1"})
    assert status == 400 and "skill_nope/1" in answer["error"]["message"]


def test_control_answers_while_a_trickle_holds_an_api_request(sandbox):
    sandbox.set_trickle(8, 1)
    worker = threading.Thread(target=lambda: _swallow(lambda: make_client(sandbox, timeout=3).beta.agents.list()),
                              daemon=True)
    worker.start()
    time.sleep(0.2)
    assert control(sandbox, {"action": "reset_faults"})[0] == 200


def _swallow(call) -> None:
    try:
        call()
    except openai.OpenAIError:
        pass


# --- Azure OpenAI -----------------------------------------------------------------------------------


def test_azure_client_lists_retrieves_and_updates_the_same_assistants():
    with Sandbox(assistants=25) as sb:
        client = azure_client(sb)
        listed = [a.id for a in client.beta.assistants.list(limit=10)]
        assert sorted(listed) == sorted(o["id"] for o in sb.objects("assistants"))
        assert sb.count_requests("GET", "/openai/assistants?") == 3
        assert all("api-version=2025-04-01-preview" in path for _, path in sb.requests)
        first = listed[0]
        assert client.beta.assistants.retrieve(first).name == sb.get("assistants", first)["name"]
        client.beta.assistants.update(first, instructions="Set on Azure.")
        assert make_client(sb).beta.assistants.retrieve(first).instructions == "Set on Azure."


def test_azure_without_api_version_is_resource_not_found(sandbox):
    status, body = http(sandbox, "GET", "/openai/assistants", {"api-key": sandbox.api_key,
                                                               "OpenAI-Beta": "assistants=v2"},
                        root=sandbox.azure_endpoint)
    assert status == 404 and body["error"]["message"] == "Resource not found"


def test_azure_with_a_wrong_key_is_unauthorized(sandbox):
    with pytest.raises(openai.AuthenticationError, match="Access denied"):
        azure_client(sandbox, api_key="not-the-key").beta.assistants.list()


def test_azure_serves_only_the_kinds_the_registry_says_it_serves(sandbox):
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(GET /openai/agents\)"):
        azure_client(sandbox).beta.agents.list()


def test_a_bearer_key_on_the_azure_path_is_refused(sandbox):
    status, _ = http(sandbox, "GET", f"/openai/assistants?api-version={AZURE_VERSION}",
                     {"Authorization": f"Bearer {sandbox.api_key}", "OpenAI-Beta": "assistants=v2"},
                     root=sandbox.azure_endpoint)
    assert status == 401
