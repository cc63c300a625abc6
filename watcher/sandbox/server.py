"""The HTTP side: a quiet threading server, a thin handler, and `Sandbox`, what tests and the demo hold.

Only the standard library: a `ThreadingHTTPServer` in a daemon thread, keep-alive
connections (the SDK reuses them), closed promptly by `stop()`.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from watcher.errors import WatcherError
from watcher.sandbox import catalog, controls
from watcher.sandbox.account import Account
from watcher.sandbox.api import Api
from watcher.sandbox.audit import AuditLog
from watcher.sandbox.faults import Faults
from watcher.sandbox.routing import Router
from watcher.sandbox.wire import ApiError, copy


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP layer: read the body, ask the sandbox, write one response. Never logs."""

    protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses its connections
    disable_nagle_algorithm = True  # small responses must not wait for delayed ACKs
    timeout = 300  # idle keep-alive connections eventually free their thread
    sandbox: Sandbox  # set on the per-sandbox subclass

    def version_string(self) -> str:
        return "assistant-watcher-sandbox"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: benchmarks and tests must not print a line per request."""

    def setup(self) -> None:
        super().setup()
        self.sandbox._connections.add(self.connection)

    def finish(self) -> None:
        self.sandbox._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass  # the client went away; nothing to flush to

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        trickle = None
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            status, payload = 400, ApiError(400, "Malformed request body framing.").body()
        else:
            status, payload, trickle = self.sandbox._respond(method, self.path, self.headers, body,
                                                             self.client_address[0])
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", f"req_{self.sandbox._next_request_number():032x}")
        self.end_headers()
        if trickle is None:
            self.wfile.write(payload)
            return
        size, pause = trickle
        for start in range(0, len(payload), size):
            if start and self.sandbox._stopping.wait(pause):
                self.close_connection = True
                return  # stopping: the rest would only hold a thread
            self.wfile.write(payload[start:start + size])


class _Server(ThreadingHTTPServer):
    """The threading server, quiet about clients that hang up mid-request."""

    daemon_threads = True  # a stuck client never blocks stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a reset connection is the client's business, not a traceback on stderr."""


