"""Listing and writing remote objects through the real `openai` SDK.

`list_pages` walks a kind page by page (limit 100, ascending, `after` cursor) and
refuses to call a listing complete unless it is: a full page that claims to be the
last is followed by one more request, and a repeated id or a cursor that does not
advance fails the listing. Every error becomes a `SourceError` naming the target,
kind, HTTP status and the server's own message, never the API key.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import openai

from watcher.config import TargetConfig
from watcher.errors import KindNotServed, SourceError
from watcher.snapshot import ID_LIMIT

PAGE_LIMIT = 100
# Keys an OpenAI-compatible server might echo back in an error, masked or not.
_KEY_LIKE = re.compile(r"\b(sk|sess|key)[-_][A-Za-z0-9_\-*.]{3,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Page:
    """One page of a listing: raw objects as the server sent them."""

    number: int
    objects: list[dict[str, Any]]


def make_client(target: TargetConfig) -> openai.OpenAI:
    """An SDK client for `target` (its key read now; organization and project sent if set)."""
    return openai.OpenAI(
        api_key=target.api_key(),
        base_url=target.base_url,
        organization=target.organization,
        project=target.project,
        timeout=target.timeout,
        max_retries=2,
    )


def _resource(client: openai.OpenAI, kind: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(client.beta, kind)


def list_pages(client: openai.OpenAI, target: str, kind: str) -> Iterator[Page]:
    """Every object of `kind`, a page at a time; raises SourceError unless complete."""
    resource = _resource(client, kind)
    seen: set[str] = set()
    after: str | None = None
    number = 0
    while True:
        number += 1
        body = _request(client, target, kind, lambda: _list_raw(resource, after), not_served=after is None)
        objects, has_more = _parse_page(target, kind, body, number)
        for obj in objects:
            if obj["id"] in seen:
                raise SourceError(
                    f"{target}/{kind}: listing incomplete: page {number} repeats id {obj['id']} "
                    "(the server's pagination is not reliable)"
                )
            seen.add(obj["id"])
        yield Page(number, objects)
        if not objects:
            if has_more:
                raise SourceError(f"{target}/{kind}: listing incomplete: page {number} is empty but says has_more")
            return
        # A full page that says it is the last might be lying: ask once more.
        if not has_more and len(objects) < PAGE_LIMIT:
            return
        if objects[-1]["id"] == after:
            raise SourceError(f"{target}/{kind}: listing incomplete: the cursor did not advance past {after}")
        after = objects[-1]["id"]


def _list_raw(resource, after: str | None) -> Any:
    params: dict[str, Any] = {"limit": PAGE_LIMIT, "order": "asc"}
    if after is not None:
        params["after"] = after
    return json.loads(resource.with_raw_response.list(**params).content)


def _parse_page(target: str, kind: str, body: Any, number: int) -> tuple[list[dict[str, Any]], bool]:
    where = f"{target}/{kind}: page {number}"
    if not isinstance(body, dict):
        raise SourceError(f"{where}: the server did not answer with a list object")
    if "data" not in body:  # an error body answered with 200 must not read as "no objects"
        raise SourceError(f"{where}: the answer has no 'data'")
    data = [] if body["data"] is None else body["data"]  # some servers send null for an empty list
    if not isinstance(data, list):
        raise SourceError(f"{where}: 'data' is not a list")
    for obj in data:
        if not isinstance(obj, dict) or not _usable_id(obj.get("id")):
            raise SourceError(f"{where}: an object has no usable id (a string of 1 to {ID_LIMIT} printable characters)")
    return data, bool(body.get("has_more"))


def _usable_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= ID_LIMIT and not _CONTROL.search(value)


def retrieve(client: openai.OpenAI, target: str, kind: str, object_id: str) -> dict[str, Any]:
    """One object as the server has it now, as raw JSON (the form polls hash)."""
    resource = _resource(client, kind)
    return _request(client, target, kind, lambda: _object(resource.with_raw_response.retrieve(object_id)))


def update(client: openai.OpenAI, target: str, kind: str, object_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Modify an object; returns it as the server stored it, as raw JSON."""
    resource = _resource(client, kind)
    return _request(client, target, kind, lambda: _object(resource.with_raw_response.update(object_id, **fields)))


def create(client: openai.OpenAI, target: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Create an object; returns it as the server stored it, as raw JSON."""
    resource = _resource(client, kind)
    return _request(client, target, kind, lambda: _object(resource.with_raw_response.create(**fields)))


def _object(response) -> dict[str, Any]:
    # Raw JSON, not the SDK's model: model_dump turns a server's `1` into `1.0`, which would
    # hash differently from the listing and make every apply look like out-of-band drift.
    body = json.loads(response.content)
    if not isinstance(body, dict) or not _usable_id(body.get("id")):
        raise ValueError("the answer is not an object with an id")
    return body


def _request(client: openai.OpenAI, target: str, kind: str, call, *, not_served: bool = False):
    """Run one SDK call, turning its exceptions into one-line SourceErrors without the key.

    A 404 is KindNotServed only when `not_served` (the first page of a listing); anywhere
    else it is an ordinary failure (a deleted object, a cursor the server forgot).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return call()
        except openai.NotFoundError as exc:
            error = KindNotServed if not_served else SourceError
            raise error(f"{target}/{kind}: HTTP 404: {_server_message(exc, client.api_key)}", status=404) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise SourceError(
                f"{target}/{kind}: authentication failed for target {target} "
                f"(HTTP {exc.status_code}): {_server_message(exc, client.api_key)}",
                status=exc.status_code,
            ) from None
        except openai.APIStatusError as exc:
            raise SourceError(f"{target}/{kind}: HTTP {exc.status_code}: {_server_message(exc, client.api_key)}",
                              status=exc.status_code) from None
        except openai.APITimeoutError:
            raise SourceError(f"{target}/{kind}: the server did not answer in time") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise SourceError(f"{target}/{kind}: cannot connect: {_scrub(str(cause), client.api_key)}") from None
        except RecursionError:
            raise SourceError(f"{target}/{kind}: the server sent JSON nested too deeply to read") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"{target}/{kind}: the server sent something that is not usable JSON: "
                              f"{_scrub(str(exc), client.api_key)[:200]}") from None


def _server_message(exc: openai.APIStatusError, secret: str | None) -> str:
    body = exc.body
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else None
    if not message:
        message = exc.response.reason_phrase if exc.response is not None else str(exc)
    return _scrub(str(message), secret)[:300] or "no message"  # scrubbed whole, then cut: a cut key is not found


def _scrub(text: str, secret: str | None) -> str:
    """`text` without the key, without anything shaped like a key (servers echo masked keys), on one line."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return _CONTROL.sub(" ", _KEY_LIKE.sub("[redacted]", text))
