"""Normalize a remote object into canonical JSON and a content hash. No I/O.

Canonical means: keys sorted, timestamps in seconds, `null`, `[]` and `{}` treated
as the same absence, secrets replaced by a keyed fingerprint, volatile fields (changed
by use, such as `updated_at`) kept out of the body, structure deeper than `MAX_DEPTH`
folded into a fingerprint, and the target's ignore rules applied, so that identical
content always hashes the same and no secret is ever stored.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

import orjson

from watcher.compare import credentials
from watcher.kinds.base import Kind
from watcher.kinds.paths import format_path, matching_keys, parse_path

ID_LIMIT = 200  # characters of a remote id the record keeps (resources.remote_id)
NAME_LIMIT = 500  # characters of a name kept as the object's label (resources.name)
# Nesting past this is folded into a fingerprint: no walker (ours, deepdiff's) recurses without bound.
MAX_DEPTH = 32
REDACTED = "redacted:"
# Bump when normalize() would turn the same raw object into a different body: raw fingerprints lapse.
NORMALIZATION_FORM = 2  # 2: secrets by their shape (watcher.compare.credentials)
# Keys whose values are secrets wherever they appear (DESIGN "Redaction").
_SECRET_KEYS = frozenset({"authorization", "api_key", "password", "secret", "token", "client_secret"})
_SECRET_SUFFIXES = ("_token", "_secret", "_password")
# Seconds since the epoch stay below this until the year 5138; larger means milliseconds.
_MILLISECONDS_ABOVE = 100_000_000_000



@dataclass(frozen=True)
class Normalization:
    """What normalizing one kind's objects takes, as plain values (`rules_for` builds it from a kind)."""

    ignore: tuple[str, ...] = ()  # the target's ignore rules
    volatile: tuple[str, ...] = ("updated_at",)  # paths changed by use, not by people
    timestamps: tuple[str, ...] = ("created_at", "updated_at")  # top-level fields in seconds
    updated_field: str | None = "updated_at"  # kept beside the body as the remote edit time
    name_field: str | None = "name"  # the field that labels an object
    secrets: tuple[str, ...] = ()  # paths whose values are secrets (besides keys named like one)
    secret_key: bytes = b""  # the installation key that fingerprints secrets
    state: tuple[str, ...] = ()  # paths the platform sets: kept beside the body, never in it
    state_overrides: tuple[tuple[str, str, Any], ...] = ()  # (path, while, reads_as): see Kind.state_overrides

    @functools.cached_property
    def digest(self) -> bytes:
        """What these rules are, as bytes: part of every raw fingerprint taken under them."""
        described = [self.ignore, self.volatile, self.timestamps, self.updated_field, self.name_field, self.secrets,
                     NORMALIZATION_FORM, self.state, self.state_overrides]
        return hashlib.sha256(json.dumps(described).encode("utf-8")).digest()

    def with_ignore(self, ignore) -> Normalization:
        return dataclasses.replace(self, ignore=tuple(ignore))


DEFAULT = Normalization()


def rules_for(kind: Kind, *, ignore=(), redact=(), secret_key: bytes = b"") -> Normalization:
    """How `kind`'s objects are normalized for a target with these ignore and redact rules."""
    return Normalization(tuple(ignore), kind.volatile, kind.timestamps, kind.updated_field, kind.name_field,
                         (*kind.secrets, *redact), secret_key, kind.state, kind.state_overrides)


def raw_fingerprint(raw: dict[str, Any], rules: Normalization) -> str:
    """A keyed fingerprint of an object exactly as listed, under `rules`: equal means normalizing it again is moot.

    Key order counts (a server that reorders keys only costs a normalization), so no sorting is paid.
    """
    try:
        data = orjson.dumps(raw)
    except (TypeError, orjson.JSONEncodeError):  # past 255 levels, or an integer past 64 bits
        data = _flat_json(raw).encode("utf-8")  # any depth: json.dumps itself recurses
    return hashlib.blake2b(rules.digest + data, key=rules.secret_key[:64], digest_size=16).hexdigest()


def label(name: str) -> str:
    """A name as the record keeps it to label an object: no NUL, at most NAME_LIMIT characters."""
    return name.replace("\x00", "")[:NAME_LIMIT]


