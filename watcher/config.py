"""The configuration file: TOML validated by a schema, secrets only by reference.

`load_config(path)` either returns a `Config` or raises `ConfigError` with one line
that names the key and what is wrong. Secrets are resolved on demand from an
environment variable or a file (a bare file name is looked up in systemd's
`$CREDENTIALS_DIRECTORY`) and are never kept on the config object.
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import json
import os
import re
import tomllib
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from watcher import kinds as registry
from watcher.config_file import (  # noqa: F401  (config_path, database_parts, parse_duration: their old home)
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    DEFAULT_DATABASE_URL,
    WATCHLIST_CHANNEL,
    anchored,
    anchored_database_url,
    check_database_url,
    config_path,
    database_parts,
    parse_duration,
)
from watcher.errors import ConfigError
from watcher.recipients import route_matches

_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"  # target and channel names: they appear in commands, URLs and metrics
INTERVAL_FLOOR = 1.0  # seconds: below it a typo ("1ms" for "1m") would hammer the API
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    return seconds


def _interval(value: object) -> float:
    seconds = _positive_duration(value)
    if seconds < INTERVAL_FLOOR:
        text = str(value).strip()
        hint = f" (did you mean {text[:-1]!r}?)" if text.endswith("ms") else ""
        raise ValueError(f"interval {value!r} is below the floor of 1s{hint}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes in a size such as "64MB", "512KiB" or a plain number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError(f"expected a size such as \"64MB\", got {value!r}")
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"bad size {value!r}: use a number and a unit, such as \"64MB\" or \"512KiB\"")
    size = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if size <= 0:
        raise ValueError(f"size {value!r} must be greater than zero")
    return size


def _check_kind(name: str) -> str:
    known = registry.names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name!r} is not a kind{hint}; known kinds: {', '.join(known)}")
    return name


def _check_address(value: str) -> str:
    if not isinstance(value, str) or any(c in value for c in "\r\n"):
        raise ValueError(f"bad email address {value!r}")
    _, address = parseaddr(value)
    if not _ADDRESS.match(address or ""):
        raise ValueError(f"bad email address {value!r}")
    return value


def _check_ignore_rule(rule: str) -> str:
    from watcher.snapshot import parse_path

    try:
        parse_path(rule)
    except ValueError as exc:
        raise ValueError(f"ignore rule {rule!r}: {exc}") from None
    return rule


Duration = Annotated[float, BeforeValidator(parse_duration)]
Interval = Annotated[float, BeforeValidator(_interval)]
Size = Annotated[int, BeforeValidator(parse_size)]
KindName = Annotated[str, AfterValidator(_check_kind)]
IgnoreRule = Annotated[str, AfterValidator(_check_ignore_rule)]
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]
Address = Annotated[str, AfterValidator(_check_address)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret(owner: str, env: str | None, file: str | None) -> str:
    """The secret named by an environment variable or a file; never echoes its value."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{owner}: environment variable {env} is not set")
        return value.strip()
    if file:
        path = Path(file)
        if not path.is_absolute() and os.environ.get("CREDENTIALS_DIRECTORY"):
            path = Path(os.environ["CREDENTIALS_DIRECTORY"]) / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{owner}: cannot read secret file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:  # its content is the secret: say where, never what
            raise ConfigError(f"{owner}: secret file {path} is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"{owner}: secret file {path} is empty")
        return value
    raise ConfigError(f"{owner}: no secret configured")


class DatabaseConfig(_Section):
    url: Annotated[str, AfterValidator(check_database_url)] = DEFAULT_DATABASE_URL
    # PostgreSQL connections one process may open; default: two per concurrent poll, plus four.
    max_connections: Annotated[int, Field(ge=4, le=1000)] | None = None


class ScheduleConfig(_Section):
    interval: Interval = Field(default=300.0)
    jitter: Duration = Field(default=30.0)
    # A whole poll's deadline: past it the poll fails, is recorded and counts toward failure_after.
    poll_timeout: PositiveDuration = Field(default=600.0)
    # Polls one daemon runs at once; due polls beyond it wait for a free slot (or another daemon).
    max_concurrent_polls: Annotated[int, Field(ge=1, le=64)] = 8


OPENAI_BASE_URL = "https://api.openai.com/v1"


class TargetConfig(_Section):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
    # Default: every kind its keys can read (see `watcher.kinds`), set after validation.
    kinds: list[KindName] = Field(default_factory=list)
    provider: Literal["openai", "azure"] = "openai"
    base_url: str = OPENAI_BASE_URL
    azure_endpoint: str | None = None
    api_version: str | None = None
    api_key_env: str | None = None
    api_key_file: str | None = None
    admin_key_env: str | None = None
    admin_key_file: str | None = None
    organization: str | None = None
    project: str | None = None
    ignore: list[IgnoreRule] = Field(default_factory=list)
    redact: list[IgnoreRule] = Field(default_factory=list)
    interval: Interval | None = None
    timeout: PositiveDuration = Field(default=60.0)
    max_answer_size: Size = Field(default=64 * 1000**2)
    # false: not polled, its record kept and readable.
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> TargetConfig:
        if self.api_key_env and self.api_key_file:
            raise ValueError("set api_key_env or api_key_file, not both")
        if self.admin_key_env and self.admin_key_file:
            raise ValueError("set admin_key_env or admin_key_file, not both")
        if self.provider == "azure":
            self._check_azure()
        elif self.azure_endpoint or self.api_version:
            raise ValueError("azure_endpoint and api_version need provider = \"azure\"")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {self.base_url!r} must start with http:// or https://")
        if not self.kinds:
            object.__setattr__(self, "kinds", self._default_kinds())
        self._check_keys_for_kinds()
        return self

    def _check_azure(self) -> None:
        if "base_url" in self.model_fields_set:
            raise ValueError("an Azure target takes azure_endpoint, not base_url")
        if not self.azure_endpoint:
            raise ValueError("provider = \"azure\" needs azure_endpoint (https://NAME.openai.azure.com)")
        if not self.azure_endpoint.startswith(("http://", "https://")):
            raise ValueError(f"azure_endpoint {self.azure_endpoint!r} must start with https://")
        if not self.api_version:
            raise ValueError("provider = \"azure\" needs api_version (such as \"2025-04-01-preview\")")
        if self.admin_key_env or self.admin_key_file:
            raise ValueError("an Azure target has no organization plane: drop admin_key_env/admin_key_file")
        # The record keeps where a target's objects live.
        object.__setattr__(self, "base_url", self.azure_endpoint.rstrip("/") + "/openai")

    @property
    def has_project_key(self) -> bool:
        """A project key is configured, or implied (OPENAI_API_KEY) when no admin key is either."""
        return bool(self.api_key_env or self.api_key_file or not self.has_admin_key)

    @property
    def has_admin_key(self) -> bool:
        return bool(self.admin_key_env or self.admin_key_file)

    def _default_kinds(self) -> list[str]:
        return registry.for_target(self.provider, project_key=self.has_project_key, admin_key=self.has_admin_key)

    def _check_keys_for_kinds(self) -> None:
        for name in self.kinds:
            kind = registry.get(name)
            if self.provider == "azure" and not kind.azure:
                raise ValueError(f"kinds: Azure OpenAI does not serve {name} (it serves "
                                 f"{', '.join(k.name for k in registry.all_kinds() if k.azure)})")
            if kind.key == registry.ADMIN and not self.has_admin_key:
                raise ValueError(f"kinds: {name} needs an admin key (admin_key_env or admin_key_file)")
            if kind.key == registry.PROJECT and not self.has_project_key:
                raise ValueError(f"kinds: {name} needs a project key (api_key_env or api_key_file)")

    def api_key(self) -> str:
        """The API key, read now from its environment variable or file."""
        env = self.api_key_env or (None if self.api_key_file else "OPENAI_API_KEY")
        return _read_secret(f"targets.{self.name}", env, self.api_key_file)

    def admin_key(self) -> str:
        """The admin key, read now from its environment variable or file."""
        return _read_secret(f"targets.{self.name}.admin_key", self.admin_key_env, self.admin_key_file)

    def read_keys(self) -> None:
        """Read every key this target's kinds need: a missing one is a ConfigError now, not mid-poll."""
        if any(registry.get(k).key == registry.PROJECT for k in self.kinds):
            self.api_key()
        if any(registry.get(k).key == registry.ADMIN for k in self.kinds):
            self.admin_key()

    def secrets(self) -> list[str]:
        """The keys' values, for scrubbing from error messages (those that can be read)."""
        values = []
        for read, wanted in ((self.api_key, self.has_project_key), (self.admin_key, self.has_admin_key)):
            if wanted:
                try:
                    values.append(read())
                except ConfigError:
                    pass
        return values


class SmtpConfig(_Section):
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
        return _read_secret("smtp", self.password_env, self.password_file)


class RouteMatch(_Section):
    name: str | None = None
    kind: KindName | None = None
    target: str | None = None
    severity: Literal["high", "low"] | None = None

    def matches(self, *, name: str, kind: str, target: str, severity: str) -> bool:
        """True when every set field matches (name and target are globs)."""
        return route_matches(self.model_dump(), name=name, kind=kind, target=target, severity=severity)


class Route(_Section):
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


class ChannelConfig(_Section):
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
        value = _read_secret(self.owner, self.url_env, self.url_file)
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ConfigError(f"{self.owner}: the URL in {self._source('url')} is not an http(s) URL")
        return value

    def signing_key(self) -> bytes:
        """The webhook's HMAC key: the base64 after `whsec_` in its secret, read now."""
        value = _read_secret(self.owner, self.secret_env, self.secret_file)
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


class AlertsConfig(_Section):
    watchlist: list[Address] = Field(default_factory=list)
    digest_threshold: int = Field(default=10, ge=1)
    failure_after: int = Field(default=3, ge=1)
    templates_dir: str | None = None
    routes: list[Route] = Field(default_factory=list)
    # Channels every alert goes to (default: every [[channels]] entry); the watchlist always gets its email.
    channels: list[str] | None = None
    # A delivery still failing this long after it was queued is dead, and a notice goes to the other channels.
    give_up_after: PositiveDuration = Field(default=3 * 86400.0)


HTTP_TOKEN_MIN = 16  # characters: the token may guard a network-reachable server


def _listen_address(value: object) -> str:
    """`host:port` (an IPv6 host in brackets); port 0 asks for any free port."""
    host, port = split_listen(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} in {value!r} is not between 0 and 65535")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_listen(value: object) -> tuple[str, int]:
    """(host, port) of a `host:port` listen address; ValueError says what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"expected \"host:port\" such as \"127.0.0.1:8080\", got {value!r}")
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})", value.strip())
    if not match:
        raise ValueError(f"bad listen address {value!r}: "
                         "use \"host:port\", such as \"127.0.0.1:8080\" or \"[::1]:8080\"")
    host = match.group(1) or match.group(3)
    return host, int(match.group(2) or match.group(4))


def is_loopback(host: str) -> bool:
    """True for `localhost` and addresses in 127.0.0.0/8 or ::1; a name that could resolve elsewhere is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpConfig(_Section):
    """`[http]`: the web UI, API and metrics (served by `run` when present, or by `serve`)."""

    listen: Annotated[str, AfterValidator(_listen_address)] = "127.0.0.1:8080"
    token_env: str | None = None
    token_file: str | None = None

    @model_validator(mode="after")
    def _token_guards_the_network(self) -> HttpConfig:
        if self.token_env and self.token_file:
            raise ValueError("set token_env or token_file, not both")
        if not self.loopback and not (self.token_env or self.token_file):
            raise ValueError(f"listen {self.listen!r} is reachable from other machines: set token_file or "
                             f"token_env (a loopback address such as 127.0.0.1 needs none)")
        return self

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def token(self) -> str | None:
        """The token that guards acknowledgements (and everything, off loopback), read now; None if unset."""
        if not (self.token_env or self.token_file):
            return None
        value = _read_secret("http", self.token_env, self.token_file)
        if len(value) < HTTP_TOKEN_MIN:  # its length is not its value: saying it leaks nothing useful
            raise ConfigError(f"http: the token must be at least {HTTP_TOKEN_MIN} characters")
        return value


class Config(_Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    targets: list[TargetConfig] = Field(default_factory=list)
    smtp: SmtpConfig | None = None
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    channels: list[ChannelConfig] = Field(default_factory=list)
    http: HttpConfig | None = None
    path: str | None = Field(default=None, exclude=True)

    @property
    def enabled_targets(self) -> list[TargetConfig]:
        """The targets to poll (`enabled = false` ones are only read)."""
        return [t for t in self.targets if t.enabled]

    @property
    def max_connections(self) -> int:
        """PostgreSQL connections this process may hold: `database.max_connections` or its default."""
        return self.database.max_connections or 2 * self.schedule.max_concurrent_polls + 4

    @model_validator(mode="after")
    def _connections_fit_the_polls(self) -> Config:
        # Each poll holds two connections (its lock and its transaction); deliveries and the web need theirs.
        needed = 2 * self.schedule.max_concurrent_polls + 2
        if self.database.max_connections is not None and self.database.max_connections < needed:
            raise ValueError(f"database.max_connections: {self.database.max_connections} is too few for "
                             f"schedule.max_concurrent_polls = {self.schedule.max_concurrent_polls} (each poll "
                             f"holds two): at least {needed}")
        return self

    @model_validator(mode="after")
    def _unique_target_names(self) -> Config:
        names = [t.name for t in self.targets]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"target name {name!r} is used twice")
        return self

    @model_validator(mode="after")
    def _channels_named_exist(self) -> Config:
        names = [c.name for c in self.channels]
        for name in names:
            if name == WATCHLIST_CHANNEL:
                raise ValueError(f"channel name {name!r} is reserved for the [alerts] watchlist email")
            if names.count(name) > 1:
                raise ValueError(f"channel name {name!r} is used twice")
        if self.smtp is None and any(c.type == "email" for c in self.channels):
            raise ValueError("an email channel needs an [smtp] section to send through")
        if self.smtp is None and (self.alerts.watchlist or any(r.to for r in self.alerts.routes)):
            raise ValueError("[alerts] watchlist and routes' `to` are email: add an [smtp] section to send "
                             "through (without one, alerts would be dropped silently)")
        wanted = [("alerts.channels", n) for n in self.alerts.channels or []]
        wanted += [(f"alerts.routes[{i}].channels", n) for i, r in enumerate(self.alerts.routes) for n in r.channels]
        for where, name in wanted:
            if name not in names:
                raise ValueError(f"{where}: no channel named {name!r} (configured: {', '.join(names) or 'none'})")
        return self

    def channel(self, name: str) -> ChannelConfig | None:
        """The `[[channels]]` entry called `name`, or None."""
        return next((c for c in self.channels if c.name == name), None)

    def target(self, name: str) -> TargetConfig:
        """The target called `name`, or ConfigError."""
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets) or "none"
        raise ConfigError(f"no target named {name!r} (configured: {known})")


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the TOML file at `path`; ConfigError names the key at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (use --config PATH or ${CONFIG_ENV})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {getattr(exc, 'strerror', None) or exc}") from None
    return _relative_to(parse_config(text, source=str(path)), path.parent)


