"""The config file read without its schema: what reading commands need, at the cost of a TOML parse.

`load_config` (watcher.config.model) validates the whole file with pydantic, which a command that only reads
the record does not need and should not wait for. `database_url` reads `[database] url`, and
`configured_kinds` the targets' names and kinds, the way the full model would; whenever the file holds
anything these readers do not know how to read as the model would (a missing or broken file, an
unknown section, a value of the wrong type), they hand it to `load_config`, whose answer or
ConfigError is then the one given. So a reading command never reads a config differently from
`snapshot`; it only skips checking sections it does not use.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

from watcher.config.routing import WATCHLIST_CHANNEL
from watcher.config.values import DEFAULT_DATABASE_URL, anchored_database_url, check_database_url
from watcher.kinds import registry

# The model's top-level sections; anything else is the model's to explain (or a section this reader predates).
_SECTIONS = {"database", "schedule", "target_defaults", "targets", "smtp", "alerts", "channels", "http", "export",
             "rules"}
_KEY_FIELDS = ("api_key_env", "api_key_file", "admin_key_env", "admin_key_file")


class _Unsure(Exception):
    """The file holds something only the full model can read or explain."""


def database_url(path: Path) -> str:
    """The database URL the config at `path` names, as `load_config(path).database.url` would give it."""
    try:
        data = _read(path)
        section = data.get("database", {})
        if not isinstance(section, dict) or set(section) - {"url", "max_connections"}:
            raise _Unsure
        url = section.get("url", DEFAULT_DATABASE_URL)
        if not isinstance(url, str):
            raise _Unsure
        check_database_url(url)
        return anchored_database_url(url, path.parent)
    except (_Unsure, ValueError):
        return _full(path).database.url


def configured_kinds(path: Path) -> list[tuple[str, str]]:
    """(target, kind) for every kind of every configured target, in the config's order, as the model has them."""
    try:
        targets = _targets(path)
        return [(name, kind) for target in targets for name, kinds in [_target_kinds(target)] for kind in kinds]
    except _Unsure:
        return _full(path).configured_kinds


def disabled_targets(path: Path) -> set[str]:
    """The names of the targets configured with `enabled = false`, as the model has them."""
    try:
        flags = {_name(t.get("name")): t.get("enabled", True) for t in _targets(path)}
        if not all(isinstance(flag, bool) for flag in flags.values()):
            raise _Unsure
        return {name for name, flag in flags.items() if not flag}
    except _Unsure:
        return _full(path).disabled_targets


def _targets(path: Path) -> list[dict[str, Any]]:
    """The [[targets]] tables, each with [target_defaults] under it (its own keys win), as the model merges them."""
    data = _read(path)
    targets, defaults = data.get("targets", []), data.get("target_defaults", {})
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise _Unsure
    if not isinstance(defaults, dict) or "name" in defaults:
        raise _Unsure  # the model's to explain
    return [{**defaults, **target} for target in targets]


def channel_types(path: Path) -> dict[str, str]:
    """Every channel alerts go to, by name, with its type ("watchlist" is email, when there is an [smtp])."""
    try:
        data = _read(path)
        channels = data.get("channels", [])
        if not isinstance(channels, list) or not all(isinstance(c, dict) for c in channels):
            raise _Unsure
        types = {_name(c.get("name")): c.get("type") for c in channels}
        if not all(isinstance(kind, str) for kind in types.values()):
            raise _Unsure
        return {**({WATCHLIST_CHANNEL: "email"} if "smtp" in data else {}), **types}
    except _Unsure:
        config = _full(path)
        return {**({WATCHLIST_CHANNEL: "email"} if config.smtp is not None else {}),
                **{c.name: c.type for c in config.channels}}


_RULE_KEYS = {"name", "kinds", "match", "expression", "message", "severity"}


