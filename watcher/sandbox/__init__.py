"""A local OpenAI-compatible server for every kind the watcher reads: the tests', benchmarks' and demo's API.

`Sandbox` serves the registry's project-key kinds (assistants, agents, skills and their
versions, webhook endpoints, vector stores, agent environments, automations, vaults)
over loopback HTTP with the real API's shapes: cursor pages, bearer-key auth, beta
headers, OpenAI error bodies, create defaults, `updated_at` bumps, and an Azure OpenAI
path for assistants. With its admin key it serves the organization plane (projects and
what lives under them, users, invites, roles, groups, admin keys) and an audit log that
names who made each change. It is seeded deterministically with realistic objects that
validate against the `openai` SDK's models.

Beyond a faithful server it misbehaves on purpose, so that a watcher which must never
silently miss an object can be tested: induced failures, latency, a trickling body, a
retired kind (404) and quirks of unfaithful OpenAI-compatible servers (`QUIRKS`).
Faults and out-of-band edits are set from Python or, for a sandbox in another process,
through `POST /_sandbox/control`.

The package, from the ground up: `wire` (JSON, errors, request checks), `dice` (seeded
draws), `collection` (ordered objects and cursor pages), `family` (the interface each
kind implements), one module of seed data and rules per kind family (`content`,
`assistants`, `skills`, `webhooks`, `vector_stores`, `agent_platform`, `organization`,
`projects`), `account` (every object and how it changes), `audit` (the organization's
audit log), `catalog` (families matched with the registry), `routing`, `faults`, `api`
(answering one request), `controls` and `server` (HTTP and `Sandbox`).
"""
