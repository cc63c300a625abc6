"""What lives under each project (`/v1/organization/projects/{id}/...`): users, service accounts, API keys,
rate limits, and its settings (model and hosted-tool permissions, data retention, spend limit).

A rate limit's id names its model (`rl-gpt-4o`), so the same id repeats in every
project: one object per project. A project's settings are four endpoints over one
stored object per project (`project_settings`, addressed by the project's id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watcher.sandbox.collection import stamp_after
from watcher.sandbox.dice import Dice
from watcher.sandbox.family import ADMIN, Family
from watcher.sandbox.organization import OrgFamily, hint
from watcher.sandbox.routing import Endpoint
from watcher.sandbox.wire import (
    ApiError,
    check_int,
    check_string,
    copy,
    dumps,
    invalid_url,
    known_fields,
    missing,
    parse_body,
    require,
)

if TYPE_CHECKING:
    from watcher.sandbox.account import Account



class ProjectFamily(OrgFamily):
    """What lives under a project (listed under each one: the registry says so)."""

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        return None


class ProjectUsers(ProjectFamily):
    name, object, prefix, label = "project_users", "organization.project.user", "user-", "user"
    stamped = ("added_at",)
    optional = ("email", "name")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        users, projects = account.existing("org_users"), account.existing("projects")
        if users is None or index >= len(users):
            raise ValueError("project_users: a project cannot have more members than org_users has users")
        if projects is None or parent is None:
            raise ValueError("project_users: members are seeded under a seeded project")
        user = users.ordered()[(index + 2 * projects.ids.index(parent)) % len(users)]  # members differ by project
        return {"id": user["id"], "email": user["email"], "name": user["name"],
                "role": "owner" if index == 0 else "member"}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("role", "email", "user_id"))
        if "role" not in body:
            raise missing("role")
        require(body["role"] in ("owner", "member"), "Invalid 'role': expected 'owner' or 'member'.", "role")
        users = account.existing("org_users")
        wanted = body.get("user_id") or body.get("email")
        user = users.lookup(wanted) or users.lookup(wanted, "email") if users and wanted else None
        if user is None:
            raise ApiError(404, f"No user found with id '{wanted}' in this organization.")
        here = account.existing(self.name, parent)
        require(here is None or here.lookup(user["id"]) is None, "The user is already a member of the project.",
                "user_id")
        return {"id": user["id"], "email": user["email"], "name": user["name"], "role": body["role"]}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("role",))
        if "role" not in body:
            raise missing("role")
        require(body["role"] in ("owner", "member"), "Invalid 'role': expected 'owner' or 'member'.", "role")
        return {"role": body["role"]}

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "user.added", {"id": obj["id"], "data": {"role": obj["role"]}}
        if change == "deleted":
            return "user.deleted", {"id": obj["id"]}
        return "user.updated", {"id": obj["id"], "changes_requested": {"role": obj["role"]}}


class ProjectServiceAccounts(ProjectFamily):
    name, object, prefix, label = "project_service_accounts", "organization.project.service_account", "svc_acct_", \
        "service account"
    seed_names = ("ci-deployer", "nightly-evals", "support-bot-runtime", "etl-sync")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        return {"name": name, "role": "member"}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("name", "create_service_account_only", "expires_in_seconds"))
        if "name" not in body:
            raise missing("name")
        check_string(body, "name", 256, nullable=False)
        return {"name": body["name"], "role": "member"}

    def created(self, obj: dict, account: Account, parent: str | None) -> dict:
        """The account and its first key, whose value is told this once."""
        keys = account.kind("project_api_keys")
        value = f"sk-svcacct-{account.side_dice(keys.name).token(48)}"
        key = account.add(keys, {"last_used_at": None, "name": "Secret Key", "owner": {
            "service_account": {"id": obj["id"], "created_at": obj["created_at"], "name": obj["name"],
                                "role": "member"},
            "type": "service_account"}, "owner_project_access": "active", "redacted_value": hint(value)}, parent)
        return {**obj, "api_key": {"id": key["id"], "created_at": key["created_at"], "name": key["name"],
                                   "object": "organization.project.service_account.api_key", "value": value}}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("name", "role"))
        check_string(body, "name", 256, nullable=False)
        if "role" in body:
            require(body["role"] in ("owner", "member", "none"), "Invalid 'role'.", "role")
        return dict(body)

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "service_account.created", {"id": obj["id"], "data": {"role": obj["role"]}}
        if change == "deleted":
            return "service_account.deleted", {"id": obj["id"]}
        return "service_account.updated", {"id": obj["id"], "changes_requested": {"role": obj["role"]}}


class ProjectApiKeys(ProjectFamily):
    name, object, prefix, label = "project_api_keys", "organization.project.api_key", "key_", "API key"
    ops = frozenset({"list", "retrieve", "update", "delete"})
    optional = ("last_used_at", "expires_at")
    seed_names = ("Production backend", "Staging backend", "Analytics notebook", "Zapier", "CI smoke tests")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        members = account.existing("project_users", parent)
        accounts = account.existing("project_service_accounts", parent)
        if accounts and len(accounts) and index % 3 == 2:
            sa = accounts.ordered()[0]
            owner = {"service_account": {"id": sa["id"], "created_at": sa["created_at"], "name": sa["name"],
                                         "role": sa["role"]}, "type": "service_account"}
        else:
            user = members.ordered()[index % len(members)] if members and len(members) else None
            owner = {"type": "user", "user": {"id": user["id"], "created_at": user["added_at"], "email": user["email"],
                                              "name": user["name"], "role": user["role"]}} if user else {"type": "user"}
        return {"expires_at": None, "last_used_at": 1_752_000_000 + dice.between(0, 86_400 * 60), "name": name,
                "owner": owner, "owner_project_access": "active",
                "redacted_value": hint(f"sk-proj-{dice.token(48)}")}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("expires_in_seconds", "scopes"))
        check_int(body, "expires_in_seconds", 1)
        fields = {}
        if body.get("expires_in_seconds"):
            fields["expires_at"] = stamp_after(None) + body["expires_in_seconds"]
        return fields

    def listed(self, obj: dict, query: dict[str, list[str]]) -> bool:
        wanted = query.get("owner_project_access") or ["active"]  # the API's default
        return "any" in wanted or obj["owner_project_access"] in wanted

    def used(self, obj: dict, dice: Dice) -> dict:
        return {"last_used_at": stamp_after(obj.get("last_used_at"))}

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "api_key.created", {"id": obj["id"], "data": {"scopes": []}}
        if change == "deleted":
            return "api_key.deleted", {"id": obj["id"]}
        if change == "used":
            return None
        return "api_key.updated", {"id": obj["id"], "changes_requested": {}}


_LIMITS = (  # model, requests/min, tokens/min, and the limits some models also have
    ("gpt-4o", 10_000, 30_000_000, {"batch_1_day_max_input_tokens": 5_000_000_000}),
    ("gpt-4o-mini", 30_000, 150_000_000, {"batch_1_day_max_input_tokens": 15_000_000_000}),
    ("gpt-5", 15_000, 40_000_000, {"batch_1_day_max_input_tokens": 15_000_000_000}),
    ("gpt-image-1", 500, 800_000, {"max_images_per_1_minute": 250}),
    ("text-embedding-3-small", 10_000, 10_000_000, {"max_requests_per_1_day": 10_000_000}),
    ("whisper-1", 500, 0, {"max_audio_megabytes_per_1_minute": 200}),
)
_LIMIT_FIELDS = ("batch_1_day_max_input_tokens", "max_audio_megabytes_per_1_minute", "max_images_per_1_minute",
                 "max_requests_per_1_day", "max_requests_per_1_minute", "max_tokens_per_1_minute")


class ProjectRateLimits(ProjectFamily):
    name, object, prefix, label = "project_rate_limits", "project.rate_limit", "rl-", "rate limit"
    stamped = ()
    ops = frozenset({"list", "update"})
    before = True
    optional = _LIMIT_FIELDS[:4]

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        model, requests, tokens, extra = _LIMITS[index % len(_LIMITS)]
        if index >= len(_LIMITS):
            model = f"{model}-{index // len(_LIMITS) + 1}"
        return {"id": f"rl-{model}", "max_requests_per_1_minute": requests, "max_tokens_per_1_minute": tokens,
                "model": model, **extra}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, _LIMIT_FIELDS)
        for key in body:
            check_int(body, key, 0)
        return dict(body)

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "deleted":
            return "rate_limit.deleted", {"id": obj["id"]}
        return "rate_limit.updated", {"id": obj["id"], "changes_requested": {k: fields[k] for k in fields
                                                                              if k in _LIMIT_FIELDS}}


_TOOLS = ("code_interpreter", "file_search", "image_generation", "mcp", "web_search")
_RETENTION = ("organization_default", "none", "zero_data_retention", "modified_abuse_monitoring",
              "enhanced_zero_data_retention", "enhanced_modified_abuse_monitoring")
_OPEN_MODELS = {"mode": "deny_list", "model_ids": [], "object": "project.model_permissions"}


class ProjectSettings(Family):
    """One stored object per project: the four settings its endpoints read and write."""

    name, label = "project_settings", "project settings"
    routed, singleton = False, True
    stamped = ()

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        strict = dice.chance(0.5)
        return {"id": parent,
                "model_permissions": {"mode": "allow_list", "model_ids": ["gpt-4o", "gpt-4o-mini", "gpt-5"],
                                      "object": "project.model_permissions"} if strict else dict(_OPEN_MODELS),
                "hosted_tool_permissions": {tool: {"enabled": tool != "image_generation" or not strict}
                                            for tool in _TOOLS},
                "data_retention": {"object": "project.data_retention",
                                   "type": "zero_data_retention" if strict else "organization_default"},
                "spend_limit": {"currency": "USD", "enforcement": {"status": "inactive"}, "interval": "month",
                                "object": "project.spend_limit", "threshold_amount": dice.pick((500, 2_000, 10_000))}}

    def fresh(self, parent: dict) -> dict | None:
        """A new project: every model and hosted tool allowed, the organization's retention, no spend limit."""
        return {"model_permissions": dict(_OPEN_MODELS, model_ids=[]),
                "hosted_tool_permissions": {tool: {"enabled": True} for tool in _TOOLS},
                "data_retention": {"object": "project.data_retention", "type": "organization_default"}}

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        return "project.updated", {"id": obj["id"], "changes_requested": {}}