def _relative_to(config: Config, folder: Path) -> Config:
    """Relative paths mean a fixed place, never the current directory.

    Otherwise `events` run from another directory would silently open a new, empty database.
    An SQLite file goes in systemd's $STATE_DIRECTORY when there is one (the config folder is
    read-only under the unit), else beside the config file; `templates_dir` beside the config file.
    """
    updates: dict[str, Any] = {}
    url = anchored_database_url(config.database.url, folder)
    if url != config.database.url:
        updates["database"] = DatabaseConfig(url=url)
    if config.alerts.templates_dir:
        updates["alerts"] = config.alerts.model_copy(
            update={"templates_dir": anchored(config.alerts.templates_dir, folder)})
    if not os.environ.get("CREDENTIALS_DIRECTORY"):  # else a bare name is a systemd credential, read there
        updates["targets"] = [_secret_files_beside(t, folder) for t in config.targets]
        updates["channels"] = [_secret_files_beside(c, folder) for c in config.channels]
        for section in ("smtp", "http"):
            if getattr(config, section) is not None:
                updates[section] = _secret_files_beside(getattr(config, section), folder)
    return config.model_copy(update=updates)


def _secret_files_beside(section: BaseModel, folder: Path) -> BaseModel:
    """`section` with each relative `*_file` (a secret's file) taken from the config file's folder."""
    files = {name: anchored(value, folder) for name, value in section
             if name.endswith("_file") and isinstance(value, str) and value}
    return section.model_copy(update=files) if files else section


