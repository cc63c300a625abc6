"""One API request, answered: key, faults, route, then list/retrieve/create/update/delete or an action.

Every kind is served by the same code; what differs between kinds is in their
`Family`. List pages have the API's shape (`data`, `first_id`, `last_id`,
`has_more`, and `next` where the SDK pages by it); quirks bend them on purpose.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from watcher.sandbox.account import Account
from watcher.sandbox.collection import page
from watcher.sandbox.family import Family, Served
from watcher.sandbox.faults import Faults
from watcher.sandbox.routing import (
    ACTION,
    AZURE,
    COLLECTION,
    ITEM,
    Match,
    Router,
    check_azure_version,
    check_beta,
    check_key,
    key_used,
)
from watcher.sandbox.wire import dumps, invalid_url, list_limit, list_order, not_found, parse_body

_OPS = {(COLLECTION, "GET"): "list", (COLLECTION, "POST"): "create", (ITEM, "GET"): "retrieve",
        (ITEM, "POST"): "update", (ITEM, "DELETE"): "delete", (ACTION, "POST"): "action"}
_CONTENT_QUIRKS = frozenset({"timestamps_ms", "nulls_for_empty"})


class Api:
    """Answers API requests for one sandbox (see the module docstring)."""

    def __init__(self, account: Account, router: Router, faults: Faults, api_key: str, admin_key: str | None):
        self.account, self.router, self.faults = account, router, faults
        self.api_key, self.admin_key = api_key, admin_key

    def key_used(self, headers: Any) -> str:
        return key_used(headers, self.api_key, self.admin_key)

    def answer(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one request; raises `ApiError` for an error answer."""
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        azure = split.path == "/openai" or split.path.startswith("/openai/")
        root = "/openai" if azure else "/v1"
        parts = tuple(split.path[len(root):].strip("/").split("/")) if split.path.startswith(root) else ()
        match = self.router.match(parts, azure) if parts and all(parts) else None
        plane = AZURE if azure else match.plane if match else "admin" if parts[:1] == ("organization",) else "project"
        check_key(plane, self.key_used(headers))
        if azure:
            check_azure_version(query)
        later_page = match is not None and match.level == COLLECTION and method == "GET" and "after" in query
        failure = self.faults.failure(later_page)
        if failure is not None:
            raise failure
        if match is None:
            raise invalid_url(method, split.path)
        if match.endpoint is not None:
            if match.endpoint.kind in self.faults.retired:
                raise invalid_url(method, split.path)
            return 200, match.endpoint.answer(method, dict(match.bound or {}), query, body,
                                              headers.get("Content-Type", ""))
        served = match.served
        if served is None or served.name in self.faults.retired:  # None only for an endpoint, answered above
            raise invalid_url(method, split.path)
        check_beta(served, headers)
        op = _OPS.get((match.level, method))
        if op is None or (op != "action" and op not in served.family.ops):
            raise invalid_url(method, split.path)
        if op == "list":
            return 200, self._list(served, match.parent, query)
        if op == "retrieve":
            return 200, self._retrieve(served, match)
        if op == "delete":
            return 200, self._delete(served, match)
        request = parse_body(body, headers.get("Content-Type", ""))
        if op == "create":
            return 200, self._create(served, match.parent, request)
        return 200, self._update(served, match, request)

    # -- the operations ----------------------------------------------------------------------

    def _list(self, served: Served, parent: str | None, query: dict[str, list[str]]) -> bytes:
        family, one = served.family, {k: v[-1] for k, v in query.items()}
        limit = list_limit(one)
        order = list_order(one, family.default_order) if served.ordered else family.default_order
        after, before = one.get("after") or None, (one.get("before") or None) if family.before else None
        quirks = self.faults.quirks
        stuck = "stuck_cursor" in quirks and after is not None
        with self.account.lock:
            self.account.parent_object(served, parent)
            col = self.account.existing(served.name, parent)
            ids = col.ids if col else []
            if col is not None and type(family).listed is not Family.listed:
                ids = [oid for oid in ids if family.listed(col.by_id[oid], query)]
            if "fixed_page_20" in quirks:
                limit = 20
            if "ignore_limit" in quirks:
                limit = max(1, len(ids))
            chosen, has_more = page(ids, limit, order, None if stuck else after, before, "repeat_id" in quirks)
            if quirks & {"empty_listing", "null_data"}:
                chosen, has_more = [], False
            parts = [self._served(served, col, oid, quirks) for oid in chosen]
        if stuck:
            has_more = True
        if "full_page_has_more_false" in quirks and len(chosen) == limit:
            has_more = False
        tail: dict[str, Any] = {"first_id": chosen[0] if chosen else None, "last_id": chosen[-1] if chosen else None,
                                "has_more": has_more}
        if served.next_cursor:
            tail["next"] = chosen[-1] if chosen and has_more else None
        if "omit_has_more" in quirks:
            del tail["has_more"]
        if "null_data" in quirks:
            return b'{"object":"list","data":null,' + dumps(tail)[1:]
        return b'{"object":"list","data":[' + b",".join(parts) + b"]," + dumps(tail)[1:]

    def _located(self, served: Served, match: Match):
        """(collection, object) a request names; the API's 404 when either is missing (lock held)."""
        self.account.parent_object(served, match.parent)
        col = self.account.existing(served.name, match.parent)
        key = match.key or ""  # item and action routes bind {id}
        obj = col.lookup(key, served.family.id_field) if col else None
        if obj is None:
            raise not_found(served.family.what, key)
        return col, obj

    def _retrieve(self, served: Served, match: Match) -> bytes:
        with self.account.lock:
            col, obj = self._located(served, match)
            return self._served(served, col, obj["id"], self.faults.quirks)

    def _create(self, served: Served, parent: str | None, body: dict) -> bytes:
        family = served.family
        with self.account.lock:
            self.account.parent_object(served, parent)
            fields = family.create(body, self.account, parent)
            obj = self.account.add(served, fields, parent, {"via": "api"})
            return self._rendered(served, family.created(obj, self.account, parent))

    def _update(self, served: Served, match: Match, body: dict) -> bytes:
        family = served.family
        with self.account.lock:
            col, obj = self._located(served, match)
            if match.verb is not None:  # an action route (Router.match gives only those a verb)
                changes, extra = family.actions()[match.verb](obj, body, self.account)
                change = match.verb
            else:
                changes, extra, change = family.update(obj, body, self.account), {}, "updated"
            differs = any(obj.get(k) != v for k, v in changes.items())
            new = self.account.change(served, col, obj, changes, bump=differs or family.bump_unchanged,
                                      change=change, parent=match.parent, context={"via": "api"})
            return self._rendered(served, {**new, **extra})

    def _delete(self, served: Served, match: Match) -> bytes:
        with self.account.lock:
            col, obj = self._located(served, match)
            self.account.remove(served, col, obj, match.parent, {"via": "api"})
        return dumps(served.family.deleted(obj))

    # -- serving objects -----------------------------------------------------------------------

    def _served(self, served: Served, col, oid: str, quirks: frozenset) -> bytes:
        """An object's bytes as served: cached, unless a content quirk rewrites them."""
        data = col.serialized(oid)
        if quirks & _CONTENT_QUIRKS:
            return dumps(_quirked(served, json.loads(data), quirks))
        return data

    def _rendered(self, served: Served, obj: dict) -> bytes:
        quirks = self.faults.quirks
        return dumps(_quirked(served, obj, quirks) if quirks & _CONTENT_QUIRKS else obj)


def _nulls_for_empty(value: Any) -> Any:
    """Empty lists and objects become null, recursively (a Go-style nil-slice server)."""
    if isinstance(value, dict):
        return {k: _nulls_for_empty(v) for k, v in value.items()} or None
    if isinstance(value, list):
        return [_nulls_for_empty(v) for v in value] or None
    return value


def _quirked(served: Served, obj: dict, quirks: frozenset) -> dict:
    """An object as an unfaithful server would serve it."""
    obj = dict(obj)
    if "timestamps_ms" in quirks:
        for key in served.timestamps:
            if isinstance(obj.get(key), int):
                obj[key] *= 1000
    if "nulls_for_empty" in quirks:
        obj = _nulls_for_empty(obj) or {}
        for key in served.family.optional:
            obj.setdefault(key, None)
    return obj