def rules(path: Path) -> list[dict[str, Any]]:
    """Every `[[rules]]` as {name, kinds (None: every kind), expression, severity}, without compiling them."""
    try:
        found = _tables(_read(path).get("rules", []))
        if any(set(rule) - _RULE_KEYS or "expression" not in rule for rule in found):
            raise _Unsure
        listed = [{"name": _name(rule.get("name")), "kinds": _strings(rule["kinds"]) if "kinds" in rule else None,
                   "expression": rule["expression"], "severity": rule.get("severity", "high")} for rule in found]
        if not all(isinstance(rule["expression"], str) and rule["severity"] in ("high", "low") for rule in listed):
            raise _Unsure
        return listed
    except _Unsure:
        return [{"name": r.name, "kinds": r.kinds, "expression": r.expression, "severity": r.severity}
                for r in _full(path).rules]


def email_routing(path: Path) -> dict[str, Any]:
    """The watchlist, the routes as (match, to), and every email channel's `to` by name: what
    `watcher.config.routing.email_recipients` takes, as the model has them."""
    try:
        data = _read(path)
        alerts, channels = data.get("alerts", {}), data.get("channels", [])
        if not isinstance(alerts, dict) or not isinstance(channels, list):
            raise _Unsure
        routes = alerts.get("routes", [])
        if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
            raise _Unsure
        channel_to = {_name(c.get("name")): _strings(c.get("to", [])) for c in _tables(channels)
                      if c.get("type") == "email"}
        return {"watchlist": _strings(alerts.get("watchlist", [])),
                "routes": [(_match(r.get("match")), _strings(r.get("to", []))) for r in routes],
                "channel_to": channel_to}
    except _Unsure:
        config = _full(path)
        return {"watchlist": list(config.alerts.watchlist),
                "routes": [(r.match.model_dump(), list(r.to)) for r in config.alerts.routes],
                "channel_to": {c.name: list(c.to) for c in config.channels if c.type == "email"}}


def _name(value: Any) -> str:
    """A name as a key: checked before it is hashed (a list would raise TypeError, not _Unsure)."""
    if not isinstance(value, str):
        raise _Unsure
    return value


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Unsure
    return value


def _tables(value: list) -> list[dict]:
    if not all(isinstance(v, dict) for v in value):
        raise _Unsure
    return value


def _match(value: Any) -> dict[str, str | None]:
    if not isinstance(value, dict) or set(value) - {"name", "kind", "target", "severity"}:
        raise _Unsure
    if not all(isinstance(v, str) for v in value.values()):
        raise _Unsure
    return {key: value.get(key) for key in ("name", "kind", "target", "severity")}


def _target_kinds(target: Any) -> tuple[str, list[str]]:
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        raise _Unsure
    keys = {field: target.get(field) for field in _KEY_FIELDS}
    provider = target.get("provider", "openai")
    if provider not in ("openai", "azure") or any(v is not None and not isinstance(v, str) for v in keys.values()):
        raise _Unsure
    named = target.get("kinds", [])
    if not isinstance(named, list) or any(not isinstance(k, str) or k not in registry.names() for k in named):
        raise _Unsure
    if named:
        return target["name"], named
    admin = bool(keys["admin_key_env"] or keys["admin_key_file"])
    project = bool(keys["api_key_env"] or keys["api_key_file"] or not admin)
    return target["name"], registry.for_target(provider, project_key=project, admin_key=admin)


def _read(path: Path) -> dict[str, Any]:
    """The file's TOML (not to be changed: it is shared), parsed once however many readers a command asks."""
    try:
        stat = path.stat()
    except OSError:
        raise _Unsure from None
    return _parsed(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _parsed(path: Path, _mtime_ns: int, _size: int) -> dict[str, Any]:
    # Keyed by the file's stat too: a file changed since (a long-lived process) is read again.
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise _Unsure from None
    if set(data) - _SECTIONS:
        raise _Unsure
    return data


def _full(path: Path):
    from watcher.config.model import load_config  # pydantic: the light reader's whole point is to skip it

    return load_config(path)
