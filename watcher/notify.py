"""Alerts that arrive: outbox rows written with the poll, then SMTP delivery until accepted.

`composer(config)` gives the poll a function that turns its outcome into outbox rows
inside the poll's own transaction (invariant 3): one email per drift event to the
watchlist and matching routes, one digest above `digest_threshold`, one "failing"
email per outage of a (target, kind), one "recovered" when it ends, one "retired"
when a kind with recorded objects starts answering 404.

`deliver_pending(engine, config)` claims due rows one at a time (an UPDATE guarded by
`claimed_until`; on PostgreSQL after `SELECT … FOR UPDATE SKIP LOCKED`), sends each with
aiosmtplib and marks it sent only after the server accepted it (invariant 4). A failure
records the error and backs off from 1 minute, doubling, to 1 hour.

Secrets (the SMTP password) are read when a connection is made and are scrubbed from
every error text that could reach a log line, a row or the terminal (invariant 7).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Callable

import aiosmtplib
from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher import render
from watcher.config import Config, SmtpConfig
from watcher.errors import ConfigError, DeliveryError
from watcher.history import iso
from watcher.poll import ComposeAlerts, DriftEvent, PollOutcome, no_alerts
from watcher.store import OutboxMessage, Poll, utcnow

log = logging.getLogger("watcher.notify")

BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
_SENT_SHOWN = 50


# --- composing: outcome → outbox rows ---------------------------------------------------------


def composer(config: Config) -> ComposeAlerts:
    """The function a poll calls, in its transaction, for the outbox rows of its outcome.

    Without `[smtp]` nothing is ever queued. Templates are loaded now, so a broken
    `[alerts] templates_dir` is a ConfigError before any poll runs.
    """
    if config.smtp is None:
        return no_alerts
    return _Composer(config).compose


class _Composer:
    """Holds what composing needs (routes, templates, the Message-ID domain) across polls."""

    def __init__(self, config: Config):
        self.alerts = config.alerts
        self.templates = render.Templates(config.alerts.templates_dir)
        self.msgid_domain = _msgid_domain(config.smtp.sender)

    def compose(self, session: Session, outcome: PollOutcome) -> list[OutboxMessage]:
        rows = self._health(session, outcome)
        if outcome.status == "complete" and not outcome.baseline and outcome.events:
            rows += self._drift(outcome)
        return rows

    # -- drift ---------------------------------------------------------------------------------

    def _drift(self, outcome: PollOutcome) -> list[OutboxMessage]:
        addressed = [(event, self._recipients(event)) for event in outcome.events]
        addressed = [(event, to) for event, to in addressed if to]
        if len(outcome.events) > self.alerts.digest_threshold:
            everyone = _unique(address for _event, to in addressed for address in to)
            if not everyone:
                return []
            digest = _rendered_or_plain(lambda: render.render_digest(outcome.events, self.templates),
                                        f"[{outcome.target}] {len(outcome.events)} {outcome.kind} changed")
            return [self._row("digest", outcome, everyone, digest)]
        return [self._row("event", outcome, to, self._render_event(event)) for event, to in addressed]

    def _render_event(self, event: DriftEvent) -> render.RenderedEmail:
        fallback = f"[{event.target}] {render.kind_label(event.kind)} {event.object_id} {event.change}"
        return _rendered_or_plain(lambda: render.render_event(event, self.templates), fallback)

    def _recipients(self, event: DriftEvent) -> list[str]:
        return self._addressed(name=event.name or "", kind=event.kind, target=event.target, severity=event.severity)

    def _addressed(self, *, name: str, kind: str, target: str, severity: str) -> list[str]:
        """The watchlist, then every route whose match fits, without repeats."""
        routed = [address for route in self.alerts.routes
                  if route.match.matches(name=name, kind=kind, target=target, severity=severity)
                  for address in route.to]
        return _unique([*self.alerts.watchlist, *routed])

    # -- health: failing, recovered, retired --------------------------------------------------

    def _health(self, session: Session, outcome: PollOutcome) -> list[OutboxMessage]:
        if outcome.poll_id is None or outcome.target_id is None:
            return []
        # Operational mail has no object: routes that name no object pattern, at severity high.
        to = self._addressed(name="", kind=outcome.kind, target=outcome.target, severity="high")
        if not to:
            return []
        if outcome.status == "failed":
            email = self._failure_email(session, outcome)
        else:
            email = self._recovery_email(session, outcome)
        return [self._row(purpose, outcome, to, rendered) for purpose, rendered in email]

    def _failure_email(self, session: Session, outcome: PollOutcome) -> list[tuple[str, render.RenderedEmail]]:
        streak = _failed_streak(session, outcome.target_id, outcome.kind, through=outcome.poll_id)
        if outcome.retired and "retired" not in streak.announced:
            return [("retired", render.render_retired(outcome.target, outcome.kind, outcome.error or "",
                                                      self.templates))]
        if streak.failures >= self.alerts.failure_after and not streak.announced:
            return [("failing", render.render_failing(outcome.target, outcome.kind, outcome.error or "",
                                                      streak.failures, streak.since, self.templates))]
        return []

    def _recovery_email(self, session: Session, outcome: PollOutcome) -> list[tuple[str, render.RenderedEmail]]:
        streak = _failed_streak(session, outcome.target_id, outcome.kind, through=outcome.poll_id - 1)
        if not streak.announced:  # nobody was told of an outage, so nobody needs telling it ended
            return []
        return [("recovered", render.render_recovered(outcome.target, outcome.kind, streak.failures, streak.since,
                                                      self.templates))]

    # -- rows ----------------------------------------------------------------------------------

    def _row(self, purpose: str, outcome: PollOutcome, to: list[str], email: render.RenderedEmail) -> OutboxMessage:
        row = new_row(purpose, outcome.target_id, to, email, self.msgid_domain)
        row.poll_id = outcome.poll_id
        return row


def _rendered_or_plain(make: Callable[[], render.RenderedEmail], subject: str) -> render.RenderedEmail:
    """The rendered email; should rendering ever fail, a plain one, so the poll still records its drift."""
    try:
        return make()
    except Exception:
        log.exception("rendering an alert failed; queueing a plain one instead")
        text = "This alert could not be rendered; run `assistant-watcher events --open` to see what changed.\n"
        return render.RenderedEmail(render.header_text(subject), text, f"<p>{text.strip()}</p>")


def new_row(purpose: str, target_id: int | None, to: list[str], email: render.RenderedEmail,
            msgid_domain: str, now: datetime | None = None) -> OutboxMessage:
    """An unsaved outbox row; its Message-ID is fixed now, so every retry carries the same one."""
    now = now or utcnow()
    return OutboxMessage(
        purpose=purpose, target_id=target_id, recipients=list(to), subject=render.header_text(email.subject),
        text_body=email.text, html_body=email.html, message_id=make_msgid(domain=msgid_domain),
        created_at=now, attempts=0, next_attempt_at=now,
    )


@dataclass(frozen=True)
class _Streak:
    failures: int  # consecutive failed polls, the last one at or before `through`
    since: datetime | None  # when the first of them started
    announced: frozenset[str]  # the health emails (failing, retired) those polls queued


def _failed_streak(session: Session, target_id: int, kind: str, *, through: int) -> _Streak:
    """The run of failed polls of (target, kind) that ends at poll id `through` (or just before it)."""
    scope = (Poll.target_id == target_id, Poll.kind == kind)
    last_ok = session.scalar(select(func.max(Poll.id)).where(*scope, Poll.status != "failed", Poll.id <= through))
    in_streak = (*scope, Poll.id > (last_ok or 0), Poll.id <= through)
    failures, since = session.execute(select(func.count(), func.min(Poll.started_at)).where(*in_streak)).one()
    if not failures:  # the usual case, after every healthy poll: nothing can have been announced
        return _Streak(0, None, frozenset())
    announced = session.scalars(select(OutboxMessage.purpose).distinct().join(Poll, OutboxMessage.poll_id == Poll.id)
                                .where(*in_streak, OutboxMessage.purpose.in_(("failing", "retired"))))
    return _Streak(failures, since, frozenset(announced))


def _unique(addresses) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.strip().lower(), address.strip())
    return list(seen.values())


def _msgid_domain(sender: str) -> str:
    """The sender's domain: Message-IDs stay in a domain the operator controls."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return domain or "assistant-watcher.invalid"


