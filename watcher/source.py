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

PAGE_LIMIT = 100
_SINGULAR = {"assistants": "assistant", "agents": "agent"}
# Keys an OpenAI-compatible server might echo back in an error, masked or not.
_KEY_LIKE = re.compile(r"\b(sk|sess|key)[-_][A-Za-z0-9_\-*.]{3,}")


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
        body = _request(client, target, kind, lambda: _list_raw(resource, after))
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        response = resource.with_raw_response.list(**params)
    return json.loads(response.content)


def _parse_page(target: str, kind: str, body: Any, number: int) -> tuple[list[dict[str, Any]], bool]:
    where = f"{target}/{kind}: page {number}"
    if not isinstance(body, dict):
        raise SourceError(f"{where}: the server did not answer with a list object")
    data = body.get("data")
    if data is None:
        data = []
    if not isinstance(data, list):
        raise SourceError(f"{where}: 'data' is not a list")
    for obj in data:
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
            raise SourceError(f"{where}: an object has no string id")
    return data, bool(body.get("has_more"))


def retrieve(client: openai.OpenAI, target: str, kind: str, object_id: str) -> dict[str, Any]:
    """One object as the server has it now."""
    resource = _resource(client, kind)
    return _request(client, target, kind, lambda: _model_json(resource.retrieve(object_id)))


def update(client: openai.OpenAI, target: str, kind: str, object_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Modify an object; returns the object as the server stored it."""
    resource = _resource(client, kind)
    return _request(client, target, kind, lambda: _model_json(resource.update(object_id, **fields)))


def create(client: openai.OpenAI, target: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Create an object; returns it as the server stored it."""
    resource = _resource(client, kind)
    return _request(client, target, kind, lambda: _model_json(resource.create(**fields)))


def _model_json(model) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_unset=False, warnings=False)


def _request(client: openai.OpenAI, target: str, kind: str, call):
    """Run one SDK call, turning its exceptions into one-line SourceErrors without the key."""
    try:
        return _call(target, kind, call)
    except SourceError as exc:
        if client.api_key and client.api_key in str(exc):
            raise type(exc)(str(exc).replace(client.api_key, "[redacted]"), status=exc.status) from None
        raise


def _call(target: str, kind: str, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return call()
        except openai.NotFoundError as exc:
            raise KindNotServed(
                f"{target}/{kind}: HTTP 404: {_server_message(exc)}", status=404
            ) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise SourceError(
                f"{target}/{kind}: authentication failed for target {target} "
                f"(HTTP {exc.status_code}): {_server_message(exc)}",
                status=exc.status_code,
            ) from None
        except openai.APIStatusError as exc:
            raise SourceError(
                f"{target}/{kind}: HTTP {exc.status_code}: {_server_message(exc)}", status=exc.status_code
            ) from None
        except openai.APITimeoutError:
            raise SourceError(f"{target}/{kind}: the server did not answer in time") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise SourceError(f"{target}/{kind}: cannot connect: {_scrub(str(cause))}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"{target}/{kind}: the server sent something that is not JSON: {_scrub(str(exc))[:200]}") from None


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else None
    if not message:
        message = exc.response.reason_phrase if exc.response is not None else str(exc)
    return _scrub(str(message))[:300] or "no message"


def _scrub(text: str) -> str:
    """Remove anything shaped like a key: servers echo (partly masked) keys in errors."""
    return _KEY_LIKE.sub("[redacted]", text.replace("\r", " ").replace("\n", " "))


def singular(kind: str) -> str:
    return _SINGULAR.get(kind, kind)
