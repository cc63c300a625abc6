"""Compare two canonical bodies: a structural change list and line diffs. No I/O.

Structure comes from deepdiff. Long text (instructions, descriptions, anything
multi-line) is swapped for a fingerprint before deepdiff sees it, then diffed once
by line here, so a 256k-character field costs one line diff whose size follows
the edit, not the field.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff

from watcher.snapshot import format_path

# Strings at least this long, or with a newline, are compared as text by line.
LONG_TEXT = 200
_FINGERPRINT = "\x00text:"

_OPS = {
    "dictionary_item_added": "added",
    "iterable_item_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_removed": "removed",
    "values_changed": "changed",
    "type_changes": "changed",
}


@dataclass(frozen=True)
class Change:
    """One changed place: `path` as in ignore rules, `op` added|removed|changed."""

    path: str
    op: str
    old: Any = None
    new: Any = None
    text_diff: list[str] = field(default_factory=list, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "old": self.old, "new": self.new}


def compare(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[Change]:
    """Every changed path between two canonical bodies, in path order."""
    old, new = old or {}, new or {}
    texts: dict[str, str] = {}
    masked_old, masked_new = _mask(old, texts), _mask(new, texts)
    tree = DeepDiff(masked_old, masked_new, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    changes = []
    for report_type, levels in tree.items():
        op = _OPS.get(report_type)
        if op is None:
            continue
        for level in levels:
            path = format_path(level.path(output_format="list"))
            before = _unmask(level.t1, texts) if op != "added" else None
            after = _unmask(level.t2, texts) if op != "removed" else None
            changes.append(Change(path, op, before, after, _text_diff_if_text(before, after)))
    return sorted(changes, key=lambda c: c.path)


# Fields of an object that say nothing about its configuration.
IDENTITY_FIELDS = ("id", "object", "created_at")


def whole_body_changes(change: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[Change]:
    """A created object as all-added fields, a deleted one as all-removed fields; else nothing."""
    if change == "created" and new:
        return [Change(k, "added", None, new[k]) for k in sorted(new) if k not in IDENTITY_FIELDS]
    if change == "deleted" and old:
        return [Change(k, "removed", old[k], None) for k in sorted(old) if k not in IDENTITY_FIELDS]
    return []


def changed_paths(changes: list[Change]) -> list[str]:
    return [c.path for c in changes]


def text_diff(old: str, new: str, *, label: str = "", context: int = 3) -> list[str]:
    """A unified line diff of two texts, without the file header lines."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=f"a/{label}", tofile=f"b/{label}", lineterm="", n=context
    )
    return [line for line in lines if not line.startswith(("--- ", "+++ "))]


def is_long_text(value: Any) -> bool:
    return isinstance(value, str) and (len(value) >= LONG_TEXT or "\n" in value)


def _text_diff_if_text(old: Any, new: Any) -> list[str]:
    if isinstance(old, str) and isinstance(new, str) and (is_long_text(old) or is_long_text(new)):
        return text_diff(old, new)
    return []


def _mask(value: Any, texts: dict[str, str]) -> Any:
    """A copy of `value` with each long text replaced by a short fingerprint of it."""
    if isinstance(value, dict):
        return {k: _mask(v, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, texts) for v in value]
    if is_long_text(value):
        token = _FINGERPRINT + hashlib.sha256(value.encode("utf-8")).hexdigest()
        texts[token] = value
        return token
    return value


def _unmask(value: Any, texts: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith(_FINGERPRINT):
        return texts.get(value, value)
    if isinstance(value, dict):
        return {k: _unmask(v, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmask(v, texts) for v in value]
    return value
