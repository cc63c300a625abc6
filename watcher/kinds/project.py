"""The kinds a project key reads: assistants, agents and the configuration around them.

Shapes follow the `openai` SDK's own models (3.57). Each declaration says only what
differs from `Kind`'s defaults.
"""

from __future__ import annotations

from watcher.kinds.base import PER_PARENT, Kind

# An MCP tool's headers carry its credentials: on agents under `transport`, on compatible servers at the tool.
_MCP_HEADERS = ("tools[*].headers.*", "tools[*].transport.headers.*")

ASSISTANTS = Kind(
    name="assistants", label="assistant", path="/assistants", beta="assistants=v2", azure=True,
    high=("model", "instructions", "tools", "tool_resources", "response_format", "reasoning_effort"),
    secrets=_MCP_HEADERS,
    writable=("description", "instructions", "metadata", "model", "name", "reasoning_effort", "response_format",
              "temperature", "tool_resources", "tools", "top_p"),
    cleared={"metadata": {}, "tools": [], "name": None, "description": None, "instructions": None},
    summary="classic Assistants API objects (retired on api.openai.com; served by Azure and compatible servers)",
)

AGENTS = Kind(
    name="agents", label="agent", path="/agents", beta="agents=v1",
    high=("model", "instructions", "tools", "reasoning", "text", "multi_agent"),
    secrets=_MCP_HEADERS,
    writable=("compaction", "experimental", "instructions", "metadata", "model", "multi_agent", "name", "reasoning",
              "service_tier", "text", "tools"),
    cleared={"metadata": {}, "tools": [], "name": None, "instructions": None},
    summary="persistent agents: model, instructions, tools, reasoning",
)

SKILLS = Kind(
    name="skills", label="skill", path="/skills",
    high=("default_version",), writable=("default_version",),
    summary="skills; which version is live (default_version)",
)

SKILL_VERSIONS = Kind(
    name="skill_versions", label="skill version", path="/skills/{parent}/versions", listing=PER_PARENT,
    # Named "<skill> / <version>": a version's own name is its skill's, the same for every version.
    parent="skills", id_field="version", name_field="version", named_under_parent=True,
    summary="every version of every skill, one object per (skill, version)",
)

WEBHOOK_ENDPOINTS = Kind(
    name="webhook_endpoints", label="webhook endpoint", path="/webhook_endpoints", ordered=False,
    high=("url", "event_types"), writable=("event_types", "name", "url"),
    summary="where platform events are sent (url, event_types)",
)

VECTOR_STORES = Kind(
    name="vector_stores", label="vector store", path="/vector_stores", beta="assistants=v2",  # as the SDK sends
    # Use moves these; an edit does not.
    volatile=("last_active_at", "usage_bytes", "file_counts", "status", "expires_at"),
    timestamps=("created_at", "last_active_at", "expires_at"), updated_field=None,
    high=("expires_after",), writable=("expires_after", "metadata", "name"),
    cleared={"metadata": {}, "expires_after": None},
    summary="what assistants know (file_search); usage fields are not drift",
)

AGENT_ENVIRONMENTS = Kind(
    name="agent_environments", label="agent environment", path="/agents/environments", beta="agents=v1",
    name_field="id", volatile=("status",), high=("type", "files", "plugins", "skills"),
    summary="hosted environments agents run in (files, plugins, skills)",
)

AGENT_AUTOMATIONS = Kind(
    name="agent_automations", label="agent automation", path="/agents/automations", beta="agents=v1",
    timestamps=("created_at", "run_at"), updated_field=None,
    high=("target", "expression", "run_at", "timezone", "status"),
    # The service pauses a schedule whose target session failed: its pause, not a person's.
    state=("pause_reason",), state_overrides=(("status", "pause_reason", "active"),),
    state_alarms=(("pause_reason", None),),
    secrets=tuple(f"target.agent.{path}" for path in _MCP_HEADERS),
    writable=("expression", "metadata", "name", "run_at", "target", "timezone"),
    summary="scheduled and one-time agent runs (what runs, when)",
)

VAULTS = Kind(
    name="vaults", label="vault", path="/vaults", beta="agents=v1",
    writable=("metadata", "name"), cleared={"metadata": {}},
    summary="credential vaults (their credentials' values are never requested)",
)

# The registry's order: a parent (skills) before the kinds listed under it.
KINDS = (ASSISTANTS, AGENTS, SKILLS, SKILL_VERSIONS, WEBHOOK_ENDPOINTS, VECTOR_STORES, AGENT_ENVIRONMENTS,
         AGENT_AUTOMATIONS, VAULTS)
