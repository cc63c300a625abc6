"""Which kind, object and action a request names, and which key and headers it must carry.

Routes come from each served kind's path (the registry's for the kinds it knows):
`{path}` lists and creates, `{path}/{id}` retrieves, updates and deletes,
`{path}/{id}/{verb}` runs one of the kind's actions. `/openai/...` is the Azure
OpenAI form of the kinds Azure serves: the `api-key` header and an `api-version`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from watcher.sandbox.family import ADMIN, PROJECT, Served
from watcher.sandbox.wire import ApiError

AZURE = "azure"
COLLECTION, ITEM, ACTION = "collection", "item", "action"


@dataclass(frozen=True)
class Endpoint:
    """A route that is not one kind's list or object: a project's settings, the audit log."""

    path: str  # below /v1, "{name}" segments bound by name
    kind: str  # what retire() names to make it 404
    key: str
    # (method, bound, query, body, ctype)
    answer: Callable[[str, dict[str, str], dict[str, list[str]], bytes, str], Any]


@dataclass(frozen=True)
class Match:
    served: Served | None
    level: str
    parent: str | None = None
    key: str | None = None  # the object's id (or id_field value)
    verb: str | None = None
    endpoint: Endpoint | None = None
    bound: Mapping[str, str] | None = None

    @property
    def plane(self) -> str:
        if self.endpoint is not None:
            return self.endpoint.key
        if self.served is None:
            raise ValueError("a match names an endpoint or a served kind")
        return self.served.key


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.strip("/").split("/"))


def _literals(pattern: tuple[str, ...]) -> int:
    return sum(not seg.startswith("{") for seg in pattern)


class Router:
    """Matches request paths against every served kind and endpoint (most literal segments first)."""

    def __init__(self, served: Iterable[Served], endpoints: Iterable[Endpoint] = ()):
        routes: list[tuple[tuple[str, ...], Served | Endpoint, str]] = []
        for kind in served:
            if not kind.family.routed:
                continue
            base = _segments(kind.path)
            routes.append((base, kind, COLLECTION))
            routes.append((base + ("{id}",), kind, ITEM))
            routes.extend((base + ("{id}", verb), kind, ACTION) for verb in kind.family.actions())
        routes.extend((_segments(e.path), e, COLLECTION) for e in endpoints)
        # /agents/environments must win over /agents/{id}
        self._routes = sorted(routes, key=lambda r: (-_literals(r[0]), -len(r[0])))

    def match(self, parts: tuple[str, ...], azure: bool) -> Match | None:
        for pattern, target, level in self._routes:
            if len(pattern) != len(parts):
                continue
            bound = _bind(pattern, parts)
            if bound is None:
                continue
            if isinstance(target, Endpoint):
                if not azure:
                    return Match(None, COLLECTION, endpoint=target, bound=bound)
                continue
            if azure and not target.azure:
                continue
            return Match(target, level, bound.get("parent"), bound.get("id"), parts[-1] if level == ACTION else None)
        return None


def _bind(pattern: tuple[str, ...], parts: tuple[str, ...]) -> dict[str, str] | None:
    bound = {}
    for want, got in zip(pattern, parts):
        if want.startswith("{"):
            bound[want[1:-1]] = got
        elif want != got:
            return None
    return bound


def key_used(headers: Any, api_key: str, admin_key: str | None) -> str:
    """Which key a request carries: project, admin, azure (the api-key header), wrong, or none."""
    azure_key = headers.get("api-key")
    if azure_key is not None:
        return AZURE if azure_key == api_key else "wrong"
    authorization = headers.get("Authorization")
    if not authorization:
        return "none"
    if authorization == f"Bearer {api_key}":
        return PROJECT
    if admin_key and authorization == f"Bearer {admin_key}":
        return ADMIN
    return "wrong"


def check_key(plane: str, used: str) -> None:
    """The platform's 401 unless the key suits the endpoint; the key itself is never echoed."""
    if used == plane:
        return
    if plane == AZURE:
        raise ApiError(401, "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                       "provide a valid key for an active subscription and use a correct regional API endpoint "
                       "for your resource.", code="401")
    if used in ("none", AZURE):
        raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization "
                       "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    if plane == ADMIN and used == PROJECT:
        raise ApiError(401, "This endpoint requires an admin API key; a project API key cannot manage the "
                       "organization.", code="invalid_api_key")
    if plane == PROJECT and used == ADMIN:
        raise ApiError(401, "Admin API keys can only call /v1/organization endpoints; use a project API key.",
                       code="invalid_api_key")
    raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


def check_azure_version(query: dict[str, list[str]]) -> None:
    """Azure answers a request without api-version as a resource it does not have."""
    if not query.get("api-version", [""])[-1]:
        raise ApiError(404, "Resource not found", code="404")


def check_beta(served: Served, headers: Any) -> None:
    if served.beta is None:
        return
    sent = [token.strip() for token in headers.get("OpenAI-Beta", "").split(",")]
    if served.beta not in sent:
        what = served.name.replace("_", " ")
        raise ApiError(400, f"You must provide the 'OpenAI-Beta' header to access the {what} API. Please try "
                       f"again by setting the header 'OpenAI-Beta: {served.beta}'.")
