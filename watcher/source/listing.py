"""Listing and writing remote objects through the `openai` SDK's generic request methods.

A `Source` is the remote side of one target for one poll: an SDK client per key (the
project key, or Azure's `api-key`; the admin key only for organization endpoints), a
deadline, and a cap on the size of one answer. `Source.pages(kind)` walks a kind by
the path the registry gives it (auth, retries and Azure's api-version stay the SDK's),
page by page, and refuses to call a listing complete unless it is:

- the server says `has_more: false` on a short page; or the watcher proved it by asking
  for the page after the last id and getting none (a full page that claims to be the
  last, or a page that does not say);
- no id repeats and the cursor advances;
- no answer is larger than `max_answer_size`, and the whole poll ends by its deadline.

Every error becomes a `SourceError` naming the target, kind, HTTP status and the server's
own message, never a key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from watcher.compare.normalize import ID_LIMIT
from watcher.errors import KindNotServed, SourceError
from watcher.kinds import registry
from watcher.kinds.base import ADMIN, AFTER_LAST_OBJECT, PER_PARENT, SINGLETON_PER_PARENT, Kind
from watcher.source.page_memory import PageSummary, page_digest
from watcher.source.sdk import (
    CONTROL,
    Unreachable,
    make_admin_client,
    make_client,
    parse_json,
    request,
    response_type,
    scrub,
)
from watcher.times import duration_text

if TYPE_CHECKING:
    import openai

    from watcher.config.targets import TargetConfig

log = logging.getLogger("watcher.source")

PAGE_LIMIT = 100
_STREAM = {"X-Stainless-Raw-Response": "stream"}  # the SDK hands back the response unread: we read it capped


@dataclass
class Page:
    """One page of a listing: raw objects as the server sent them, and the record's id of each.

    A page whose bytes are those of a page remembered from this process's last poll (see
    `watcher.source.page_memory`) comes unread: `objects` is empty and `remembered` holds what reading
    it gave; `read()` parses it when the record has moved since.
    """

    number: int
    objects: list[dict[str, Any]]
    ids: list[str] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)  # labels that are not the objects' own name field
    labels: list[str | None] = field(default_factory=list)  # each object's own name field
    digest: bytes | None = None  # page_memory.page_digest of the answer; None for composed objects
    has_more: bool | None = None
    cursor: str | None = None  # the next page's `after`
    remembered: PageSummary | None = None
    body: bytes | None = None  # kept only while unread

    def read(self) -> list[dict[str, Any]]:
        """The page's objects, parsed now if it came unread."""
        if self.body is not None:
            self.objects = _parse_page_objects(parse_json(self.body)) or []
            self.body = None
        return self.objects


