"""Servers that break an OpenAI-compatible API's promises, for bench/faults.py. Standard library only.

Each `Hostile*` class is the answer to `GET /v1/assistants…` of one broken server (agents are
always an empty, well-formed listing); `HostileServer` serves one of them on a free loopback port.
`Gate` is a TCP port that refuses connections until opened, then forwards to a real server: a
database that is unreachable, then back.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

EMPTY = b'{"object": "list", "data": [], "has_more": false, "first_id": null, "last_id": null}'


def assistant(n: int, **fields) -> dict:
    return {"id": f"asst_{n:06d}", "object": "assistant", "created_at": 1_750_000_000 + n, "model": "gpt-4o",
            "name": f"Bot {n}", "description": None, "instructions": "Be brief.", "tools": [], "metadata": {},
            "temperature": 1.0, "top_p": 1.0, "response_format": "auto", "tool_resources": {}, **fields}


class HostileServer:
    """A ThreadingHTTPServer on 127.0.0.1 whose assistants listing is `behaviour(handler, query)`."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.requests += 1
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                try:
                    if parts.path.startswith("/v1/assistants"):
                        outer.behaviour(self, query)
                    else:
                        send(self, EMPTY)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the watcher gave up, or was killed

            def log_message(self, *_args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def send(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class NoHasMore:
    """`page` objects a page whatever `limit` says, after the `after` cursor, and no `has_more` at all.

    While `honest`, it serves `limit` a page and says `has_more`, as a faithful server does.
    """

    def __init__(self, count: int = 150, page: int = 20):
        self.objects = [assistant(n) for n in range(1, count + 1)]
        self.page = page
        self.honest = True

    def __call__(self, handler, query) -> None:
        after = query.get("after")
        start = next((n + 1 for n, o in enumerate(self.objects) if o["id"] == after), 0) if after else 0
        if not self.honest:
            send(handler, json.dumps({"object": "list", "data": self.objects[start:start + self.page]}).encode())
            return
        data = self.objects[start:start + int(query.get("limit", 20))]
        more = start + len(data) < len(self.objects)
        send(handler, json.dumps({"object": "list", "data": data, "has_more": more}).encode())


class Trickle:
    """A valid listing sent 16 bytes every 2 seconds: each read succeeds, the answer never ends in time."""

    def __init__(self, chunk: int = 16, every: float = 2.0):
        self.chunk, self.every = chunk, every

    def __call__(self, handler, _query) -> None:
        body = json.dumps({"object": "list", "data": [assistant(n) for n in range(1, 4)], "has_more": False}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for at in range(0, len(body), self.chunk):
            handler.wfile.write(body[at:at + self.chunk])
            handler.wfile.flush()
            time.sleep(self.every)


class HugePage:
    """One page that ignores `limit`: `count` objects of `size` bytes of instructions each, streamed."""

    def __init__(self, count: int = 100, size: int = 3 * 2**20):
        self.count, self.size = count, size

    def __call__(self, handler, _query) -> None:
        filler = b'"' + b"x" * self.size + b'"'
        objects = [json.dumps(assistant(n, instructions="FILL")).encode().split(b'"FILL"')
                   for n in range(1, self.count + 1)]
        head, tail = b'{"object": "list", "has_more": false, "data": [', b"]}"
        length = len(head) + sum(len(a) + len(filler) + len(b) for a, b in objects) + len(objects) - 1 + len(tail)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.wfile.write(head)
        for n, (before, after) in enumerate(objects):
            handler.wfile.write((b"," if n else b"") + before)
            handler.wfile.write(filler)  # the same 3 MB each time: the server's memory stays small
            handler.wfile.write(after)
        handler.wfile.write(tail)


class DeepMetadata:
    """Two assistants, the first with metadata nested `depth` levels; `leaf` is the innermost value."""

    def __init__(self, depth: int):
        self.depth, self.leaf = depth, "before"

    def __call__(self, handler, _query) -> None:
        # Written out by hand: json.dumps itself recurses, and the point is a depth it cannot reach.
        deep = b'{"k": ' * self.depth + json.dumps(self.leaf).encode() + b"}" * self.depth
        first = json.dumps(assistant(1, metadata="DEEP")).encode().replace(b'"DEEP"', deep)
        body = b'{"object": "list", "has_more": false, "data": [' + first + b", " + json.dumps(assistant(2)).encode()
        send(handler, body + b"]}")


class EmptyListing:
    """Five assistants; once `empty`, a listing of none (`data` is `[]` or null, has_more false) though each
    assistant is still served by its id, as a broken proxy in front of a healthy server answers."""

    def __init__(self, data: str = "[]"):
        self.objects = {o["id"]: o for o in (assistant(n) for n in range(1, 6))}
        self.data, self.empty = data, False

    def __call__(self, handler, _query) -> None:
        object_id = urlsplit(handler.path).path.removeprefix("/v1/assistants").strip("/")
        if object_id:
            found = self.objects.get(object_id)
            send(handler, json.dumps(found).encode() if found else b'{"error": {"message": "No assistant"}}',
                 200 if found else 404)
            return
        data = self.data if self.empty else json.dumps(list(self.objects.values()))
        send(handler, b'{"object": "list", "has_more": false, "data": ' + data.encode() + b"}")


class Credentials:
    """Two assistants, the first holding credentials the contract names by their shape: a URL's userinfo and
    `token` parameter, and an OpenAI-shaped key under an ordinary metadata key. `rotate()` changes all three."""

    SECRETS = ("hunter2", "t0ps3cret", "Ab3dE5gH7jK9mN1pQ3sT5vX7zB9dF1hJ")

    def __init__(self):
        self.round = 0

    def secrets(self) -> list[str]:
        return [f"{secret}{n or ''}" for n in range(self.round + 1) for secret in self.SECRETS]

    def rotate(self) -> None:
        self.round += 1

    def __call__(self, handler, _query) -> None:
        suffix = self.round or ""
        password, token, key = (f"{secret}{suffix}" for secret in self.SECRETS)
        metadata = {"mcp": f"https://bot:{password}@crm.example.com/mcp?token={token}&team=ops",
                    "deploy": f"sk-proj-{key}"}
        body = {"object": "list", "has_more": False, "data": [assistant(1, metadata=metadata), assistant(2)]}
        send(handler, json.dumps(body).encode())


class Gate:
    """A loopback port that refuses connections while closed and forwards them to `upstream` while open."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nothing listens here until open(): connections are refused
        self._listener: socket.socket | None = None

    def open(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
