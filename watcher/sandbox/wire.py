"""What goes over the wire: compact JSON, OpenAI error bodies and request checks shared by every kind."""

from __future__ import annotations

import contextlib
import email.utils
import gc
import json
from email import policy
from email.parser import BytesParser
from typing import Any

EPOCH = 1_750_000_000  # created_at of the first seeded object of each kind
ABSENT = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()  # edit(kind, id, key=ABSENT) drops key


def dumps(value: Any) -> bytes:
    """Compact JSON bytes, the wire form of every response."""
    return json.dumps(value, separators=(",", ":")).encode()


def copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data; strings and numbers are immutable, so they are shared."""
    if type(value) is dict:
        return {k: copy(v) if type(v) in (dict, list) else v for k, v in value.items()}
    if type(value) is list:
        return [copy(v) if type(v) in (dict, list) else v for v in value]
    return value


@contextlib.contextmanager
def gc_paused():
    """Bulk-build thousands of containers without collection passes that would only rescan them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ApiError(Exception):
    """An OpenAI-shaped error response: the SDK turns its message into its exception."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> bytes:
        return dumps({"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}})


def induced(status: int, message: str) -> ApiError:
    """An induced failure typed the way the real API types that status."""
    kind = "server_error" if status >= 500 else "requests" if status == 429 else "invalid_request_error"
    return ApiError(status, message, type=kind)


def invalid_url(method: str, path: str) -> ApiError:
    """The real API's answer for a route it does not serve (and for a retired one)."""
    return ApiError(404, f"Invalid URL ({method} {path})")


def not_found(label: str, oid: str) -> ApiError:
    return ApiError(404, f"No {label} found with id '{oid}'.")


def require(ok: bool, message: str, param: str | None = None, code: str = "invalid_value") -> None:
    """Raise the API's 400 for a bad request unless `ok`."""
    if not ok:
        raise ApiError(400, message, param=param, code=code)


def missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def parse_json(body: bytes) -> dict:
    """A request body as a JSON object; empty means {}."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request. The OpenAI API "
                       "expects a JSON payload, but what was sent was not valid JSON.") from None
    if not isinstance(value, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return value


def parse_body(body: bytes, content_type: str) -> dict:
    """A request body: a JSON object, or a multipart form ({field: value}, files under "files")."""
    if not content_type.lower().startswith("multipart/form-data"):
        return parse_json(body)
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise ApiError(400, "The multipart body of your request could not be parsed.")
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = _param(part.get_param("name", header="content-disposition")).removesuffix("[]")
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            form.setdefault(name, []).append((part.get_filename(), payload))
        else:
            form[name] = payload.decode("utf-8", "replace")
    return form


def list_limit(query: dict[str, str]) -> int:
    """`limit` (1..100, default 20), validated like the API."""
    raw = query.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid 'limit': expected an integer, but got '{raw[:40]}' instead.",
                       param="limit", code="invalid_type") from None
    require(limit >= 1, f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but "
            f"got {limit} instead.", "limit", "integer_below_min_value")
    require(limit <= 100, f"Invalid 'limit': integer above maximum value. Expected a value <= 100, "
            f"but got {limit} instead.", "limit", "integer_above_max_value")
    return limit


def list_order(query: dict[str, str], default: str) -> str:
    """`order` (asc|desc), validated like the API."""
    order = query.get("order", default)
    require(order in ("asc", "desc"), f"Invalid value: '{order[:40]}'. Supported values are: 'asc' and 'desc'.",
            "order")
    return order


def check_metadata(value: Any, param: str = "metadata") -> dict:
    """The API's metadata limits: 16 string pairs, keys <= 64 chars, values <= 512 chars."""
    if value is None:
        return {}
    require(isinstance(value, dict), f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    require(len(value) <= 16, f"Invalid '{param}': too many properties. Expected an object with at "
            f"most 16 properties, but got {len(value)} instead.", param, "object_above_max_properties")
    for key, item in value.items():
        require(len(key) <= 64, f"Invalid '{param}': key '{key[:64]}...' is longer than 64 characters.",
                param, "string_above_max_length")
        require(isinstance(item, str), f"Invalid type for '{param}.{key}': expected a string.",
                f"{param}.{key}", "invalid_type")
        require(len(item) <= 512, f"Invalid '{param}.{key}': string too long. Expected a string with "
                f"maximum length 512, but got a string with length {len(item)} instead.",
                f"{param}.{key}", "string_above_max_length")
    return dict(value)


def check_string(body: dict, key: str, max_len: int | None = None, nullable: bool = True) -> None:
    """A string field of a request body, when present (null allowed when `nullable`)."""
    if key not in body:
        return
    value = body[key]
    if value is None:
        require(nullable, f"Invalid type for '{key}': expected a string, but got null instead.", key, "invalid_type")
        return
    require(isinstance(value, str), f"Invalid type for '{key}': expected a string.", key, "invalid_type")
    if max_len is not None:
        require(len(value) <= max_len, f"Invalid '{key}': string too long. Expected a string with "
                f"maximum length {max_len}, but got a string with length {len(value)} instead.",
                key, "string_above_max_length")


def check_int(body: dict, key: str, low: int = 0) -> None:
    """An integer field of a request body, when present."""
    value = body.get(key)
    if value is None:
        return
    require(isinstance(value, int) and not isinstance(value, bool), f"Invalid type for '{key}': expected an "
            "integer.", key, "invalid_type")
    require(value >= low, f"Invalid '{key}': integer below minimum value. Expected a value >= {low}.", key,
            "integer_below_min_value")


def known_fields(body: dict, allowed: tuple[str, ...]) -> None:
    """Refuse request arguments the endpoint does not take, as the API does."""
    for key in body:
        require(key in allowed, f"Unrecognized request argument supplied: {key}", key, "unknown_parameter")


def _param(value: str | tuple | None) -> str:
    """A header parameter as text: RFC 2231 encoded ones (name*=utf-8''…) arrive as a tuple."""
    if isinstance(value, tuple):
        return email.utils.collapse_rfc2231_value(value)
    return value or ""