def _model_permissions(body: dict) -> dict:
    known_fields(body, ("mode", "model_ids"))
    require(body.get("mode") in ("allow_list", "deny_list"), "Invalid 'mode'.", "mode")
    require(isinstance(body.get("model_ids"), list), "Missing required parameter: 'model_ids'.", "model_ids")
    return {"mode": body["mode"], "model_ids": list(body["model_ids"]), "object": "project.model_permissions"}


def _tool_permissions(body: dict, current: dict) -> dict:
    known_fields(body, _TOOLS)
    for tool, value in body.items():
        require(value is None or isinstance(value, dict) and isinstance(value.get("enabled"), bool),
                f"Invalid '{tool}': expected {{\"enabled\": true|false}}.", tool)
    return {tool: body[tool] if body.get(tool) else current[tool] for tool in _TOOLS}


def _retention(body: dict, object_type: str, allowed: tuple[str, ...]) -> dict:
    known_fields(body, ("retention_type",))
    require(body.get("retention_type") in allowed, "Invalid 'retention_type'.", "retention_type")
    return {"object": object_type, "type": body["retention_type"]}


def _spend_limit(body: dict, object_type: str) -> dict:
    known_fields(body, ("currency", "interval", "threshold_amount"))
    require(body.get("currency") == "USD" and body.get("interval") == "month",
            "Only a monthly limit in USD is supported.", "currency")
    check_int(body, "threshold_amount", 1)
    if "threshold_amount" not in body:
        raise missing("threshold_amount")
    return {"currency": "USD", "enforcement": {"status": "inactive"}, "interval": "month", "object": object_type,
            "threshold_amount": body["threshold_amount"]}


