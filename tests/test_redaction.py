"""Secrets inside remote objects are fingerprinted before hashing: never stored, shown or mailed."""

import json

import pytest
from sqlalchemy import inspect, text

from watcher.compare.normalize import fingerprint, is_secret_key, normalize, rules_for
from watcher.kinds.registry import get

TOKEN = "Bearer sk-live-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c1e"
ROTATED = "Bearer sk-live-0000aaaa1111bbbb2222cccc3333dddd"
KEY = b"k" * 32


def mcp_tool(authorization: str) -> dict:
    return {"type": "mcp", "server_label": "crm", "server_url": "https://crm.example.com/mcp",
            "headers": {"Authorization": authorization, "X-Tenant": "acme-prod"}}


def rows_of(engine) -> str:
    text_of_rows = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                text_of_rows.append(repr(tuple(row)))
    return "\n".join(text_of_rows)


@pytest.mark.parametrize(("key", "secret"), [
    ("authorization", True), ("Authorization", True), ("api_key", True), ("password", True), ("token", True),
    ("client_secret", True), ("refresh_token", True), ("webhook_secret", True), ("db_password", True),
    ("max_tokens_per_1_minute", False), ("signing_secret_hint", False), ("secret_name", False),
    ("max_tokens", False), ("name", False),
])
def test_secret_keys_are_named_by_the_contract(key, secret):
    assert is_secret_key(key) is secret


def test_an_mcp_header_is_a_fingerprint_in_the_body_and_the_hash():
    rules = rules_for(get("agents"), secret_key=KEY)
    snap = normalize({"id": "agent_1", "tools": [mcp_tool(TOKEN)]}, rules=rules)
    headers = snap.body["tools"][0]["headers"]
    assert headers["Authorization"] == fingerprint(TOKEN, KEY) and headers["X-Tenant"].startswith("redacted:")
    assert "sk-live" not in snap.canonical


def test_a_rotated_secret_changes_the_hash_and_the_same_secret_does_not():
    rules = rules_for(get("agents"), secret_key=KEY)
    first = normalize({"id": "agent_1", "tools": [mcp_tool(TOKEN)]}, rules=rules)
    again = normalize({"id": "agent_1", "tools": [mcp_tool(TOKEN)]}, rules=rules)
    rotated = normalize({"id": "agent_1", "tools": [mcp_tool(ROTATED)]}, rules=rules)
    assert first.content_hash == again.content_hash != rotated.content_hash


def test_a_stored_body_normalized_again_keeps_its_fingerprints():
    rules = rules_for(get("agents"), secret_key=KEY)
    first = normalize({"id": "agent_1", "tools": [mcp_tool(TOKEN)], "api_key": "sk-x"}, rules=rules)
    assert normalize(first.body, rules=rules).content_hash == first.content_hash


def test_a_targets_redact_paths_are_fingerprinted_too():
    rules = rules_for(get("agents"), redact=["metadata.signing_key"], secret_key=KEY)
    snap = normalize({"id": "agent_1", "metadata": {"signing_key": "abc123", "team": "ops"}}, rules=rules)
    assert snap.body["metadata"] == {"signing_key": fingerprint("abc123", KEY), "team": "ops"}


@pytest.fixture
def agent_with_token(sandbox):
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], tools=[mcp_tool(TOKEN)])
    return agent


def test_no_secret_reaches_the_database_or_the_output(agent_with_token, sandbox, write_config, store_url, engine,
                                                     cli):
    config = write_config(sandbox, store_url)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    shown = cli(config, "show", agent_with_token["id"], "--json")
    assert "sk-live" not in rows_of(engine) and "sk-live" not in shown.stdout
    assert json.loads(shown.stdout)["tools"][0]["headers"]["Authorization"].startswith("redacted:")


def test_a_rotation_is_drift_that_says_a_secret_changed_and_mails_no_secret(agent_with_token, sandbox, mail_config,
                                                                           smtp_server, cli, cli_json):
    server = smtp_server()
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    sandbox.edit("agents", agent_with_token["id"], tools=[mcp_tool(ROTATED)])
    assert cli(config, "snapshot").exit_code == 0
    [event] = cli_json(config, "events")
    assert (event["change"], event["paths"], event["severity"]) == \
        ("modified", ["tools[0].headers.Authorization"], "high")
    [mail] = server.wait_for(1)
    assert "sk-live" not in mail.raw.decode("utf-8", "replace")
    assert "redacted:" in mail.text
    diff = cli(config, "diff", agent_with_token["id"])
    assert "sk-live" not in diff.stdout and "redacted:" in diff.stdout


