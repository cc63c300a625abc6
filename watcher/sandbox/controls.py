"""`POST /_sandbox/control {"action": ...}`: the Python controls, for a sandbox in another process."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from watcher.sandbox.wire import ApiError, dumps, invalid_url, parse_json

if TYPE_CHECKING:
    from watcher.sandbox.server import Sandbox

PATH = "/_sandbox/control"


def answer(sandbox: Sandbox, method: str, body: bytes, client: str) -> tuple[int, bytes]:
    """(status, body) of one control request: loopback clients only, one line of error otherwise."""
    if not (client.startswith("127.") or client in ("::1", "::ffff:127.0.0.1")):
        return 403, ApiError(403, "The control endpoint answers loopback clients only.").body()
    if method != "POST":
        return 404, invalid_url(method, PATH).body()
    try:
        command = parse_json(body)
        action = command.pop("action", None)
        handler = actions(sandbox).get(action)
        if handler is None:
            raise ValueError(f"unknown action {action!r}")
        result = handler(**command)
    except ApiError as err:
        return err.status, err.body()
    except (KeyError, TypeError, ValueError) as err:
        return 400, ApiError(400, f"control: {err}").body()
    return 200, dumps({"ok": True, "result": result})


def actions(sb: Sandbox) -> dict[str, Callable[..., Any]]:
    """Every control action by name; arguments as the Python method's (fields as an object)."""
    return {
        "fail_next": sb.fail_next,
        "fail_pages_after_first": sb.fail_pages_after_first,
        "set_latency": sb.set_latency,
        "set_trickle": sb.set_trickle,
        "retire": sb.retire,
        "restore_kind": sb.restore_kind,
        "set_quirk": sb.set_quirk,
        "reset_faults": sb.reset_faults,
        "objects": sb.objects,
        "get": lambda kind, id: sb.get(kind, id),
        "add": lambda kind, fields=None, parent=None, actor=None, api_key_id=None:
            sb.add(kind, parent=parent, actor=actor, api_key_id=api_key_id, **(fields or {})),
        "edit": lambda kind, id, fields, actor=None, api_key_id=None:
            sb.edit(kind, id, actor=actor, api_key_id=api_key_id, **fields),
        "remove": lambda kind, id, actor=None, api_key_id=None: sb.remove(kind, id, actor=actor, api_key_id=api_key_id),
        "use": lambda kind, id: sb.use(kind, id),
        "audit": lambda entry: sb.audit(entry),
        "audit_log": sb.audit_log,
        "hold_audit": sb.hold_audit,
        "release_audit": sb.release_audit,
        "count_requests": lambda method="GET", path_prefix="/v1/assistants": sb.count_requests(method, path_prefix),
        "requests": lambda: [list(r) for r in list(sb.requests)],
        "request_headers": lambda: list(sb.request_headers),
    }
