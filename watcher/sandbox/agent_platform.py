"""Around agents: environments, automations, vaults and their credentials (all `OpenAI-Beta: agents=v1`).

A vault credential's secret (a bearer token, an OAuth access or refresh token, an
environment variable's value) is taken by create and update and then dropped: no
answer, and no Python control, can return it, as on the platform.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from watcher.sandbox.assistants import agent_tools
from watcher.sandbox.dice import Dice
from watcher.sandbox.family import Family
from watcher.sandbox.wire import ApiError, check_int, check_metadata, check_string, known_fields, missing, require

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

_PLUGINS = (("jira", "Create and update Jira issues in the ACME project."),
            ("pagerduty", "Read on-call schedules and acknowledge incidents."),
            ("looker", "Run saved Looker looks and export their results."))
_FILES = ("/workspace/data/policies.pdf", "/workspace/data/price_list.csv", "/workspace/config/settings.yaml",
          "/workspace/scripts/reconcile.py")


class AgentEnvironments(Family):
    name, object, prefix = "agent_environments", "agent.environment", "env_"
    label = "environment"
    stamped = ()  # EnvironmentInfo has no timestamps
    ops = frozenset({"list", "retrieve", "create"})

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        files = [_file(dice, path, dice.chance(0.5)) for path in _FILES[:dice.between(1, len(_FILES))]]
        plugins = [{"description": d, "name": n, "type": "inline"} for n, d in _PLUGINS[:dice.between(0, 2)]]
        skills_col = account.existing("skills")
        skills = [{"description": s["description"], "name": s["name"], "skill_id": s["id"],
                   "type": "skill_reference", "version": s["default_version"]}
                  for s in (skills_col.ordered()[:2] if skills_col else [])]
        return {"files": files, "plugins": plugins, "skills": skills, "status": dice.pick(("ready", "ready",
                                                                                          "suspended")),
                "type": "self_hosted" if index % 4 == 3 else "openai_hosted"}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("environment", "vault_ids"))
        spec = body.get("environment")
        if not isinstance(spec, dict):
            raise missing("environment")
        require(spec.get("type") == "openai_hosted", "Invalid 'environment.type': expected 'openai_hosted'.",
                "environment.type")
        dice = account.side_dice(self.name)
        files = []
        for i, item in enumerate(spec.get("files") or []):
            require(isinstance(item, dict) and isinstance(item.get("path"), str) and item.get("type") in
                    ("file_id", "inline"), f"Invalid 'environment.files[{i}]'.", f"environment.files[{i}]")
            inline = item["type"] == "inline"
            files.append({**_file(dice, item["path"], inline), **({} if inline else {"file_id": item.get("file_id")})})
        plugins = [{"description": p.get("description", ""), "name": p.get("name", ""), "type": "inline"}
                   for p in spec.get("plugins") or []]
        skills = [_skill(account, s) for s in spec.get("skills") or []]
        return {"files": files, "plugins": plugins, "skills": skills, "status": "ready", "type": "openai_hosted"}

    def listed(self, obj: dict, query: dict[str, list[str]]) -> bool:
        return obj["type"] in query.get("type", [obj["type"]])


def _file(dice: Dice, path: str, inline: bool) -> dict:
    head = {"id": f"envfile_{dice.token(20)}"}
    if inline:
        return {**head, "path": path, "size_bytes": dice.between(200, 60_000), "type": "inline"}
    return {**head, "file_id": f"file-{dice.token(22)}", "path": path, "size_bytes": dice.between(2_000, 9_000_000),
            "type": "file_id"}


def _skill(account: Account, ref: dict) -> dict:
    if ref.get("type") == "inline":
        return {"description": ref.get("description", ""), "name": ref.get("name", ""), "type": "inline"}
    col = account.existing("skills")
    skill = col.lookup(str(ref.get("skill_id"))) if col else None
    if skill is None:
        raise ApiError(404, f"No skill found with id '{ref.get('skill_id')}'.")
    return {"description": skill["description"], "name": skill["name"], "skill_id": skill["id"],
            "type": "skill_reference", "version": ref.get("version") or skill["default_version"]}


_AUTOMATIONS = (
    ("Nightly churn report", "0 2 * * *", "Summarize yesterday's cancellations by plan and reason."),
    ("Monday KPI digest", "0 7 * * 1", "Write the weekly KPI digest for the leadership channel."),
    ("Vendor contract review", "30 9 1 * *", "Review vendor contracts that renew within 60 days."),
    ("Daily incident summary", "0 18 * * 1-5", "Summarize today's incidents and their open follow-ups."),
    ("Quarterly access review", "0 9 1 1,4,7,10 *", "List API keys and members unused for 90 days."),
)
_ZONES = ("Europe/Paris", "America/New_York", "UTC", "Asia/Tokyo")


class AgentAutomations(Family):
    name, object, prefix = "agent_automations", "agent.automation", "auto_"
    label = "automation"
    seed_names = tuple(a[0] for a in _AUTOMATIONS)
    optional = ("pause_reason",)

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        expression, prompt = next((e, p) for n, e, p in _AUTOMATIONS if name.startswith(n))
        agents = account.existing("agents")
        target = {"environment": {"type": "none"}, "input": [_message(prompt)], "metadata": {},
                  "type": "new_session", "vault_ids": []}
        if agents and len(agents) and index % 2 == 0:
            target["agent_id"] = agents.ids[index % len(agents)]
        else:
            target["agent"] = {"instructions": "Be concise; cite the rows you used.", "model": "gpt-5-mini",
                               "multi_agent": {"enabled": False, "max_concurrent_subagents": None},
                               "reasoning": {"effort": "low", "summary": None}, "service_tier": "auto",
                               "text": {"format": {"type": "text"}, "verbosity": "low"}, "tools": []}
        base = {"created_by": {"type": "developer"}, "metadata": {"owner": dice.pick(("ops", "finance", "legal"))},
                "name": name, "status": "active", "target": target}
        if index % 5 == 4:
            return {**base, "run_at": 1_790_000_000 + dice.between(0, 86_400 * 60), "type": "once"}
        return {**base, "expression": expression, "timezone": dice.pick(_ZONES), "type": "periodic"}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        kind = body.get("type")
        require(kind in ("periodic", "once"), "Invalid 'type': expected 'periodic' or 'once'.", "type")
        needed = ("expression", "name", "target", "timezone") if kind == "periodic" else ("name", "run_at", "target")
        for key in needed:
            if key not in body:
                raise missing(key)
        fields = self.update({"type": kind}, {k: v for k, v in body.items() if k != "type"}, account)
        return {"created_by": {"type": "developer"}, "metadata": {}, "status": "active", **fields, "type": kind}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("expression", "metadata", "name", "run_at", "target", "timezone"))
        periodic = current.get("type") == "periodic"
        for key in ("expression", "timezone") if not periodic else ("run_at",):
            require(key not in body, f"'{key}' does not apply to a {current.get('type')} automation.", key)
        check_string(body, "name", 256, nullable=False)
        check_string(body, "expression", 256, nullable=False)
        check_string(body, "timezone", 64, nullable=False)
        check_int(body, "run_at", 1)
        fields = dict(body)
        if "metadata" in body:
            fields["metadata"] = check_metadata(body["metadata"])
        if "target" in body:
            fields["target"] = _target(body["target"])
        return fields

    def listed(self, obj: dict, query: dict[str, list[str]]) -> bool:
        wanted = query.get("session_id")
        return not wanted or obj["target"].get("session_id") in wanted

    def actions(self) -> dict[str, Callable[[dict, dict, Account], tuple[dict, dict]]]:
        return {"pause": lambda obj, body, account: ({"status": "paused"}, {}),
                "resume": lambda obj, body, account: ({"status": "active"}, {})}


def _message(text: str) -> dict:
    return {"content": [{"text": text, "type": "input_text"}], "role": "user", "type": "message"}


def _target(target: Any) -> dict:
    """A create/update target, filled as the API stores it."""
    require(isinstance(target, dict) and target.get("type") in ("new_session", "existing_session"),
            "Invalid 'target.type': expected 'new_session' or 'existing_session'.", "target.type")
    if target["type"] == "existing_session":
        for key in ("instructions", "session_id"):
            if not isinstance(target.get(key), str):
                raise missing(f"target.{key}")
        return {"instructions": target["instructions"], "session_id": target["session_id"], "type": "existing_session"}
    if not isinstance(target.get("input"), list):
        raise missing("target.input")
    out = {"environment": target.get("environment") or {"type": "none"}, "input": target["input"],
           "metadata": check_metadata(target.get("metadata"), "target.metadata"), "type": "new_session",
           "vault_ids": list(target.get("vault_ids") or [])}
    if target.get("agent_id"):
        out["agent_id"] = target["agent_id"]
    if target.get("agent"):
        agent = dict(target["agent"])
        agent["tools"] = agent_tools(agent.get("tools"), "target.agent.tools")
        out["agent"] = agent
    return out


_VAULTS = ("Production integrations", "Staging integrations", "Finance connectors", "Support tooling",
           "Data platform", "Security automation")


class Vaults(Family):
    name, object, prefix = "vaults", "vault", "vault_"
    seed_names = _VAULTS
    optional = ("name",)

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        return {"metadata": {"env": "staging" if "Staging" in name else "prod"}, "name": name}

    def defaults(self) -> dict:
        return {"metadata": {}, "name": None}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        return self.update({}, body, account)

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("metadata", "name"))
        check_string(body, "name", 256)
        fields = dict(body)
        if "metadata" in body:
            fields["metadata"] = check_metadata(body["metadata"])
        return fields


_SECRET_FIELDS = ("token", "access_token", "secret_value", "refresh_token")  # taken, never stored
_CREDENTIALS = (
    ("linear", {"mcp_server_url": "https://mcp.linear.app/mcp", "type": "static_bearer"}),
    ("stripe", {"networking": {"allowed_hosts": ["api.stripe.com"], "type": "limited"}, "secret_name": "STRIPE_API_KEY",
                "type": "environment_variable"}),
    ("google-drive", {"expires_at": "2026-12-31T00:00:00Z", "mcp_server_url": "https://mcp.gdrive.acme.example/mcp",
                      "refresh": {"client_id": "acme-agents", "resource": None, "scope": "drive.readonly",
                                  "token_endpoint": "https://oauth2.googleapis.com/token",
                                  "token_endpoint_auth": {"type": "client_secret_post"}},
                      "type": "mcp_oauth"}),
)


class VaultCredentials(Family):
    """Not a kind the watcher reads: served so a test can prove it never asks."""

    name, object, prefix = "vault_credentials", "vault.credential", "vcred_"
    label = "credential"
    stamped = ("created_at", "updated_at")
    path, beta, parent = "/vaults/{parent}/credentials", "agents=v1", "vaults"

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        label, auth = _CREDENTIALS[index % len(_CREDENTIALS)]
        return {"auth": auth, "metadata": {}, "name": label, "vault_id": parent}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("auth", "name", "metadata"))
        for key in ("auth", "name"):
            if key not in body:
                raise missing(key)
        check_string(body, "name", 256, nullable=False)
        return {"auth": _stored_auth(body["auth"]), "metadata": check_metadata(body.get("metadata")),
                "name": body["name"], "vault_id": parent}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("auth", "metadata"))
        fields = {}
        if "auth" in body:
            fields["auth"] = {**current["auth"], **_stored_auth({"type": current["auth"]["type"], **body["auth"]})}
        if "metadata" in body:
            fields["metadata"] = check_metadata(body["metadata"])
        return fields


def _stored_auth(auth: Any) -> dict:
    """A credential's auth as stored and served: every secret value dropped."""
    require(isinstance(auth, dict) and auth.get("type") in ("mcp_oauth", "static_bearer", "environment_variable"),
            "Invalid 'auth.type'.", "auth.type")
    stored = {k: v for k, v in auth.items() if k not in _SECRET_FIELDS}
    if isinstance(stored.get("refresh"), dict):
        stored["refresh"] = {k: v for k, v in stored["refresh"].items() if k not in _SECRET_FIELDS}
    return stored
