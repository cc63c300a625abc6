"""The organization plane (admin key, `/v1/organization/...`): users, invites, roles, groups, admin keys, projects.

Shapes are the SDK's `openai.types.admin.organization` models. Lists page with
`has_more` + `last_id` (and `next` where the SDK pages by it). Every change made
through these endpoints, or through the controls, names its actor in the audit log
(see `audit`); `audit()` says which event each change is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from watcher.sandbox.collection import stamp_after
from watcher.sandbox.content import OWNERS
from watcher.sandbox.dice import Dice
from watcher.sandbox.family import Family
from watcher.sandbox.wire import check_int, check_string, known_fields, missing, require

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

DOMAIN = "acme.example"


def person(handle: str) -> tuple[str, str]:
    """("Amara Okafor", "amara.okafor@acme.example") for an owner handle."""
    return " ".join(part.capitalize() for part in handle.split(".")), f"{handle}@{DOMAIN}"


def hint(key: str) -> str:
    """How the platform shows a key it will not show: its start and last four characters."""
    return f"{key[:8]}...{key[-4:]}" if len(key) > 12 else "sk-...****"


class OrgFamily(Family):
    """An organization kind (its path, key and paging are the registry's): oldest first unless asked."""

    default_order = "asc"

    def deleted(self, obj: dict) -> dict:
        return {"id": obj["id"], "object": f"{self.object}.deleted", "deleted": True}


class OrgUsers(OrgFamily):
    name, object, prefix, label = "org_users", "organization.user", "user-", "user"
    stamped = ("added_at",)
    ops = frozenset({"list", "retrieve", "update", "delete"})
    optional = ("email", "name", "role", "developer_persona", "technical_level")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        handle = OWNERS[index % len(OWNERS)] + (f"{index // len(OWNERS) + 1}" if index >= len(OWNERS) else "")
        full, email = person(handle)
        return {"email": email, "name": full, "role": "owner" if index in (0, 3) else "reader"}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("developer_persona", "role", "role_id", "technical_level"))
        if "role" in body:
            require(body["role"] in ("owner", "reader"), "Invalid 'role': expected 'owner' or 'reader'.", "role")
        return {k: v for k, v in body.items() if k != "role_id"}

    def listed(self, obj: dict, query: dict[str, list[str]]) -> bool:
        emails = query.get("emails[]") or query.get("emails")
        return not emails or obj.get("email") in emails

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "user.added", {"id": obj["id"], "data": {"role": obj.get("role")}}
        if change == "deleted":
            return "user.deleted", {"id": obj["id"]}
        return "user.updated", {"id": obj["id"], "changes_requested": {"role": fields.get("role", obj.get("role"))}}


class Invites(OrgFamily):
    name, object, prefix, label = "invites", "organization.invite", "invite-", "invite"
    ops = frozenset({"list", "retrieve", "create", "delete"})
    optional = ("accepted_at", "expires_at")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        handle = ("noor.haddad", "tomas.lind", "grace.kim", "ola.nowak")[index % 4]
        status = "accepted" if index % 2 else "pending"
        invite = {"email": f"{handle}{index // 4 or ''}@{DOMAIN}", "projects": [], "role": "reader",
                  "status": status, "expires_at": 1_760_000_000 + index * 86_400}
        if status == "accepted":
            invite["accepted_at"] = 1_751_000_000 + index * 3_600
        return invite

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("email", "role", "projects"))
        for key in ("email", "role"):
            if key not in body:
                raise missing(key)
        check_string(body, "email", 320, nullable=False)
        require(body["role"] in ("owner", "reader"), "Invalid 'role': expected 'reader' or 'owner'.", "role")
        projects = body.get("projects") or []
        for i, project in enumerate(projects):
            require(isinstance(project, dict) and project.get("role") in ("member", "owner"),
                    f"Invalid 'projects[{i}]'.", f"projects[{i}]")
        return {"email": body["email"], "projects": [{"id": p["id"], "role": p["role"]} for p in projects],
                "role": body["role"], "status": "pending", "expires_at": stamp_after(None) + 7 * 86_400}

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "invite.sent", {"id": obj["id"], "data": {"email": obj["email"], "role": obj["role"]}}
        return ("invite.deleted" if change == "deleted" else "invite.accepted"), {"id": obj["id"]}