@dataclass(frozen=True)
class Snapshot:
    """One remote object as the record keeps it."""

    object_id: str
    name: str | None
    body: dict[str, Any]
    canonical: str
    content_hash: str
    remote_updated_at: int | None
    state: dict[str, Any] = dataclasses.field(default_factory=dict)  # the platform-set fields, by path


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the form that is hashed and stored."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits, which orjson refuses
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def normalize(raw: dict[str, Any], ignore: list[str] | tuple[str, ...] = (), *,
              rules: Normalization = DEFAULT, object_id: str | None = None) -> Snapshot:
    """The canonical snapshot of one object as listed (raw JSON).

    `ignore` adds to `rules.ignore`; `object_id` is the record's id for it (default: its `id`).
    """
    if not isinstance(raw, dict):
        raise ValueError("an object is not a JSON object")
    object_id = object_id if object_id is not None else raw.get("id")
    if not isinstance(object_id, str) or not object_id:
        raise ValueError("object without a string id")
    body = {k: _seconds(v) if k in rules.timestamps else v for k, v in raw.items()}
    mask = _masker(rules.secret_key)
    body = _cleaned(body, mask, 1)
    updated_at = body.get(rules.updated_field) if rules.updated_field else None
    for path in rules.secrets:
        _redact_path(body, parse_path(path), rules.secret_key)
    state = _taken_state(body, rules)
    removed = bool(state)
    for path in (*rules.volatile, *rules.ignore, *ignore):
        removed = _remove_path(body, parse_path(path)) or removed
    if removed:
        body = _without_empties(body)  # removing a path may leave an empty parent
    canonical = canonical_json(body)
    name = raw.get(rules.name_field) if rules.name_field else None
    name = name if isinstance(name, str) else None
    if name is not None:
        name = label(credentials.scrubbed(name, mask))  # a label for lookups and subjects; the body keeps it whole
    return Snapshot(
        object_id=object_id,
        name=name,
        body=body,
        canonical=canonical,
        content_hash=content_hash(canonical),
        remote_updated_at=updated_at if isinstance(updated_at, int) and not isinstance(updated_at, bool) else None,
        state=state,
    )


def _taken_state(body: dict[str, Any], rules: Normalization) -> dict[str, Any]:
    """The platform-set fields of `body`, by path, taken out of it (overridden ones left as people set them)."""
    state: dict[str, Any] = {}
    for path, while_set, reads_as in rules.state_overrides:
        if _values_at(body, parse_path(while_set)) and path in body:
            state[path] = body[path]
            body[path] = reads_as
    for path in rules.state:
        for where, value in _values_at(body, parse_path(path)):
            state[format_path(where)] = value
        _remove_path(body, parse_path(path))
    return state


def _values_at(node: Any, parts: tuple[str | int, ...], here: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (path, value) that `parts` names in `node` (a `*` matches any key or index)."""
    head, rest = parts[0], parts[1:]
    found = []
    for key in matching_keys(node, head):
        if rest:
            found += _values_at(node[key], rest, (*here, key))
        else:
            found.append(((*here, key), node[key]))
    return found


def fingerprint(value: Any, key: bytes) -> str:
    """`redacted:` and the first 12 hex of HMAC-SHA256(key, value): tells a rotation, keeps the value."""
    data = value.encode("utf-8") if isinstance(value, str) else canonical_json(value).encode("utf-8")
    return REDACTED + hmac.new(key, data, hashlib.sha256).hexdigest()[:12]


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True for a key whose value is a secret by its name (`authorization`, `*_token`; not `*_hint`)."""
    lowered = key.lower()
    if lowered.endswith("_hint"):
        return False
    return lowered in _SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES)