class Source:
    """The remote side of one target for one poll (or one apply): its clients, deadline and cap."""

    def __init__(self, target: TargetConfig, *, deadline: float | None = None,
                 cancelled: Callable[[], bool] | None = None):
        self.target = target
        self.cancelled = cancelled  # true once the user interrupted: no further request is made
        self._unreachable: str | None = None  # why the target could not be reached, once it could not
        self.deadline = deadline  # time.monotonic() past which the poll fails
        self.poll_timeout: float | None = None  # the deadline's length, for the message that reports it
        self._clients: dict[str, openai.OpenAI] = {}
        self._parents: dict[str, list[tuple[str, str | None]]] = {}  # kind -> [(raw id, name)] listed this poll

    # -- clients ---------------------------------------------------------------------------

    def client(self, kind: Kind) -> openai.OpenAI:
        """The SDK client for the key that reads `kind` (created on first use)."""
        if kind.key not in self._clients:
            self._clients[kind.key] = make_admin_client(self.target) if kind.key == ADMIN else make_client(self.target)
        return self._clients[kind.key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- listing ---------------------------------------------------------------------------

    def pages(self, kind: Kind, remembered: dict[bytes, PageSummary] | None = None) -> Iterator[Page]:
        """Every object of `kind`, a page at a time; raises SourceError unless the listing is complete.

        A page whose bytes are among `remembered` comes unread (see `Page`).
        """
        if kind.listing == PER_PARENT:
            yield from self._pages_under_parents(kind, remembered)
            return
        if kind.listing == SINGLETON_PER_PARENT:
            yield from self._singletons(kind)
            return
        listed: list[tuple[str, str | None]] = []
        for page in self._cursor_pages(kind, kind.path, None, set(), 0, first=True, remembered=remembered):
            listed += zip(page.ids, page.labels)
            yield page
        # Complete: kinds listed under this one in the same poll reuse it instead of listing it again.
        self._parents[kind.name] = listed

    def _pages_under_parents(self, kind: Kind, remembered: dict[bytes, PageSummary] | None) -> Iterator[Page]:
        seen: set[str] = set()
        number = 0
        for parent_id, parent_name in self.parent_objects(kind):
            for page in self._cursor_pages(kind, kind.list_path(parent_id), parent_id, seen, number, first=False,
                                           remembered=remembered):
                number = page.number
                if kind.named_under_parent:
                    page.names[:] = [f"{parent_name or parent_id} / {label or object_id[len(parent_id) + 1:]}"
                                     for object_id, label in zip(page.ids, page.labels)]
                yield page

    def _singletons(self, kind: Kind) -> Iterator[Page]:
        """One object per parent, each composed of the answers at the kind's `parts` paths."""
        for number, (parent_id, name) in enumerate(self.parent_objects(kind), 1):
            composed: dict[str, Any] = {"id": parent_id, "name": name}
            for field_name, path in kind.parts:
                composed[field_name] = self._part(kind, field_name, path.format(parent=parent_id), number)
            yield Page(number, [composed], [parent_id])

    def _part(self, kind: Kind, field_name: str, path: str, number: int) -> Any:
        """One part of a composed object; None for an optional part that is not set (404)."""
        try:
            return self._get_json(kind, path, {}, number, not_served=False)
        except SourceError as exc:
            if exc.status == 404 and field_name in kind.optional_parts:
                return None
            raise

    def parent_objects(self, kind: Kind) -> list[tuple[str, str | None]]:
        """(id, name) of every object of `kind`'s parent: from this poll's listing of it, else listed now."""
        if kind.parent is None:  # pages() lists only per-parent kinds through here
            raise ValueError(f"{kind.name} is not listed under a parent kind")
        parent = registry.get(kind.parent)
        if parent.name not in self._parents:
            try:
                for _page in self.pages(parent):
                    pass
            except KindNotServed as exc:
                raise KindNotServed(f"{self.target.name}/{kind.name}: its parent kind {parent.name} is not served "
                                    f"({str(exc).split(': ', 1)[-1]})", status=exc.status) from None
        return self._parents[parent.name]

    def _cursor_pages(self, kind: Kind, path: str, parent_id: str | None, seen: set[str], number: int, *,
                      first: bool, extra: dict[str, Any] | None = None,
                      remembered: dict[bytes, PageSummary] | None = None) -> Iterator[Page]:
        after: str | None = None
        while True:
            number += 1
            params: dict[str, Any] = {"limit": PAGE_LIMIT, **kind.params, **(extra or {})}
            if kind.ordered:
                params["order"] = "asc"
            if after is not None:
                params["after"] = after
            data = self._get_bytes(kind, path, params, number, not_served=first and after is None)
            page = self._page(kind, path, parent_id, number, data, remembered)
            self._count_seen(kind, page.ids, seen, number)
            log.debug("%s: %s page %d: %d objects, has_more %s%s", self._where(kind), path, number, len(page.ids),
                      "absent" if page.has_more is None else page.has_more,
                      ", as remembered" if page.remembered else "")
            yield page
            if not page.ids:
                if page.has_more:
                    raise self._incomplete(kind, f"page {number} is empty but says has_more")
                return
            # Complete only when a short page says so; a full page that says so, or a page that says
            # nothing, is proven by asking for the page after it.
            if page.has_more is False and len(page.ids) < PAGE_LIMIT:
                return
            if not isinstance(page.cursor, str) or not page.cursor or page.cursor == after:
                raise self._incomplete(kind, f"the cursor did not advance past {after}")
            after = page.cursor

    def _page(self, kind: Kind, path: str, parent_id: str | None, number: int, data: bytes,
              remembered: dict[bytes, PageSummary] | None) -> Page:
        """One answer as a Page: unread when its bytes are remembered, else parsed and checked.

        `remembered` None: this process keeps no memory of pages, so none is digested.
        """
        digest = page_digest(path, data) if remembered is not None else None
        summary = remembered.get(digest) if remembered and digest else None
        if summary is not None:
            return Page(number, [], list(summary.ids), labels=list(summary.labels), digest=digest,
                        has_more=summary.has_more, cursor=summary.cursor, remembered=summary, body=data)
        body = self._parse(kind, data)
        objects, has_more = self._parse_page(kind, body, number)
        return Page(number, objects, self._ids(kind, objects, parent_id, number),
                    labels=[_label(obj, kind) for obj in objects], digest=digest, has_more=has_more,
                    cursor=_next_cursor(kind, body, objects) if objects else None)

    def filtered_pages(self, kind: Kind, params: dict[str, Any]) -> Iterator[Page]:
        """Pages of a list read by a filter rather than watched (the audit log), as the server orders them.

        The caller stops when it has read enough; a broken listing raises SourceError as `pages` does.
        """
        yield from self._cursor_pages(kind, kind.path, None, set(), 0, first=False, extra=params)

    def _ids(self, kind: Kind, objects: list[dict], parent_id: str | None, number: int) -> list[str]:
        ids = []
        for obj in objects:
            object_id = kind.object_id(obj, parent_id)
            if not _usable_id(object_id):
                raise SourceError(f"{self._where(kind)}: page {number}: an object has no usable id "
                                  f"(a string of 1 to {ID_LIMIT} printable characters)")
            ids.append(object_id)
        return ids

    def _count_seen(self, kind: Kind, ids: list[str], seen: set[str], number: int) -> None:
        for object_id in ids:
            if object_id in seen:
                raise self._incomplete(kind, f"page {number} repeats id {object_id} "
                                             "(the server's pagination is not reliable)")
            seen.add(object_id)

    def _parse_page(self, kind: Kind, body: Any, number: int) -> tuple[list[dict[str, Any]], bool | None]:
        where = f"{self._where(kind)}: page {number}"
        if not isinstance(body, dict):
            raise SourceError(f"{where}: the server did not answer with a list object")
        if "data" not in body:  # an error body answered with 200 must not read as "no objects"
            raise SourceError(f"{where}: the answer has no 'data'")
        data = _parse_page_objects(body)
        if data is None:
            raise SourceError(f"{where}: 'data' is not a list of objects")
        has_more = body.get("has_more")
        return data, has_more if isinstance(has_more, bool) else None

    def _incomplete(self, kind: Kind, why: str) -> SourceError:
        return SourceError(f"{self._where(kind)}: listing incomplete: {why}")

    def _where(self, kind: Kind) -> str:
        return f"{self.target.name}/{kind.name}"

    # -- single objects (apply and restore) --------------------------------------------------

    def retrieve(self, kind: Kind, object_id: str) -> dict[str, Any]:
        """One object as the server has it now, as raw JSON (the form polls hash)."""
        return _object(self._get_json(kind, f"{kind.path}/{object_id}", {}, 1, not_served=False))

    def still_served(self, kind: Kind, object_id: str) -> bool | None:
        """Whether the server still serves a recorded object the listing left out: True (it answers with it),
        False (404 or 410: gone), None when it cannot say (no way to ask for one object of the kind,
        it refuses the question, or answers with something else). Raises SourceError when asking failed (a 5xx,
        a timeout)."""
        if kind.listing == SINGLETON_PER_PARENT:
            return None  # composed from parts, not served as one object
        parent, slash, child = object_id.partition("/")
        under_parent = kind.listing == PER_PARENT and slash
        path = f"{kind.list_path(parent)}/{child}" if under_parent else f"{kind.path}/{object_id}"
        try:
            body = self._get_json(kind, path, {}, 1, not_served=False)
        except SourceError as exc:
            if exc.status in (404, 410):
                return False
            if exc.status is not None and 400 <= exc.status < 500:
                return None
            raise
        # Only the object itself says it is there: a server answering every path with one page proves nothing.
        own_id = child if under_parent else object_id
        return True if isinstance(body, dict) and body.get(kind.id_field) == own_id else None

    def update(self, kind: Kind, object_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Modify an object; returns it as the server stored it, as raw JSON."""
        client = self.client(kind)
        return _object(self._parse(kind, self._call(kind, lambda: client.post(
            f"{kind.path}/{object_id}", cast_to=response_type(), body=fields,
            options=self._options(kind, {})), 1, not_served=False)))

    # -- one request --------------------------------------------------------------------------

    def _get_json(self, kind: Kind, path: str, params: dict[str, Any], number: int, *, not_served: bool) -> Any:
        return self._parse(kind, self._get_bytes(kind, path, params, number, not_served=not_served))

    def _get_bytes(self, kind: Kind, path: str, params: dict[str, Any], number: int, *, not_served: bool) -> bytes:
        client = self.client(kind)
        return self._call(kind, lambda: client.get(path, cast_to=response_type(),
                                                   options=self._options(kind, params)), number,
                          not_served=not_served)

    def _options(self, kind: Kind, params: dict[str, Any]) -> Any:  # the SDK's RequestOptions
        headers = dict(_STREAM)
        if kind.beta:
            headers["OpenAI-Beta"] = kind.beta
        timeout, retries = self._budget()
        security = {"admin_api_key_auth": True} if kind.key == ADMIN else {"bearer_auth": True}
        return {"params": params, "headers": headers, "timeout": timeout, "max_retries": retries,
                "security": security}

    def _budget(self) -> tuple[float, int]:
        """This request's timeout and retries: the target's, cut so the poll ends by its deadline."""
        if self.cancelled and self.cancelled():
            raise KeyboardInterrupt
        timeout, retries = self.target.timeout, 2
        if self.deadline is None:
            return timeout, retries
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._past_deadline()
        if left < timeout * (retries + 1):
            retries = 0
        return min(timeout, left), retries

    def _deadline_reached(self) -> bool:
        # A request's timeout is cut to what is left of the poll (see _budget): it fires at the deadline.
        return self.deadline is not None and time.monotonic() >= self.deadline - _DEADLINE_SLACK

    def _past_deadline(self) -> SourceError:
        return SourceError(f"{self.target.name}: the poll took longer than its deadline "
                           f"(poll_timeout {duration_text(self.poll_timeout or 0)}); it is recorded as failed")

    def _call(self, kind: Kind, call, number: int, *, not_served: bool) -> bytes:
        """Run one SDK call and read its body within the cap and the deadline; SourceError on any failure."""
        where = self._where(kind)
        if self._unreachable:  # one poll of a target makes one set of failed connections, not one per kind
            raise SourceError(f"{where}: {self._unreachable} (not asked again in this poll)")
        secrets = self.target.secrets()
        try:
            response = request(where, secrets, call, not_served=not_served)
        except Unreachable as exc:
            self._unreachable = exc.reason  # the server, not the first kind's URL, for the kinds not asked
            raise
        except SourceError:
            if self._deadline_reached():  # its timeout was what was left of the poll: say so, not "no answer"
                raise self._past_deadline() from None
            raise
        try:
            return self._read(kind, response, number)
        finally:
            response.close()

    def _parse(self, kind: Kind, data: bytes) -> Any:
        """An answer's JSON; SourceError when it is not JSON (the server's words scrubbed of keys)."""
        try:
            return parse_json(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self._where(kind)}: the server sent something that is not usable JSON: "
                              f"{scrub(str(exc), self.target.secrets())[:200]}") from None

    def _read(self, kind: Kind, response, number: int) -> bytes:
        """The response body, refused past `max_answer_size` or the poll's deadline."""
        cap = self.target.max_answer_size
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._too_large(kind, number, int(declared))
        chunks, size = [], 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise self._too_large(kind, number, size)
                if self.deadline is not None and time.monotonic() > self.deadline:
                    raise self._past_deadline()
                chunks.append(chunk)
        except SourceError:
            raise
        except Exception as exc:  # the connection broke or timed out mid-body
            if self._deadline_reached():
                raise self._past_deadline() from None
            raise SourceError(f"{self._where(kind)}: page {number}: the answer broke off: "
                              f"{type(exc).__name__}") from None
        return b"".join(chunks)

    def _too_large(self, kind: Kind, number: int, size: int) -> SourceError:
        return SourceError(f"{self._where(kind)}: page {number}: the answer is larger than max_answer_size "
                           f"({_size_text(self.target.max_answer_size)}; at least {_size_text(size)} sent)")


_DEADLINE_SLACK = 0.1  # seconds: a timer set to the deadline may fire this much before the clock reads it


def _parse_page_objects(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A list page's objects; None when its `data` is not a list of objects (null is an empty list)."""
    data = [] if body["data"] is None else body["data"]  # some servers send null for an empty list
    if not isinstance(data, list) or not all(isinstance(obj, dict) for obj in data):
        return None
    return data


def _object(body: Any) -> dict[str, Any]:
    # Raw JSON, not the SDK's model: model_dump turns a server's `1` into `1.0`, which would
    # hash differently from the listing and make every apply look like out-of-band drift.
    if not isinstance(body, dict) or not _usable_id(body.get("id")):
        raise SourceError("the answer is not an object with an id")
    return body


def _next_cursor(kind: Kind, body: dict[str, Any], objects: list[dict[str, Any]]) -> Any:
    """The `after` of the next page: where the kind's list says it (`last_id`, `next`), else the last object's id."""
    if kind.cursor != AFTER_LAST_OBJECT and body.get(kind.cursor) is not None:
        return body[kind.cursor]
    return objects[-1].get("id")


def _label(obj: dict[str, Any], kind: Kind) -> str | None:
    name = obj.get(kind.name_field) if kind.name_field else None
    return name if isinstance(name, str) else None


def _usable_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= ID_LIMIT and not CONTROL.search(value)


def _size_text(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size} bytes"