class Sandbox:
    """A seeded OpenAI-compatible server for every kind the watcher reads, with fault injection.

    `Sandbox(assistants=5, agents=5, seed=0, **counts)`: counts name other kinds (skills=2,
    webhook_endpoints=2, vector_stores=2, agent_environments=2, agent_automations=2,
    vaults=2, projects=2, org_users=6, ... by default; per parent for listed-under kinds,
    e.g. versions_per_skill=3, project_rate_limits=4). `api_key` reads the project plane,
    `admin_key` the organization's. Use as a context manager or call `start()`/`stop()`.
    `url` is the SDK's base_url, `azure_endpoint` the AzureOpenAI client's.
    """

    def __init__(self, *, assistants: int = 5, agents: int = 5, seed: int = 0, api_key: str = "sk-sandbox",
                 admin_key: str = "sk-admin-sandbox", host: str = "127.0.0.1", port: int = 0,
                 versions_per_skill: int = 3, **counts: int):
        served = catalog.served_kinds()
        wanted = {**catalog.DEFAULT_COUNTS, "assistants": assistants, "agents": agents,
                  "skill_versions": versions_per_skill, **counts}
        unknown = sorted(set(wanted) - {s.name for s in served})
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; expected one of {', '.join(s.name for s in served)}")
        if "project_users" not in counts:  # members are organization users: a small organization has fewer
            wanted["project_users"] = min(wanted["project_users"], wanted["org_users"])
        if wanted["skills"] and wanted["skill_versions"] < 1:
            raise ValueError("versions_per_skill must be at least 1: a skill is created with its first version")
        self.api_key, self.admin_key = api_key, admin_key
        self.host, self.port = host, port
        self.requests: list[tuple[str, str]] = []  # (method, path-with-query) of every API request
        self.request_headers: list[dict[str, str]] = []  # their headers, lower-cased; keys named, never kept
        self._account = Account(served, seed, admin_key)
        self._account.seed(wanted)
        self._audit = AuditLog(self._account, seed)
        self._audit.seed_history()
        self._account.audit_sink = self._audit.record
        endpoints = catalog.endpoints(self._account, self._audit)
        self._retirable = {s.name for s in served} | {e.kind for e in endpoints}
        self._faults = Faults()
        self._api = Api(self._account, Router(served, endpoints), self._faults, api_key, admin_key)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._number_lock = threading.Lock()
        self._request_number = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        server = _Server((self.host, self.port), handler)
        self._server, self.port = server, server.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wake handler threads blocked on a read
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL for the SDK, e.g. http://127.0.0.1:PORT/v1 (after start)."""
        return f"{self._root()}/v1"

    @property
    def azure_endpoint(self) -> str:
        """The `azure_endpoint` of an AzureOpenAI client (the SDK appends /openai)."""
        return self._root()

    def _root(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self.port}"

    # -- objects, out of band ------------------------------------------------------------------

    def objects(self, kind: str) -> list[dict]:
        """Copies of every object of a kind, in list order (ascending id; per parent for child kinds)."""
        return self._account.snapshot(kind)

    def get(self, kind: str, object_id: str) -> dict:
        """A copy of one object (a child kind's as "parent_id/key"); KeyError if there is none."""
        with self._account.lock:
            return copy(self._account.locate(kind, object_id)[2])

    def add(self, kind: str, *, parent: str | None = None, actor: dict | None = None, api_key_id: str | None = None,
            **fields: Any) -> dict:
        """Create an object with the API's defaults, then `fields` over them (unvalidated)."""
        served = self._account.kind(kind)
        if (served.parent is None) != (parent is None):
            raise ValueError(f"{kind} objects are listed under a {served.parent}: pass parent=<its id>"
                             if served.parent else f"{kind} objects have no parent")
        with self._account.lock:  # copied in: a caller mutating its dicts later must not edit the store
            try:
                self._account.parent_object(served, parent)
            except ApiError:
                raise KeyError(parent) from None
            context = self._audit.context("control", actor, api_key_id)
            return copy(self._account.add(served, copy(fields), parent, context))

    def edit(self, kind: str, object_id: str, *, actor: dict | None = None, api_key_id: str | None = None,
             **fields: Any) -> dict:
        """Shallow-update an object out of band (unvalidated); its updated_at, if it has one, moves on.

        A field given as ABSENT is removed from the object, as a sloppy server might omit it.
        """
        if "id" in fields:
            raise ValueError("an object's id cannot be edited")
        with self._account.lock:
            served, col, obj, parent = self._account.locate(kind, object_id)
            context = self._audit.context("control", actor, api_key_id)
            return copy(self._account.change(served, col, obj, copy(fields), parent=parent, context=context))

    def remove(self, kind: str, object_id: str, *, actor: dict | None = None, api_key_id: str | None = None) -> None:
        """Delete an object (and what is listed under it) out of band; KeyError if there is none."""
        with self._account.lock:
            served, col, obj, parent = self._account.locate(kind, object_id)
            self._account.remove(served, col, obj, parent, self._audit.context("control", actor, api_key_id))

    def use(self, kind: str, object_id: str) -> dict:
        """Use an object without editing it (a vector store searched): only its usage fields move."""
        with self._account.lock:
            served, col, obj, parent = self._account.locate(kind, object_id)
            fields = served.family.used(obj, self._account.side_dice(kind))
            return copy(self._account.change(served, col, obj, fields, bump=False, change="used", parent=parent))

    def audit(self, entry: dict) -> dict:
        """Append an organization audit log entry directly (an `effective_at` in the past arrives late)."""
        return self._audit.append(entry)

    def hold_audit(self) -> None:
        """Make the audit log lag: entries of changes made from now on stay unreadable until release_audit()."""
        self._audit.hold()

    def release_audit(self) -> list[dict]:
        """End the lag: the held entries arrive late, dated when their changes were made; returns them."""
        return self._audit.release()

    def audit_log(self) -> list[dict]:
        """Copies of every audit log entry, newest first."""
        return self._audit.entries()

    # -- faults --------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, message: str = "sandbox induced failure") -> None:
        """The next n API requests (any method, any kind) answer `status` with an error body."""
        self._faults.fail_next(n, status, message)

    def fail_pages_after_first(self, status: int = 500) -> None:
        """Every list request that carries `after` fails with `status` until reset_faults()."""
        self._faults.fail_pages_after_first(status)

    def set_latency(self, seconds: float) -> None:
        """Sleep this long before every API response."""
        self._faults.set_latency(seconds)

    def set_trickle(self, bytes_per_chunk: int, seconds_between: float) -> None:
        """Send every API response body in chunks of this many bytes, this long apart (0 bytes: off)."""
        self._faults.set_trickle(bytes_per_chunk, seconds_between)

    def retire(self, kind: str) -> None:
        """Every request for `kind` (or "audit_logs") answers 404 "Invalid URL", as the retired real API does."""
        self._faults.retire(self._retirable_name(kind))

    def restore_kind(self, kind: str) -> None:
        """Serve a retired kind again."""
        self._faults.restore_kind(self._retirable_name(kind))

    def _retirable_name(self, kind: str) -> str:
        if kind not in self._retirable:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(sorted(self._retirable))}")
        return kind

    def set_quirk(self, name: str, on: bool = True) -> None:
        """Turn one of QUIRKS on or off."""
        self._faults.set_quirk(name, on)

    def reset_faults(self) -> None:
        """Clear induced failures, latency, trickle, retired kinds and quirks."""
        self._faults.reset()

    def count_requests(self, method: str = "GET", path_prefix: str = "/v1/assistants") -> int:
        """How many API requests with this method and path prefix were served."""
        return sum(1 for m, p in list(self.requests) if m == method and p.startswith(path_prefix))

    # -- requests ------------------------------------------------------------------------------

    def _next_request_number(self) -> int:
        with self._number_lock:
            self._request_number += 1
            return self._request_number

    def _respond(self, method: str, target: str, headers: Any, body: bytes,
                 client: str) -> tuple[int, bytes, tuple[int, float] | None]:
        """(status, body, trickle) for one HTTP request; ApiErrors become OpenAI error bodies."""
        if target.split("?", 1)[0] == controls.PATH:
            return (*controls.answer(self, method, body, client), None)
        self.requests.append((method, target))
        self.request_headers.append(_recorded_headers(headers, self._api.key_used(headers)))
        latency, trickle = self._faults.latency, self._faults.trickle
        if latency:
            time.sleep(latency)
        try:
            status, payload = self._api.answer(method, target, headers, body)
        except ApiError as err:
            status, payload = err.status, err.body()
        except Exception as err:  # a sandbox bug must surface as a 500, not as a dropped connection
            status, payload = 500, ApiError(500, f"sandbox internal error: {type(err).__name__}: {err}",
                                            type="server_error").body()
        return status, payload, trickle


def _recorded_headers(headers: Any, used: str) -> dict[str, str]:
    """A request's headers for tests to inspect; a key's value is replaced by which key it was."""
    recorded = {name.lower(): value for name, value in headers.items()}
    for name in ("authorization", "api-key"):
        if name in recorded:
            recorded[name] = used
    return recorded


def serve(host: str = "127.0.0.1", port: int = 8765, seed: int = 5, api_key: str = "sk-sandbox",
          admin_key: str = "sk-admin-sandbox") -> None:
    """Blocking: run a sandbox seeded with `seed` objects of each kind until Ctrl-C.

    Prints one line with its URL and keys; a port already in use is a WatcherError.
    """
    counts = {name: seed for name in catalog.top_level_kinds()}
    try:
        sandbox = Sandbox(api_key=api_key, admin_key=admin_key, host=host, port=port, **counts).start()
    except OSError as exc:
        raise WatcherError(f"sandbox: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print(f"sandbox serving {sandbox.url} (api key {api_key}), admin key {admin_key}, Azure endpoint "
          f"{sandbox.azure_endpoint}; Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
