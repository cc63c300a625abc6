"""The organization's audit log (`GET /v1/organization/audit_logs`, admin key): who changed what, newest first.

Every organization change appends an entry naming its actor: the admin key for a
change made through the API, else the session user (email and IP) or the API key a
control names, else the organization's owner from the office IP. An entry appended
with an `effective_at` in the past sorts into the past, as an entry that reaches the
log late does; a reader polling "since the last poll" only sees it if it looks back.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from watcher.sandbox.dice import dice_for
from watcher.sandbox.family import ADMIN, Served
from watcher.sandbox.organization import hint
from watcher.sandbox.routing import Endpoint
from watcher.sandbox.wire import ApiError, copy, dumps, invalid_url, list_limit, require

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

PATH = "/organization/audit_logs"
OFFICE_IPS = ("203.0.113.24", "198.51.100.7", "192.0.2.66")  # documentation ranges: never a real client
_BOUNDS = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}


class AuditLog:
    """The audit log of one sandbox's organization (see the module docstring)."""

    def __init__(self, account: Account, seed: int):
        self.account = account
        self._entries: list[dict] = []  # oldest first, by (effective_at, order of arrival)
        self._held: list[dict] | None = None  # while the log lags: entries made, not yet readable
        self._dice = dice_for(seed, "audit_logs")

    # -- who ---------------------------------------------------------------------------------

    def context(self, via: str, actor: dict | None = None, api_key_id: str | None = None) -> dict:
        """A change's context with its actor resolved now (an unknown key is a KeyError before any change)."""
        if api_key_id is not None:
            return {"via": via, "actor_entry": self._key_actor(api_key_id)}
        if actor is not None:
            return {"via": via, "actor_entry": self._session_actor(actor)}
        return {"via": via}

    def _actor(self, context: dict) -> dict:
        if "actor_entry" in context:
            return context["actor_entry"]
        if context.get("via") == "api":
            return self._key_actor(self._own_admin_key_id())
        owner = self._users()[0] if self._users() else {"email": f"owner@{'acme.example'}"}
        return self._session_actor({"email": owner["email"], "ip": OFFICE_IPS[0]})

    def _users(self) -> list[dict]:
        col = self.account.existing("org_users")
        return col.ordered() if col else []

    def _session_actor(self, actor: dict) -> dict:
        require(isinstance(actor, dict) and isinstance(actor.get("email"), str),
                "an actor is {\"email\": ..., \"ip\": ...}", "actor")
        user = next((u for u in self._users() if u.get("email") == actor["email"]), None)
        who = {"email": actor["email"], **({"id": user["id"]} if user else {})}
        return {"session": {"ip_address": actor.get("ip") or OFFICE_IPS[0], "user": who}, "type": "session"}

    def _key_actor(self, key_id: str | None) -> dict:
        key = self._find_key(key_id)
        if key is None:
            raise KeyError(f"no admin or project API key {key_id!r}")
        owner = key.get("owner") or {}
        if owner.get("type") == "service_account":
            return {"api_key": {"id": key["id"], "service_account": {"id": owner["service_account"]["id"]},
                                "type": "service_account"}, "type": "api_key"}
        user = owner.get("user") or owner  # admin keys name their owner inline
        return {"api_key": {"id": key["id"], "type": "user", "user": {"email": _email_of(self._users(), user),
                                                                       "id": user.get("id")}}, "type": "api_key"}

    def _find_key(self, key_id: str | None) -> dict | None:
        if not key_id:
            return None
        admin = self.account.existing("admin_api_keys")
        found = admin.lookup(key_id) if admin else None
        projects = self.account.existing("projects")
        for pid in projects.ids if projects and found is None else ():
            keys = self.account.existing("project_api_keys", pid)
            found = found or (keys.lookup(key_id) if keys else None)
        return found

    def _own_admin_key_id(self) -> str | None:
        own = hint(self.account.admin_key or "")
        admin = self.account.existing("admin_api_keys")
        return next((k["id"] for k in admin.ordered() if k["redacted_value"] == own), None) if admin else None

    # -- writing -----------------------------------------------------------------------------

    def record(self, served: Served, event_type: str, payload: dict, obj: dict, context: dict) -> None:
        """The account's audit sink: one entry for one organization change."""
        entry = {"id": self._new_id(), "type": event_type, "effective_at": int(time.time()),
                 "actor": self._actor(context), event_type: payload}
        project = self._project(served, obj, context.get("parent"))
        if project is not None:
            entry["project"] = project
        if self._held is not None:
            self._held.append(entry)
            return
        self._insert(entry)

    def hold(self) -> None:
        """Lag: the entries of changes made from now on are not readable until `release()`."""
        with self.account.lock:
            if self._held is None:
                self._held = []

    def release(self) -> list[dict]:
        """Stop lagging: the held entries become readable, each in the past where it was made."""
        with self.account.lock:
            held, self._held = self._held or [], None
            for entry in held:
                self._insert(entry)
            return [copy(e) for e in held]

    def append(self, entry: dict) -> dict:
        """An entry as given (id and effective_at filled in when missing); `actor` may be {email, ip}."""
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise ValueError("an audit entry needs a 'type' such as 'rate_limit.updated'")
        full = {"id": self._new_id(), "effective_at": int(time.time()), **copy(entry)}
        if not isinstance(full["effective_at"], int) or isinstance(full["effective_at"], bool):
            raise ValueError("an audit entry's effective_at is seconds since the epoch")
        actor = full.get("actor")
        if isinstance(actor, dict) and "email" in actor and "type" not in actor:
            full["actor"] = self._session_actor(actor)
        with self.account.lock:
            self._insert(full)
        return copy(full)

    def _insert(self, entry: dict) -> None:
        at = entry["effective_at"]
        index = len(self._entries)
        while index and self._entries[index - 1]["effective_at"] > at:
            index -= 1  # a late entry sorts into the past
        self._entries.insert(index, entry)

    def _new_id(self) -> str:
        return f"audit_log-{self._dice.token(24)}"

    def _project(self, served: Served, obj: dict, parent: str | None) -> dict | None:
        """{id, name} of the project a change was made in (none for organization-wide kinds)."""
        pid = obj["id"] if served.name == "projects" else parent if served.parent == "projects" else None
        if pid is None:
            return None
        projects = self.account.existing("projects")
        project = projects.lookup(pid) if projects else None
        return {"id": pid, "name": project.get("name") if project else None}

    def seed_history(self) -> None:
        """Entries for the seeded organization's past: projects created, members added, keys made."""
        projects = self.account.existing("projects")
        owner = self._users()[0]["email"] if self._users() else None
        for project in projects.ordered() if projects else []:
            ref = {"id": project["id"], "name": project["name"]}
            self._seeded(project["created_at"], "project.created", {"id": project["id"], "data": {
                "name": project["name"], "title": project["name"]}}, ref, owner)
            users = self.account.existing("project_users", project["id"])
            for user in users.ordered() if users else []:
                self._seeded(user["added_at"], "user.added", {"id": user["id"], "data": {"role": user["role"]}},
                             ref, owner)
            keys = self.account.existing("project_api_keys", project["id"])
            for key in keys.ordered() if keys else []:
                creator = (key["owner"].get("user") or {}).get("email") or owner
                self._seeded(key["created_at"], "api_key.created", {"id": key["id"], "data": {"scopes": []}}, ref,
                             creator)

    def _seeded(self, at: int, event_type: str, payload: dict, project: dict, email: str | None) -> None:
        actor = self._session_actor({"email": email, "ip": self._dice.pick(OFFICE_IPS)}) if email else None
        entry = {"id": self._new_id(), "type": event_type, "effective_at": at, "project": project, event_type: payload}
        if actor:
            entry["actor"] = actor
        self._insert(entry)

    def entries(self) -> list[dict]:
        """Copies of every entry, newest first."""
        with self.account.lock:
            return [copy(e) for e in reversed(self._entries)]

    # -- reading -----------------------------------------------------------------------------

    def endpoint(self) -> Endpoint:
        return Endpoint(PATH, "audit_logs", ADMIN, self._answer)

    def _answer(self, method: str, bound: dict, query: dict[str, list[str]], body: bytes, content_type: str) -> bytes:
        if method != "GET":
            raise invalid_url(method, f"/v1{PATH}")
        one = {k: v[-1] for k, v in query.items()}
        limit = list_limit(one)
        bounds = {op: _int(one, f"effective_at[{op}]") for op in _BOUNDS if f"effective_at[{op}]" in one}
        with self.account.lock:
            newest_first = [e for e in reversed(self._entries) if _matches(e, bounds, query)]
            start, stop = _window(newest_first, one.get("after"), one.get("before"), limit)
            chosen = newest_first[start:stop]
            parts = [dumps(e) for e in chosen]
            has_more = stop < len(newest_first) if not one.get("before") else start > 0
        tail = dumps({"first_id": chosen[0]["id"] if chosen else None,
                      "last_id": chosen[-1]["id"] if chosen else None, "has_more": has_more})
        return b'{"object":"list","data":[' + b",".join(parts) + b"]," + tail[1:]


