"""Assistants (`/v1/assistants`) and agents (`/v1/agents`): seed data, create defaults, request checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watcher.sandbox.content import (
    AGENT_MODELS,
    AGENT_NAMES,
    ASSISTANT_MODELS,
    ASSISTANT_NAMES,
    FUNCTIONS,
    STR,
    instructions,
    is_long,
    people,
)
from watcher.sandbox.dice import Dice, rotated
from watcher.sandbox.family import Family
from watcher.sandbox.wire import check_metadata, check_string, known_fields, missing, require

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

_ASSISTANT_FUNCTIONS = tuple({"type": "function", "function": {**f, "strict": False}} for f in FUNCTIONS)
_AGENT_FUNCTIONS = tuple(
    ({"type": "function", **f, "defer_loading": False}, {"type": "function", **f, "defer_loading": True})
    for f in FUNCTIONS)
_FILE_SEARCH: dict[str, Any] = {"type": "file_search", "file_search": {
    "max_num_results": 20, "ranking_options": {"ranker": "auto", "score_threshold": 0.0}}}
_CODE_INTERPRETER = {"type": "code_interpreter"}
_JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {
    "name": "ticket_summary", "strict": True,
    "schema": {"type": "object", "additionalProperties": False, "required": ["summary", "priority"],
               "properties": {"summary": STR, "priority": {"type": "string", "enum": ["low", "normal", "high"]}}}}}
_WEB_SEARCH = (
    {"type": "web_search", "context_size": "medium", "mode": "live", "allowed_domains": None, "location": None},
    {"type": "web_search", "context_size": "high", "mode": "cached",
     "allowed_domains": ["docs.acme.example", "status.acme.example"], "location": None},
)
_MCP = (
    {"type": "mcp", "server_label": "crm", "connection_origin": "service", "request_metadata": {},
     "required": True, "allowed_tools": ["get_account", "list_contacts"],
     "transport": {"type": "http", "server_url": "https://mcp.crm.acme.example/mcp", "headers": {}}},
    {"type": "mcp", "server_label": "github", "connection_origin": "service", "request_metadata": {},
     "required": False, "allowed_tools": None,
     "transport": {"type": "http", "server_url": "https://api.githubcopilot.com/mcp/", "headers": {}}},
)
# Which seeded objects carry a live secret (so redaction can be tested): agents in an MCP tool's headers;
# assistants in metadata, since the Assistants API's tool union has no MCP tool (one would make every SDK
# consumer's model_dump warn) and apps do keep tokens there
_ASSISTANT_SECRET_EVERY, _AGENT_SECRET_EVERY = 5, 4


def _agent_secret_tool(side: Dice) -> dict:
    """A persisted MCP tool whose transport headers carry a bearer token (SDK-valid: headers are free-form)."""
    return {"type": "mcp", "server_label": "linear", "connection_origin": "service", "request_metadata": {},
            "required": False, "allowed_tools": ["list_issues", "create_issue"],
            "transport": {"type": "http", "server_url": "https://mcp.linear.app/mcp",
                          "headers": {"Authorization": f"Bearer lin_api_{side.token(40)}"}}}


class Assistants(Family):
    name, object, prefix = "assistants", "assistant", "asst_"
    before = True
    seed_names = ASSISTANT_NAMES
    optional = ("name", "description", "instructions", "tool_resources", "metadata", "response_format",
                "temperature", "top_p")
    fields = ("name", "description", "model", "instructions", "tools", "top_p", "temperature", "tool_resources",
              "metadata", "response_format")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        fields = people(dice, name)
        tools = list(rotated(_ASSISTANT_FUNCTIONS, dice.below(len(FUNCTIONS)), dice.between(0, 4)))
        resources: dict = {}
        if dice.chance(0.6):
            tools.append(_FILE_SEARCH)
            resources["file_search"] = {"vector_store_ids": [f"vs_{dice.token(24)}"]}
        if dice.chance(0.3):
            tools.append(_CODE_INTERPRETER)
            resources["code_interpreter"] = {"file_ids": [f"file-{dice.token(22)}" for _ in range(dice.between(0, 3))]}
        metadata = {"team": fields["team"], "owner": fields["owner"], "env": dice.pick(("prod", "staging"))}
        if index % 7 == 2:  # some apps keep live state (a high-water mark) in metadata
            metadata["hwm"] = str(dice.between(1_000, 90_000))
        if index % _ASSISTANT_SECRET_EVERY == _ASSISTANT_SECRET_EVERY - 1:  # its own stream: no other draw moves
            metadata["zendesk_api_token"] = f"zd_live_{account.side_dice(self.name).token(32)}"
        return {
            "name": name,
            "description": f"{name} for {fields['product']} customers, owned by the {fields['team']} team.",
            "model": dice.pick(ASSISTANT_MODELS),
            "instructions": instructions(dice, fields, is_long(dice, index)),
            "tools": tools,
            "top_p": 1.0,
            "temperature": dice.pick((1.0, 0.2, 0.3, 0.7)),
            "tool_resources": resources,
            "metadata": metadata,
            "response_format": _JSON_SCHEMA_FORMAT if index % 5 == 4 else "auto",
        }

    def defaults(self) -> dict:
        return {"name": None, "description": None, "model": None, "instructions": None, "tools": [], "top_p": 1.0,
                "temperature": 1.0, "tool_resources": {}, "metadata": {}, "response_format": "auto"}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        if "model" not in body:
            raise missing("model")
        return self.update(self.defaults(), body, account)

    def update(self, current: dict, body: dict, account: Account) -> dict:
        _check_common(body, self.fields)
        check_string(body, "description", 512)
        return {key: self._setting(key, value, body) for key, value in body.items()}

    def _setting(self, key: str, value: Any, body: dict) -> Any:
        """One validated field of a create/update request, as the API stores it."""
        if key == "metadata":
            return check_metadata(value)
        if key == "tools":
            return _assistant_tools(value)
        if key in ("temperature", "top_p") and value is not None:
            top = 2.0 if key == "temperature" else 1.0
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= top,
                    f"Invalid '{key}': expected a number between 0 and {top:g}.", key)
            return float(value)
        if key == "tool_resources":
            require(value is None or isinstance(value, dict), "Invalid type for 'tool_resources'.", key,
                    "invalid_type")
            return value or {}
        if key == "response_format":
            require(value in ("auto", None) or isinstance(value, dict), "Invalid 'response_format'.", key)
            return value or "auto"
        return value


_AGENT_TOOL_DEFAULTS: dict[str, dict] = {  # what the API fills in on each persisted tool type
    "function": {"defer_loading": False, "description": "", "parameters": {"type": "object", "properties": {}}},
    "web_search": {"context_size": "medium", "mode": "live", "allowed_domains": None, "location": None},
    "mcp": {"connection_origin": "service", "request_metadata": {}, "required": False, "allowed_tools": None},
    "tool_search": {}, "programmatic_tool_calling": {"enabled": True},
    "computer_use": {"include_screenshots": True}, "automations": {},
}
_AGENT_TOOL_REQUIRED = {"function": ("name",), "mcp": ("server_label", "transport")}


class Agents(Family):
    name, object, prefix = "agents", "agent", "agent_"
    stamped = ("created_at", "updated_at")
    seed_names = AGENT_NAMES
    optional = ("name", "instructions", "compaction", "experimental")
    fields = ("name", "model", "instructions", "tools", "metadata", "reasoning", "text", "multi_agent",
              "service_tier", "compaction", "experimental")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        fields = people(dice, name)
        pairs = rotated(_AGENT_FUNCTIONS, dice.below(len(FUNCTIONS)), dice.between(0, 4))
        tools = [pair[dice.chance(0.3)] for pair in pairs]  # some functions load lazily
        if dice.chance(0.5):
            tools.append(dice.pick(_WEB_SEARCH))
        if dice.chance(0.4):
            tools.append(dice.pick(_MCP))
        if index % _AGENT_SECRET_EVERY == _AGENT_SECRET_EVERY - 1:
            tools.append(_agent_secret_tool(account.side_dice(self.name)))
        metadata = {"team": fields["team"], "owner": fields["owner"]}
        if index % 7 == 2:
            metadata["hwm"] = str(dice.between(1_000, 90_000))
        subagents = dice.chance(0.3)
        return {
            "name": name,
            "model": dice.pick(AGENT_MODELS),
            "instructions": instructions(dice, fields, is_long(dice, index)),
            "tools": tools,
            "metadata": metadata,
            "reasoning": {"effort": dice.pick((None, "low", "medium", "high")), "summary": dice.pick((None, "auto"))},
            "text": {"format": {"type": "text"}, "verbosity": dice.pick(("low", "medium", "medium", "high"))},
            "multi_agent": {"enabled": subagents, "max_concurrent_subagents": dice.pick((3, 6)) if subagents else None},
            "service_tier": "auto",
            "compaction": {"async": False},
            "experimental": {"time_awareness": False},
        }

    def defaults(self) -> dict:
        return {"name": None, "model": None, "instructions": None, "tools": [], "metadata": {},
                "reasoning": {"effort": None, "summary": None},
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "multi_agent": {"enabled": False, "max_concurrent_subagents": None},
                "service_tier": "auto", "compaction": {"async": False}, "experimental": {"time_awareness": False}}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        if "model" not in body:
            raise missing("model")
        return self.update(self.defaults(), body, account)

    def update(self, current: dict, body: dict, account: Account) -> dict:
        _check_common(body, self.fields)
        return {key: self._setting(key, value, current) for key, value in body.items()}

    def _setting(self, key: str, value: Any, current: dict) -> Any:
        """One of the agent's settings: null resets it, objects merge like the API's."""
        defaults = self.defaults()
        if key == "metadata":
            return check_metadata(value)
        if key == "tools":
            return agent_tools(value)
        if key in ("name", "instructions", "model"):
            return value
        if key == "service_tier":
            require(value in (None, "auto", "default", "flex", "priority", "fast", "ultrafast"),
                    f"Invalid value: '{value}'.", key)
            return value or "auto"
        require(value is None or isinstance(value, dict), f"Invalid type for '{key}': expected an object.", key,
                "invalid_type")
        if key == "experimental":  # merged by key, omitted settings keep their values
            return {**(current.get("experimental") or defaults["experimental"]), **(value or {})}
        if key == "multi_agent":
            merged = {**defaults["multi_agent"], **(value or {})}
            if merged["enabled"] and merged["max_concurrent_subagents"] is None:
                merged["max_concurrent_subagents"] = 6  # the documented default when enabled
            return merged
        if key == "text":  # a null format or verbosity means the default one
            return {**defaults["text"], **{k: v for k, v in (value or {}).items() if v is not None}}
        if key == "compaction":
            return {"async": bool((value or {}).get("async"))}
        return {**defaults[key], **(value or {})}  # reasoning


def _check_common(body: dict, fields: tuple[str, ...]) -> None:
    known_fields(body, fields)
    if "model" in body:
        check_string(body, "model", 256, nullable=False)
    check_string(body, "name", 256)
    check_string(body, "instructions", 256_000)


def _assistant_tools(tools: Any) -> list:
    """Validate assistant tools and fill what the API fills (file_search options, strict)."""
    if tools is None:
        return []
    require(isinstance(tools, list), "Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        require(kind in ("code_interpreter", "file_search", "function", "mcp"), f"Invalid value for "
                f"'tools[{i}].type'.", f"tools[{i}].type")
        if kind == "file_search":
            tool = {**tool, "file_search": {**_FILE_SEARCH["file_search"], **(tool.get("file_search") or {})}}
        elif kind == "function":
            fn = tool.get("function")
            require(isinstance(fn, dict) and isinstance(fn.get("name"), str),
                    f"Missing required parameter: 'tools[{i}].function.name'.", f"tools[{i}].function.name",
                    "missing_required_parameter")
            tool = {**tool, "function": {"strict": False, **fn}}
        elif kind == "mcp":  # compatible servers take the Responses API's MCP tool here
            require(isinstance(tool.get("server_label"), str), f"Missing required parameter: "
                    f"'tools[{i}].server_label'.", f"tools[{i}].server_label", "missing_required_parameter")
        out.append(tool)
    return out


def agent_tools(tools: Any, param: str = "tools") -> list:
    """Validate persisted agent tools and fill each type's defaults."""
    if tools is None:
        return []
    require(isinstance(tools, list), f"Invalid type for '{param}': expected an array.", param, "invalid_type")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type", "") if isinstance(tool, dict) else ""
        require(kind in _AGENT_TOOL_DEFAULTS, f"Invalid value for '{param}[{i}].type'.", f"{param}[{i}].type")
        for key in _AGENT_TOOL_REQUIRED.get(kind, ()):
            require(key in tool, f"Missing required parameter: '{param}[{i}].{key}'.", f"{param}[{i}].{key}",
                    "missing_required_parameter")
        out.append({**_AGENT_TOOL_DEFAULTS[kind], **tool})
    return out
