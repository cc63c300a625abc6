"""Where alerts go: `[smtp]`, `[alerts]` (the watchlist and its routes) and `[[channels]]`
(email, webhook, Slack, Teams), with their secrets read only when asked for."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from pydantic import Field, model_validator

from watcher.config.fields import Address, KindName, PositiveDuration, Section
from watcher.config.routing import route_matches
from watcher.config.values import NAME_PATTERN, read_secret
from watcher.errors import ConfigError


class SmtpConfig(Section):
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    sender: Address = "Assistant Watcher <assistant-watcher@localhost.localdomain>"
    timeout: PositiveDuration = Field(default=30.0)
    # Only for tests and private relays with self-signed certificates.
    ca_file: str | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> SmtpConfig:
        if self.password_env and self.password_file:
            raise ValueError("set password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs a username")
        return self

    def password(self) -> str | None:
        """The SMTP password, read now, or None when no AUTH is configured."""
        if not (self.password_env or self.password_file):
            return None
        return read_secret("smtp", self.password_env, self.password_file)


class RouteMatch(Section):
    name: str | None = None
    kind: KindName | None = None
    target: str | None = None
    severity: Literal["high", "low"] | None = None

    def matches(self, *, name: str, kind: str, target: str, severity: str) -> bool:
        """True when every set field matches (name and target are globs)."""
        return route_matches(self.model_dump(), name=name, kind=kind, target=target, severity=severity)


class Route(Section):
    match: RouteMatch
    to: list[Address] = Field(default_factory=list)  # extra recipients of the watchlist email
    channels: list[str] = Field(default_factory=list)  # channels (by name) that get matching alerts

    @model_validator(mode="after")
    def _somewhere_to_go(self) -> Route:
        if not self.to and not self.channels:
            raise ValueError("a route needs `to` (email addresses) or `channels` (channel names)")
        return self


CHANNEL_TYPES = ("email", "webhook", "slack", "teams")
_CHANNEL_KEYS = {
    "email": {"to"},
    "webhook": {"url", "url_env", "url_file", "secret_env", "secret_file"},
    "slack": {"url_env", "url_file"},
    "teams": {"url_env", "url_file"},
}
_WHSEC = "whsec_"


class ChannelConfig(Section):
    """One `[[channels]]` entry: where alerts go besides the watchlist."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
    type: Literal["email", "webhook", "slack", "teams"]
    to: list[Address] = Field(default_factory=list)
    url: str | None = None
    url_env: str | None = None
    url_file: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    timeout: PositiveDuration = Field(default=10.0)

    @model_validator(mode="after")
    def _keys_fit_the_type(self) -> ChannelConfig:
        given = {key for key in ("to", "url", "url_env", "url_file", "secret_env", "secret_file") if getattr(self, key)}
        for key in sorted(given - _CHANNEL_KEYS[self.type]):
            if key == "url" and self.type in ("slack", "teams"):
                raise ValueError(f"a {self.type} webhook URL is a secret: give url_env or url_file, not url")
            raise ValueError(f"`{key}` is not a key of a {self.type} channel")
        if self.type == "email" and "timeout" in self.model_fields_set:
            raise ValueError("`timeout` is not a key of an email channel (it sends through [smtp], with its timeout)")
        if self.type == "email" and not self.to:
            raise ValueError("an email channel needs `to` (a list of addresses)")
        if self.type != "email" and len(given & {"url", "url_env", "url_file"}) != 1:
            raise ValueError(f"a {self.type} channel needs exactly one of "
                             + ("url, url_env or url_file" if self.type == "webhook" else "url_env or url_file"))
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        if self.type == "webhook" and len(given & {"secret_env", "secret_file"}) != 1:
            raise ValueError("a webhook channel needs exactly one of secret_env or secret_file (a whsec_ secret)")
        return self

    @property
    def owner(self) -> str:
        return f"channels.{self.name}"

    def destination(self) -> str:
        """The URL to POST to, read now (from the config, or its environment variable or file)."""
        if self.url:
            return self.url
        value = read_secret(self.owner, self.url_env, self.url_file)
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ConfigError(f"{self.owner}: the URL in {self._source('url')} is not an http(s) URL")
        return value

    def signing_key(self) -> bytes:
        """The webhook's HMAC key: the base64 after `whsec_` in its secret, read now."""
        value = read_secret(self.owner, self.secret_env, self.secret_file)
        try:
            key = base64.b64decode(value.removeprefix(_WHSEC), validate=True)
        except ValueError:
            key = b""
        if not value.startswith(_WHSEC) or len(key) < 24:
            raise ConfigError(f"{self.owner}: the secret in {self._source('secret')} is not a whsec_ secret "
                              f"(whsec_ and at least 24 bytes in base64)")
        return key

    def check_secrets(self) -> None:
        """Read every secret of this channel once (a missing one is a ConfigError naming it)."""
        if self.type != "email":
            self.destination()
        if self.type == "webhook":
            self.signing_key()

    def _source(self, prefix: str) -> str:
        env, file = getattr(self, f"{prefix}_env"), getattr(self, f"{prefix}_file")
        return f"${env}" if env else f"file {file}"


class AlertsConfig(Section):
    watchlist: list[Address] = Field(default_factory=list)
    digest_threshold: int = Field(default=10, ge=1)
    failure_after: int = Field(default=3, ge=1)
    templates_dir: str | None = None
    routes: list[Route] = Field(default_factory=list)
    # Channels every alert goes to (default: every [[channels]] entry); the watchlist always gets its email.
    channels: list[str] | None = None
    # A delivery still failing this long after it was queued is dead, and a notice goes to the other channels.
    give_up_after: PositiveDuration = Field(default=3 * 86400.0)
