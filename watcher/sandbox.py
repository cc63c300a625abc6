"""A local OpenAI-compatible server for assistants and agents: the tests', benchmarks' and demo's API.

`Sandbox` serves `/v1/assistants` (OpenAI-Beta: assistants=v2) and `/v1/agents`
(OpenAI-Beta: agents=v1) over loopback HTTP with the real API's shapes: cursor pages,
bearer-key auth, OpenAI error bodies, create defaults, `updated_at` bumps. It is seeded
deterministically with realistic objects that validate against the `openai` SDK models.

Beyond a faithful server it can misbehave on purpose, so that a watcher which must never
silently miss an object can be tested: induced failures, latency, a retired kind (404),
and quirks of unfaithful OpenAI-compatible servers (see `QUIRKS`). Faults can be set from
Python or, for a sandbox in another process, through `POST /_sandbox/control`.

Only the standard library is used: a `ThreadingHTTPServer` in a daemon thread.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from watcher import KINDS
from watcher.errors import WatcherError

__all__ = ["Sandbox", "serve", "QUIRKS", "EPOCH", "ABSENT"]

EPOCH = 1_750_000_000  # created_at of the first seeded object of each kind
CONTROL_PATH = "/_sandbox/control"
QUIRKS = (
    "full_page_has_more_false",  # a full page says has_more false though more follow
    "repeat_id",  # each page after the first starts with the previous page's last object
    "stuck_cursor",  # `after` is ignored: the first page again, has_more true
    "timestamps_ms",  # created_at/updated_at in milliseconds
    "nulls_for_empty",  # empty lists/objects and absent optional fields served as null
)

ABSENT = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()  # edit(kind, id, key=ABSENT) drops key
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # in ASCII order
_ID_PREFIX = {"assistants": "asst_", "agents": "agent_"}
_OBJECT = {"assistants": "assistant", "agents": "agent"}
_BETA = {"assistants": "assistants=v2", "agents": "agents=v1"}
_OPTIONAL = {  # top-level fields the SDK models mark Optional (for the nulls_for_empty quirk)
    "assistants": ("name", "description", "instructions", "tool_resources", "metadata",
                   "response_format", "temperature", "top_p"),
    "agents": ("name", "instructions", "compaction", "experimental"),
}


def _dumps(value: Any) -> bytes:
    """Compact JSON bytes, the wire form of every response."""
    return json.dumps(value, separators=(",", ":")).encode()


@contextlib.contextmanager
def _gc_paused():
    """Bulk-build thousands of containers without collection passes that would only rescan them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data; strings and numbers are immutable, so they are shared."""
    if type(value) is dict:
        return {k: _copy(v) if type(v) in (dict, list) else v for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) if type(v) in (dict, list) else v for v in value]
    return value


# ---------------------------------------------------------------------------------------
# Errors


class ApiError(Exception):
    """An OpenAI-shaped error response: the SDK turns its message into its exception."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> bytes:
        return _dumps({"error": {"message": self.message, "type": self.type,
                                 "param": self.param, "code": self.code}})


def _induced(status: int, message: str) -> ApiError:
    """An induced failure typed the way the real API types that status."""
    kind = "server_error" if status >= 500 else "requests" if status == 429 else "invalid_request_error"
    return ApiError(status, message, type=kind)


def _invalid_url(method: str, path: str) -> ApiError:
    """The real API's answer for a route it does not serve (and for a retired one)."""
    return ApiError(404, f"Invalid URL ({method} {path})")


def _require(ok: bool, message: str, param: str | None = None, code: str = "invalid_value") -> None:
    if not ok:
        raise ApiError(400, message, param=param, code=code)


# ---------------------------------------------------------------------------------------
# Realistic seed content (shared nested values are never mutated: edits replace objects)

_ASSISTANT_NAMES = (
    "Billing Bot", "Support Triage", "Refund Helper", "Onboarding Guide", "Invoice Explainer",
    "Churn Rescue", "Order Tracker", "Returns Desk", "Policy Checker", "Sales Qualifier",
    "Knowledge Base Search", "Contract Reviewer", "Shipping Assistant", "Account Recovery",
    "Tax Helper", "Warranty Claims", "HR Benefits Helper", "IT Helpdesk", "Release Notes Writer",
    "Data Analyst", "Translation Desk", "Escalation Router", "Fraud Screener",
    "Subscription Manager", "Feedback Summarizer", "Meeting Notes", "Compliance Reviewer",
    "Pricing Advisor", "Partner Support", "Store Locator",
)
_AGENT_NAMES = (
    "Research Agent", "Incident Commander", "Code Review Agent", "Lead Enrichment",
    "Travel Planner", "Vendor Due Diligence", "Docs Maintainer", "Market Scanner",
    "Procurement Agent", "QA Triage Agent", "Security Watch", "Campaign Planner",
    "Inventory Forecaster", "Legal Intake", "Recruiting Screener", "Renewal Agent",
    "Support Deflection", "Data Quality Agent", "Release Captain", "Customer Health Agent",
)
_TEAMS = ("billing", "support", "growth", "platform", "finance", "legal", "ops", "sales")
_OWNERS = ("amara.okafor", "li.wei", "jonas.berg", "priya.nair", "diego.ramos", "sofia.rossi",
           "kenji.sato", "hannah.cole")
_ASSISTANT_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini")
_AGENT_MODELS = ("gpt-5", "gpt-5-mini", "gpt-5.1", "gpt-4.1")
_PRODUCTS = ("Acme Cloud", "Acme Payments", "Acme Storefront", "Acme Insights")

