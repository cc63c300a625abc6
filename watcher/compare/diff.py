"""Compare two canonical bodies: a structural change list and line diffs. No I/O.

Structure comes from deepdiff, or, when no list differs (most edits: a model, instructions, a
setting, metadata), from a walk here that reports exactly what deepdiff would, without importing
it (a third of a second at a command's start). Long text (instructions, descriptions, anything
multi-line) is swapped for a fingerprint before deepdiff sees it, then diffed once
by line here (`watcher.compare.textdiff`, in bounded work), so a 256k-character field costs
one line diff whose size follows the edit, not the field.

Depth is bounded the same way: deepdiff recurses (it fails near 490 levels of dicts and
250 of lists), so a subtree deeper than `MAX_DEPTH` is fingerprinted too and compared as
one value: a change inside it is reported at its root, with both subtrees. The walks
here iterate, so no depth of remote JSON makes a comparison fail.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from watcher.compare.textdiff import unified_diff
from watcher.kinds.base import EventChange
from watcher.kinds.paths import format_path

# Strings at least this long, or with a newline, are compared as text by line.
LONG_TEXT = 200
# Subtrees below this many levels are compared whole (real configurations nest a dozen levels).
MAX_DEPTH = 64
_FINGERPRINT = "\x00masked:"  # what deepdiff sees in place of a long text or deep subtree

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
    originals: dict[str, Any] = {}
    masked_old, masked_new = _mask(old, originals), _mask(new, originals)
    found = _dict_changes(masked_old, masked_new)
    if found is None:
        found = _deepdiff_changes(masked_old, masked_new)
    changes = []
    for path, op, before, after in found:
        before = _unmask(before, originals) if op != "added" else None
        after = _unmask(after, originals) if op != "removed" else None
        changes.append(Change(format_path(path), op, before, after, _text_diff_if_text(before, after)))
    return sorted(changes, key=lambda c: c.path)


def _deepdiff_changes(old: Any, new: Any) -> list[tuple[list, str, Any, Any]]:
    """(path, op, old, new) of every change, as deepdiff finds them."""
    from deepdiff import DeepDiff

    # ignore_private_variables=False: a remote key named "__x" is content like any other (deepdiff skips it by default).
    tree = DeepDiff(old, new, view="tree", verbose_level=2, threshold_to_diff_deeper=0, ignore_private_variables=False)
    return [(level.path(output_format="list"), _OPS[report_type], level.t1, level.t2)
            for report_type, levels in tree.items() if report_type in _OPS for level in levels]


def _dict_changes(old: Any, new: Any) -> list[tuple[list, str, Any, Any]] | None:
    """What deepdiff reports between two trees in which no list differs; None when a list does
    (deepdiff aligns lists by its own rules, which only deepdiff should decide)."""
    found: list[tuple[list, str, Any, Any]] = []
    stack: list[tuple[list, Any, Any]] = [([], old, new)]
    while stack:
        path, before, after = stack.pop()
        if before is after:
            continue
        if type(before) is not type(after):
            found.append((path, "changed", before, after))  # deepdiff's type_changes: 1 → 1.0, None → "x"
        elif isinstance(before, dict):
            found += [([*path, key], "removed", before[key], None) for key in before if key not in after]
            found += [([*path, key], "added", None, after[key]) for key in after if key not in before]
            stack += [([*path, key], before[key], after[key]) for key in before if key in after]
        elif isinstance(before, list):
            if not _same(before, after):
                return None
        elif before != after:
            found.append((path, "changed", before, after))
    return found


def _same(old: Any, new: Any) -> bool:
    """Equal and of the same types all the way down (1 and 1.0, or 1 and True, are not the same)."""
    stack = [(old, new)]
    while stack:
        a, b = stack.pop()
        if a is b:
            continue
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            if a.keys() != b.keys():
                return False
            stack += [(a[k], b[k]) for k in a]
        elif isinstance(a, list):
            if len(a) != len(b):
                return False
            stack += list(zip(a, b))
        elif a != b:
            return False
    return True


# Fields of an object that say nothing about its configuration.
IDENTITY_FIELDS = ("id", "object", "created_at")


def whole_body_changes(change: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[Change]:
    """A created object as all-added fields; else nothing.

    A deleted object is not spelled out field by field: the record keeps its last version, and
    an alert says which one and how to show it (a whole object in red reads as noise).
    """
    if change == EventChange.CREATED and new:
        return [Change(k, "added", None, new[k]) for k in sorted(new) if k not in IDENTITY_FIELDS]
    return []


def changed_paths(changes: list[Change]) -> list[str]:
    return [c.path for c in changes]


def text_diff(old: str, new: str, *, label: str = "", context: int = 3) -> list[str]:
    """A unified line diff of two texts, without the file header lines, in bounded time.

    Texts edited in too many scattered places to align in that time get a first line
    `@@ not aligned in full: N of M lines removed, K added; … @@` and their first hunks.
    `label` is accepted for callers that name the field; the diff has no header to put it in.
    """
    return unified_diff(old, new, context=context)


def is_long_text(value: Any) -> bool:
    return isinstance(value, str) and (len(value) >= LONG_TEXT or "\n" in value)


def _text_diff_if_text(old: Any, new: Any) -> list[str]:
    if isinstance(old, str) and isinstance(new, str) and (is_long_text(old) or is_long_text(new)):
        return text_diff(old, new)
    return []


def _mask(value: Any, originals: dict[str, Any]) -> Any:
    """A copy of `value` with each long text and each subtree at `MAX_DEPTH` replaced by a fingerprint.

    A string that merely looks like a fingerprint is fingerprinted too, so it can never
    pass for the text it names. Iterative: any depth.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, key, depth = stack.pop()
        if isinstance(item, (dict, list)) and depth >= MAX_DEPTH:
            parent[key] = _fingerprint(item, tree_digest(item), originals)
        elif isinstance(item, dict):
            parent[key] = copy = dict.fromkeys(item)
            stack.extend((v, copy, k, depth + 1) for k, v in item.items())
        elif isinstance(item, list):
            parent[key] = copy = [None] * len(item)  # type: ignore[assignment]  # a dict or a list, filled alike
            stack.extend((v, copy, n, depth + 1) for n, v in enumerate(item))
        elif is_long_text(item) or (isinstance(item, str) and item.startswith(_FINGERPRINT)):
            parent[key] = _fingerprint(item, hashlib.sha256(item.encode("utf-8")).hexdigest(), originals)
        else:
            parent[key] = item
    return root[0]


