"""Shared pytest fixtures."""

import pytest

from watcher.sandbox.server import Sandbox


@pytest.fixture
def sandbox():
    """A started sandbox API (5 assistants, 5 agents, seed 0), stopped after the test."""
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def scripted_api():
    """An HTTP server whose every answer comes from `answer(path_and_query) -> (status, body bytes)`.

    For what the sandbox will not do on purpose: error bodies sent with 200, broken JSON, hostile
    nesting. Yields a function that starts it with an `answer` and returns its base URL (…/v1).
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    servers = []

    def start(answer, *, trickle: tuple[int, float] | None = None):
        """`trickle=(n, seconds)` sends each body n bytes at a time, `seconds` apart."""

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if trickle is None:
                    self.wfile.write(body)
                    return
                size, pause = trickle
                try:
                    for start in range(0, len(body), size):
                        self.wfile.write(body[start:start + size])
                        self.wfile.flush()
                        _time.sleep(pause)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: that is the point
                    pass

            def log_message(self, *_args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- the record: databases, configs and the CLI ------------------------------------------------

import json as _json
import os as _os

from click.testing import CliRunner
from sqlalchemy import create_engine as _create_engine
from sqlalchemy import text as _text

PG_URL_ENV = "WATCHER_TEST_DATABASE_URL"
from config_text import ADMIN_KEY_ENV, KEY_ENV, target_toml

SANDBOX_KEY_ENV = KEY_ENV


def _reset_postgres(url: str) -> None:
    """Drop every table so each test starts from an empty, unmigrated database."""
    engine = _create_engine(url)
    with engine.begin() as connection:
        connection.execute(_text("DROP SCHEMA public CASCADE"))
        connection.execute(_text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh database URL: a SQLite file in tmp_path, and PostgreSQL when CI provides one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'watcher.db'}"
    url = _os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need ${PG_URL_ENV} (bash .ci/run sets it)")
    _reset_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'watcher.db'}"


@pytest.fixture
def engine(store_url):
    from watcher.record.engine import open_engine

    engine = open_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def write_config(tmp_path, monkeypatch):
    """Writes a config file for a sandbox target and returns its path."""

    def write(sandbox, url, *, extra: str = "", target_extra: str = "", name: str = "prod") -> str:
        monkeypatch.setenv(SANDBOX_KEY_ENV, sandbox.api_key)
        # the two kinds most tests are about; tests of others name theirs
        kinds = None if "kinds" in target_extra else ["assistants", "agents"]
        path = tmp_path / "config.toml"
        block = target_toml(sandbox.url, name=name, kinds=kinds, extra=target_extra)
        path.write_text(f'[database]\nurl = "{url}"\n\n{block}\n{extra}\n')
        return str(path)

    return write


@pytest.fixture
def make_target(monkeypatch):
    """The configured Target for a server at `url`, its keys set in the environment (see target_toml)."""
    from watcher.config.model import parse_config

    def make(url: str, *, key: str = "sk-test", admin_key: str | None = None, **block):
        monkeypatch.setenv(KEY_ENV, key)
        if admin_key is not None:
            monkeypatch.setenv(ADMIN_KEY_ENV, admin_key)
        return parse_config(target_toml(url, admin_key=admin_key is not None, **block)).targets[0]

    return make


@pytest.fixture
def cli():
    """Runs the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    from watcher.cli import main

    def run(config_path, *args):
        runner = CliRunner()
        base = ["--config", str(config_path)] if config_path else []
        return runner.invoke(main, [*base, *args], catch_exceptions=False)

    return run


@pytest.fixture
def cli_json(cli):
    """Runs a reading command with --json and returns the parsed document."""

    def run(config_path, *args):
        result = cli(config_path, *args, "--json")
        assert result.exit_code == 0, result.output
        return _json.loads(result.stdout)

    return run


# --- mail: a real aiosmtpd server and what it received (test_notify*, test_delivery*, test_render*) ----

import asyncio as _asyncio
import email as _email
import email.policy as _email_policy
import socket as _socket
import ssl as _ssl
import threading as _threading
import time as _time
from datetime import UTC