def _seconds(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None  # NaN or Infinity is no time at all
        value = int(value)
        return value // 1000 if value > _MILLISECONDS_ABOVE else value
    return value


def _cleaned(value: Any, mask: credentials.Mask, depth: int) -> Any:
    """A copy without null/[]/{} dict entries, secrets by key name or by shape masked, nesting past MAX_DEPTH folded.

    Servers disagree on whether absent means null, [] or {}: all are dropped (list items stay, so
    positions keep their meaning). Recursion is bounded by MAX_DEPTH, whatever the input's nesting.
    """
    if type(value) is dict:
        cleaned = {}
        for key, item in value.items():
            if item is None:
                continue
            if isinstance(key, str) and is_secret_key(key):
                cleaned[key] = mask(item)
                continue
            if type(item) is dict or type(item) is list:
                item = _folded(item) if depth >= MAX_DEPTH else _cleaned(item, mask, depth + 1)
                if not item:
                    continue
            elif type(item) is str:
                item = credentials.scrubbed(item, mask)
            cleaned[key] = item
        return cleaned
    return [_cleaned_item(item, mask, depth) for item in value]


def _cleaned_item(item: Any, mask: credentials.Mask, depth: int) -> Any:
    if type(item) is dict or type(item) is list:
        return _folded(item) if depth >= MAX_DEPTH else _cleaned(item, mask, depth + 1)
    return credentials.scrubbed(item, mask) if type(item) is str else item


def scrubbed_text(text: str, secret_key: bytes) -> str:
    """`text` as a body keeps it: each credential in it (see `watcher.compare.credentials`) fingerprinted."""
    return credentials.scrubbed(text, _masker(secret_key))


def _masker(secret_key: bytes) -> credentials.Mask:
    """The fingerprint of a secret under `secret_key`; a fingerprint already is one, kept as it is."""
    return lambda value: value if _is_fingerprint(value) else fingerprint(value, secret_key)


def is_fingerprint(value: Any) -> bool:
    """True for a value the record keeps in place of a secret (`redacted:` and 12 hex)."""
    return _is_fingerprint(value)


def _is_fingerprint(value: Any) -> bool:
    # Already redacted (a stored body normalized again): fingerprinting it twice would read as a rotation.
    return isinstance(value, str) and value.startswith(REDACTED) and len(value) == len(REDACTED) + 12


def _folded(value: Any) -> str:
    """A structure nested too deep to keep, as a fingerprint of its content: a change in it is still a change."""
    digest = hashlib.sha256(_flat_json(value).encode("utf-8")).hexdigest()[:16]
    return f"nested deeper than {MAX_DEPTH} levels: sha256 {digest}"


def _flat_json(value: Any) -> str:
    """Canonical JSON of any nesting depth, built with an explicit stack."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Token):
            out.append(item.text)
        elif isinstance(item, dict):
            pieces: list[Any] = [_Token("{")]
            for n, key in enumerate(sorted(item, key=str)):
                pieces += [_Token(("," if n else "") + json.dumps(str(key), ensure_ascii=False) + ":"), item[key]]
            stack.extend(reversed([*pieces, _Token("}")]))
        elif isinstance(item, list):
            pieces = [_Token("[")]
            for n, element in enumerate(item):
                pieces += [_Token(","), element] if n else [element]
            stack.extend(reversed([*pieces, _Token("]")]))
        else:
            out.append(json.dumps(item, ensure_ascii=False))
    return "".join(out)


@dataclass(frozen=True)
class _Token:
    text: str


def _without_empties(value: Any) -> Any:
    """Drop dict entries that are null, [] or {} (depth is already bounded by `_cleaned`)."""
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


def _redact_path(node: Any, parts: tuple[str | int, ...], secret_key: bytes) -> None:
    """Fingerprint every value `parts` names in `node` (a secret by where it is, not by its key's name)."""
    head, rest = parts[0], parts[1:]
    for key in matching_keys(node, head):
        if rest:
            _redact_path(node[key], rest, secret_key)
        elif node[key] is not None and not _is_fingerprint(node[key]):
            node[key] = fingerprint(node[key], secret_key)


def _remove_path(node: Any, parts: tuple[str | int, ...]) -> bool:
    """Delete every place `parts` names in `node` (a `*` matches any key or index); True if any was there."""
    if not parts:
        return False
    head, rest = parts[0], parts[1:]
    removed = False
    for key in matching_keys(node, head):
        if rest:
            removed = _remove_path(node[key], rest) or removed
            continue
        if isinstance(node, dict):
            del node[key]
        else:
            node[key] = None  # keep list positions stable so tools[2] still means the third tool
        removed = True
    return removed
