"""The email channel: multipart/alternative mail through the `[smtp]` relay, with aiosmtplib.

The watchlist is an email channel ("watchlist"); so is each `[[channels]]` entry of type email.
Recipients are resolved when a message is sent, from the config of that moment: a watchlist
fixed after an alert was queued still helps it. A message is built from the delivery row's
Date and Message-ID, so every retry is the same email. Secrets (the SMTP password) are read
when a connection is made and are scrubbed from every error text (invariant 7).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib

from watcher import display
from watcher.alerts import render, templating
from watcher.alerts.channels.base import Alert, Channel, Claimed, Payload, Sent, recipients
from watcher.config.alerts import SmtpConfig
from watcher.config.model import Config
from watcher.config.routing import WATCHLIST_CHANNEL
from watcher.errors import ConfigError, DeliveryError
from watcher.record.models import Delivery
from watcher.record.schema import DeliveryState, Purpose
from watcher.times import iso, utcnow

log = logging.getLogger("watcher.channels.email")


class EmailChannel(Channel):
    type = "email"

    @property
    def lease(self) -> timedelta:
        # Long enough for connect, TLS, AUTH and DATA each to use their whole timeout.
        return timedelta(seconds=_smtp(self.config).timeout * 6 + 60)

    @classmethod
    def new_delivery_id(cls, config: Config) -> str:
        return make_msgid(domain=msgid_domain(_smtp(config).sender))

    def render(self, alert: Alert, delivery: Claimed) -> Payload:
        if delivery.text_body is not None:  # rendered before channels existed: sent as it was queued
            email = templating.RenderedEmail(delivery.subject or "", delivery.text_body, delivery.html_body or "")
            to = list(delivery.recipients or [])
        else:
            email = render_email(alert, self._templates())
            to = recipients(self.config, self.name, alert.routing)
        if not to:
            raise DeliveryError(f"nobody to send it to: {self.name} has no recipients any more", permanent=True)
        message = build_message(email, to, _smtp(self.config).sender, delivery.created_at, delivery.message_id)
        return Payload(message, display.header_text(email.subject), to)

    async def send(self, payload: Payload, delivery: Claimed) -> Sent:
        if self.sweep.smtp is None:
            smtp = _smtp(self.config)
            self.sweep.smtp = Connection(smtp, smtp.password())
        return Sent(await self.sweep.smtp.send(payload.body, payload.recipients))

    def _templates(self) -> templating.Templates:
        templates = self.sweep.templates
        if templates is None:
            templates = self.sweep.templates = templating.Templates(self.config.alerts.templates_dir)
        return templates


def render_email(alert: Alert, templates: templating.Templates) -> templating.RenderedEmail:
    """The email for an alert: one event, a digest, or a notice; should rendering ever fail, a plain
    one that says where to look, so the alert still arrives."""
    try:
        if alert.purpose == Purpose.EVENT and alert.events:
            return render.render_event(alert.events[0], templates)
        if alert.purpose == Purpose.DIGEST and alert.events:
            return render.render_digest(list(alert.events), templates)
        if alert.notice is None:  # a delivery queued by hand carries its email: nothing here to render
            raise ValueError("the alert has neither events nor a notice")
        return render.render_notice(alert.notice, templates)
    except Exception:
        log.exception("rendering alert %d failed; sending a plain one instead", alert.id)
        text = "This alert could not be rendered; run `assistant-watcher events --open` to see what changed.\n"
        return templating.RenderedEmail(display.header_text(_plain_subject(alert)), text, f"<p>{text.strip()}</p>")


def _smtp(config: Config) -> SmtpConfig:
    """The [smtp] section, which the config requires of every email channel it has."""
    if config.smtp is None:
        raise ConfigError("an email channel needs an [smtp] section to send through")
    return config.smtp


def _plain_subject(alert: Alert) -> str:
    if alert.purpose == Purpose.EVENT and alert.events:
        event = alert.events[0]
        return f"[{event.target}] {render.kind_label(event.kind)} {event.object_id} {event.change}"
    return alert.title


def msgid_domain(sender: str) -> str:
    """The sender's domain: Message-IDs stay in a domain the operator controls."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return domain or "assistant-watcher.invalid"