SMTP_USER = "watcher"
SMTP_PASSWORD = "s3cret-Pa55-for-tests"
SMTP_PASSWORD_ENV = "WATCHER_TEST_SMTP_PASSWORD"


class ReceivedMail:
    """One message an aiosmtpd server accepted: its envelope and its parse by the stdlib `email`."""

    def __init__(self, mail_from: str, rcpt_tos: list[str], raw: bytes):
        self.mail_from, self.rcpt_tos, self.raw = mail_from, list(rcpt_tos), raw
        self.message = _email.message_from_bytes(raw, policy=_email_policy.default)

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    def header(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value).strip()  # a folded header keeps its leading space

    @property
    def text(self) -> str:
        return self._part("plain")

    @property
    def html(self) -> str:
        return self._part("html")

    def _part(self, subtype: str) -> str:
        # A base64 text part carries MIME's canonical CRLF line ends; compare with plain "\n".
        return self.message.get_body((subtype,)).get_content().replace("\r\n", "\n")


class _MailRecorder:
    """aiosmtpd handler: refuses the addresses in `server.refuse` for good (550) and those in `server.defer`
    for now (450), records everything else."""

    def __init__(self, server: "MailServer"):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.server.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.server.defer:
            return f"450 4.2.1 <{address}>: Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.server.delay:
            await _asyncio.sleep(self.server.delay)
        raw = envelope.original_content or envelope.content
        self.server.received(ReceivedMail(envelope.mail_from, envelope.rcpt_tos, raw))
        return "250 2.0.0 OK: queued"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with _socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailServer:
    """An aiosmtpd server on 127.0.0.1: plain, STARTTLS or implicit TLS (trustme certificate), optional AUTH.

    The port is chosen at construction, so the server can be stopped and started again on it
    (an SMTP outage). `messages` holds every accepted message, parsed.
    """

    def __init__(self, tmp_path, *, security: str = "none", auth: bool = False, refuse=(), defer=(),
                 delay: float = 0.0):
        self.host, self.port = "127.0.0.1", free_port()
        self.security, self.auth, self.refuse, self.delay = security, auth, set(refuse), delay
        self.defer = set(defer)
        self.messages: list[ReceivedMail] = []
        self.auth_attempts: list[tuple[str, str]] = []
        self._changed = _threading.Condition()
        self._controller = None
        self.ca_file = None
        self._server_context = None
        if security != "none":
            import trustme

            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            self._server_context = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(self._server_context)
            self.ca_file = str(tmp_path / f"smtp-ca-{self.port}.pem")
            ca.cert_pem.write_to_path(self.ca_file)

    def start(self) -> "MailServer":
        from aiosmtpd.controller import Controller

        options: dict = {}
        if self.security == "starttls":
            options.update(tls_context=self._server_context, require_starttls=True)
        if self.security == "tls":
            options.update(ssl_context=self._server_context)
        if self.auth:
            # aiosmtpd counts only STARTTLS as TLS; implicit TLS and plain tests must allow AUTH anyway.
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=self.security == "starttls")
        self._controller = Controller(_MailRecorder(self), hostname=self.host, port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.auth_attempts.append((login, password))
        return AuthResult(success=login == SMTP_USER and password == SMTP_PASSWORD, handled=False)

    def received(self, mail: ReceivedMail) -> None:
        with self._changed:
            self.messages.append(mail)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """The messages once at least `count` arrived (or whatever came within `timeout`)."""
        deadline = _time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < count and _time.monotonic() < deadline:
                self._changed.wait(deadline - _time.monotonic())
            return list(self.messages)

    def smtp_section(self, *, timeout: str = "5s", extra: str = "") -> str:
        """The `[smtp]` TOML that reaches this server (the password by environment variable)."""
        lines = ["[smtp]", f'host = "{self.host}"', f"port = {self.port}", f'security = "{self.security}"',
                 'sender = "Assistant Watcher <watcher@watcher.example.com>"', f'timeout = "{timeout}"']
        if self.ca_file:
            lines.append(f'ca_file = "{self.ca_file}"')
        if self.auth:
            lines += [f'username = "{SMTP_USER}"', f'password_env = "{SMTP_PASSWORD_ENV}"']
        return "\n".join(lines) + "\n" + extra + "\n"


@pytest.fixture
def smtp_server(tmp_path):
    """Starts MailServers: smtp_server(security="none"|"starttls"|"tls", auth=False, refuse=(), defer=(), delay=0,
    started=True)."""
    servers: list[MailServer] = []

    def start(*, started: bool = True, **options) -> MailServer:
        server = MailServer(tmp_path, **options)
        servers.append(server)
        return server.start() if started else server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def mail_config(write_config, sqlite_url, monkeypatch):
    """Writes a config: a sandbox target mailing through a MailServer; returns the config's path.

    `password` is what SMTP_PASSWORD_ENV holds (default: the right one); `alerts` is extra
    TOML for the [alerts] table (digest_threshold, failure_after, routes, …).
    """

    def write(sandbox, server, *, url: str | None = None, watchlist=("ops@example.com",), alerts: str = "",
              smtp: str = "", target_extra: str = "", password: str = SMTP_PASSWORD, timeout: str = "5s") -> str:
        monkeypatch.setenv(SMTP_PASSWORD_ENV, password)
        listed = ", ".join(f'"{address}"' for address in watchlist)
        section = server.smtp_section(timeout=timeout, extra=smtp) + f"\n[alerts]\nwatchlist = [{listed}]\n{alerts}\n"
        return write_config(sandbox, url or sqlite_url, extra=section, target_extra=target_extra)

    return write


@pytest.fixture
def silent_smtp_port():
    """A port that accepts TCP connections and never says a word (an SMTP server that hangs)."""
    listener = _socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def mail_settings(monkeypatch):
    """A parsed Config whose [smtp] reaches a MailServer: mail_settings(server, url, alerts="", password=…)."""
    from watcher.config.model import parse_config

    def settings(server, url: str, *, alerts: str = "", password: str = SMTP_PASSWORD, timeout: str = "5s"):
        monkeypatch.setenv(SMTP_PASSWORD_ENV, password)
        text = (f'[database]\nurl = "{url}"\n\n{server.smtp_section(timeout=timeout)}\n'
                f'[alerts]\nwatchlist = ["ops@example.com"]\n{alerts}\n')
        return parse_config(text, source="test config")

    return settings


@pytest.fixture
def queue_mail():
    """Queues `count` outbox rows directly (as a poll would); returns their Message-IDs."""
    from sqlalchemy.orm import Session as _Session

    from watcher.alerts import templating
    from watcher.alerts.channels import email

    def queue(engine, count: int, *, to=("ops@example.com",), now=None) -> list[str]:
        rows = [email.new_row("event", list(to),
                              templating.RenderedEmail(f"queued alert {n}", f"alert {n}\n", f"<p>alert {n}</p>"),
                              "watcher.example.com", now=now)
                for n in range(count)]
        ids = [row.message_id for row in rows]  # read before the commit expires the rows
        with _Session(engine) as session, session.begin():
            session.add_all(rows)
        return ids

    return queue


@pytest.fixture
def drift_event():
    """Builds a DriftEvent as a poll would: drift_event(old_body, new_body, change=…, name=…, kind=…, target=…)."""
    from datetime import datetime as _datetime
    from datetime import timedelta as _timedelta

    from watcher.compare import diff
    from watcher.kinds import registry
    from watcher.record.drift import DriftEvent

    detected = _datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    def build(old, new, *, change="modified", name="Billing Bot", kind="assistants", target="prod",
              object_id="asst_abc123", number=7, updated_at=None) -> DriftEvent:
        changes = diff.compare(old, new) if change in ("modified", "reappeared") else []
        versions = {"created": (None, 1), "deleted": (3, None)}.get(change, (3, 4))
        paths = diff.changed_paths(changes)
        return DriftEvent(event_id=number, target=target, kind=kind, object_id=object_id, name=name, change=change,
                          from_version=versions[0], to_version=versions[1], paths=paths, changes=changes,
                          detected_at=detected, window_start=detected - _timedelta(minutes=5),
                          remote_updated_at=updated_at, old_body=old, new_body=new,
                          severity=registry.get(kind).severity(change, paths))

    return build


@pytest.fixture
def wire_size():
    """The size in bytes of a RenderedEmail as it goes over SMTP (headers, MIME parts, transfer encoding)."""
    from datetime import datetime as _datetime

    from watcher.alerts.channels import email as channel

    def size(email) -> int:
        message = channel.build_message(email, ["ops@example.com"], "Watcher <w@watcher.example.com>",
                                        _datetime(2026, 1, 1, tzinfo=UTC), "<1@watcher.example.com>")
        return len(channel.as_bytes(message))

    return size


@pytest.fixture
def outbox_of():
    """Every outbox row of an engine, oldest first (detached, attributes loaded)."""
    from sqlalchemy import select as _select
    from sqlalchemy.orm import Session as _Session

    from watcher.record.models import Delivery

    def rows(engine) -> list:
        with _Session(engine, expire_on_commit=False) as session:
            return list(session.scalars(_select(Delivery).order_by(Delivery.id)))

    return rows


@pytest.fixture
def long_instructions():
    """About 256k characters of instructions: `lines` numbered lines of 100 characters."""

    def make(lines: int = 2560, verb: str = "Always") -> str:
        return "\n".join(f"{n:05d} {verb} answer with the policy that applies, and cite it by its number. " + "x" * 23
                         for n in range(lines))

    return make


# --- receivers: a real HTTP server for webhooks, Slack and Teams (test_channels*) --------------------

import base64 as _base64
import hashlib as _hashlib
import hmac as _hmac
from collections import Counter as _Counter
from http.server import BaseHTTPRequestHandler as _Handler
from http.server import ThreadingHTTPServer as _HTTPServer

WEBHOOK_SECRET = "whsec_" + _base64.b64encode(b"a test signing key of 32 bytes!!").decode()
SIGNATURE_TOLERANCE = 300  # seconds a webhook-timestamp may be off, as Standard Webhooks advise


class Received:
    """One request a Receiver got: headers, body, whether its signature checked out, what it answered."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes, verified: bool | None, status: int):
        self.path, self.headers, self.body, self.verified, self.status = path, headers, body, verified, status

    @property
    def json(self):
        return _json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 that takes webhook POSTs, verifies their Standard Webhooks signature
    (when it has a secret) independently of the watcher's code, and counts acceptances per webhook-id.

    Its answers follow a plan: `plan(503, 503)` fails the next two requests, `plan(410)` says gone,
    `plan(("hang", 3))` waits 3 s before answering, `plan(("redirect", 307, url))` redirects; then
    `default` (200). `linger` holds a 2xx answer that long after counting it as accepted (the window
    between "accepted" and "marked" that a kill -9 can hit).
    """

    def __init__(self, secret: str | None = WEBHOOK_SECRET):
        self.key = _base64.b64decode(secret.removeprefix("whsec_")) if secret else None
        self.requests: list[Received] = []
        self.accepted: _Counter = _Counter()
        self.default: int = 200
        self.linger = 0.0
        self._plan: list = []
        self._changed = _threading.Condition()
        receiver = self

        class Handler(_Handler):
            def do_POST(self):
                receiver._handle(self)

            def log_message(self, *_args):
                pass

        self.server = _HTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        _threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def plan(self, *answers) -> None:
        with self._changed:
            self._plan.extend(answers)

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
        if not msg_id or abs(_time.time() - int(timestamp)) > SIGNATURE_TOLERANCE:
            return False
        expected = _base64.b64encode(_hmac.new(self.key, f"{msg_id}.{timestamp}.".encode() + body,
                                               _hashlib.sha256).digest()).decode()
        offered = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
        return any(_hmac.compare_digest(expected, s) for s in offered)

    def _handle(self, handler) -> None:
        declared = int(handler.headers.get("Content-Length", 0))
        body = handler.rfile.read(declared)
        if len(body) < declared:  # the sender died mid-request (a kill -9 test): no request reached the app
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified = self.verify(headers, body) if self.key else None
        with self._changed:
            answer = self._plan.pop(0) if self._plan else self.default
        location = None
        if isinstance(answer, tuple) and answer[0] == "hang":
            _time.sleep(answer[1])
            answer = 200
        elif isinstance(answer, tuple) and answer[0] == "redirect":
            _, answer, location = answer
        if verified is False:
            answer = 401
        if 200 <= answer < 300:
            with self._changed:
                self.accepted[headers.get("webhook-id") or str(len(self.requests))] += 1
            if self.linger:
                _time.sleep(self.linger)
        with self._changed:
            self.requests.append(Received(handler.path, headers, body, verified, answer))
            self._changed.notify_all()
        try:
            handler.send_response(answer)
            if location:
                handler.send_header("Location", location)
            reply = b'{"ok": true}' if 200 <= answer < 300 else f"refused with {answer}".encode()
            handler.send_header("Content-Length", str(len(reply)))
            handler.end_headers()
            handler.wfile.write(reply)
        except OSError:  # the sender gave up waiting (a hang past its timeout)
            pass

    @property
    def payloads(self) -> list:
        """The JSON bodies of the requests it accepted, in order."""
        return [r.json for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests once at least `count` arrived (or whatever came within `timeout`)."""
        deadline = _time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count and _time.monotonic() < deadline:
                self._changed.wait(deadline - _time.monotonic())
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    """Starts Receivers: receiver(secret=WEBHOOK_SECRET) (secret=None for Slack and Teams); closed after."""
    started: list[Receiver] = []

    def start(secret: str | None = WEBHOOK_SECRET) -> Receiver:
        started.append(Receiver(secret))
        return started[-1]

    yield start
    for server in started:
        server.close()

# --- the web: a real server on loopback, a real HTTP client, a real browser (test_web_*) ----------------

import shutil as _shutil
import urllib.error as _urlerror
import urllib.request as _urlrequest

HTTP_TOKEN = "web-token-0123456789abcdef"
HTTP_TOKEN_ENV = "WATCHER_TEST_HTTP_TOKEN"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


@pytest.fixture
def web_server(monkeypatch):
    """Serves the web application of a config file on 127.0.0.1 (a free port); returns its base URL.

    The application follows the config's [http] (token, loopback or not) whatever address the test
    server is bound to, so policies for a public address are tested without binding one.
    """
    from watcher.config.model import load_config
    from watcher.record.engine import open_engine
    from watcher.web.app import Web
    from watcher.web.server import HttpServer

    monkeypatch.setenv(HTTP_TOKEN_ENV, HTTP_TOKEN)
    started = []

    def start(config_path) -> str:
        config = load_config(config_path)
        engine = open_engine(config.database.url)
        server = HttpServer(Web(config, engine), "127.0.0.1", 0).start()
        started.append((server, engine))
        return server.url

    yield start
    for server, engine in started:
        server.stop()
        engine.dispose()


class HttpAnswer:
    """A response as a client saw it: status, headers, body text, and the body as JSON."""

    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body
        self.text = body.decode("utf-8")

    def json(self):
        return _json.loads(self.text)


class _NoRedirect(_urlrequest.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_request(method: str, url: str, *, headers: dict | None = None, body: bytes | None = None) -> HttpAnswer:
    """One HTTP request with the standard library's client; any status is an answer, not an exception."""
    request = _urlrequest.Request(url, data=body, method=method, headers=headers or {})
    opener = _urlrequest.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return HttpAnswer(response.status, response.headers, response.read())
    except _urlerror.HTTPError as error:
        return HttpAnswer(error.code, error.headers, error.read())


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser). Skips without chromium,
    unless $WATCHER_REQUIRE_BROWSER is set (as `.ci/run` does): then a missing browser fails."""
    executable = _shutil.which("chromium") or "/usr/bin/chromium"
    if not _os.path.exists(executable):
        message = "the browser tests need Debian's chromium (apt-get install chromium; .ci/run does)"
        if _os.environ.get("WATCHER_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        yield launched
        launched.close()