_PARAGRAPHS = (
    "You are {name}, an assistant operated by the {team} team for customers of {product}. "
    "Answer in the customer's language, keep a calm and precise tone, and never guess: when "
    "you are missing a fact, call the matching tool or ask one short clarifying question.",
    "Scope. You handle questions about accounts, invoices, orders and subscriptions of "
    "{product}. Anything about legal disputes, security incidents or personal data requests "
    "goes to a human: call escalate_to_human with a one-line reason and tell the customer "
    "that a specialist will reply by email within one business day.",
    "Identity. Before you reveal or change anything tied to an account, confirm the "
    "customer's identity with the email address on file and the last four digits of the "
    "payment method. Never read out full card numbers, passwords or one-time codes, even if "
    "the customer insists or claims to be an administrator.",
    "Refunds. Orders delivered less than 30 days ago may be refunded in full. Between 30 and "
    "90 days, offer store credit for the full amount or a refund of 50 percent. Beyond 90 "
    "days, explain the policy and offer to open a ticket. Refunds above 500 USD always need "
    "approval from {owner} or another member of the {team} team.",
    "Formatting. Use short paragraphs and at most one bulleted list per answer. Quote "
    "amounts with their currency code, dates as YYYY-MM-DD, and order numbers exactly as the "
    "tools return them. Do not use emoji, do not apologise more than once, and do not "
    "promise delivery dates that a tool did not confirm.",
    "Tools. Prefer a single precise tool call over several broad ones. When a tool returns "
    "an error, retry once with corrected arguments, then tell the customer plainly what "
    "could not be done. Never invent tool results and never show raw JSON to the customer.",
    "Tone. Customers who write in anger get one sentence of acknowledgement, then facts. "
    "Customers who mention a deadline get the fastest option first. If a customer asks for "
    "a manager, do not argue: offer the escalation path and record the request in a ticket.",
    "Knowledge. The help center articles attached through file search are authoritative "
    "for {product}. When an article and a tool disagree, trust the tool and flag the "
    "article in the ticket notes with the tag kb-outdated so the {team} team can fix it.",
    "Privacy. Treat everything the customer shares as confidential. Do not repeat personal "
    "data back unless it is needed to complete the task, do not store it in notes, and "
    "remind the customer not to paste passwords or full card numbers into the chat.",
    "Closing. End every resolved conversation by summarising what was done in one "
    "sentence, giving the ticket or order number, and asking whether anything else is "
    "needed. Unresolved conversations end with the next step and who owns it.",
    "Metrics. Your answers are reviewed weekly by {owner}. Reviewers look at first-contact "
    "resolution, correct use of the refund policy, and whether escalations carried enough "
    "context for a human to act without asking the customer again.",
    "Languages. Reply in English, French, German, Spanish, Portuguese, Italian or Japanese. "
    "For other languages, answer in English, say so politely, and offer the translation "
    "tool if the customer prefers a machine translation of your answer.",
)
_RULES = (
    "Verify the order status with a tool before quoting any delivery window.",
    "Never change a subscription plan without explicit confirmation in the same turn.",
    "Apply promotional credits only when the campaign code is still active.",
    "Route chargeback notices to the finance queue within the same conversation.",
    "Do not disclose internal ticket notes, reviewer comments or agent names.",
    "Convert amounts with the rate the billing tool returns, never a remembered one.",
    "Offer a callback when a customer has written more than three times about one issue.",
    "Mark conversations that mention a regulator or a lawyer for legal review.",
    "Treat duplicate charges as urgent and open a priority-high ticket immediately.",
    "When a tool times out twice, stop retrying and escalate with the tool name.",
)


def _fn(name: str, description: str, properties: dict, required: tuple = ()) -> dict:
    """One function definition: name, description and a JSON-schema object."""
    return {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(required),
                           "additionalProperties": False}}


_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_FUNCTIONS = (
    _fn("lookup_invoice", "Fetch an invoice with its status and, optionally, its line items.",
        {"invoice_id": {"type": "string", "description": "Invoice number, e.g. INV-2024-0042"},
         "include_line_items": _BOOL}, ("invoice_id",)),
    _fn("issue_refund", "Refund all or part of an order to the original payment method.",
        {"order_id": _STR, "amount_cents": {"type": "integer", "minimum": 1},
         "reason": {"type": "string", "enum": ["damaged", "late", "not_as_described", "goodwill"]}},
        ("order_id", "amount_cents", "reason")),
    _fn("create_ticket", "Open a support ticket for follow-up by a human.",
        {"subject": _STR, "body": _STR,
         "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
         "tags": {"type": "array", "items": _STR}}, ("subject", "body", "priority")),
    _fn("search_orders", "Find a customer's orders by email and status.",
        {"customer_email": {"type": "string", "format": "email"},
         "status": {"type": "string", "enum": ["open", "shipped", "delivered", "cancelled"]},
         "limit": {"type": "integer", "minimum": 1, "maximum": 50}}, ("customer_email",)),
    _fn("get_customer", "Look up a customer profile by id.", {"customer_id": _STR}, ("customer_id",)),
    _fn("escalate_to_human", "Hand the conversation to a human specialist.",
        {"reason": _STR, "queue": {"type": "string", "enum": ["billing", "legal", "security", "general"]}},
        ("reason", "queue")),
    _fn("check_shipment", "Track a parcel with its carrier.",
        {"tracking_number": _STR, "carrier": {"type": "string", "enum": ["ups", "dhl", "fedex", "usps"]}},
        ("tracking_number",)),
    _fn("update_subscription", "Change the plan of a subscription.",
        {"subscription_id": _STR, "plan": {"type": "string", "enum": ["starter", "team", "business"]},
         "prorate": _BOOL}, ("subscription_id", "plan")),
    _fn("query_metrics", "Return a daily time series of a business metric.",
        {"metric": {"type": "string", "enum": ["mrr", "churn", "signups", "tickets"]},
         "start_date": {"type": "string", "format": "date"},
         "end_date": {"type": "string", "format": "date"}}, ("metric", "start_date", "end_date")),
    _fn("translate_text", "Translate a text into a target language.",
        {"text": _STR, "target_language": {"type": "string", "description": "ISO 639-1 code"}},
        ("text", "target_language")),
    _fn("schedule_callback", "Book a phone callback window with the support team.",
        {"phone": _STR, "window_start": {"type": "string", "format": "date-time"},
         "duration_minutes": _INT}, ("phone", "window_start")),
    _fn("fetch_policy", "Return the current text of an internal policy.",
        {"policy_id": _STR, "version": _INT}, ("policy_id",)),
)
_ASSISTANT_FUNCTIONS = tuple({"type": "function", "function": {**f, "strict": False}} for f in _FUNCTIONS)
_AGENT_FUNCTIONS = tuple(
    ({"type": "function", **f, "defer_loading": False}, {"type": "function", **f, "defer_loading": True})
    for f in _FUNCTIONS)