def new_row(purpose: str, to: list[str], email: templating.RenderedEmail, msgid_domain: str,
            now: datetime | None = None) -> Delivery:
    """An unsaved, already rendered email delivery to the watchlist channel (as rows from before
    channels are); its Message-ID is fixed now, so every retry carries the same one."""
    now = now or utcnow()
    return Delivery(
        purpose=purpose, channel=WATCHLIST_CHANNEL, state=DeliveryState.PENDING, recipients=list(to),
        subject=display.header_text(email.subject), text_body=email.text, html_body=email.html,
        message_id=make_msgid(domain=msgid_domain), created_at=now, attempts=0, next_attempt_at=now,
    )


# --- the message ------------------------------------------------------------------------------


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


def build_message(email: templating.RenderedEmail, to: list[str], sender: str, date: datetime,
                  message_id: str) -> EmailMessage:
    """The MIME message: multipart/alternative, text then HTML. Date and Message-ID come from the
    delivery, so a retry is the same email."""
    message = EmailMessage(policy=MAIL_POLICY)  # no CR/LF in header values; RFC 2047 for non-ASCII
    message["Subject"] = display.header_text(email.subject)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.text, cte=_transfer_encoding(email.text))
    message.add_alternative(email.html, subtype="html", cte=_transfer_encoding(email.html))
    return message


_QP_ESCAPED = bytes([61, *range(127, 256)])  # "=" and every non-ASCII byte


def _transfer_encoding(body: str) -> str:
    """Quoted-printable while it stays readable and small, else base64 (at most 4/3 of the UTF-8 size)."""
    data = body.encode("utf-8")
    escaped = len(data) - len(data.translate(None, _QP_ESCAPED))
    # Quoted-printable writes an escaped byte as three characters.
    return "quoted-printable" if 3 * (len(data) + 2 * escaped) <= 4 * len(data) else "base64"


# --- SMTP ---------------------------------------------------------------------------------------


class Connection:
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
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self._drop()  # the session state is unknown after an error: the next message reconnects
            raise DeliveryError(self._describe(exc), permanent=_refused_for_good(exc)) from None
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
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()


def _refused_for_good(exc: BaseException) -> bool:
    """Every recipient refused with a permanent (5xx) reply: sending again cannot help."""
    return (isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and bool(exc.recipients)
            and all(500 <= r.code < 600 for r in exc.recipients))


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
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        client.close()
        raise DeliveryError(scrub(f"cannot connect to {where} ({smtp.security}): {describe_smtp_error(exc)}",
                                  smtp, password)) from None
    if smtp.username:
        try:
            await client.login(smtp.username, password or "")
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
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


# --- test-email ---------------------------------------------------------------------------------


def send_test_email(config: Config, to: str | None) -> str:
    """Send one message with the configured settings now; the success line, or DeliveryError with the
    server's exact refusal."""
    smtp = config.smtp
    if smtp is None:
        raise ConfigError(f"{config.path}: no [smtp] section: there is nowhere to send mail")
    to_list = [_checked_address(to)] if to else list(config.alerts.watchlist)
    if not to_list:
        raise DeliveryError("no recipient: give --to ADDR or set [alerts] watchlist")
    password = smtp.password()
    email = render.render_test(_settings_facts(smtp))
    message = build_message(email, to_list, smtp.sender, utcnow(), make_msgid(domain=msgid_domain(smtp.sender)))
    refused = asyncio.run(_send_once(smtp, password, message, to_list))
    line = f"test email sent to {', '.join(to_list)} via {smtp.host}:{smtp.port} ({smtp.security})"
    return line + (f"; refused: {'; '.join(refused)}" if refused else "")


async def _send_once(smtp: SmtpConfig, password: str | None, message: EmailMessage, to: list[str]) -> list[str]:
    connection = Connection(smtp, password)
    try:
        return await connection.send(message, to)
    finally:
        await connection.close()


def _settings_facts(smtp: SmtpConfig) -> list[tuple[str, str]]:
    return [("Server", f"{smtp.host}:{smtp.port}"), ("Security", smtp.security),
            ("Login", smtp.username or "(none)"), ("Sender", smtp.sender), ("Sent at", iso(utcnow()) or "")]


def _checked_address(address: str) -> str:
    _name, parsed = parseaddr(address)
    if any(c in address for c in "\r\n") or "@" not in parsed:
        raise DeliveryError(f"--to: {display.header_text(address, 100)!r} is not an email address")
    return parsed


CHANNEL = EmailChannel  # what watcher.alerts.channels.dispatch finds by this module's name