# --- delivery -----------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What one delivery sweep did."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str | None:
        """One line for the CLI and the daemon's log; None when nothing was attempted."""
        if not self.sent and not self.failed:
            return None
        parts = [f"{self.sent} {_plural(self.sent, 'email')} sent"] if self.sent else []
        if self.failed:
            parts.append(f"{self.failed} not delivered, will retry ({self.errors[0]})" if self.errors
                         else f"{self.failed} not delivered, will retry")
        if self.pending:
            parts.append(f"{self.pending} waiting in the outbox")
        return "mail: " + "; ".join(parts)


def deliver_pending(engine: Engine, config: Config, *, now: datetime | None = None) -> DeliveryReport:
    """Send every due outbox row over SMTP; safe while other processes deliver too.

    `now` fixes the clock (tests move it past a backoff). Rows are claimed one at a time,
    marked sent only after the server accepted them, and on failure keep their error, an
    attempt count and the time of the next attempt. Raises only for a missing secret
    (ConfigError) or a database error.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    if config.smtp is not None:
        password = config.smtp.password()
        asyncio.run(_deliver_all(engine, config.smtp, password, clock, report))
    report.pending = _count_unsent(engine)
    return report


async def _deliver_all(engine: Engine, smtp: SmtpConfig, password: str | None, clock, report: DeliveryReport) -> None:
    lease = _lease(smtp)
    connection = _Connection(smtp, password)
    try:
        while (row := _claim_next(engine, clock(), lease)) is not None:
            try:
                refused = await connection.send(build_message(row, smtp.sender), row.recipients)
            except DeliveryError as exc:
                _mark_failed(engine, row, str(exc), clock())
                report.failed += 1
                if str(exc) not in report.errors:  # an outage fails every row the same way: say it once
                    report.errors.append(str(exc))
                continue
            _mark_sent(engine, row, refused, clock())
            report.sent += 1
    finally:
        await connection.close()


def _lease(smtp: SmtpConfig) -> timedelta:
    # Long enough for connect, TLS, AUTH and DATA each to use their whole timeout.
    return timedelta(seconds=smtp.timeout * 6 + 60)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: 1 minute, doubling, at most 1 hour."""
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


