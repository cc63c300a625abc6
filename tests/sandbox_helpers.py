"""Helpers for the sandbox's tests: SDK clients, strict validation against the SDK's models, raw pages."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import openai
import pydantic
from openai.types import Skill, VectorStore
from openai.types.beta import Agent, Assistant
from openai.types.beta.agents import Automation, EnvironmentInfo, Vault
from openai.types.beta.agents.vaults import Credential
from openai.types.responses.tool import Mcp
from openai.types.skills import SkillVersion
from openai.types.webhooks import WebhookEndpoint

from watcher.sandbox.server import Sandbox

MODELS: dict[str, Any] = {
    "assistants": Assistant, "agents": Agent, "skills": Skill, "skill_versions": SkillVersion,
    "webhook_endpoints": WebhookEndpoint, "vector_stores": VectorStore, "agent_environments": EnvironmentInfo,
    "agent_automations": Automation, "vaults": Vault, "vault_credentials": Credential,
}
# The SDK resource that lists each top-level kind
RESOURCES: dict[str, Callable[[openai.OpenAI], Any]] = {
    "assistants": lambda c: c.beta.assistants,
    "agents": lambda c: c.beta.agents,
    "skills": lambda c: c.skills,
    "webhook_endpoints": lambda c: c.webhooks,
    "vector_stores": lambda c: c.vector_stores,
    "agent_environments": lambda c: c.beta.agents.environments,
    "agent_automations": lambda c: c.beta.agents.automations,
    "vaults": lambda c: c.beta.agents.vaults,
}


def make_client(sb: Sandbox, **kwargs) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=sb.url, api_key=sb.api_key, **kwargs)


def raw_json(response) -> Any:
    """The body of a with_raw_response call, as the server sent it."""
    return json.loads(response.text)


def _no_extras(value: Any, path: str) -> None:
    """Fail on any key the SDK model does not declare (its models accept extras silently)."""
    if isinstance(value, pydantic.BaseModel):
        assert not value.__pydantic_extra__, f"undeclared fields at {path or '<root>'}: {value.__pydantic_extra__}"
        for name in type(value).model_fields:
            _no_extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_extras(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_extras(item, f"{path}.{key}")


def assert_model(model: Any, obj: dict) -> None:
    """Strict validation against one SDK model or union: no coercion, no undeclared keys, exact round trip."""
    adapter = pydantic.TypeAdapter(model)
    parsed = adapter.validate_python(obj, strict=True)
    _no_extras(parsed, "")
    assert adapter.dump_python(parsed, mode="json", by_alias=True, exclude_unset=True) == obj


def assert_valid(kind: str, obj: dict) -> None:
    """`obj` is exactly what the SDK's model of `kind` declares.

    An assistant's MCP tool is the Responses API's `Mcp` (compatible servers serve it there; the
    Assistants API's own tool union has no MCP), so it is checked against that model.
    """
    if kind == "assistants":
        for tool in obj["tools"]:
            if tool["type"] == "mcp":
                assert_model(Mcp, tool)
        obj = {**obj, "tools": [t for t in obj["tools"] if t["type"] != "mcp"]}
    assert_model(MODELS[kind], obj)


def control(sb: Sandbox, command: dict) -> tuple[int, dict]:
    url = sb.url.removesuffix("/v1") + "/_sandbox/control"
    request = urllib.request.Request(url, data=json.dumps(command).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def http(sb: Sandbox, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
         root: str | None = None) -> tuple[int, Any]:
    """A plain HTTP request to the sandbox (no SDK): (status, parsed JSON body)."""
    request = urllib.request.Request((root or sb.url) + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def skill_md(name: str, description: str) -> list[tuple[str, bytes]]:
    """The files of a skill upload: one SKILL.md with front matter."""
    return [("SKILL.md", f"---\nname: {name}\ndescription: {description}\n---\n\nDo the thing.\n".encode())]
