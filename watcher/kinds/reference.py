"""The kinds reference (docs/kinds.md), written from the registry so the docs cannot drift from the code.

Regenerate with: python -m watcher.kinds.reference > docs/kinds.md
"""

from __future__ import annotations

from watcher.kinds.base import ADMIN, IN_PROJECT, ORGANIZATION_WIDE, PER_PARENT, SINGLETON_PER_PARENT, Kind
from watcher.kinds.registry import all_kinds

_HEADER = """# Kinds

<!-- Written by `python -m watcher.kinds.reference > docs/kinds.md` from watcher/kinds/; a test keeps it current. -->

A kind is one sort of remote object the watcher lists, versions and alerts on. A target watches every
kind its keys can read unless its `kinds` says otherwise (an Azure target: the kinds Azure serves).

**Severity.** A deleted or reappeared object is `high`; a created one is `low` unless the kind says a new
object is itself worth a high alert. A modification is `high` when a changed path is at, under or above
one of the kind's high paths below, else `low`. Routes can match on it (`match = { severity = "high" }`)
and high alerts say `[high]` in their subject.

**Volatile fields** change when an object is used, not when someone edits it: they are never drift (they
are left out of the recorded body, like an ignore rule).

**State fields** are set by the platform, not by people: a spend limit's `enforcement.status` turns
"enforcing" while the limit blocks requests, the service pauses an automation whose target session failed.
They are never drift and never looked up in the audit log: they are kept beside the recorded body as the
object's state, and the rest of the object is compared as before.

**Secrets.** Any value under a key named `authorization`, `api_key`, `password`, `secret`, `token`,
`client_secret` or ending in `_token`, `_secret` or `_password` (not `*_hint`) is stored, shown and sent
only as `redacted:` and a keyed fingerprint, in every kind; the kinds below add the paths listed.

**Who changed it.** The admin-key kinds are attributed: after a poll records drift on one of them, the
organization audit log is read for the event's window, and an entry of the types listed that names the
object (and, where its id repeats across projects, its project) fills the event's `actor`. The other kinds
have no audit trail on the platform: their `actor` stays unknown unless the change was made through
`apply` or `restore`.

"""


def _code(values) -> str:
    return ", ".join(f"`{v}`" for v in values) if values else "—"


def _listing(kind: Kind) -> str:
    if kind.listing == PER_PARENT:
        label = f"; named `<{kind.parent} name> / <{kind.name_field}>`" if kind.named_under_parent else ""
        return f"pages under each {kind.parent} object; id `<{kind.parent} id>/<{kind.id_field}>`{label}"
    if kind.listing == SINGLETON_PER_PARENT:
        return f"one object per {kind.parent} object, composed of {_code(p for p, _ in kind.parts)}"
    return "cursor pages"


def _attributed(kind: Kind) -> str:
    if not kind.audit_types:
        return "- who changed it: not recorded by the platform"
    scopes = {IN_PROJECT: " in the object's project", ORGANIZATION_WIDE: " outside any project"}
    where = scopes.get(kind.audit_scope, "")
    return f"- who changed it: audit log entries {_code(kind.audit_types)}{where}"


def _state(kind: Kind) -> str:
    overrides = [f"`{path}` while `{while_set}` is set (the body keeps `{reads_as}`)"
                 for path, while_set, reads_as in kind.state_overrides]
    return ", ".join([_code(kind.state), *overrides])


def markdown() -> str:
    """docs/kinds.md as the registry describes the kinds now."""
    lines = [_HEADER.rstrip(), "", "| kind | endpoint | key | what it is |", "|---|---|---|---|"]
    for kind in all_kinds():
        key = "admin" if kind.key == ADMIN else "project" + (" (and Azure)" if kind.azure else "")
        lines.append(f"| `{kind.name}` | `{kind.path}` | {key} | {kind.summary} |")
    for kind in all_kinds():
        lines += ["", f"## `{kind.name}` ({kind.label})", "",
                  f"- endpoint: `{kind.path}`" + (f" (header `OpenAI-Beta: {kind.beta}`)" if kind.beta else ""),
                  f"- listed: {_listing(kind)}",
                  f"- named by: `{kind.name_field}`" if kind.name_field else "- named by: its id",
                  f"- high when changed: {_code(kind.high)}" + (" — and every new object" if kind.created_high else ""),
                  f"- volatile (never drift): {_code(kind.volatile)}",
                  *([f"- state (set by the platform, never drift): {_state(kind)}"] if kind.state else []),
                  f"- secrets besides the key names: {_code(kind.secrets)}",
                  _attributed(kind),
                  f"- `apply`/`restore` may write: {_code(kind.writable)}" if kind.writable
                  else "- `apply`/`restore`: read-only (refused: change it on the platform)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