_FILE_SEARCH = {"type": "file_search", "file_search": {
    "max_num_results": 20, "ranking_options": {"ranker": "auto", "score_threshold": 0.0}}}
_CODE_INTERPRETER = {"type": "code_interpreter"}
_JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {
    "name": "ticket_summary", "strict": True,
    "schema": {"type": "object", "additionalProperties": False, "required": ["summary", "priority"],
               "properties": {"summary": _STR, "priority": {"type": "string",
                                                            "enum": ["low", "normal", "high"]}}}}}
_WEB_SEARCH = (
    {"type": "web_search", "context_size": "medium", "mode": "live", "allowed_domains": None,
     "location": None},
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


class _Dice:
    """Small random draws for seeding, cheap: one getrandbits feeds many choices."""

    def __init__(self, rng: random.Random):
        self.rng, self.bits = rng, 0

    def below(self, n: int) -> int:
        if self.bits < n << 32:  # refill while plenty remains, so modulo bias stays negligible
            self.bits = self.rng.getrandbits(512)
        self.bits, value = divmod(self.bits, n)
        return value

    def pick(self, items: tuple) -> Any:
        return items[self.below(len(items))]

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def chance(self, p: float) -> bool:
        return self.below(10_000) < p * 10_000

    def token(self, n: int) -> str:
        """n random alphanumerics: random bytes mapped onto base 62 (a slight bias is fine)."""
        return self.rng.randbytes(n).translate(_TOKEN_TABLE).decode()


_TOKEN_TABLE = bytes(ord(_BASE62[i % 62]) for i in range(256))


def _names(dice: _Dice, base: tuple[str, ...], n: int) -> list[str]:
    """n unique realistic names: the base list shuffled, then numbered ("Billing Bot 17")."""
    order = list(base)
    dice.rng.shuffle(order)
    return [order[i % len(order)] + (f" {i // len(order) + 1}" if i >= len(order) else "")
            for i in range(n)]


def _rotated(items: tuple, start: int, count: int) -> tuple:
    """`count` distinct items from `start`, wrapping: one draw instead of a sample."""
    return (items + items)[start:start + min(count, len(items))]


def _instructions(dice: _Dice, fields: dict, long: bool) -> str:
    """Multi-paragraph instructions; long ones grow an appendix of numbered rules (5-20k chars)."""
    rest = _PARAGRAPHS[1:]
    paragraphs = (_PARAGRAPHS[0],) + _rotated(rest, dice.below(len(rest)), dice.between(4, 8))
    text = "\n\n".join(p.format_map(fields) for p in paragraphs)
    if not long:
        return text
    target, parts, rule = dice.between(5_000, 20_000), [text, "\n\nAppendix: operating rules"], 0
    size, offset = len(text), dice.below(1_000)
    while size < target:  # rules cycle from a random offset: one draw, not two per line
        rule += 1
        policy = 100 + (offset * 7 + rule * 13) % 900
        line = f"\n{rule}. {_RULES[(offset + rule) % len(_RULES)]} ({fields['team']} policy {policy})"
        parts.append(line)
        size += len(line)
    return "".join(parts)


def _people(dice: _Dice, name: str) -> dict:
    """The placeholders of an object's instructions: its name, team, owner and product."""
    return {"name": name, "team": dice.pick(_TEAMS), "owner": dice.pick(_OWNERS),
            "product": dice.pick(_PRODUCTS)}


def _is_long(dice: _Dice, index: int) -> bool:
    """A few objects carry long instructions; index 3 always does, so small seeds have one."""
    return index == 3 or dice.chance(0.02)


def _seed_assistant(dice: _Dice, index: int, name: str) -> dict:
    """Everything of a realistic assistant but its id and created_at."""
    fields = _people(dice, name)
    tools = list(_rotated(_ASSISTANT_FUNCTIONS, dice.below(len(_FUNCTIONS)), dice.between(0, 4)))
    resources: dict = {}
    if dice.chance(0.6):
        tools.append(_FILE_SEARCH)
        resources["file_search"] = {"vector_store_ids": [f"vs_{dice.token(24)}"]}
    if dice.chance(0.3):
        tools.append(_CODE_INTERPRETER)
        resources["code_interpreter"] = {"file_ids": [f"file-{dice.token(22)}"
                                                      for _ in range(dice.between(0, 3))]}
    metadata = {"team": fields["team"], "owner": fields["owner"], "env": dice.pick(("prod", "staging"))}
    if index % 7 == 2:  # some apps keep live state (a high-water mark) in metadata
        metadata["hwm"] = str(dice.between(1_000, 90_000))
    return {
        "name": name,
        "description": f"{name} for {fields['product']} customers, owned by the {fields['team']} team.",
        "model": dice.pick(_ASSISTANT_MODELS),
        "instructions": _instructions(dice, fields, _is_long(dice, index)),
        "tools": tools,
        "top_p": 1.0,
        "temperature": dice.pick((1.0, 0.2, 0.3, 0.7)),
        "tool_resources": resources,
        "metadata": metadata,
        "response_format": _JSON_SCHEMA_FORMAT if index % 5 == 4 else "auto",
    }


def _seed_agent(dice: _Dice, index: int, name: str) -> dict:
    """Everything of a realistic agent but its id and timestamps."""
    fields = _people(dice, name)
    pairs = _rotated(_AGENT_FUNCTIONS, dice.below(len(_FUNCTIONS)), dice.between(0, 4))
    tools = [pair[dice.chance(0.3)] for pair in pairs]  # some functions load lazily
    if dice.chance(0.5):
        tools.append(dice.pick(_WEB_SEARCH))
    if dice.chance(0.4):
        tools.append(dice.pick(_MCP))
    metadata = {"team": fields["team"], "owner": fields["owner"]}
    if index % 7 == 2:
        metadata["hwm"] = str(dice.between(1_000, 90_000))
    subagents = dice.chance(0.3)
    return {
        "name": name,
        "model": dice.pick(_AGENT_MODELS),
        "instructions": _instructions(dice, fields, _is_long(dice, index)),
        "tools": tools,
        "metadata": metadata,
        "reasoning": {"effort": dice.pick((None, "low", "medium", "high")),
                      "summary": dice.pick((None, "auto"))},
        "text": {"format": {"type": "text"}, "verbosity": dice.pick(("low", "medium", "medium", "high"))},
        "multi_agent": {"enabled": subagents,
                        "max_concurrent_subagents": dice.pick((3, 6)) if subagents else None},
        "service_tier": "auto",
        "compaction": {"async": False},
        "experimental": {"time_awareness": False},
    }


# ---------------------------------------------------------------------------------------
# Create defaults and request validation (the HTTP create/modify paths)

_ASSISTANT_FIELDS = ("name", "description", "model", "instructions", "tools", "top_p", "temperature",
                     "tool_resources", "metadata", "response_format")
_AGENT_FIELDS = ("name", "model", "instructions", "tools", "metadata", "reasoning", "text",
                 "multi_agent", "service_tier", "compaction", "experimental")
_FIELDS = {"assistants": _ASSISTANT_FIELDS, "agents": _AGENT_FIELDS}
_ASSISTANT_TOOL_TYPES = ("code_interpreter", "file_search", "function")
_AGENT_TOOL_DEFAULTS: dict[str, dict] = {  # what the API fills in on each persisted tool type
    "function": {"defer_loading": False, "description": "",
                 "parameters": {"type": "object", "properties": {}}},
    "web_search": {"context_size": "medium", "mode": "live", "allowed_domains": None, "location": None},
    "mcp": {"connection_origin": "service", "request_metadata": {}, "required": False,
            "allowed_tools": None},
    "tool_search": {}, "programmatic_tool_calling": {"enabled": True},
    "computer_use": {"include_screenshots": True}, "automations": {},
}
_AGENT_TOOL_REQUIRED = {"function": ("name",), "mcp": ("server_label", "transport")}


def _defaults(kind: str) -> dict:
    """A fresh object's fields before the request's own, as the real API fills them."""
    if kind == "assistants":
        return {"name": None, "description": None, "model": None, "instructions": None, "tools": [],
                "top_p": 1.0, "temperature": 1.0, "tool_resources": {}, "metadata": {},
                "response_format": "auto"}
    return {"name": None, "model": None, "instructions": None, "tools": [], "metadata": {},
            "reasoning": {"effort": None, "summary": None},
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "multi_agent": {"enabled": False, "max_concurrent_subagents": None},
            "service_tier": "auto", "compaction": {"async": False},
            "experimental": {"time_awareness": False}}


def _check_metadata(value: Any) -> dict:
    """The API's metadata limits: 16 string pairs, keys <= 64 chars, values <= 512 chars."""
    if value is None:
        return {}
    _require(isinstance(value, dict), "Invalid type for 'metadata': expected an object.", "metadata",
             "invalid_type")
    _require(len(value) <= 16, "Invalid 'metadata': too many properties. Expected an object with at "
             f"most 16 properties, but got {len(value)} instead.", "metadata", "object_above_max_properties")
    for key, item in value.items():
        _require(len(key) <= 64, f"Invalid 'metadata': key '{key[:64]}...' is longer than 64 characters.",
                 "metadata", "string_above_max_length")
        _require(isinstance(item, str), f"Invalid type for 'metadata.{key}': expected a string.",
                 f"metadata.{key}", "invalid_type")
        _require(len(item) <= 512, f"Invalid 'metadata.{key}': string too long. Expected a string with "
                 f"maximum length 512, but got a string with length {len(item)} instead.",
                 f"metadata.{key}", "string_above_max_length")
    return dict(value)


def _check_string(body: dict, key: str, max_len: int | None, nullable: bool = True) -> None:
    value = body.get(key)
    if value is None:
        _require(nullable, f"Invalid type for '{key}': expected a string, but got null instead.", key,
                 "invalid_type")
        return
    _require(isinstance(value, str), f"Invalid type for '{key}': expected a string.", key, "invalid_type")
    if max_len is not None:
        _require(len(value) <= max_len, f"Invalid '{key}': string too long. Expected a string with "
                 f"maximum length {max_len}, but got a string with length {len(value)} instead.",
                 key, "string_above_max_length")


def _assistant_tools(tools: Any) -> list:
    """Validate assistant tools and fill what the API fills (file_search options, strict)."""
    _require(isinstance(tools, list), "Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        _require(kind in _ASSISTANT_TOOL_TYPES, f"Invalid value for 'tools[{i}].type'.", f"tools[{i}].type")
        if kind == "file_search":
            tool = {**tool, "file_search": {**_FILE_SEARCH["file_search"], **(tool.get("file_search") or {})}}
        elif kind == "function":
            fn = tool.get("function")
            _require(isinstance(fn, dict) and isinstance(fn.get("name"), str),
                     f"Missing required parameter: 'tools[{i}].function.name'.", f"tools[{i}].function.name",
                     "missing_required_parameter")
            tool = {**tool, "function": {"strict": False, **fn}}
        out.append(tool)
    return out


def _agent_tools(tools: Any) -> list:
    """Validate persisted agent tools and fill each type's defaults."""
    _require(isinstance(tools, list), "Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        _require(kind in _AGENT_TOOL_DEFAULTS, f"Invalid value for 'tools[{i}].type'.", f"tools[{i}].type")
        for key in _AGENT_TOOL_REQUIRED.get(kind, ()):
            _require(key in tool, f"Missing required parameter: 'tools[{i}].{key}'.", f"tools[{i}].{key}",
                     "missing_required_parameter")
        out.append({**_AGENT_TOOL_DEFAULTS[kind], **tool})
    return out


def _apply_body(kind: str, obj: dict, body: dict, creating: bool) -> dict:
    """The object after a create/modify request body; raises ApiError for a bad request."""
    for key in body:
        _require(key in _FIELDS[kind], f"Unrecognized request argument supplied: {key}", key,
                 "unknown_parameter")
    if creating:
        _require("model" in body, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if "model" in body:
        _check_string(body, "model", 256, nullable=False)
    _check_string(body, "name", 256)
    _check_string(body, "instructions", 256_000)
    out = dict(obj)
    for key, value in body.items():
        if key == "metadata":
            value = _check_metadata(value)
        elif key == "tools":
            value = [] if value is None else (_assistant_tools if kind == "assistants" else _agent_tools)(value)
        elif kind == "agents":
            value = _agent_setting(key, value, obj)
        else:
            value = _assistant_setting(key, value, body)
        out[key] = value
    return out


def _assistant_setting(key: str, value: Any, body: dict) -> Any:
    """Validate one of the assistant's remaining fields."""
    if key == "description":
        _check_string(body, key, 512)
    elif key in ("temperature", "top_p") and value is not None:
        top = 2.0 if key == "temperature" else 1.0
        _require(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= top,
                 f"Invalid '{key}': expected a number between 0 and {top:g}.", key)
        value = float(value)
    elif key == "tool_resources":
        _require(value is None or isinstance(value, dict), "Invalid type for 'tool_resources'.", key,
                 "invalid_type")
        value = value or {}
    elif key == "response_format":
        _require(value in ("auto", None) or isinstance(value, dict), "Invalid 'response_format'.", key)
        value = value or "auto"
    return value


def _agent_setting(key: str, value: Any, current: dict) -> Any:
    """One of the agent's structured settings: null resets it, objects merge like the API's."""
    defaults = _defaults("agents")
    if key in ("name", "instructions", "model"):
        return value
    if key == "service_tier":
        _require(value in (None, "auto", "default", "flex", "priority", "fast", "ultrafast"),
                 f"Invalid value: '{value}'.", key)
        return value or "auto"
    _require(value is None or isinstance(value, dict), f"Invalid type for '{key}': expected an object.",
             key, "invalid_type")
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


# ---------------------------------------------------------------------------------------
# Storage


class _Collection:
    """One kind's objects: a dict by id, a sorted id list (= creation order), cached wire bytes."""

    def __init__(self, kind: str, rng: random.Random):
        self.kind, self.dice = kind, _Dice(rng)
        self.by_id: dict[str, dict] = {}
        self.ids: list[str] = []
        self.wire: dict[str, bytes] = {}  # pre-serialized objects, filled on first serve
        self.counter = rng.randrange(62**7 * 12, 62**7 * 20)  # sortable id prefix, random start
        self.last_created = EPOCH

    def next_id(self) -> str:
        """An id that sorts after every id issued so far: 8 base-62 counter chars, 16 random."""
        self.counter += self.dice.between(1_000, 5_000_000)
        n, head = self.counter, []
        for _ in range(8):
            n, digit = divmod(n, 62)
            head.append(_BASE62[digit])
        return _ID_PREFIX[self.kind] + "".join(reversed(head)) + self.dice.token(16)

    def next_created_at(self) -> int:
        """Now, but never before the newest object, so id order stays creation order."""
        self.last_created = max(int(time.time()), self.last_created)
        return self.last_created

    def append(self, obj: dict) -> None:
        """Store a new object (seeding appends in order; insort covers explicit ids)."""
        oid = obj["id"]
        if oid in self.by_id:
            raise ValueError(f"duplicate id {oid}")
        self.by_id[oid] = obj
        if not self.ids or oid > self.ids[-1]:
            self.ids.append(oid)
        else:
            bisect.insort(self.ids, oid)

    def replace(self, obj: dict) -> None:
        self.by_id[obj["id"]] = obj
        self.wire.pop(obj["id"], None)

    def delete(self, oid: str) -> None:
        del self.by_id[oid]
        self.wire.pop(oid, None)
        del self.ids[bisect.bisect_left(self.ids, oid)]

    def find(self, oid: str) -> dict:
        obj = self.by_id.get(oid)
        if obj is None:
            raise ApiError(404, f"No {_OBJECT[self.kind]} found with id '{oid}'.")
        return obj

    def serialized(self, oid: str) -> bytes:
        data = self.wire.get(oid)
        if data is None:
            data = self.wire[oid] = _dumps(self.by_id[oid])
        return data

    def page(self, limit: int, order: str, after: str | None, before: str | None,
             repeat_last: bool) -> tuple[list[str], bool]:
        """The ids of one list page in order and has_more; O(log N + limit)."""
        ids, n = self.ids, len(self.ids)
        if order == "asc":
            lo = bisect.bisect_right(ids, after) if after else 0
            hi = bisect.bisect_left(ids, before) if before else n
            if repeat_last and after:
                lo = max(0, lo - 1)  # the repeat_id quirk: start again at the cursor object
        else:
            lo = bisect.bisect_right(ids, before) if before else 0
            hi = bisect.bisect_left(ids, after) if after else n
            if repeat_last and after:
                hi = min(n, hi + 1)
        hi = max(lo, hi)
        # walk from the `after` side, or from the `before` side when only `before` is given
        from_low = (order == "asc") != bool(before and not after)
        if from_low:
            start, stop, has_more = lo, min(hi, lo + limit), lo + limit < hi
        else:
            start, stop, has_more = max(lo, hi - limit), hi, hi - limit > lo
        chosen = ids[start:stop]
        return (chosen if order == "asc" else chosen[::-1]), has_more


# ---------------------------------------------------------------------------------------
# Quirk transforms


def _nulls_for_empty(value: Any) -> Any:
    """Empty lists and objects become null, recursively (a Go-style nil-slice server)."""
    if isinstance(value, dict):
        return {k: _nulls_for_empty(v) for k, v in value.items()} or None
    if isinstance(value, list):
        return [_nulls_for_empty(v) for v in value] or None
    return value


def _quirked(kind: str, data: bytes, quirks: frozenset) -> bytes:
    """An object's wire bytes as an unfaithful server would serve them."""
    obj = json.loads(data)
    if "timestamps_ms" in quirks:
        for key in ("created_at", "updated_at"):
            if isinstance(obj.get(key), int):
                obj[key] *= 1000
    if "nulls_for_empty" in quirks:
        obj = _nulls_for_empty(obj)
        for key in _OPTIONAL[kind]:
            obj.setdefault(key, None)
    return _dumps(obj)


# ---------------------------------------------------------------------------------------
# HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP layer: read the body, ask the sandbox, write one response. Never logs."""

    protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses its connections
    disable_nagle_algorithm = True  # small responses must not wait for delayed ACKs
    timeout = 300  # idle keep-alive connections eventually free their thread
    sandbox: "Sandbox"  # set on the per-sandbox subclass

    def version_string(self) -> str:
        return "assistant-watcher-sandbox"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: benchmarks and tests must not print a line per request."""

    def setup(self) -> None:
        super().setup()
        self.sandbox._connections.add(self.connection)

    def finish(self) -> None:
        self.sandbox._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass  # the client went away; nothing to flush to

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            status, payload = 400, ApiError(400, "Malformed request body framing.").body()
        else:
            status, payload = self.sandbox._respond(method, self.path, self.headers, body,
                                                    self.client_address[0])
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", f"req_{self.sandbox._next_request_number():032x}")
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    """The threading server, quiet about clients that hang up mid-request."""

    daemon_threads = True  # a stuck client never blocks stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a reset connection is the client's business, not a traceback on stderr."""


# ---------------------------------------------------------------------------------------
# The sandbox


class Sandbox:
    """A seeded OpenAI-compatible assistants/agents server with fault injection.

    Use as a context manager or call `start()`/`stop()`. `url` is the SDK's base_url.
    """

    def __init__(self, *, assistants: int = 5, agents: int = 5, seed: int = 0,
                 api_key: str = "sk-sandbox", host: str = "127.0.0.1", port: int = 0):
        self.api_key = api_key
        self.host, self.port = host, port
        self.requests: list[tuple[str, str]] = []  # (method, path-with-query) of every API request
        self.request_headers: list[dict[str, str]] = []  # their headers, lower-cased, key redacted
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._request_number = 0
        self._collections = {kind: _Collection(kind, random.Random(f"{seed}:{kind}")) for kind in KINDS}
        self.reset_faults()
        self._seed("assistants", assistants, _ASSISTANT_NAMES, _seed_assistant)
        self._seed("agents", agents, _AGENT_NAMES, _seed_agent)

    def _seed(self, kind: str, count: int, names: tuple[str, ...],
              make: Callable[[_Dice, int, str], dict]) -> None:
        """Append `count` deterministic objects, a few seconds apart from EPOCH."""
        col, created = self._collections[kind], EPOCH
        with _gc_paused():
            for index, name in enumerate(_names(col.dice, names, count)):
                created += col.dice.between(1, 5)
                head = {"id": col.next_id(), "object": _OBJECT[kind], "created_at": created}
                if kind == "agents":  # most agents were last edited some time after creation
                    head["updated_at"] = created + col.dice.pick((0, 0, 45, 3_600, 86_400 * 3))
                col.append({**head, **make(col.dice, index, name)})
        col.last_created = created

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "Sandbox":
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        server = _Server((self.host, self.port), handler)
        self._server, self.port = server, server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wake handler threads blocked on a read
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL for the SDK, e.g. http://127.0.0.1:PORT/v1 (after start)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self.port}/v1"

    # -- direct object access (out-of-band edits) ----------------------------------------

    def _collection(self, kind: str) -> _Collection:
        if kind not in self._collections:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        return self._collections[kind]

    def objects(self, kind: str) -> list[dict]:
        """Copies of every object of a kind, in list order (ascending created_at and id)."""
        col = self._collection(kind)
        with self._lock:
            stored = [col.by_id[oid] for oid in col.ids]
        with _gc_paused():
            return [_copy(obj) for obj in stored]

    def get(self, kind: str, object_id: str) -> dict:
        """A copy of one object; KeyError if there is none."""
        col = self._collection(kind)
        with self._lock:
            if object_id not in col.by_id:
                raise KeyError(object_id)
            return _copy(col.by_id[object_id])

    def add(self, kind: str, **fields: Any) -> dict:
        """Create an object with the API's defaults, then `fields` over them (unvalidated)."""
        col = self._collection(kind)
        with self._lock:  # copied in: a caller mutating its dicts later must not edit the store
            obj = self._new_object(col, _copy(fields))
            col.append(obj)
            return _copy(obj)

    def edit(self, kind: str, object_id: str, **fields: Any) -> dict:
        """Shallow-update an object out of band (unvalidated); agents get a later updated_at.

        A field given as ABSENT is removed from the object, as a sloppy server might omit it.
        """
        if "id" in fields:
            raise ValueError("an object's id cannot be edited")
        col = self._collection(kind)
        with self._lock:
            if object_id not in col.by_id:
                raise KeyError(object_id)
            return _copy(self._updated(col, col.by_id[object_id], _copy(fields)))

    def remove(self, kind: str, object_id: str) -> None:
        """Delete an object out of band; KeyError if there is none."""
        col = self._collection(kind)
        with self._lock:
            if object_id not in col.by_id:
                raise KeyError(object_id)
            col.delete(object_id)

    def _new_object(self, col: _Collection, fields: dict) -> dict:
        """A new object: id, timestamps, defaults, then fields (caller holds the lock)."""
        now = col.next_created_at()
        obj = {"id": col.next_id(), "object": _OBJECT[col.kind], "created_at": now}
        if col.kind == "agents":
            obj["updated_at"] = now
        obj.update(_defaults(col.kind))
        obj.update(fields)
        return obj

    def _updated(self, col: _Collection, old: dict, fields: dict) -> dict:
        """Replace `old` by `old` + fields; agents' updated_at strictly increases (lock held)."""
        new = {k: v for k, v in {**old, **fields}.items() if v is not ABSENT}
        if col.kind == "agents" and "updated_at" not in fields:
            new["updated_at"] = max(int(time.time()), old.get("updated_at", 0) + 1)
        col.replace(new)
        return new

    # -- faults --------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, message: str = "sandbox induced failure") -> None:
        """The next n API requests (any method, any kind) answer `status` with an error body."""
        with self._lock:
            self._fail_n, self._fail_status, self._fail_message = int(n), int(status), str(message)

    def fail_pages_after_first(self, status: int = 500) -> None:
        """Every list request that carries `after` fails with `status` until reset_faults()."""
        with self._lock:
            self._fail_after_status = int(status)

    def set_latency(self, seconds: float) -> None:
        """Sleep this long before every API response."""
        with self._lock:
            self._latency = max(0.0, float(seconds))

    def retire(self, kind: str) -> None:
        """Every request for `kind` answers 404 "Invalid URL", as the retired real API does."""
        self._collection(kind)
        with self._lock:
            self._retired = self._retired | {kind}

    def restore_kind(self, kind: str) -> None:
        """Serve a retired kind again."""
        self._collection(kind)
        with self._lock:
            self._retired = self._retired - {kind}

    def set_quirk(self, name: str, on: bool = True) -> None:
        """Turn one of QUIRKS on or off."""
        if name not in QUIRKS:
            raise ValueError(f"unknown quirk {name!r}; expected one of {', '.join(QUIRKS)}")
        with self._lock:
            self._quirks = self._quirks | {name} if on else self._quirks - {name}

    def reset_faults(self) -> None:
        """Clear induced failures, latency, retired kinds and quirks."""
        with self._lock:
            self._fail_n, self._fail_status, self._fail_message = 0, 500, ""
            self._fail_after_status: int | None = None
            self._latency = 0.0
            self._retired: frozenset[str] = frozenset()
            self._quirks: frozenset[str] = frozenset()

    def count_requests(self, method: str = "GET", path_prefix: str = "/v1/assistants") -> int:
        """How many API requests with this method and path prefix were served."""
        return sum(1 for m, p in list(self.requests) if m == method and p.startswith(path_prefix))

    def _next_request_number(self) -> int:
        with self._lock:
            self._request_number += 1
            return self._request_number

    # -- request handling ----------------------------------------------------------------

    def _respond(self, method: str, target: str, headers: Any, body: bytes, client: str) -> tuple[int, bytes]:
        """(status, body) for one HTTP request; ApiErrors become OpenAI error bodies."""
        path = urlsplit(target).path
        if path == CONTROL_PATH:
            return self._control(method, body, client)
        self.requests.append((method, target))
        self.request_headers.append(_recorded_headers(headers))
        with self._lock:
            latency = self._latency
        if latency:
            time.sleep(latency)
        try:
            return self._api(method, target, headers, body)
        except ApiError as err:
            return err.status, err.body()
        except Exception as err:  # a sandbox bug must surface as a 500, not as a dropped connection
            return 500, ApiError(500, f"sandbox internal error: {type(err).__name__}: {err}",
                                 type="server_error").body()

    def _api(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, bytes]:
        """Auth, faults, routing and the handler for one API request."""
        if headers.get("Authorization", "") != f"Bearer {self.api_key}":
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        parts = split.path.strip("/").split("/")
        with self._lock:
            if self._fail_n > 0:
                self._fail_n -= 1
                raise _induced(self._fail_status, self._fail_message)
            if self._fail_after_status is not None and method == "GET" and len(parts) == 2 and "after" in query:
                raise _induced(self._fail_after_status, "sandbox induced failure of a page after the first")
            retired, quirks = self._retired, self._quirks
        if len(parts) not in (2, 3) or parts[0] != "v1" or parts[1] not in KINDS or not all(parts):
            raise _invalid_url(method, split.path)
        kind = parts[1]
        if kind in retired:
            raise _invalid_url(method, split.path)
        beta = [t.strip() for t in headers.get("OpenAI-Beta", "").split(",")]
        if _BETA[kind] not in beta:
            raise ApiError(400, f"You must provide the 'OpenAI-Beta' header to access the {kind} API. "
                           f"Please try again by setting the header 'OpenAI-Beta: {_BETA[kind]}'.")
        col = self._collections[kind]
        if len(parts) == 2:
            if method == "GET":
                return 200, self._list(col, query, quirks)
            if method == "POST":
                return 200, self._create(col, _parse_json(body), quirks)
        else:
            if method == "GET":
                return 200, self._retrieve(col, parts[2], quirks)
            if method == "POST":
                return 200, self._modify(col, parts[2], _parse_json(body), quirks)
            if method == "DELETE":
                return 200, self._delete(col, parts[2])
        raise _invalid_url(method, split.path)

    def _served(self, col: _Collection, oid: str, quirks: frozenset) -> bytes:
        """An object's bytes as served: cached, unless a content quirk rewrites them."""
        data = col.serialized(oid)
        if quirks and ("timestamps_ms" in quirks or "nulls_for_empty" in quirks):
            return _quirked(col.kind, data, quirks)
        return data

    def _list(self, col: _Collection, query: dict, quirks: frozenset) -> bytes:
        limit, order = _list_params(query)
        after, before = query.get("after") or None, query.get("before") or None
        if col.kind == "agents":
            before = None  # the agents API pages forward only
        stuck = "stuck_cursor" in quirks and after is not None
        with self._lock:
            ids, has_more = col.page(limit, order, None if stuck else after, before,
                                     repeat_last="repeat_id" in quirks)
            parts = [self._served(col, oid, quirks) for oid in ids]
        if stuck:
            has_more = True
        if "full_page_has_more_false" in quirks and len(ids) == limit:
            has_more = False
        tail = _dumps({"first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None,
                       "has_more": has_more})
        return b'{"object":"list","data":[' + b",".join(parts) + b"]," + tail[1:]

    def _retrieve(self, col: _Collection, oid: str, quirks: frozenset) -> bytes:
        with self._lock:
            col.find(oid)
            return self._served(col, oid, quirks)

    def _create(self, col: _Collection, body: dict, quirks: frozenset) -> bytes:
        obj = _apply_body(col.kind, _defaults(col.kind), body, creating=True)
        with self._lock:
            new = self._new_object(col, obj)
            col.append(new)
            return self._served(col, new["id"], quirks)

    def _modify(self, col: _Collection, oid: str, body: dict, quirks: frozenset) -> bytes:
        with self._lock:
            current = col.find(oid)
        changed = _apply_body(col.kind, current, body, creating=False)
        fields = {k: changed[k] for k in body}
        with self._lock:
            col.find(oid)  # it may have been deleted meanwhile
            self._updated(col, col.by_id[oid], fields)
            return self._served(col, oid, quirks)

    def _delete(self, col: _Collection, oid: str) -> bytes:
        with self._lock:
            col.find(oid)
            col.delete(oid)
        return _dumps({"id": oid, "object": f"{_OBJECT[col.kind]}.deleted", "deleted": True})

    # -- control endpoint ----------------------------------------------------------------

    def _control(self, method: str, body: bytes, client: str) -> tuple[int, bytes]:
        """POST /_sandbox/control {"action": ...}: drive faults and objects from another process."""
        if not (client.startswith("127.") or client in ("::1", "::ffff:127.0.0.1")):
            return 403, ApiError(403, "The control endpoint answers loopback clients only.").body()
        if method != "POST":
            return 404, _invalid_url(method, CONTROL_PATH).body()
        try:
            command = _parse_json(body)
            action = command.pop("action", None)
            handler = self._control_actions().get(action)
            if handler is None:
                raise ValueError(f"unknown action {action!r}")
            result = handler(**command)
        except ApiError as err:
            return err.status, err.body()
        except (KeyError, TypeError, ValueError) as err:
            return 400, ApiError(400, f"control: {err}").body()
        return 200, _dumps({"ok": True, "result": result})

    def _control_actions(self) -> dict[str, Callable[..., Any]]:
        return {
            "fail_next": self.fail_next,
            "fail_pages_after_first": self.fail_pages_after_first,
            "set_latency": self.set_latency,
            "retire": self.retire,
            "restore_kind": self.restore_kind,
            "set_quirk": self.set_quirk,
            "reset_faults": self.reset_faults,
            "get": lambda kind, id: self.get(kind, id),
            "add": lambda kind, fields=None: self.add(kind, **(fields or {})),
            "edit": lambda kind, id, fields: self.edit(kind, id, **fields),
            "remove": lambda kind, id: self.remove(kind, id),
            "count_requests": lambda method="GET", path_prefix="/v1/assistants":
                self.count_requests(method, path_prefix),
        }


def _recorded_headers(headers: Any) -> dict[str, str]:
    """A request's headers for tests to inspect; the bearer key is never kept."""
    recorded = {name.lower(): value for name, value in headers.items()}
    if "authorization" in recorded:
        recorded["authorization"] = "<redacted>"
    return recorded


def _parse_json(body: bytes) -> dict:
    """A request body as a JSON object; empty means {}."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request. The OpenAI API "
                       "expects a JSON payload, but what was sent was not valid JSON.") from None
    if not isinstance(value, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return value


def _list_params(query: dict) -> tuple[int, str]:
    """limit (1..100, default 20) and order (asc|desc, default desc), validated like the API."""
    raw = query.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid 'limit': expected an integer, but got '{raw[:40]}' instead.",
                       param="limit", code="invalid_type") from None
    _require(limit >= 1, f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but "
             f"got {limit} instead.", "limit", "integer_below_min_value")
    _require(limit <= 100, f"Invalid 'limit': integer above maximum value. Expected a value <= 100, "
             f"but got {limit} instead.", "limit", "integer_above_max_value")
    order = query.get("order", "desc")
    _require(order in ("asc", "desc"), f"Invalid value: '{order[:40]}'. Supported values are: 'asc' "
             "and 'desc'.", "order")
    return limit, order


def serve(host: str = "127.0.0.1", port: int = 8765, seed: int = 5, api_key: str = "sk-sandbox") -> None:
    """Blocking: run a sandbox seeded with `seed` assistants and `seed` agents until Ctrl-C.

    Prints one line with its URL and key; a port already in use is a WatcherError.
    """
    try:
        sandbox = Sandbox(assistants=seed, agents=seed, api_key=api_key, host=host, port=port).start()
    except OSError as exc:
        raise WatcherError(f"sandbox: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print(f"sandbox serving {sandbox.url} (api key {api_key}); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