@dataclass(frozen=True)
class _Claimed:
    id: int
    attempts: int
    recipients: list[str]
    subject: str
    text_body: str
    html_body: str
    message_id: str
    created_at: datetime


def _due(at: datetime):
    return (OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= at,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < at))


def _claim_next(engine: Engine, at: datetime, lease: timedelta) -> _Claimed | None:
    """Claim the oldest due row for this process, or None when none is left.

    SQLite serializes writers (BEGIN IMMEDIATE) and PostgreSQL skips rows another
    transaction holds; the guarded UPDATE makes a claim exclusive on either.
    """
    while True:
        with Session(engine) as session, session.begin():
            row = session.scalar(select(OutboxMessage).where(*_due(at)).order_by(OutboxMessage.id).limit(1)
                                 .with_for_update(skip_locked=True))
            if row is None:
                return None
            claimed = session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id, *_due(at))
                                      .values(claimed_until=at + lease)
                                      .execution_options(synchronize_session=False)).rowcount
            if claimed == 1:
                return _Claimed(row.id, row.attempts, list(row.recipients), row.subject, row.text_body,
                                row.html_body, row.message_id, row.created_at)


def _mark_sent(engine: Engine, row: _Claimed, refused: list[str], at: datetime) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(
            sent_at=at, attempts=row.attempts + 1, claimed_until=None, last_error=None, refused=refused or None,
        ).execution_options(synchronize_session=False))
    if refused:
        log.warning("outbox %d sent, but the server refused %s", row.id, "; ".join(refused))


def _mark_failed(engine: Engine, row: _Claimed, error: str, at: datetime) -> None:
    attempts = row.attempts + 1
    with Session(engine) as session, session.begin():
        session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(
            attempts=attempts, last_error=error, next_attempt_at=at + backoff(attempts), claimed_until=None,
        ).execution_options(synchronize_session=False))


def _count_unsent(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.sent_at.is_(None))) or 0