def test_an_agents_mcp_transport_headers_are_fingerprinted_whatever_their_names():
    rules = rules_for(get("agents"), secret_key=KEY)
    tool = {"type": "mcp", "server_label": "crm", "transport": {"type": "http", "server_url": "https://crm.example/mcp",
                                                                 "headers": {"X-Crm-Key": "crm-live-123456"}}}
    snap = normalize({"id": "agent_1", "tools": [tool]}, rules=rules)
    assert snap.body["tools"][0]["transport"]["headers"]["X-Crm-Key"] == fingerprint("crm-live-123456", KEY)
    assert "crm-live" not in snap.canonical


def test_the_sandboxs_seeded_secrets_never_reach_the_record(sandbox, write_config, store_url, engine, cli):
    config = write_config(sandbox, store_url)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    stored = rows_of(engine)
    secrets = [v for a in sandbox.objects("agents") for t in a.get("tools") or []
               for v in ((t.get("transport") or {}).get("headers") or {}).values()]
    assert secrets  # the sandbox seeds at least one agent with an MCP credential
    for agent in sandbox.objects("agents"):
        for tool in agent.get("tools") or []:
            for value in ((tool.get("transport") or {}).get("headers") or {}).values():
                assert value not in stored
    for assistant in sandbox.objects("assistants"):
        token = (assistant.get("metadata") or {}).get("zendesk_api_token")
        if token:
            assert token not in stored


def _agent_with_secret(sandbox):
    for agent in sandbox.objects("agents"):
        for n, tool in enumerate(agent.get("tools") or []):
            headers = (tool.get("transport") or {}).get("headers") or {}
            if headers:
                return agent, n, headers
    raise AssertionError("the sandbox seeds an agent with an MCP credential")


def test_restore_sends_the_live_secret_back_never_its_fingerprint(sandbox, write_config, store_url, engine, cli):
    agent, n, headers = _agent_with_secret(sandbox)
    config = write_config(sandbox, store_url)
    cli(config, "snapshot", "--no-email")
    sandbox.edit("agents", agent["id"], model="gpt-5-nano")
    cli(config, "snapshot", "--no-email")
    result = cli(config, "restore", agent["id"], "--version", "1", "--by", "ops")
    assert result.exit_code == 0, result.stderr
    live = sandbox.get("agents", agent["id"])
    assert live["tools"][n]["transport"]["headers"] == headers  # the real credential, untouched
    assert live["model"] == agent["model"]


def test_restore_refuses_to_write_a_secret_that_was_rotated_since(sandbox, write_config, store_url, engine, cli):
    agent, n, headers = _agent_with_secret(sandbox)
    config = write_config(sandbox, store_url)
    cli(config, "snapshot", "--no-email")
    tools = agent["tools"]
    rotated = [dict(t) for t in tools]
    rotated[n] = {**tools[n], "transport": {**tools[n]["transport"],
                                           "headers": {k: v + "-rotated" for k, v in headers.items()}}}
    sandbox.edit("agents", agent["id"], tools=rotated)
    cli(config, "snapshot", "--no-email")
    result = cli(config, "restore", agent["id"], "--version", "1", "--by", "ops")
    assert result.exit_code == 1
    assert "is a secret the watcher keeps only as a fingerprint" in result.stderr
    assert sandbox.get("agents", agent["id"])["tools"][n]["transport"]["headers"] == rotated[n]["transport"]["headers"]


# --- secrets by their shape: credentials in URLs, values shaped like well-known keys ---------------------

