"""Who an email alert goes to, from plain config values: the email channel sends by it and the
`outbox` command previews a pending email by it, without the config's schema. No heavy imports."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

WATCHLIST_CHANNEL = "watchlist"  # the email channel `[alerts] watchlist` and routes' `to` make


def route_matches(match: Mapping[str, str | None], *, name: str, kind: str, target: str, severity: str) -> bool:
    """True when every field `match` sets matches (name and target are globs)."""
    name_glob, target_glob = match.get("name"), match.get("target")
    if name_glob is not None and not fnmatch.fnmatchcase(name or "", name_glob):
        return False
    if target_glob is not None and not fnmatch.fnmatchcase(target, target_glob):
        return False
    if match.get("kind") is not None and match["kind"] != kind:
        return False
    return match.get("severity") is None or match["severity"] == severity


def email_recipients(channel: str, routing: Iterable[dict], *, watchlist: Iterable[str],
                     routes: Iterable[tuple[Mapping[str, str | None], list[str]]],
                     channel_to: Mapping[str, list[str]]) -> list[str]:
    """The addresses an alert with `routing` (one facts dict per object) goes to on email `channel`.

    The watchlist channel: the watchlist, then the `to` of every route (`(match, to)`) matching one
    of the facts. Another email channel: its `to` (`channel_to`: email channels by name).
    """
    if channel != WATCHLIST_CHANNEL:
        return _unique(channel_to.get(channel, []))
    routes = list(routes)
    routed = [address for facts in routing for match, to in routes
              if to and route_matches(match, **_facts(facts)) for address in to]
    return _unique([*watchlist, *routed])


def _facts(facts: dict) -> dict[str, str]:
    return {key: facts.get(key) or "" for key in ("name", "kind", "target", "severity")}


def _unique(addresses) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.strip().lower(), address.strip())
    return list(seen.values())