class _MailPolicy(EmailPolicy):
    """The default policy, but a non-ASCII Subject is encoded whole into RFC 2047 words.

    Python 3.11's folder drops the space between two encoded words when it folds between
    them ("✓ —" arrives as "✓—"); the classic Header encoder keeps every character.
    """

    def _encodes_whole(self, name: str, value: str) -> bool:
        return name.lower() == "subject" and not self.utf8 and not str(value).isascii()

    def fold(self, name: str, value: str) -> str:
        if not self._encodes_whole(name, value):
            return super().fold(name, value)
        encoded = Header(str(value), "utf-8", header_name=name).encode(linesep=self.linesep,
                                                                        maxlinelen=self.max_line_length)
        return f"{name}: {encoded}{self.linesep}"

    def fold_binary(self, name: str, value: str) -> bytes:
        if not self._encodes_whole(name, value):
            return super().fold_binary(name, value)
        return self.fold(name, value).encode("ascii")


MAIL_POLICY = _MailPolicy()
_WIRE_POLICY = MAIL_POLICY.clone(linesep="\r\n")


def as_bytes(message: EmailMessage) -> bytes:
    """The message as sent: CRLF line ends, every header 7-bit (our policy, not the SMTP library's)."""
    return message.as_bytes(policy=_WIRE_POLICY)


def build_message(row, sender: str) -> EmailMessage:
    """The MIME message of an outbox row: multipart/alternative, text then HTML.

    Date and Message-ID come from the row, so a retry is the same email.
    """
    message = EmailMessage(policy=MAIL_POLICY)  # no CR/LF in header values; RFC 2047 for non-ASCII
    message["Subject"] = render.header_text(row.subject)
    message["From"] = sender
    message["To"] = ", ".join(row.recipients)
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = row.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row.text_body, cte=_transfer_encoding(row.text_body))
    message.add_alternative(row.html_body, subtype="html", cte=_transfer_encoding(row.html_body))
    return message


_QP_ESCAPED = bytes([61, *range(127, 256)])  # "=" and every non-ASCII byte


def _transfer_encoding(body: str) -> str:
    """Quoted-printable while it stays readable and small, else base64 (at most 4/3 of the UTF-8 size)."""
    data = body.encode("utf-8")
    escaped = len(data) - len(data.translate(None, _QP_ESCAPED))
    # Quoted-printable writes an escaped byte as three characters.
    return "quoted-printable" if 3 * (len(data) + 2 * escaped) <= 4 * len(data) else "base64"


# --- SMTP -----------------------------------------------------------------------------------------


class _Connection:
    """One SMTP session reused for a sweep; after a failed connect, every send fails at once."""

    def __init__(self, smtp: SmtpConfig, password: str | None):
        self.smtp, self.password = smtp, password
        self.client: aiosmtplib.SMTP | None = None
        self.broken: str | None = None

    async def send(self, message: EmailMessage, recipients: list[str]) -> list[str]:
        """Send `message`; the recipients the server refused (when it took the others)."""
        if self.broken:
            raise DeliveryError(self.broken)
        if self.client is None or not self.client.is_connected:
            self.client = await self._connect()
        try:
            errors, _reply = await self.client.sendmail(parseaddr(self.smtp.sender)[1], recipients, as_bytes(message))
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            self._drop()  # the session state is unknown after an error: the next message reconnects
            raise DeliveryError(self._describe(exc)) from None
        return [f"{address}: {reply.code} {reply.message}" for address, reply in errors.items()]

    async def _connect(self) -> aiosmtplib.SMTP:
        try:
            return await open_smtp(self.smtp, self.password)
        except DeliveryError as exc:
            self.broken = str(exc)
            raise

    def _describe(self, exc: BaseException) -> str:
        return scrub(describe_smtp_error(exc), self.smtp, self.password)

    def _drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        """QUIT politely; a server that does not answer is simply disconnected."""
        client, self.client = self.client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            client.close()


