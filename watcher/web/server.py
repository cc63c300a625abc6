"""Serving the web application: waitress (pure-Python WSGI, a small pool of worker threads) in one
background thread, started and stopped by `serve` and by the daemon.

The listening socket is bound when the server is created, so a busy port is a ConfigError at start
rather than a thread that dies later.
"""

from __future__ import annotations

import errno
import logging
import signal
import threading

from waitress import wasyncore
from waitress.server import create_server

from watcher.config.model import Config
from watcher.errors import ConfigError, WatcherError
from watcher.web.app import Web

log = logging.getLogger("watcher.web")

THREADS = 4  # waitress workers: each holds at most one database connection while it answers
MAX_BODY = 64 * 1024  # bytes of request body (an ack is a few hundred)
# A port held by another process, an address not up yet (at boot): they pass, unlike a bad address or port.
_PASSING = (errno.EADDRINUSE, errno.EADDRNOTAVAIL)
_LOOP_TIMEOUT = 1.0  # seconds the I/O loop waits before it looks at the stop flag again


class HttpServer:
    """A WSGI application served on `host:port` from a background thread until `stop()`."""

    def __init__(self, app, host: str, port: int, *, threads: int = THREADS):
        self._map: dict = {}
        self._stopping = threading.Event()
        # Held while waking the loop and while closing: a wake-up never writes to a closed (reused) fd.
        self._closing = threading.Lock()
        self._closed = False
        self._grace = 5.0  # seconds requests in flight may take to finish once stopping
        self._thread: threading.Thread | None = None
        try:
            self._server = create_server(app, map=self._map, host=host, port=port, threads=threads,
                                         ident="assistant-watcher", max_request_body_size=MAX_BODY,
                                         expose_tracebacks=False, clear_untrusted_proxy_headers=True)
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            message = f"http.listen: cannot listen on {where}: {exc.strerror or exc}"
            if exc.errno in _PASSING:  # exit 1, not 2: systemd restarts the service, and it listens once free
                raise WatcherError(message) from None
            raise ConfigError(message) from None
        self.host, self.port = self._server.effective_host, int(self._server.effective_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=_LOOP_TIMEOUT, map=self._map, count=1)
        finally:
            with self._closing:
                self._closed = True
                self._server.task_dispatcher.shutdown(timeout=self._grace)
                wasyncore.close_all(self._map)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish (up to `timeout`), close every connection."""
        with self._closing:
            self._grace = timeout
            self._stopping.set()
            if not self._closed:
                self._server.pull_trigger()  # wake the I/O loop now rather than at its next timeout
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
        elif not self._closed:  # never started: close what the constructor opened
            with self._closing:
                self._closed = True
                wasyncore.close_all(self._map)


def serve_until_signal(server: HttpServer) -> None:
    """Run `server` until SIGTERM or SIGINT (the `serve` command), then stop it cleanly."""
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    server.start()
    try:
        while not stop.wait(3600):
            pass
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def bound(config: Config, engine) -> tuple[Web, HttpServer]:
    """The web application over `config` and `engine`, and its server with `[http] listen` bound (not yet
    serving): what the daemon serves beside its polls. A busy port is a WatcherError now."""
    if config.http is None:
        raise ConfigError("[http] is not configured")
    web = Web(config, engine)
    return web, HttpServer(web, config.http.host, config.http.port)
