"""What every channel is: it renders an alert into a payload, and sends a payload.

An `Alert` here is channel-neutral and plain: the drift events it is about (one, or a poll's
many for a digest) or the notice it gives, read back from the record when it is delivered. A
channel turns it into its own payload (`render`, no I/O) and sends that (`send`), raising
`DeliveryError` when the receiver cannot be reached or refuses (`permanent` when retrying
cannot help, `gone` for 410). What one sweep of the outbox shares (the SMTP session, the
HTTP client) lives in a `Sweep`, closed when the sweep ends.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from watcher.alerts import notices
from watcher.config.model import Config
from watcher.config.routing import email_recipients
from watcher.record import documents
from watcher.record.schema import Purpose

if TYPE_CHECKING:
    from watcher.alerts import templating

# The type of the document a webhook receives, by alert purpose.
DOCUMENT_TYPES: dict[str, str] = {Purpose.FAILING: "watcher.failing", Purpose.RECOVERED: "watcher.recovered",
                  Purpose.RETIRED: "kind.retired", Purpose.DEAD: "delivery.dead", Purpose.DISABLED: "channel.disabled",
                  Purpose.TEST: "watcher.test", Purpose.DIGEST: "drift.digest", Purpose.STATE: "state.changed",
                  Purpose.HEALED: "heal.reverted", Purpose.FIGHTING: "heal.fighting"}


@dataclass(frozen=True)
class Alert:
    """One alert as channels see it: about `events` (DriftEvents), or giving `notice`."""

    id: int
    purpose: str  # event | digest | failing | recovered | retired | dead | disabled | test
    title: str
    severity: str
    target: str | None
    kind: str | None
    created_at: datetime
    events: tuple = ()
    notice: notices.Notice | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    routing: tuple[dict[str, str], ...] = ()  # {name, kind, target, severity} per object, for email routes

    @property
    def type(self) -> str:
        if self.purpose == Purpose.EVENT and self.events:
            return f"drift.{self.events[0].change}"
        return DOCUMENT_TYPES.get(self.purpose, self.purpose)

    def document(self) -> dict[str, Any]:
        """The JSON body of the contract: a drift document for an event, a notice envelope otherwise."""
        if self.purpose == Purpose.EVENT and self.events:
            return documents.drift_document(self.events[0])
        message = self.notice.headline if self.notice else self.title
        error = self.notice.error if self.notice else None
        return documents.notice_document(self.id, self.type, target=self.target, kind=self.kind,
                                         severity=self.severity, created_at=self.created_at, message=message,
                                         error=error, detail=self.detail)


@dataclass(frozen=True)
class Claimed:
    """The delivery being made: its stable id and, for rows rendered before channels existed, their email."""

    id: int
    channel: str
    message_id: str
    created_at: datetime
    attempts: int
    alert_id: int | None = None
    purpose: str | None = None
    recipients: list[str] | None = None
    subject: str | None = None
    text_body: str | None = None
    html_body: str | None = None


@dataclass
class Payload:
    """What a channel sends: its own `body`, and what `outbox` shows once it is sent."""

    body: Any
    subject: str
    recipients: list[str] = field(default_factory=list)


@dataclass
class Sent:
    """A receiver accepted the payload; `refused` lists the recipients an SMTP server turned down."""

    refused: list[str] = field(default_factory=list)


class Channel:
    """The interface: `render(alert, delivery) -> Payload` and `await send(payload, delivery) -> Sent`."""

    type: ClassVar[str]
    digests: ClassVar[bool] = True  # a poll's many events reach it as one digest (else one by one)

    def __init__(self, name: str, config: Config, sweep: Sweep):
        self.name, self.config, self.sweep = name, config, sweep

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery may take before another process may take it over."""
        return timedelta(seconds=120)

    @classmethod
    def new_delivery_id(cls, config: Config) -> str:
        """The stable id of a new delivery on this sort of channel (Standard Webhooks style)."""
        return "msg_" + secrets.token_urlsafe(18)

    def render(self, alert: Alert, delivery: Claimed) -> Payload:
        raise NotImplementedError

    async def send(self, payload: Payload, delivery: Claimed) -> Sent:
        raise NotImplementedError


class Sweep:
    """What one pass over the outbox shares: the SMTP session, the HTTP client, the channels."""

    def __init__(self, config: Config):
        self.config = config
        self.smtp: Any = None  # watcher.alerts.channels.email.Connection, opened on first use
        self.http: Any = None  # httpx2.AsyncClient, created on first use
        self.channels: dict[str, Channel] = {}
        self.templates: templating.Templates | None = None  # the email templates, loaded on first use
        self.broken: dict[str, str] = {}  # channel → why every send to it fails for the rest of this sweep

    async def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        http, self.http = self.http, None
        if smtp is not None:
            await smtp.close()
        if http is not None:
            await http.aclose()


def recipients(config: Config, channel: str, routing: Iterable[dict]) -> list[str]:
    """Who an alert goes to on an email channel, by the config of now (see `watcher.config.routing`)."""
    return email_recipients(channel, routing, watchlist=config.alerts.watchlist,
                            routes=[(r.match.model_dump(), r.to) for r in config.alerts.routes],
                            channel_to={c.name: c.to for c in config.channels if c.type == "email"})