@dataclass(frozen=True)
class Part:
    """One settings endpoint: how a POST body becomes the new value, and what a DELETE does."""

    name: str
    update: Callable[[dict, dict], dict]  # (request body, current value) -> new value
    deleted: str | None = None  # the `object` of its delete answer; None: it cannot be deleted
    reset: dict | None = None  # what a delete leaves (None: nothing, and GET answers 404)


PROJECT_PARTS = (
    Part("model_permissions", lambda body, cur: _model_permissions(body), "project.model_permissions", _OPEN_MODELS),
    Part("hosted_tool_permissions", _tool_permissions),
    Part("data_retention", lambda body, cur: _retention(body, "project.data_retention", _RETENTION)),
    Part("spend_limit", lambda body, cur: _spend_limit(body, "project.spend_limit"), "project.spend_limit"),
)
ORGANIZATION_PARTS = (
    Part("data_retention", lambda body, cur: _retention(body, "organization.data_retention", _RETENTION[2:])),
    Part("spend_limit", lambda body, cur: _spend_limit(body, "organization.spend_limit"), "organization.spend_limit"),
)


def settings_endpoints(account: Account, kind: str, path: str, parts: tuple[Part, ...]) -> list[Endpoint]:
    """GET/POST (and DELETE where it exists) {path}/{part} over the one stored settings object of `kind`."""
    return [Endpoint(f"{path}/{part.name}", kind, ADMIN, _settings_answer(account, kind, part)) for part in parts]