def parse_config(text: str, *, source: str = "config") -> Config:
    """Validate TOML text; ConfigError names the key at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    data, inherited = _with_target_defaults(data, source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc, data, inherited)}") from None
    return config.model_copy(update={"path": source})


def _with_target_defaults(data: dict, source: str) -> tuple[dict, dict[int, set[str]]]:
    """`data` with `[target_defaults]` merged under every `[[targets]]` (a target's own keys win),
    and which keys each target inherited (an error in one names `target_defaults.KEY`)."""
    defaults = data.pop("target_defaults", None)
    if defaults is None:
        return data, {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{source}: target_defaults: expected a table (got {_toml_value(defaults)})")
    for key in defaults:
        if key == "name":
            raise ConfigError(f"{source}: target_defaults.name: every target names itself")
        if key not in TargetConfig.model_fields:
            raise ConfigError(f"{source}: target_defaults.{key}: unknown key{_did_you_mean(('targets', 0, key))}")
    targets = data.get("targets")
    if not isinstance(targets, list):
        return data, {}
    inherited = {i: set(defaults) - set(t) for i, t in enumerate(targets) if isinstance(t, dict)}
    merged = [{**defaults, **t} if isinstance(t, dict) else t for t in targets]
    return {**data, "targets": merged}, inherited


# pydantic's words for a wrong type, in the words of a TOML file.
_EXPECTED = {
    "list_type": "expected a list, such as [\"a\", \"b\"]",
    "string_type": "expected a string in quotes",
    "int_type": "expected a whole number", "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "float_type": "expected a number", "float_parsing": "expected a number",
    "dict_type": "expected a table", "model_type": "expected a table", "model_attributes_type": "expected a table",
}


def _first_error(exc: ValidationError, data: dict, inherited: dict[int, set[str]] | None = None) -> str:
    error = exc.errors()[0]
    key = _inherited_key(error["loc"], inherited or {}) or _key_name(error["loc"], data)
    message = error["msg"].removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key{_did_you_mean(error['loc'])}"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "literal_error":
        return f"{key}: {error['input']!r} is not one of {error['ctx']['expected']}"
    if kind in _EXPECTED:
        return f"{key}: {_EXPECTED[kind]} (got {_toml_value(error['input'])})"
    if kind == "too_short" and isinstance(error.get("input"), list):
        return f"{key}: must not be empty"
    if kind == "string_pattern_mismatch" and error["ctx"].get("pattern") == NAME_PATTERN:
        return f"{key}: use only letters, digits, '_', '.' and '-' (got {error['input']!r})"
    if kind.startswith("string_") and "ctx" in error:
        return f"{key}: {message} (got {error['input']!r})"
    return f"{key}: {message}" if key else message


def _inherited_key(loc: tuple, inherited: dict[int, set[str]]) -> str | None:
    """`target_defaults.interval` when the value at fault came from there, not from the target."""
    if len(loc) >= 3 and loc[0] == "targets" and isinstance(loc[1], int) and loc[2] in inherited.get(loc[1], ()):
        return "target_defaults." + str(loc[2]) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                                          for p in loc[3:] if not str(p).startswith("function-"))
    return None


def _did_you_mean(loc: tuple) -> str:
    """" (did you mean 'interval'?)" for a misspelt key, from the keys its table takes."""
    model: type[BaseModel] | None = Config
    for item in loc[:-1]:
        if model is None or isinstance(item, int):
            continue
        field = model.model_fields.get(str(item))
        model = _section_model(field.annotation) if field else None
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), [n for n, f in model.model_fields.items() if not f.exclude], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _section_model(annotation) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        inner = getattr(candidate, "__args__", (candidate,))[0] if getattr(candidate, "__origin__", None) is list \
            else candidate
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return None


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _key_name(loc: tuple, data: dict) -> str:
    """`targets[0].interval`, with the target's name when it has one."""
    parts: list[str] = []
    node: object = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if parts in (["targets"], ["channels"]) and isinstance(node, dict) and node.get("name"):
                    label = f"[{item}] ({node['name']})"
            parts.append(label)
            continue
        if item in ("function-after", "function-before") or str(item).startswith(("function-", "literal[")):
            continue
        node = node.get(item) if isinstance(node, dict) else None
        parts.append(f".{item}" if parts else str(item))
    return "".join(parts)