_PREDEFINED = (("owner", "Can manage the organization, its billing, members and every project.",
                ["api.organization.admin", "api.organization.billing.write", "api.organization.members.write"]),
               ("reader", "Can read the organization's projects and usage.", ["api.organization.read"]))
_CUSTOM = (("Billing admin", "Reads usage and manages spend limits.",
            ["api.organization.billing.read", "api.organization.billing.write"]),
           ("Security auditor", "Reads the audit log, keys and members.",
            ["api.organization.audit_logs.read", "api.organization.members.read"]))


class Roles(OrgFamily):
    name, object, prefix, label = "roles", "role", "role_", "role"
    stamped = ()
    optional = ("description",)

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        predefined = index < len(_PREDEFINED)
        role, description, permissions = (_PREDEFINED + _CUSTOM)[index % (len(_PREDEFINED) + len(_CUSTOM))]
        if index >= len(_PREDEFINED) + len(_CUSTOM):
            role = f"{role} {index}"
        return {"description": description, "name": role, "permissions": list(permissions),
                "predefined_role": predefined, "resource_type": "api.organization"}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        for key in ("role_name", "permissions"):
            if key not in body:
                raise missing(key)
        fields = self.update({"predefined_role": False}, body, account)
        return {"description": None, "predefined_role": False, "resource_type": "api.organization", **fields}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("description", "permissions", "role_name"))
        require(not current.get("predefined_role"), "Predefined roles cannot be changed.", "role_id")
        check_string(body, "role_name", 128, nullable=False)
        check_string(body, "description", 512)
        fields: dict[str, Any] = {k: v for k, v in body.items() if k != "role_name"}
        if "role_name" in body:
            fields["name"] = body["role_name"]
        if "permissions" in body:
            require(isinstance(body["permissions"], list) and all(isinstance(p, str) for p in body["permissions"]),
                    "Invalid type for 'permissions': expected an array of strings.", "permissions", "invalid_type")
        return fields

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "role.created", {"id": obj["id"], "permissions": obj["permissions"], "role_name": obj["name"],
                                    "resource_id": "org", "resource_type": obj["resource_type"]}
        if change == "deleted":
            return "role.deleted", {"id": obj["id"]}
        before = set((old or obj)["permissions"])
        changes = {k: v for k, v in {"role_name": fields.get("name"), "description": fields.get("description")}.items()
                   if v is not None}
        if "permissions" in fields:
            changes["permissions_added"] = sorted(set(fields["permissions"]) - before)
            changes["permissions_removed"] = sorted(before - set(fields["permissions"]))
        return "role.updated", {"id": obj["id"], "changes_requested": changes}


class Groups(OrgFamily):
    name, object, prefix, label = "groups", "", "group_", "group"

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        names = ("Platform engineering", "Support leads", "Finance", "Data science")
        label = names[index % len(names)] + (f" {index // len(names) + 1}" if index >= len(names) else "")
        return {"group_type": "group", "is_scim_managed": index % 3 == 2, "name": label}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        if "name" not in body:
            raise missing("name")
        return {"group_type": "group", "is_scim_managed": False, **self.update({}, body, account)}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("name",))
        check_string(body, "name", 256, nullable=False)
        return dict(body)

    def deleted(self, obj: dict) -> dict:
        return {"id": obj["id"], "object": "group.deleted", "deleted": True}

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "group.created", {"id": obj["id"], "data": {"group_name": obj["name"]}}
        if change == "deleted":
            return "group.deleted", {"id": obj["id"]}
        return "group.updated", {"id": obj["id"], "changes_requested": {"group_name": obj["name"]}}


