"""The sandbox API, driven through the real openai SDK over loopback HTTP."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import openai
import pydantic
import pytest
from conftest import free_port
from sandbox_helpers import assert_valid, control, make_client, raw_json

from watcher.sandbox.faults import QUIRKS
from watcher.sandbox.server import Sandbox
from watcher.sandbox.wire import ABSENT, EPOCH

# client.beta.assistants is deprecated in the SDK; this module exercises it on purpose
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ID_PATTERN = {"assistants": r"asst_[A-Za-z0-9]{24}", "agents": r"agent_[A-Za-z0-9]{24}"}


def resource(client: openai.OpenAI, kind: str):
    return client.beta.assistants if kind == "assistants" else client.beta.agents


def list_page(client, kind: str, **params) -> dict:
    return raw_json(resource(client, kind).with_raw_response.list(**params))


def list_all_ids(client, kind: str, **params) -> list[str]:
    return [o.id for o in resource(client, kind).list(**params)]


# --- shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["assistants", "agents"])
def test_every_list_page_validates_strictly(kind):
    with Sandbox(assistants=60, agents=60, seed=3) as sb:
        client = make_client(sb)
        after, seen = None, 0
        while True:
            page = list_page(client, kind, limit=25, **({"after": after} if after else {}))
            for obj in page["data"]:
                assert_valid(kind, obj)
            seen += len(page["data"])
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert seen == 60


def test_assistant_crud_responses_validate_strictly(sandbox):
    assistants = make_client(sandbox).beta.assistants.with_raw_response
    created = raw_json(assistants.create(
        model="gpt-4o", name="Audit Probe", instructions="Be brief.",
        tools=[{"type": "file_search"}, {"type": "code_interpreter"},
               {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}],
        tool_resources={"code_interpreter": {"file_ids": ["file-abc"]}}, metadata={"team": "qa"}))
    assert_valid("assistants", created)
    assert_valid("assistants", raw_json(assistants.retrieve(created["id"])))
    modified = raw_json(assistants.update(created["id"], instructions="Be briefer.", temperature=0.5))
    assert_valid("assistants", modified)
    assert modified["instructions"] == "Be briefer." and modified["temperature"] == 0.5
    deleted = raw_json(assistants.delete(created["id"]))
    assert deleted == {"id": created["id"], "object": "assistant.deleted", "deleted": True}


def test_agent_crud_responses_validate_strictly(sandbox):
    agents = make_client(sandbox).beta.agents.with_raw_response
    created = raw_json(agents.create(
        model="gpt-5", name="Audit Probe", tools=[
            {"type": "function", "name": "ping", "description": "Ping.", "parameters": {"type": "object"}},
            {"type": "web_search"},
            {"type": "mcp", "server_label": "crm", "transport": {
                "type": "http", "server_url": "https://mcp.example/mcp", "headers": {}}}]))
    assert_valid("agents", created)
    assert_valid("agents", raw_json(agents.retrieve(created["id"])))
    modified = raw_json(agents.update(created["id"], reasoning={"effort": "high"}, metadata={"a": "b"}))
    assert_valid("agents", modified)
    assert modified["reasoning"] == {"effort": "high", "summary": None}
    deleted = raw_json(agents.delete(created["id"]))
    assert deleted == {"id": created["id"], "object": "agent.deleted", "deleted": True}


def test_agent_create_fills_api_defaults(sandbox):
    agent = make_client(sandbox).beta.agents.create(model="gpt-5")
    body = sandbox.get("agents", agent.id)
    assert body["metadata"] == {} and body["tools"] == [] and body["name"] is None
    assert body["reasoning"] == {"effort": None, "summary": None}
    assert body["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert body["multi_agent"] == {"enabled": False, "max_concurrent_subagents": None}
    assert body["service_tier"] == "auto"
    assert body["created_at"] == body["updated_at"]


def test_assistant_create_fills_api_defaults(sandbox):
    assistant = make_client(sandbox).beta.assistants.create(model="gpt-4o")
    body = sandbox.get("assistants", assistant.id)
    assert body["tools"] == [] and body["metadata"] == {} and body["tool_resources"] == {}
    assert body["response_format"] == "auto" and body["temperature"] == 1.0 and body["top_p"] == 1.0


def test_created_objects_sort_after_seeded_ones(sandbox):
    client = make_client(sandbox)
    new = client.beta.agents.create(model="gpt-5", name="Newest")
    assert list_all_ids(client, "agents", order="desc")[0] == new.id
    assert sandbox.objects("agents")[-1]["id"] == new.id


def test_create_without_model_is_bad_request(sandbox):
    with pytest.raises(openai.BadRequestError, match="model"):
        make_client(sandbox).beta.agents.create(extra_body={"name": "x"}, model=openai.omit)


def test_metadata_over_sixteen_keys_is_bad_request(sandbox):
    oid = sandbox.objects("agents")[0]["id"]
    with pytest.raises(openai.BadRequestError, match="at most 16"):
        make_client(sandbox).beta.agents.update(oid, metadata={f"k{i}": "v" for i in range(17)})


# --- seeding ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["assistants", "agents"])
def test_seeded_ids_are_well_formed_and_ascend_with_created_at(kind):
    objects = Sandbox(assistants=200, agents=200).objects(kind)
    ids = [o["id"] for o in objects]
    assert all(re.fullmatch(ID_PATTERN[kind], i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 200
    created = [o["created_at"] for o in objects]
    assert created[0] > EPOCH and all(a < b for a, b in zip(created, created[1:]))


def test_seed_is_deterministic():
    assert Sandbox(seed=7).objects("agents") == Sandbox(seed=7).objects("agents")
    assert Sandbox(seed=7).objects("assistants") != Sandbox(seed=8).objects("assistants")


def test_seeded_content_is_realistic():
    objects = Sandbox(assistants=40).objects("assistants")
    lengths = [len(o["instructions"]) for o in objects]
    assert any(5_000 <= n <= 20_500 for n in lengths), "a few objects carry long instructions"
    assert sorted(lengths)[len(lengths) // 2] < 3_500, "most instructions stay short"
    assert any("hwm" in o["metadata"] for o in objects)
    tool_types = {t["type"] for o in objects for t in o["tools"]}
    assert tool_types == {"function", "file_search", "code_interpreter"}, "the Assistants API's tools, no others"
    assert any(isinstance(o["response_format"], dict) for o in objects)


def test_seeding_ten_thousand_assistants_gives_unique_ids_and_names():
    objects = Sandbox(assistants=10_000, agents=0).objects("assistants")
    assert len(objects) == 10_000
    assert len({o["id"] for o in objects}) == 10_000
    assert len({o["name"] for o in objects}) == 10_000


# --- listing ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["assistants", "agents"])
def test_limit_100_over_250_objects_takes_three_requests(kind):
    with Sandbox(assistants=250, agents=250) as sb:
        ids = list_all_ids(make_client(sb), kind, limit=100)
        assert sb.count_requests("GET", f"/v1/{kind}") == 3
        assert sorted(ids) == sorted(o["id"] for o in sb.objects(kind))
        assert len(set(ids)) == 250


def test_default_order_is_newest_first(sandbox):
    page = list_page(make_client(sandbox), "agents")
    expected = [o["id"] for o in sandbox.objects("agents")][::-1]
    assert [o["id"] for o in page["data"]] == expected
    assert page["first_id"] == expected[0] and page["last_id"] == expected[-1]
    assert page["has_more"] is False


def test_order_asc_pages_oldest_first():
    with Sandbox(assistants=30) as sb:
        ids = list_all_ids(make_client(sb), "assistants", order="asc", limit=7)
        assert ids == [o["id"] for o in sb.objects("assistants")]


def test_default_limit_is_twenty():
    with Sandbox(agents=30) as sb:
        page = list_page(make_client(sb), "agents")
        assert len(page["data"]) == 20 and page["has_more"] is True


def test_before_cursor_returns_the_objects_just_before_it():
    with Sandbox(assistants=30) as sb:
        ids = [o["id"] for o in sb.objects("assistants")]
        client = make_client(sb)
        asc = list_page(client, "assistants", order="asc", limit=5, before=ids[20])
        assert [o["id"] for o in asc["data"]] == ids[15:20] and asc["has_more"] is True
        desc = list_page(client, "assistants", order="desc", limit=5, before=ids[20])
        assert [o["id"] for o in desc["data"]] == ids[25:20:-1] and desc["has_more"] is True


def test_deleted_after_cursor_still_pages_from_its_position():
    with Sandbox(agents=10) as sb:
        ids = [o["id"] for o in sb.objects("agents")]
        sb.remove("agents", ids[4])
        page = list_page(make_client(sb), "agents", order="asc", limit=3, after=ids[4])
        assert [o["id"] for o in page["data"]] == ids[5:8]


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_out_of_range_is_bad_request(sandbox, limit):
    with pytest.raises(openai.BadRequestError, match="limit"):
        make_client(sandbox).beta.agents.list(limit=limit)


def test_unknown_order_is_bad_request(sandbox):
    with pytest.raises(openai.BadRequestError, match="Supported values are: 'asc' and 'desc'") as info:
        make_client(sandbox).beta.agents.list(extra_query={"order": "sideways"})
    assert info.value.body["param"] == "order"


# --- errors -----------------------------------------------------------------------------


def test_bad_key_is_authentication_error_without_echoing_the_key(sandbox):
    client = openai.OpenAI(base_url=sandbox.url, api_key="sk-wrong-secret", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.beta.agents.list()
    assert info.value.body["code"] == "invalid_api_key"
    assert "sk-wrong-secret" not in json.dumps(info.value.body)


@pytest.mark.parametrize("kind", ["assistants", "agents"])
def test_unknown_id_is_not_found(sandbox, kind):
    api = resource(make_client(sandbox), kind)
    with pytest.raises(openai.NotFoundError):
        api.retrieve("nope_123")
    with pytest.raises(openai.NotFoundError):
        api.update("nope_123", name="x")
    with pytest.raises(openai.NotFoundError):
        api.delete("nope_123")


def test_unknown_route_is_not_found_with_openai_body(sandbox):
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(GET /v1/threads\)"):
        make_client(sandbox).get("/threads", cast_to=object)


def test_invalid_json_body_is_bad_request(sandbox):
    oid = sandbox.objects("agents")[0]["id"]
    request = urllib.request.Request(
        f"{sandbox.url}/agents/{oid}", data=b"{not json", method="POST",
        headers={"Authorization": f"Bearer {sandbox.api_key}", "OpenAI-Beta": "agents=v1"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    assert "JSON" in json.loads(info.value.read())["error"]["message"]


def test_missing_beta_header_is_bad_request(sandbox):
    request = urllib.request.Request(f"{sandbox.url}/assistants",
                                     headers={"Authorization": f"Bearer {sandbox.api_key}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    assert "OpenAI-Beta: assistants=v2" in json.loads(info.value.read())["error"]["message"]


# --- faults -----------------------------------------------------------------------------


def test_fail_next_answers_server_error_then_succeeds(sandbox):
    client = make_client(sandbox)
    sandbox.fail_next(1)
    with pytest.raises(openai.InternalServerError, match="sandbox induced failure"):
        client.beta.assistants.list()
    assert len(client.beta.assistants.list().data) == 5


def test_fail_next_is_absorbed_by_sdk_retries(sandbox):
    client = make_client(sandbox, max_retries=2)
    sandbox.fail_next(2, status=503)
    assert len(client.beta.agents.list().data) == 5
    assert sandbox.count_requests("GET", "/v1/agents") == 3


def test_fail_pages_after_first_breaks_only_later_pages():
    with Sandbox(agents=30) as sb:
        sb.fail_pages_after_first()
        client = make_client(sb)
        first = client.beta.agents.list(limit=10)
        assert len(first.data) == 10
        with pytest.raises(openai.InternalServerError):
            first.get_next_page()


def test_retired_kind_answers_not_found_until_restored(sandbox):
    client = make_client(sandbox)
    sandbox.retire("assistants")
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(GET /v1/assistants\)"):
        client.beta.assistants.list()
    assert len(client.beta.agents.list().data) == 5
    sandbox.restore_kind("assistants")
    assert len(client.beta.assistants.list().data) == 5


def test_latency_delays_every_response(sandbox):
    client = make_client(sandbox)
    sandbox.set_latency(0.2)
    started = time.monotonic()
    client.beta.agents.list()
    assert time.monotonic() - started >= 0.2


def test_reset_faults_clears_everything(sandbox):
    sandbox.fail_next(3)
    sandbox.retire("agents")
    sandbox.set_quirk("stuck_cursor")
    sandbox.set_latency(1)
    sandbox.reset_faults()
    started = time.monotonic()
    assert len(make_client(sandbox).beta.agents.list().data) == 5
    assert time.monotonic() - started < 1


def test_unknown_quirk_is_rejected(sandbox):
    with pytest.raises(ValueError, match="unknown quirk"):
        sandbox.set_quirk("teleport")


# --- quirks (raw pages) -----------------------------------------------------------------


def test_quirk_full_page_has_more_false():
    with Sandbox(agents=10) as sb:
        sb.set_quirk("full_page_has_more_false")
        client = make_client(sb)
        first = list_page(client, "agents", order="asc", limit=4)
        assert len(first["data"]) == 4 and first["has_more"] is False
        rest = list_page(client, "agents", order="asc", limit=4, after=first["last_id"])
        assert len(rest["data"]) == 4, "more objects followed the 'last' page"


def test_quirk_repeat_id():
    with Sandbox(agents=10) as sb:
        sb.set_quirk("repeat_id")
        client = make_client(sb)
        first = list_page(client, "agents", order="asc", limit=4)
        second = list_page(client, "agents", order="asc", limit=4, after=first["last_id"])
        assert second["data"][0]["id"] == first["last_id"]
        ids = [o["id"] for o in sb.objects("agents")]
        assert [o["id"] for o in second["data"]] == ids[3:7]


def test_quirk_stuck_cursor():
    with Sandbox(agents=10) as sb:
        sb.set_quirk("stuck_cursor")
        client = make_client(sb)
        first = list_page(client, "agents", limit=4)
        again = list_page(client, "agents", limit=4, after=first["last_id"])
        assert again["data"] == first["data"] and again["has_more"] is True


def test_quirk_timestamps_ms(sandbox):
    sandbox.set_quirk("timestamps_ms")
    stored = sandbox.objects("agents")[0]
    served = raw_json(make_client(sandbox).beta.agents.with_raw_response.retrieve(stored["id"]))
    assert served["created_at"] == stored["created_at"] * 1000
    assert served["updated_at"] == stored["updated_at"] * 1000
    assert sandbox.get("agents", stored["id"])["created_at"] == stored["created_at"]


def test_quirk_nulls_for_empty(sandbox):
    oid = sandbox.add("assistants", model="gpt-4o", tools=[],
                      tool_resources={"code_interpreter": {"file_ids": []}})["id"]
    sandbox.edit("assistants", oid, metadata={})
    del_key = sandbox.add("assistants", model="gpt-4o")["id"]
    sandbox.edit("assistants", del_key, description=ABSENT)  # a field missing altogether
    sandbox.set_quirk("nulls_for_empty")
    page = list_page(make_client(sandbox), "assistants", limit=2)
    served = {o["id"]: o for o in page["data"]}
    assert served[oid]["tools"] is None and served[oid]["metadata"] is None
    assert served[oid]["tool_resources"] == {"code_interpreter": {"file_ids": None}}
    assert "description" in served[del_key] and served[del_key]["description"] is None


def test_quirks_list_matches_the_documented_names():
    assert set(QUIRKS) == {"full_page_has_more_false", "repeat_id", "stuck_cursor", "timestamps_ms",
                           "nulls_for_empty", "omit_has_more", "fixed_page_20", "ignore_limit", "empty_listing",
                           "null_data"}


# --- out-of-band access and control -----------------------------------------------------


def test_out_of_band_edit_is_served_over_http(sandbox):
    oid = sandbox.objects("assistants")[2]["id"]
    sandbox.edit("assistants", oid, instructions="Changed in the web UI.")
    assert make_client(sandbox).beta.assistants.retrieve(oid).instructions == "Changed in the web UI."


def test_edit_with_absent_drops_the_field(sandbox):
    oid = sandbox.objects("assistants")[0]["id"]
    sandbox.edit("assistants", oid, description=ABSENT)
    assert "description" not in sandbox.get("assistants", oid)


def test_strict_check_catches_undeclared_and_coerced_fields(sandbox):
    good = sandbox.objects("agents")[0]
    assert_valid("agents", good)
    with pytest.raises(AssertionError, match="undeclared"):
        assert_valid("agents", {**good, "tools": good["tools"] + [{"type": "automations", "x": 1}]})
    with pytest.raises(pydantic.ValidationError):
        assert_valid("agents", {**good, "created_at": str(good["created_at"])})


def test_objects_returns_copies(sandbox):
    first = sandbox.objects("agents")[0]
    first["metadata"]["team"] = "tampered"
    assert sandbox.get("agents", first["id"])["metadata"]["team"] != "tampered"


def test_agent_updated_at_increases_on_every_modify(sandbox):
    client = make_client(sandbox)
    agent = client.beta.agents.create(model="gpt-5")
    stamps = [agent.updated_at]
    for i in range(3):  # faster than the clock ticks: each bump is still strictly later
        stamps.append(client.beta.agents.update(agent.id, instructions=f"v{i}").updated_at)
    stamps.append(sandbox.edit("agents", agent.id, name="edited out of band")["updated_at"])
    assert all(a < b for a, b in zip(stamps, stamps[1:]))


def test_control_endpoint_drives_a_fault(sandbox):
    status, answer = control(sandbox, {"action": "fail_next", "n": 1, "status": 502})
    assert status == 200 and answer["ok"] is True
    with pytest.raises(openai.InternalServerError) as info:
        make_client(sandbox).beta.agents.list()
    assert info.value.status_code == 502


def test_control_endpoint_edits_an_object(sandbox):
    oid = sandbox.objects("agents")[1]["id"]
    status, answer = control(sandbox, {"action": "edit", "kind": "agents", "id": oid,
                                       "fields": {"model": "gpt-5-mini"}})
    assert status == 200 and answer["result"]["model"] == "gpt-5-mini"
    assert make_client(sandbox).beta.agents.retrieve(oid).model == "gpt-5-mini"


def test_control_endpoint_rejects_an_unknown_action(sandbox):
    status, answer = control(sandbox, {"action": "explode"})
    assert status == 400 and "unknown action" in answer["error"]["message"]


def test_control_requests_are_not_counted_as_api_requests(sandbox):
    control(sandbox, {"action": "reset_faults"})
    assert sandbox.requests == []


def test_requests_are_recorded_with_method_and_query(sandbox):
    client = make_client(sandbox)
    client.beta.agents.list(limit=2)
    client.beta.assistants.list()
    assert sandbox.requests[0] == ("GET", "/v1/agents?limit=2")
    assert sandbox.count_requests("GET", "/v1/agents") == 1
    assert sandbox.count_requests() == 1


def test_request_headers_are_recorded_without_the_key(sandbox):
    make_client(sandbox, organization="org-acme").beta.agents.list()
    headers = sandbox.request_headers[-1]
    assert headers["openai-beta"] == "agents=v1" and headers["openai-organization"] == "org-acme"
    assert headers["authorization"] == "project", "which key was used, not its value"
    assert sandbox.api_key not in json.dumps(sandbox.request_headers)


# --- process hygiene --------------------------------------------------------------------


def test_serving_prints_nothing(capfd):
    with Sandbox() as sb:
        client = make_client(sb)
        client.beta.agents.list()
        with pytest.raises(openai.NotFoundError):
            client.beta.agents.retrieve("missing")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_stop_closes_keep_alive_connections_promptly():
    sb = Sandbox().start()
    client = make_client(sb)
    client.beta.agents.list()  # leaves a pooled keep-alive connection open
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(openai.APIConnectionError):
        client.beta.agents.list()


def test_url_before_start_is_an_error():
    with pytest.raises(RuntimeError):
        _ = Sandbox().url


# --- the `sandbox` command ------------------------------------------------------------------------


def test_the_sandbox_command_serves_seed_objects_of_each_kind():
    import subprocess
    import sys

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "watcher", "sandbox", "--port", str(port), "--seed", "3"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith(f"sandbox serving http://127.0.0.1:{port}/v1 (api key sk-sandbox)")
        assert "admin key sk-admin-sandbox" in line and f"Azure endpoint http://127.0.0.1:{port}" in line
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-sandbox", max_retries=0)
        assert len(client.beta.assistants.list().data) == 3
        assert len(client.beta.agents.list().data) == 3
        assert len(client.skills.list().data) == 3 and len(client.vector_stores.list().data) == 3
        assert len(client.beta.agents.vaults.list().data) == 3
        admin = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", admin_api_key="sk-admin-sandbox", api_key="",
                              max_retries=0)
        assert len(admin.admin.organization.projects.list().data) == 3
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_sandbox_command_on_a_busy_port_says_so_in_one_line(cli):
    with Sandbox() as busy:
        result = cli(None, "sandbox", "--port", str(busy.port))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: sandbox: cannot listen on 127.0.0.1:{busy.port}: Address already in use"