def _settings_answer(account: Account, kind: str, part: Part) -> Callable[..., bytes]:
    def answer(method: str, bound: dict, query: dict, body: bytes, content_type: str) -> bytes:
        address = bound.get("parent", "organization")
        with account.lock:
            try:
                served, col, obj, parent = account.locate(kind, address)
            except KeyError:
                raise ApiError(404, f"No project found with id '{address}'.") from None
            if method == "GET":
                if obj.get(part.name) is None:
                    raise ApiError(404, f"No {part.name.replace('_', ' ')} is set.")
                return dumps(obj[part.name])
            if method == "POST":
                value = part.update(parse_body(body, content_type), obj.get(part.name) or {})
                return dumps(account.change(served, col, obj, {part.name: value}, parent=parent,
                                            context={"via": "api"})[part.name])
            if method == "DELETE" and part.deleted:
                account.change(served, col, obj, {part.name: copy(part.reset)}, parent=parent, context={"via": "api"})
                return dumps({"deleted": True, "object": f"{part.deleted}.deleted"})
            raise invalid_url(method, f"/v1{served.path.format(parent=address)}/{part.name}")

    return answer


class OrganizationSettings(ProjectSettings):
    """The organization's own data retention and spend limit (one stored object)."""

    name, label = "organization_settings", "organization settings"
    path, key, parent, singleton = "/organization", ADMIN, None, False

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        return {"id": "organization",
                "data_retention": {"object": "organization.data_retention", "type": "modified_abuse_monitoring"},
                "spend_limit": {"currency": "USD", "enforcement": {"status": "inactive"}, "interval": "month",
                                "object": "organization.spend_limit", "threshold_amount": 25_000}}

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        return "organization.updated", {"id": "org", "changes_requested": {}}
