"""The path language: how a place in an object's canonical JSON is named. No I/O.

`instructions`, `metadata.hwm`, `tools[2].function.description`; `*` stands for any one key or
index (`metadata.*`, `tools[*].headers`). Kinds declare their high, volatile and secret fields in
it, a target's ignore and redact rules are written in it, and diffs report changes in it.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

WILDCARD = "*"
_PATH_TOKEN = re.compile(r"""\.?([A-Za-z0-9_\-]+|\*)|\[(\d+|\*)\]|\["((?:[^"\\]|\\.)*)"\]""")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@functools.lru_cache(maxsize=1024)
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
