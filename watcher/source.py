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

import json
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from watcher.errors import KindNotServed, SourceError
from watcher.kinds import ADMIN, Kind
from watcher.kinds.base import AFTER_LAST_OBJECT, PER_PARENT, SINGLETON_PER_PARENT
from watcher.snapshot import ID_LIMIT

if TYPE_CHECKING:
    import openai

    from watcher.config_targets import TargetConfig

log = logging.getLogger("watcher.source")

PAGE_LIMIT = 100
_STREAM = {"X-Stainless-Raw-Response": "stream"}  # the SDK hands back the response unread: we read it capped
_KEY_LIKE = re.compile(r"\b(sk|sess|key)[-_][A-Za-z0-9_\-*.]{3,}")  # keys a server might echo back, masked or not
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Page:
    """One page of a listing: raw objects as the server sent them, and the record's id of each."""

    number: int
    objects: list[dict[str, Any]]
    ids: list[str] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)  # labels that are not the objects' own name field


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

    def pages(self, kind: Kind) -> Iterator[Page]:
        """Every object of `kind`, a page at a time; raises SourceError unless the listing is complete."""
        if kind.listing == PER_PARENT:
            yield from self._pages_under_parents(kind)
            return
        if kind.listing == SINGLETON_PER_PARENT:
            yield from self._singletons(kind)
            return
        listed: list[tuple[str, str | None]] = []
        for page in self._cursor_pages(kind, kind.path, None, set(), 0, first=True):
            listed += [(obj["id"], _label(obj, kind)) for obj in page.objects]
            yield page
        # Complete: kinds listed under this one in the same poll reuse it instead of listing it again.
        self._parents[kind.name] = listed

    def _pages_under_parents(self, kind: Kind) -> Iterator[Page]:
        seen: set[str] = set()
        number = 0
        for parent_id, parent_name in self.parent_objects(kind):
            for page in self._cursor_pages(kind, kind.list_path(parent_id), parent_id, seen, number, first=False):
                number = page.number
                if kind.named_under_parent:
                    page.names[:] = [f"{parent_name or parent_id} / {_label(obj, kind) or obj.get(kind.id_field)}"
                                     for obj in page.objects]
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
        from watcher import kinds

        parent = kinds.get(kind.parent)
        if parent.name not in self._parents:
            try:
                for _page in self.pages(parent):
                    pass
            except KindNotServed as exc:
                raise KindNotServed(f"{self.target.name}/{kind.name}: its parent kind {parent.name} is not served "
                                    f"({str(exc).split(': ', 1)[-1]})", status=exc.status) from None
        return self._parents[parent.name]

    def _cursor_pages(self, kind: Kind, path: str, parent_id: str | None, seen: set[str], number: int, *,
                      first: bool, extra: dict[str, Any] | None = None) -> Iterator[Page]:
        after: str | None = None
        while True:
            number += 1
            params: dict[str, Any] = {"limit": PAGE_LIMIT, **kind.params, **(extra or {})}
            if kind.ordered:
                params["order"] = "asc"
            if after is not None:
                params["after"] = after
            body = self._get_json(kind, path, params, number, not_served=first and after is None)
            objects, has_more = self._parse_page(kind, body, number)
            log.debug("%s: %s page %d: %d objects, has_more %s", self._where(kind), path, number, len(objects),
                      "absent" if has_more is None else has_more)
            ids = self._ids(kind, objects, parent_id, seen, number)
            yield Page(number, objects, ids)
            if not objects:
                if has_more:
                    raise self._incomplete(kind, f"page {number} is empty but says has_more")
                return
            # Complete only when a short page says so; a full page that says so, or a page that says
            # nothing, is proven by asking for the page after it.
            if has_more is False and len(objects) < PAGE_LIMIT:
                return
            cursor = _next_cursor(kind, body, objects)
            if not isinstance(cursor, str) or not cursor or cursor == after:
                raise self._incomplete(kind, f"the cursor did not advance past {after}")
            after = cursor

    def filtered_pages(self, kind: Kind, params: dict[str, Any]) -> Iterator[Page]:
        """Pages of a list read by a filter rather than watched (the audit log), as the server orders them.

        The caller stops when it has read enough; a broken listing raises SourceError as `pages` does.
        """
        yield from self._cursor_pages(kind, kind.path, None, set(), 0, first=False, extra=params)

    def _ids(self, kind: Kind, objects: list[dict], parent_id: str | None, seen: set[str], number: int) -> list[str]:
        ids = []
        for obj in objects:
            object_id = kind.object_id(obj, parent_id)
            if not _usable_id(object_id):
                raise SourceError(f"{self._where(kind)}: page {number}: an object has no usable id "
                                  f"(a string of 1 to {ID_LIMIT} printable characters)")
            if object_id in seen:
                raise self._incomplete(kind, f"page {number} repeats id {object_id} "
                                             "(the server's pagination is not reliable)")
            seen.add(object_id)
            ids.append(object_id)
        return ids

    def _parse_page(self, kind: Kind, body: Any, number: int) -> tuple[list[dict[str, Any]], bool | None]:
        where = f"{self._where(kind)}: page {number}"
        if not isinstance(body, dict):
            raise SourceError(f"{where}: the server did not answer with a list object")
        if "data" not in body:  # an error body answered with 200 must not read as "no objects"
            raise SourceError(f"{where}: the answer has no 'data'")
        data = [] if body["data"] is None else body["data"]  # some servers send null for an empty list
        if not isinstance(data, list) or not all(isinstance(obj, dict) for obj in data):
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

    def update(self, kind: Kind, object_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Modify an object; returns it as the server stored it, as raw JSON."""
        client = self.client(kind)
        return _object(self._call(kind, lambda: client.post(
            f"{kind.path}/{object_id}", cast_to=_response_type(), body=fields,
            options=self._options(kind, {})), 1, not_served=False))

    # -- one request --------------------------------------------------------------------------

    def _get_json(self, kind: Kind, path: str, params: dict[str, Any], number: int, *, not_served: bool) -> Any:
        client = self.client(kind)
        return self._call(kind, lambda: client.get(path, cast_to=_response_type(),
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

    def _past_deadline(self) -> SourceError:
        return SourceError(f"{self.target.name}: the poll took longer than its deadline "
                           f"(poll_timeout {_seconds_text(self.poll_timeout or 0)}); it is recorded as failed")

    def _call(self, kind: Kind, call, number: int, *, not_served: bool) -> Any:
        """Run one SDK call and read its body within the cap and the deadline; SourceError on any failure."""
        where = self._where(kind)
        if self._unreachable:  # one poll of a target makes one set of failed connections, not one per kind
            raise SourceError(f"{where}: {self._unreachable} (not asked again in this poll)")
        secrets = self.target.secrets()
        try:
            response = _request(where, secrets, call, not_served=not_served)
        except _Unreachable as exc:
            self._unreachable = str(exc).split(": ", 1)[-1]
            raise
        try:
            data = self._read(kind, response, number)
        finally:
            response.close()
        try:
            return _parse_json(data)
        except RecursionError:
            raise SourceError(f"{where}: the server sent JSON nested too deeply to read") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"{where}: the server sent something that is not usable JSON: "
                              f"{_scrub(str(exc), secrets)[:200]}") from None

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
            raise SourceError(f"{self._where(kind)}: page {number}: the answer broke off: "
                              f"{type(exc).__name__}") from None
        return b"".join(chunks)

    def _too_large(self, kind: Kind, number: int, size: int) -> SourceError:
        return SourceError(f"{self._where(kind)}: page {number}: the answer is larger than max_answer_size "
                           f"({_size_text(self.target.max_answer_size)}; at least {_size_text(size)} sent)")


def make_client(target: TargetConfig) -> openai.OpenAI:
    """An SDK client for `target`'s project key (Azure: its `api-key`); its key is read now."""
    import openai

    common: dict[str, Any] = {"timeout": target.timeout, "max_retries": 2}
    if target.provider == "azure":
        return openai.AzureOpenAI(api_key=target.api_key(), azure_endpoint=target.azure_endpoint,
                                  api_version=target.api_version, **common)
    return openai.OpenAI(api_key=target.api_key(), admin_api_key=None, base_url=target.base_url,
                         organization=target.organization, project=target.project, **common)


def make_admin_client(target: TargetConfig) -> openai.OpenAI:
    """An SDK client that holds only `target`'s admin key, sent only to organization endpoints."""
    import openai

    return openai.OpenAI(api_key="", admin_api_key=target.admin_key(), base_url=target.base_url,
                         organization=target.organization, timeout=target.timeout, max_retries=2)


def _parse_json(data: bytes) -> Any:
    """The answer parsed: orjson when it can (a third of json's time), else the standard library's reading,
    which accepts what some servers send and orjson refuses (NaN)."""
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _response_type():
    import httpx2

    return httpx2.Response


class _Unreachable(SourceError):
    """The server could not be reached at all (refused, no route, DNS): the next kind would fare no better."""


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


def _usable_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= ID_LIMIT and not _CONTROL.search(value)


def _request(where: str, secrets: list[str], call, *, not_served: bool = False):
    """Run one SDK call, turning its exceptions into one-line SourceErrors without any key.

    A 404 is KindNotServed only when `not_served` (the first page of a listing); anywhere
    else it is an ordinary failure (a deleted object, a cursor the server forgot).
    """
    import openai

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return call()
        except openai.NotFoundError as exc:
            error = KindNotServed if not_served else SourceError
            raise error(f"{where}: HTTP 404: {_server_message(exc, secrets)}", status=404) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            target = where.split("/", 1)[0]
            raise SourceError(f"{where}: authentication failed for target {target} "
                              f"(HTTP {exc.status_code}): {_server_message(exc, secrets)}",
                              status=exc.status_code) from None
        except openai.APIStatusError as exc:
            raise SourceError(f"{where}: HTTP {exc.status_code}: {_server_message(exc, secrets)}",
                              status=exc.status_code) from None
        except openai.APITimeoutError:
            raise SourceError(f"{where}: the server did not answer in time") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            url = _scrub(str(getattr(exc.request, "url", "") or ""), secrets).split("?")[0]
            raise _Unreachable(f"{where}: cannot connect to {url}: {_scrub(str(cause), secrets)}") from None


def _server_message(exc, secrets: list[str]) -> str:
    body = exc.body
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else None
    if not message:
        message = exc.response.reason_phrase if exc.response is not None else str(exc)
    return _scrub(str(message), secrets)[:300] or "no message"  # scrubbed whole, then cut: a cut key is not found


def _scrub(text: str, secrets: list[str]) -> str:
    """`text` without the keys, without anything shaped like a key (servers echo masked keys), on one line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _CONTROL.sub(" ", _KEY_LIKE.sub("[redacted]", text))


def _size_text(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size} bytes"


def _seconds_text(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"
