"""The WSGI application: routes, who may do what, security headers, and errors as one line.

Who may do what:
- on a loopback listen address, anyone who can reach it reads; only a request whose Host is a
  loopback name is answered (a web page that rebinds its own name to 127.0.0.1 gets nothing);
- on any other address every request but /healthz presents the token (`Authorization: Bearer`,
  or as the password of HTTP Basic, which browsers ask for by themselves);
- acknowledging an event always needs the token (the page's token field, or Bearer).

Every response carries a Content-Security-Policy that allows no script at all, and styles and
images only from this server.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

from jinja2 import Environment, FileSystemLoader
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from watcher.config.model import Config, HttpConfig, is_loopback
from watcher.display import printable
from watcher.errors import ConfigError, RecordError, one_line
from watcher.times import iso
from watcher.web import api, metrics, pages
from watcher.web.call import HERE, Call, Refused, presented_token

log = logging.getLogger("watcher.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                "base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
REALM = "assistant-watcher"


# --- routes -------------------------------------------------------------------------------------

_OBJECT = "/<target>/<kind>/<path:object_id>"
READ = ["GET"]  # and HEAD, which werkzeug adds: a page that only reads answers no other method


def _routes() -> Map:
    rules = [
        Rule("/", endpoint="pages.overview_page", methods=READ),
        Rule("/events", endpoint="pages.events", methods=READ),
        Rule("/events/<int:event_id>/ack", endpoint="pages.ack", methods=["POST"]),
        Rule("/objects", endpoint="pages.objects", methods=READ),
        Rule("/objects" + _OBJECT, endpoint="pages.object_page", methods=READ),
        Rule("/objects" + _OBJECT + "/diff", endpoint="pages.diff_page", methods=READ),
        Rule("/static/<name>", endpoint="pages.static", methods=READ),
        Rule("/api/v1/status", endpoint="api.status", methods=READ),
        Rule("/api/v1/events", endpoint="api.events", methods=READ),
        Rule("/api/v1/events/<int:event_id>/ack", endpoint="api.ack", methods=["POST"]),
        Rule("/api/v1/objects", endpoint="api.objects", methods=READ),
        Rule("/api/v1/objects" + _OBJECT + "/versions", endpoint="api.versions", methods=READ),
        Rule("/api/v1/objects" + _OBJECT + "/versions/<int:number>", endpoint="api.version", methods=READ),
        Rule("/api/v1/objects" + _OBJECT + "/diff", endpoint="api.diff_versions", methods=READ),
        Rule("/api/v1/objects" + _OBJECT + "/at", endpoint="api.at", methods=READ),
        Rule("/metrics", endpoint="metrics.metrics", methods=READ),
        Rule("/healthz", endpoint="metrics.healthz", methods=READ),
    ]
    return Map(rules, strict_slashes=False, merge_slashes=False)


def _handlers() -> dict[str, Callable[..., Response]]:
    modules = {"pages": pages, "api": api, "metrics": metrics}
    return {rule.endpoint: getattr(modules[rule.endpoint.split(".")[0]], rule.endpoint.split(".")[1])
            for rule in _routes().iter_rules()}


# --- the application ----------------------------------------------------------------------------


class Web:
    """The WSGI application over one config and database; `update` swaps both (the daemon's reload)."""

    def __init__(self, config: Config, engine: Engine):
        self.routes = _routes()
        self.handlers = _handlers()
        self.templates = _templates()
        self.update(config, engine)
        self.metrics_registry = metrics.registry_for(self)

    def update(self, config: Config, engine: Engine) -> None:
        """Serve `config` and `engine` from the next request on (the token is read again now)."""
        http = config.http or HttpConfig()
        token = http.token()
        self.config, self.engine, self.http, self._token = config, engine, http, token

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def token_matches(self, presented: str | None) -> bool:
        """True when `presented` is the configured token (compared in constant time)."""
        if self._token is None or not presented:
            return False
        return hmac.compare_digest(presented.encode("utf-8"), self._token.encode("utf-8"))

    def __call__(self, environ: dict, start_response) -> Any:
        request = Request(environ)
        try:
            response = self.respond(request)
        except Exception as exc:  # even the error page failed: still one line, still our headers
            log.error("web: %s %s failed: %s: %s", request.method, request.path, type(exc).__name__, one_line(exc))
            response = Response("internal error (logged by the watcher)\n", status=500, mimetype="text/plain")
        response.headers.update(SECURITY_HEADERS)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        call = Call(self, request)
        try:
            refusal = self._gate(request)
            if refusal is not None:
                raise refusal
            endpoint, values = call.adapter.match()
            return self.handlers[endpoint](call, **values)
        except Refused as exc:
            return call.error(exc.status, exc.message, **exc.details)
        except NotFound:
            return call.error(404, f"no such page: {printable(request.path)[:200]}")
        except MethodNotAllowed as exc:
            response = call.error(405, f"{request.method} is not allowed here")
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or []))  # a set: one order
            return response
        except HTTPException as exc:
            return call.error(exc.code or 400, exc.description or exc.name)
        except RecordError as exc:
            return call.error(404, str(exc))
        except ConfigError as exc:
            return call.error(500, f"config error: {exc}")
        except SQLAlchemyError as exc:
            log.warning("web: database error on %s: %s", request.path, one_line(exc))
            return call.error(503, f"database error: {one_line(exc)}")
        except Exception as exc:  # a bug must answer 500 with one line, not kill the worker or leak a traceback
            log.error("web: %s %s failed: %s: %s", request.method, request.path, type(exc).__name__, one_line(exc))
            log.debug("traceback", exc_info=True)
            return call.error(500, "internal error (logged by the watcher)")

    def _gate(self, request: Request) -> Refused | None:
        """Why `request` may not be served at all, or None."""
        if self.http.loopback:
            if not is_loopback(_hostname(request.host or "")):
                return Refused(403, f"this server listens on {self.http.listen} and answers only requests for "
                                    f"localhost; to serve other names, listen on their address with a token")
            return None
        if request.path == "/healthz" or self.token_matches(presented_token(request)):
            return None
        challenge = [f'Basic realm="{REALM}"', f'Bearer realm="{REALM}"']
        return Refused(401, "this server needs the token: Authorization: Bearer TOKEN (or as the password of "
                            "HTTP Basic)", challenge=challenge)


def _hostname(host: str) -> str:
    """The name in a Host header: `[::1]:8080` → `::1`, `localhost:8080` → `localhost`."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else ""
    return host.split(":", 1)[0]


# --- templates ----------------------------------------------------------------------------------


def _templates() -> Environment:
    environment = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["shown"] = lambda value: printable(str(value)) if value is not None else ""
    environment.filters["shown_lines"] = lambda value: "\n".join(printable(line) for line in str(value).split("\n"))
    environment.filters["when"] = lambda moment: iso(moment) or ""
    return environment
