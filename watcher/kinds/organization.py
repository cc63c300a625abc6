"""The kinds an admin key reads: the organization plane (`/v1/organization/...`).

Shapes follow the `openai` SDK's admin models (`openai.types.admin.organization`, 3.57).
Organization lists page with `has_more` + `last_id` (roles and groups with `next`, admin
keys by the last object's id) and most take no `order`. What lives under a project is
listed under each project, its id prefixed by the project's (`proj_…/rl-gpt-4o`): a rate
limit's id names its model, so the same id is one object in every project. Every kind
says which audit log events name its objects, for `watcher.poll.attribution`.

A key's value is never requested: the list endpoints serve ids, names, owners and a
redacted hint; a `value` a server might send anyway is stored only as a fingerprint.
"""

from __future__ import annotations

from watcher.kinds.base import (
    ADMIN,
    AFTER_LAST_ID,
    AFTER_LAST_OBJECT,
    AFTER_NEXT,
    ANYWHERE,
    IN_PROJECT,
    ORGANIZATION_WIDE,
    PER_PARENT,
    SINGLETON_PER_PARENT,
    Kind,
)

_UNDER_PROJECT = "/organization/projects/{parent}"
_NO_EDIT_TIME = {"updated_field": None, "volatile": ()}  # organization objects carry no updated_at
SETTINGS = ("model_permissions", "hosted_tool_permissions", "data_retention", "spend_limit")


def _org(**fields) -> Kind:
    """An organization kind: admin key, `has_more` + `last_id` pages, no `order`, no edit time."""
    return Kind(**{"key": ADMIN, "ordered": False, "cursor": AFTER_LAST_ID, **_NO_EDIT_TIME, **fields})


def _per_project(**fields) -> Kind:
    """Listed under each project, labelled "Support Bots / gpt-4o": a rate limit's name is in every project."""
    return _org(**{"listing": PER_PARENT, "parent": "projects", "audit_scope": IN_PROJECT, "named_under_parent": True,
                   **fields})


ORG_USERS = _org(
    name="org_users", label="organization user", path="/organization/users", name_field="email",
    timestamps=("added_at", "created", "api_key_last_used_at"), volatile=("api_key_last_used_at",),
    high=("role", "is_service_account", "is_scale_tier_authorized_purchaser"),
    audit_types=("user.added", "user.updated", "user.deleted"), audit_scope=ORGANIZATION_WIDE,
    summary="the organization's members and their organization role",
)

INVITES = _org(
    name="invites", label="invite", path="/organization/invites", name_field="email",
    timestamps=("created_at", "accepted_at", "expires_at"), high=("role", "projects"),
    audit_types=("invite.sent", "invite.accepted", "invite.deleted"),
    summary="pending and accepted invitations (the role and projects they grant)",
)

ROLES = _org(
    name="roles", label="role", path="/organization/roles", ordered=True, cursor=AFTER_NEXT, timestamps=(),
    high=("name", "description", "permissions", "resource_type", "predefined_role"), created_high=True,
    audit_types=("role.created", "role.updated", "role.deleted"),
    summary="organization roles and the permissions each grants",
)

GROUPS = _org(
    name="groups", label="group", path="/organization/groups", ordered=True, cursor=AFTER_NEXT,
    audit_types=("group.created", "group.updated", "group.deleted"),
    summary="groups of users (SCIM-managed or not)",
)

ADMIN_API_KEYS = _org(
    name="admin_api_keys", label="admin API key", path="/organization/admin_api_keys", ordered=True,
    cursor=AFTER_LAST_OBJECT, timestamps=("created_at", "last_used_at", "expires_at"), volatile=("last_used_at",),
    high=("owner", "expires_at", "redacted_value"), created_high=True, secrets=("value",),
    audit_types=("api_key.created", "api_key.updated", "api_key.deleted"),
    summary="keys that manage the organization: ids, names, owners and a redacted hint, never a value",
)

PROJECTS = _org(
    name="projects", label="project", path="/organization/projects", params={"include_archived": "true"},
    timestamps=("created_at", "archived_at"), high=("status", "archived_at", "residency", "external_key_id"),
    audit_types=("project.created", "project.updated", "project.archived", "project.deleted"),
    summary="projects (archived ones too: archiving is a change, not a deletion)",
)

PROJECT_USERS = _per_project(
    name="project_users", label="project user", path=f"{_UNDER_PROJECT}/users", name_field="email",
    timestamps=("added_at",), high=("role",),
    audit_types=("user.added", "user.updated", "user.deleted"),
    summary="each project's members and their project role",
)

PROJECT_SERVICE_ACCOUNTS = _per_project(
    name="project_service_accounts", label="service account", path=f"{_UNDER_PROJECT}/service_accounts",
    high=("role",), audit_types=("service_account.created", "service_account.updated", "service_account.deleted"),
    audit_scope=ANYWHERE,  # its id is the organization's only one: an entry need not name the project
    summary="each project's service accounts (identities that hold keys)",
)

PROJECT_API_KEYS = _per_project(
    name="project_api_keys", label="project API key", path=f"{_UNDER_PROJECT}/api_keys",
    params={"owner_project_access": "any"},  # a key whose owner lost access changes; it is not deleted
    timestamps=("created_at", "last_used_at", "expires_at"), volatile=("last_used_at",),
    high=("owner", "owner_project_access", "expires_at", "redacted_value", "spend_limit"), created_high=True,
    secrets=("value",), state=("spend_limit.enforcement.status",),  # "enforcing" while the limit blocks the key
    state_alarms=(("spend_limit.enforcement.status", "enforcing"),),
    audit_types=("api_key.created", "api_key.updated", "api_key.deleted"), audit_scope=ANYWHERE,  # unique ids
    summary="each project's API keys: ids, names, owners and a redacted hint, never a value",
)

PROJECT_RATE_LIMITS = _per_project(
    name="project_rate_limits", label="rate limit", path=f"{_UNDER_PROJECT}/rate_limits", name_field="model",
    timestamps=(), audit_types=("rate_limit.updated", "rate_limit.deleted"),
    summary="each project's rate limits per model (the same id in every project)",
)

PROJECT_SETTINGS = _org(
    name="project_settings", label="project settings", path=_UNDER_PROJECT, listing=SINGLETON_PER_PARENT,
    parent="projects", parts=tuple((part, f"{_UNDER_PROJECT}/{part}") for part in SETTINGS),
    optional_parts=("spend_limit",),  # a project without a spend limit answers 404
    state=("spend_limit.enforcement.status",),  # "enforcing" while the limit blocks the project's requests
    state_alarms=(("spend_limit.enforcement.status", "enforcing"),),
    timestamps=(), volatile=("name",),  # the project's name labels it; renames are the projects kind's
    high=SETTINGS, audit_types=("project.created", "project.updated", "project.deleted"),  # named by the project
    summary="each project's model and hosted-tool permissions, data retention and spend limit, as one object",
)

# Not a watched kind: the audit log is read to learn who made a change (`watcher.poll.attribution`).
AUDIT_LOG = _org(name="audit_logs", label="audit log entry", path="/organization/audit_logs", timestamps=(),
                 summary="who changed what in the organization")

# The registry's order: projects before the kinds listed under each project.
KINDS = (ORG_USERS, INVITES, ROLES, GROUPS, ADMIN_API_KEYS, PROJECTS, PROJECT_USERS, PROJECT_SERVICE_ACCOUNTS,
         PROJECT_API_KEYS, PROJECT_RATE_LIMITS, PROJECT_SETTINGS)