def _fingerprint(value: Any, digest: str, originals: dict[str, Any]) -> str:
    token = f"{_FINGERPRINT}{'tree' if isinstance(value, (dict, list)) else 'text'}:{digest}"
    originals[token] = value
    return token


def _unmask(value: Any, originals: dict[str, Any]) -> Any:
    """`value` with every fingerprint made by `_mask` replaced by what it stands for. Iterative."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, dict):
            parent[key] = copy = dict.fromkeys(item)
            stack.extend((v, copy, k) for k, v in item.items())
        elif isinstance(item, list):
            parent[key] = copy = [None] * len(item)  # type: ignore[assignment]  # a dict or a list, filled alike
            stack.extend((v, copy, n) for n, v in enumerate(item))
        elif isinstance(item, str) and item.startswith(_FINGERPRINT):
            parent[key] = originals.get(item, item)
        else:
            parent[key] = item
    return root[0]


def tree_digest(value: Any) -> str:
    """The sha256 of `value`'s canonical JSON (sorted keys, no spaces), computed without recursion."""
    digest = hashlib.sha256()
    stack: list[tuple[bool, Any]] = [(False, value)]  # (True, text) is punctuation to write as is
    while stack:
        literal, item = stack.pop()
        if literal:
            piece = item
        elif isinstance(item, dict):
            piece, keys = "{", sorted(item)
            stack.append((True, "}"))
            for n in reversed(range(len(keys))):
                key = json.dumps(keys[n], ensure_ascii=False)
                stack += [(False, item[keys[n]]), (True, f"{',' if n else ''}{key}:")]
        elif isinstance(item, list):
            piece = "["
            stack.append((True, "]"))
            for n in reversed(range(len(item))):
                stack += [(False, item[n]), (True, ",")] if n else [(False, item[n])]
        else:
            piece = json.dumps(item, ensure_ascii=False)
        digest.update(piece.encode("utf-8"))
    return digest.hexdigest()
