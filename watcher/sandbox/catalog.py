"""Every kind the sandbox serves: each registry kind matched with its family, then the sandbox's own.

Names, paths, beta headers, which key reads a kind and which timestamp an edit
advances come from the registry (`watcher.kinds`); a family only knows its objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.kinds import registry
from watcher.sandbox.agent_platform import AgentAutomations, AgentEnvironments, VaultCredentials, Vaults
from watcher.sandbox.assistants import Agents, Assistants
from watcher.sandbox.audit import AuditLog
from watcher.sandbox.family import Family, Served
from watcher.sandbox.organization import AdminApiKeys, Groups, Invites, OrgUsers, Projects, Roles
from watcher.sandbox.projects import (
    ORGANIZATION_PARTS,
    PROJECT_PARTS,
    OrganizationSettings,
    ProjectApiKeys,
    ProjectRateLimits,
    ProjectServiceAccounts,
    ProjectSettings,
    ProjectUsers,
    settings_endpoints,
)
from watcher.sandbox.routing import Endpoint
from watcher.sandbox.skills import Skills, SkillVersions
from watcher.sandbox.vector_stores import VectorStores
from watcher.sandbox.webhooks import WebhookEndpoints

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

# Every registry kind's family; the registry's order is the seeding order (owners before what they own).
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Assistants(), Agents(), Skills(), SkillVersions(), WebhookEndpoints(), VectorStores(), AgentEnvironments(),
    AgentAutomations(), Vaults(), OrgUsers(), Invites(), Roles(), Groups(), AdminApiKeys(), Projects(),
    ProjectUsers(), ProjectServiceAccounts(), ProjectApiKeys(), ProjectRateLimits(), ProjectSettings())}
# Served, but not kinds the watcher reads: their paths are the SDK's, kept here.
LOCAL: tuple[Family, ...] = (VaultCredentials(), OrganizationSettings())
DEFAULT_COUNTS = {"skills": 2, "webhook_endpoints": 2, "vector_stores": 2, "agent_environments": 2,
                  "agent_automations": 2, "vaults": 2, "vault_credentials": 2,
                  "org_users": 6, "invites": 2, "roles": 3, "groups": 2, "admin_api_keys": 2,
                  "organization_settings": 1, "projects": 2, "project_users": 3, "project_service_accounts": 1,
                  "project_api_keys": 3, "project_rate_limits": 4, "project_settings": 1}


def served_kinds() -> list[Served]:
    """Every served kind, parents before the kinds listed under them."""
    served = []
    for kind in registry.all_kinds():
        family = FAMILIES.get(kind.name)
        if family is None:
            raise RuntimeError(f"the sandbox has no family for the registry's kind {kind.name!r}")
        served.append(Served.from_registry(family, kind))
    served.extend(Served.local(family) for family in LOCAL)
    return served


def endpoints(account: Account, audit: AuditLog) -> list[Endpoint]:
    """Routes beyond the kinds' own: each project's and the organization's settings, the audit log."""
    settings = registry.get("project_settings")
    if [name for name, _path in settings.parts] != [part.name for part in PROJECT_PARTS]:
        raise RuntimeError("the sandbox's project settings endpoints differ from the registry's parts")
    return [*settings_endpoints(account, settings.name, settings.path, PROJECT_PARTS),
            *settings_endpoints(account, "organization_settings", OrganizationSettings.path, ORGANIZATION_PARTS),
            audit.endpoint()]


def top_level_kinds() -> list[str]:
    """The kinds seeded once per account with their own routes: what `sandbox --seed N` counts."""
    return [s.name for s in served_kinds() if s.parent is None and s.family.routed]