OPENAI_KEY = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7zB9dF1hJ3lN5"
SHAPED = {
    "openai": OPENAI_KEY,
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "azure_ai": "A" * 52 + "JQQJ9" + "b" * 27,
    "azure_storage": "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=" + "q" * 86 + "==;EndpointSuffix=x",
    "github": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "github_pat": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "pem": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    "webhook": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


def normalized(raw: dict):
    return normalize({"id": "agent_1", **raw}, rules=rules_for(get("agents"), secret_key=KEY))


@pytest.mark.parametrize("shape", sorted(SHAPED))
def test_a_value_shaped_like_a_well_known_credential_is_a_fingerprint_under_any_key(shape):
    snap = normalized({"metadata": {"note": f"use {SHAPED[shape]} here"}})
    secret_part = SHAPED[shape].split("AccountKey=")[-1][:40]
    assert secret_part not in snap.canonical
    assert snap.body["metadata"]["note"].startswith("use ") and "redacted:" in snap.body["metadata"]["note"]


def test_the_userinfo_of_a_url_is_masked_where_it_stands():
    snap = normalized({"tools": [{"type": "mcp", "server_url": "https://bot:hunter2@crm.example.com/mcp?team=ops"}]})
    url = snap.body["tools"][0]["server_url"]
    assert "hunter2" not in url and url.startswith("https://redacted:") and url.endswith("@crm.example.com/mcp?team=ops")


def test_credential_query_parameters_are_masked_and_the_others_kept():
    snap = normalized({"metadata": {"feed": "https://x.example.com/a?token=t0ps3cret&team=ops&sig=abc%2Fdef#top"}})
    url = snap.body["metadata"]["feed"]
    assert "t0ps3cret" not in url and "abc%2Fdef" not in url
    assert url.startswith("https://x.example.com/a?token=redacted:") and "&team=ops&sig=redacted:" in url
    assert url.endswith("#top")


def test_a_slack_webhook_urls_path_is_masked():
    snap = normalized({"metadata": {"hook": "https://hooks.slack.com/services/T0001/B0002/XyZ123abcDEF456"}})
    assert "XyZ123abcDEF456" not in snap.canonical and "hooks.slack.com/services/redacted:" in snap.canonical


@pytest.mark.parametrize("plain", [
    "https://crm.example.com/mcp?team=ops&page=2", "sk-short", "ask-me-anything-about-your-invoices",
    "Use the key= option of the CLI", "mailto:ops@example.com", "eyJ alone is no token",
])
def test_ordinary_text_and_urls_without_credentials_are_kept_as_they_are(plain):
    assert normalized({"metadata": {"v": plain}}).body["metadata"]["v"] == plain


def test_a_body_with_shaped_secrets_normalized_again_keeps_its_fingerprints():
    first = normalized({"metadata": {"k": OPENAI_KEY, "u": "https://a:b@h.example.com/?key=v"}})
    assert normalize(first.body, rules=rules_for(get("agents"), secret_key=KEY)).content_hash == first.content_hash


def test_a_rotated_shaped_secret_changes_the_hash():
    assert normalized({"metadata": {"k": OPENAI_KEY}}).content_hash != \
        normalized({"metadata": {"k": OPENAI_KEY[:-4] + "zzzz"}}).content_hash


def test_a_name_shaped_like_a_key_is_masked_in_the_label():
    assert OPENAI_KEY not in (normalized({"name": OPENAI_KEY}).name or "")


def test_credentials_in_urls_and_shaped_values_reach_no_row_no_command_and_no_mail(sandbox, mail_config, smtp_server,
                                                                                   cli, cli_json, engine):
    agent = sandbox.objects("agents")[0]
    tool = {"type": "mcp", "server_label": "crm", "server_url": "https://bot:hunter2@crm.example.com/mcp?token=t0ps3cret"}
    sandbox.edit("agents", agent["id"], tools=[tool], metadata={"deploy": OPENAI_KEY})
    server = smtp_server()
    config = mail_config(sandbox, server)
    assert cli(config, "snapshot").exit_code == 0
    sandbox.edit("agents", agent["id"], tools=[{**tool, "server_url": tool["server_url"].replace("hunter2", "hunter3")}],
                 metadata={"deploy": OPENAI_KEY[:-4] + "zzzz"})
    assert cli(config, "snapshot").exit_code == 0
    [event] = cli_json(config, "events")
    assert event["change"] == "modified" and sorted(event["paths"]) == ["metadata.deploy", "tools[0].server_url"]
    [mail] = server.wait_for(1)
    outputs = [rows_of(engine), mail.raw.decode("utf-8", "replace"), cli(config, "diff", agent["id"]).stdout,
               cli(config, "show", agent["id"], "--json").stdout, json.dumps(event)]
    for secret in ("hunter2", "hunter3", "t0ps3cret", OPENAI_KEY[8:], OPENAI_KEY[8:-4] + "zzzz"):
        assert not [n for n, text_ in enumerate(outputs) if secret in text_], secret


def test_restore_sends_a_urls_live_credentials_back_never_their_fingerprint(sandbox, write_config, store_url, cli):
    agent = sandbox.objects("agents")[0]
    url = "https://bot:hunter2@crm.example.com/mcp?token=t0p"
    tool = {"type": "mcp", "server_label": "crm", "transport": {"type": "http", "server_url": url, "headers": {}}}
    sandbox.edit("agents", agent["id"], tools=[tool])
    config = write_config(sandbox, store_url)
    cli(config, "snapshot", "--no-email")
    sandbox.edit("agents", agent["id"], model="gpt-5-nano")
    cli(config, "snapshot", "--no-email")
    result = cli(config, "restore", agent["id"], "--version", "1", "--by", "ops")
    assert result.exit_code == 0, result.stderr
    assert sandbox.get("agents", agent["id"])["tools"][0]["transport"]["server_url"] == url