async def open_smtp(smtp: SmtpConfig, password: str | None) -> aiosmtplib.SMTP:
    """A connected (and, if configured, encrypted and authenticated) SMTP client, or DeliveryError."""
    client = aiosmtplib.SMTP(
        hostname=smtp.host, port=smtp.port, timeout=smtp.timeout,
        use_tls=smtp.security == "tls", start_tls=smtp.security == "starttls",
        tls_context=_tls_context(smtp) if smtp.security != "none" else None,
    )
    where = f"{smtp.host}:{smtp.port}"
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
        client.close()
        raise DeliveryError(scrub(f"cannot connect to {where} ({smtp.security}): {describe_smtp_error(exc)}",
                                  smtp, password)) from None
    if smtp.username:
        try:
            await client.login(smtp.username, password or "")
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            client.close()
            raise DeliveryError(scrub(f"{where} refused login as {smtp.username}: {describe_smtp_error(exc)}",
                                      smtp, password)) from None
    return client


def _tls_context(smtp: SmtpConfig) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=smtp.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"smtp.ca_file: cannot load {smtp.ca_file}: {exc}") from None


def describe_smtp_error(exc: BaseException) -> str:
    """The server's exact words when it answered, else what went wrong on the way."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "every recipient refused: " + "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    cause = exc.__cause__ if isinstance(exc, aiosmtplib.SMTPConnectError) else None
    tls_error = next((e for e in (exc, cause) if isinstance(e, ssl.SSLError)), None)
    if tls_error is not None:
        detail = getattr(tls_error, "verify_message", None)
        return f"TLS: {tls_error.reason or tls_error}" + (f" ({detail})" if detail else "")
    if isinstance(cause, OSError) and cause.errno:
        return os.strerror(cause.errno)  # "Connection refused", not the library's wrapping of it
    if isinstance(exc, (asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError)):
        return f"timed out ({exc})" if str(exc) else "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def scrub(text: str, smtp: SmtpConfig, password: str | None) -> str:
    """`text` without the password, in clear or in the base64 forms AUTH PLAIN/LOGIN send."""
    if not password:
        return text
    user = smtp.username or ""
    forms = {password, _b64(password), _b64(f"\0{user}\0{password}"), _b64(f"{user}\0{password}")}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# --- test-email -------------------------------------------------------------------------------------


def send_test_email(config: Config, to: str | None) -> str:
    """Send one message with the configured settings now; the success line, or DeliveryError with the
    server's exact refusal."""
    smtp = config.smtp
    if smtp is None:
        raise ConfigError(f"{config.path}: no [smtp] section: there is nowhere to send mail")
    recipients = [_checked_address(to)] if to else list(config.alerts.watchlist)
    if not recipients:
        raise DeliveryError("no recipient: give --to ADDR or set [alerts] watchlist")
    password = smtp.password()
    email = render.render_test(_settings_facts(smtp))
    row = new_row("test", None, recipients, email, _msgid_domain(smtp.sender))
    refused = asyncio.run(_send_once(smtp, password, build_message(row, smtp.sender), recipients))
    line = f"test email sent to {', '.join(recipients)} via {smtp.host}:{smtp.port} ({smtp.security})"
    return line + (f"; refused: {'; '.join(refused)}" if refused else "")


async def _send_once(smtp: SmtpConfig, password: str | None, message: EmailMessage, recipients: list[str]) -> list[str]:
    connection = _Connection(smtp, password)
    try:
        return await connection.send(message, recipients)
    finally:
        await connection.close()


def _settings_facts(smtp: SmtpConfig) -> list[tuple[str, str]]:
    return [("Server", f"{smtp.host}:{smtp.port}"), ("Security", smtp.security),
            ("Login", smtp.username or "(none)"), ("Sender", smtp.sender), ("Sent at", iso(utcnow()) or "")]


def _checked_address(address: str) -> str:
    _name, parsed = parseaddr(address)
    if any(c in address for c in "\r\n") or "@" not in parsed:
        raise DeliveryError(f"--to: {render.header_text(address, 100)!r} is not an email address")
    return parsed


# --- reading the outbox -------------------------------------------------------------------------------


def outbox_rows(session: Session, limit: int = _SENT_SHOWN) -> list[OutboxMessage]:
    """Every unsent row (pending and failing, oldest first), then the `limit` most recently sent."""
    unsent = session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
                             .order_by(OutboxMessage.id))
    sent = session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_not(None))
                           .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc()).limit(limit))
    return [*unsent, *sent]


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