def _int(query: dict[str, str], key: str) -> int:
    try:
        return int(query[key])
    except ValueError:
        raise ApiError(400, f"Invalid '{key}': expected an integer.", param=key, code="invalid_type") from None


def _window(entries: list[dict], after: str | None, before: str | None, limit: int) -> tuple[int, int]:
    """[start, stop) of a page: after the `after` entry, or the `limit` entries just before `before`."""
    ids = [e["id"] for e in entries]
    if after:
        require(after in ids, f"Invalid 'after': no audit log entry '{after[:80]}' matches this query.", "after")
        start = ids.index(after) + 1
        return start, min(len(ids), start + limit)
    if before:
        require(before in ids, f"Invalid 'before': no audit log entry '{before[:80]}' matches this query.", "before")
        stop = ids.index(before)
        return max(0, stop - limit), stop
    return 0, min(len(ids), limit)


def _matches(entry: dict, bounds: dict[str, int], query: dict[str, list[str]]) -> bool:
    """Whether an entry passes a list request's filters (effective_at bounds and the id/type lists)."""
    if not all(_BOUNDS[op](entry["effective_at"], value) for op, value in bounds.items()):
        return False
    payload = entry.get(entry["type"]) or {}
    actor = entry.get("actor") or {}
    user = (actor.get("session") or {}).get("user") or (actor.get("api_key") or {}).get("user") or {}
    facts: dict[str, Any] = {
        "event_types": entry["type"], "resource_ids": payload.get("id"),
        "project_ids": (entry.get("project") or {}).get("id"), "actor_emails": user.get("email"),
        "actor_ids": [user.get("id"), (actor.get("api_key") or {}).get("id")],
    }
    for name, value in facts.items():
        wanted = query.get(f"{name}[]") or query.get(name)
        if wanted and not (set(value) & set(wanted) if isinstance(value, list) else value in wanted):
            return False
    return True


def _email_of(users: list[dict], user: dict) -> str | None:
    if user.get("email"):
        return user["email"]
    return next((u.get("email") for u in users if u["id"] == user.get("id")), None)