class AdminApiKeys(OrgFamily):
    name, object, prefix, label = "admin_api_keys", "organization.admin_api_key", "key_", "admin API key"
    ops = frozenset({"list", "retrieve", "create", "delete"})
    optional = ("expires_at", "last_used_at", "name")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        """The first key is the one the sandbox accepts; the others belong to colleagues' scripts."""
        users = account.existing("org_users")
        owner = users.ordered()[index % len(users)] if users and len(users) else None
        value = account.admin_key if index == 0 and account.admin_key else f"sk-admin-{dice.token(40)}"
        return {"expires_at": None, "last_used_at": 1_752_000_000 + dice.between(0, 86_400 * 30),
                "name": ("Terraform", "Access review script", "SCIM bridge")[index % 3],
                "owner": _owner(owner), "redacted_value": hint(value)}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("name", "expires_in_seconds"))
        if "name" not in body:
            raise missing("name")
        check_string(body, "name", 256, nullable=False)
        check_int(body, "expires_in_seconds", 1)
        users = account.existing("org_users")
        expires = body.get("expires_in_seconds")
        return {"expires_at": stamp_after(None) + expires if expires else None, "last_used_at": None,
                "name": body["name"], "owner": _owner(users.ordered()[0] if users and len(users) else None),
                "redacted_value": ""}

    def created(self, obj: dict, account: Account, parent: str | None) -> dict:
        value = f"sk-admin-{account.side_dice(self.name).token(48)}"  # told once, never kept
        obj["redacted_value"] = hint(value)  # not served yet: the lock is held since it was added
        return {**obj, "value": value}

    def used(self, obj: dict, dice: Dice) -> dict:
        return {"last_used_at": stamp_after(obj.get("last_used_at"))}

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "api_key.created", {"id": obj["id"], "data": {"scopes": ["api.organization.admin"]}}
        if change == "deleted":
            return "api_key.deleted", {"id": obj["id"]}
        return None  # a key that is merely used is not a change


def _owner(user: dict | None) -> dict:
    if user is None:
        return {"type": "user"}
    return {"id": user["id"], "created_at": user["added_at"], "name": user["name"], "object": "organization.user",
            "role": user["role"], "type": "user"}


class Projects(OrgFamily):
    name, object, prefix, label = "projects", "organization.project", "proj_", "project"
    ops = frozenset({"list", "retrieve", "create", "update"})
    optional = ("archived_at", "external_key_id", "name", "residency", "status")
    seed_names = ("Support Bots", "Growth Experiments", "Internal Tools", "Data Platform", "Sales Assist",
                  "Legal Review")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        return {"archived_at": None, "name": name, "status": "active"}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        if "name" not in body:
            raise missing("name")
        return {"archived_at": None, "status": "active", **self.update({}, body, account)}

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("name", "external_key_id", "geography", "residency"))
        check_string(body, "name", 256, nullable=False)
        return {k: v for k, v in body.items() if k in ("name", "external_key_id")}

    def listed(self, obj: dict, query: dict[str, list[str]]) -> bool:
        return obj.get("status") != "archived" or query.get("include_archived", ["false"])[-1] == "true"

    def actions(self) -> dict[str, Callable[[dict, dict, Account], tuple[dict, dict]]]:
        return {"archive": lambda obj, body, account: ({"archived_at": stamp_after(None), "status": "archived"}, {})}

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        if change == "created":
            return "project.created", {"id": obj["id"], "data": {"name": obj["name"], "title": obj["name"]}}
        if change == "archive":
            return "project.archived", {"id": obj["id"]}
        if change == "deleted":
            return "project.deleted", {"id": obj["id"]}
        return "project.updated", {"id": obj["id"], "changes_requested": {"title": obj.get("name")}}

