"""Normalize a remote object into canonical JSON and a content hash. No I/O.

Canonical means: keys sorted, timestamps in seconds, `null`, `[]` and `{}` treated
as the same absence, volatile fields (`updated_at`) kept out of the body, and the
target's ignore rules applied, so that identical content always hashes the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# Fields that change without the configuration changing; kept beside the body.
ID_LIMIT = 200  # characters of a remote id the record keeps (resources.remote_id)
NAME_LIMIT = 500  # characters of a name kept as the object's label (resources.name)
VOLATILE_FIELDS = ("updated_at",)
TIMESTAMP_FIELDS = ("created_at", "updated_at")
# Seconds since the epoch stay below this until the year 5138; larger means milliseconds.
_MILLISECONDS_ABOVE = 100_000_000_000

WILDCARD = "*"
_PATH_TOKEN = re.compile(r"""\.?([A-Za-z0-9_\-]+|\*)|\[(\d+|\*)\]|\["((?:[^"\\]|\\.)*)"\]""")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Snapshot:
    """One remote object as the record keeps it."""

    object_id: str
    name: str | None
    body: dict[str, Any]
    canonical: str
    content_hash: str
    remote_updated_at: int | None


def parse_path(path: str) -> tuple[str | int, ...]:
    """`tools[2].function.name` as ("tools", 2, "function", "name"); `*` stays a wildcard."""
    if not path or path.startswith(".") or path.endswith("."):
        raise ValueError("a path looks like instructions, metadata.hwm or tools[*].function")
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if not match:
            raise ValueError(f"cannot read the path at {path[pos:]!r}")
        key, index, quoted = match.groups()
        if key is not None:
            parts.append(key)
        elif index is not None:
            parts.append(WILDCARD if index == WILDCARD else int(index))
        else:
            parts.append(json.loads(f'"{quoted}"'))
        pos = match.end()
    return tuple(parts)


def format_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """The inverse of parse_path: ("tools", 2, "function") -> "tools[2].function"."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the form that is hashed and stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def normalize(raw: dict[str, Any], ignore: list[str] | tuple[str, ...] = ()) -> Snapshot:
    """The canonical snapshot of one object as listed (`model_dump(mode="json")` or raw JSON)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise ValueError("object without a string id")
    body = _without_empties({k: _seconds(k, v) for k, v in raw.items()})
    updated_at = body.pop("updated_at", None)
    for field in VOLATILE_FIELDS:
        body.pop(field, None)
    if ignore:
        for rule in ignore:
            _remove_path(body, parse_path(rule))
        body = _without_empties(body)  # removing a path may leave an empty parent
    canonical = canonical_json(body)
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    if name is not None:
        name = name.replace("\x00", "")[:NAME_LIMIT]  # a label for lookups and subjects; the body keeps it whole
    return Snapshot(
        object_id=raw["id"],
        name=name,
        body=body,
        canonical=canonical,
        content_hash=content_hash(canonical),
        remote_updated_at=updated_at if isinstance(updated_at, int) else None,
    )


def as_datetime(seconds: int | None) -> datetime | None:
    """A remote Unix timestamp as an aware UTC datetime (None when absent or absurd)."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _seconds(key: str, value: Any) -> Any:
    if key in TIMESTAMP_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None  # NaN or Infinity is no time at all
        value = int(value)
        return value // 1000 if value > _MILLISECONDS_ABOVE else value
    return value


def _without_empties(value: Any) -> Any:
    """Drop dict entries that are null, [] or {}: servers disagree on which they send."""
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                item = _without_empties(item)
            if item is not None and item != [] and item != {}:
                cleaned[key] = item
        return cleaned
    if isinstance(value, list):
        return [_without_empties(item) if isinstance(item, (dict, list)) else item for item in value]
    return value


def _remove_path(node: Any, parts: tuple[str | int, ...]) -> None:
    """Delete every place `parts` names in `node` (a `*` matches any key or index)."""
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    for key in matching_keys(node, head):
        if rest:
            _remove_path(node[key], rest)
        elif isinstance(node, dict):
            del node[key]
        else:
            node[key] = None  # keep list positions stable so tools[2] still means the third tool


def matching_keys(node: Any, part: str | int) -> list[str | int]:
    """The keys or indexes of `node` that one path part names (`*` names them all)."""
    if isinstance(node, dict):
        if part == WILDCARD:
            return list(node)
        return [part] if part in node else []
    if isinstance(node, list):
        if part == WILDCARD:
            return list(range(len(node)))
        return [part] if isinstance(part, int) and 0 <= part < len(node) else []
    return []
