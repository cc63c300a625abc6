"""One request as a handler sees it (`Call`), the refusal a handler raises, and what every handler may
ask of the request: kept apart from the application (`watcher.web.app`), which routes to the handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session
from werkzeug.wrappers import Request, Response

from watcher.config.model import Config
from watcher.record.engine import reader

if TYPE_CHECKING:
    from watcher.web.app import Web

HERE = Path(__file__).parent  # the templates and static files beside the package


class Refused(Exception):
    """A request the handler will not serve: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str, **details: Any):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def poll_intervals(config: Config) -> dict[str, float]:
    """Seconds between two polls of each enabled target (a disabled one is never stale)."""
    return {target.name: config.interval_of(target) for target in config.enabled_targets}


def presented_token(request: Request) -> str | None:
    """The token a request presents: a Bearer token, or the password of HTTP Basic."""
    auth = request.authorization
    if auth is None:
        return None
    if auth.type == "bearer":
        return auth.token
    if auth.type == "basic":
        return auth.password
    return None


class Call:
    """One request and what its handler needs: sessions, URLs, and ways to answer."""

    def __init__(self, web: Web, request: Request):
        self.web, self.request = web, request
        self.adapter = web.routes.bind_to_environ(request.environ)

    @property
    def config(self) -> Config:
        return self.web.config

    @property
    def is_api(self) -> bool:
        return self.request.path.startswith(("/api/", "/metrics", "/healthz"))

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that only reads (on SQLite it takes no write lock)."""
        with Session(reader(self.web.engine), expire_on_commit=False) as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in a transaction, committed when the block ends without an error."""
        with Session(self.web.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def url(self, endpoint: str, **values: Any) -> str:
        """The path of `endpoint`; other values become query arguments (`from_` for the keyword `from`)."""
        clean = {k.rstrip("_"): v for k, v in values.items() if v is not None and v is not False and v != ""}
        return self.adapter.build(endpoint, clean, force_external=False)

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self.web.templates.get_template(template).render(url=self.url, request=self.request, **context)
        response = Response(html, status=status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    def json(self, document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(document, ensure_ascii=False, indent=None, separators=(",", ":"))
        response = Response(body, status=status, mimetype="application/json", headers=headers or {})
        response.headers["Cache-Control"] = "no-store"
        return response

    def error(self, status: int, message: str, challenge: list[str] | None = None, **details: Any) -> Response:
        if self.is_api:
            response = self.json({"error": message, **details}, status)
        else:
            response = self.page("error.html.j2", status, title=f"Error {status}", code=status, message=message)
        for value in challenge or []:
            response.headers.add("WWW-Authenticate", value)
        return response
