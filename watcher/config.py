"""The configuration file: TOML validated by a schema, secrets only by reference.

`load_config(path)` either returns a `Config` or raises `ConfigError` with one line
that names the key and what is wrong. Secrets are resolved on demand from an
environment variable or a file (a bare file name is looked up in systemd's
`$CREDENTIALS_DIRECTORY`) and are never kept on the config object.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import tomllib
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sqlalchemy.engine import make_url

from watcher import KINDS
from watcher.errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/assistant-watcher/config.toml"
CONFIG_ENV = "ASSISTANT_WATCHER_CONFIG"

_DURATION_PART = re.compile(r"(\d+)\s*(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def parse_duration(value: object) -> float:
    """Seconds in a duration such as "30s", "5m", "1h" or "1h30m"."""
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as \"30s\", \"5m\" or \"1h\", got {value!r}")
    text = value.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not text or "".join(f"{n}{u}" for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"bad duration {value!r}: use a number and a unit, such as \"30s\", \"5m\" or \"1h\"")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    return seconds


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


def _database_url(value: str) -> str:
    try:
        url = make_url(value)
    except Exception:
        raise ValueError("not a database URL (sqlite:///watcher.db or postgresql+psycopg://user@host/db)") from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"{backend!r} databases are not supported: use sqlite:///PATH or postgresql+psycopg://…")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError("an SQLite URL needs a file (sqlite:///watcher.db): an in-memory database keeps nothing")
    return value


class DatabaseConfig(_Section):
    url: Annotated[str, AfterValidator(_database_url)] = "sqlite:///watcher.db"


class ScheduleConfig(_Section):
    interval: PositiveDuration = Field(default=300.0)
    jitter: Duration = Field(default=30.0)


class TargetConfig(_Section):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    kinds: list[Literal["assistants", "agents"]] = Field(default_factory=lambda: list(KINDS), min_length=1)
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str | None = None
    api_key_file: str | None = None
    organization: str | None = None
    project: str | None = None
    ignore: list[IgnoreRule] = Field(default_factory=list)
    interval: PositiveDuration | None = None
    timeout: PositiveDuration = Field(default=60.0)

    @model_validator(mode="after")
    def _one_key_source(self) -> TargetConfig:
        if self.api_key_env and self.api_key_file:
            raise ValueError("set api_key_env or api_key_file, not both")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {self.base_url!r} must start with http:// or https://")
        return self

    def api_key(self) -> str:
        """The API key, read now from its environment variable or file."""
        env = self.api_key_env or (None if self.api_key_file else "OPENAI_API_KEY")
        return _read_secret(f"targets.{self.name}", env, self.api_key_file)


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
    kind: Literal["assistants", "agents"] | None = None
    target: str | None = None
    severity: Literal["high", "low"] | None = None

    def matches(self, *, name: str, kind: str, target: str, severity: str) -> bool:
        """True when every set field matches (name and target are globs)."""
        if self.name is not None and not fnmatch.fnmatchcase(name or "", self.name):
            return False
        if self.target is not None and not fnmatch.fnmatchcase(target, self.target):
            return False
        if self.kind is not None and self.kind != kind:
            return False
        return self.severity is None or self.severity == severity


class Route(_Section):
    match: RouteMatch
    to: list[Address] = Field(min_length=1)


class AlertsConfig(_Section):
    watchlist: list[Address] = Field(default_factory=list)
    digest_threshold: int = Field(default=10, ge=1)
    failure_after: int = Field(default=3, ge=1)
    templates_dir: str | None = None
    routes: list[Route] = Field(default_factory=list)


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
        raise ValueError(f"bad listen address {value!r}: use \"host:port\", such as \"127.0.0.1:8080\" or \"[::1]:8080\"")
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
    http: HttpConfig | None = None
    path: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _unique_target_names(self) -> Config:
        names = [t.name for t in self.targets]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"target name {name!r} is used twice")
        return self

    def target(self, name: str) -> TargetConfig:
        """The target called `name`, or ConfigError."""
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets) or "none"
        raise ConfigError(f"no target named {name!r} (configured: {known})")


def config_path(explicit: str | None) -> Path:
    """Where the config is: --config, else $ASSISTANT_WATCHER_CONFIG, else /etc."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


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
    updates = {}
    url = make_url(config.database.url)
    if url.get_backend_name() == "sqlite":
        home = Path(os.environ.get("STATE_DIRECTORY", "").split(":")[0] or folder)
        database = _anchored(url.database, home)
        updates["database"] = DatabaseConfig(url=url.set(database=database).render_as_string(hide_password=False))
    if config.alerts.templates_dir:
        updates["alerts"] = config.alerts.model_copy(
            update={"templates_dir": _anchored(config.alerts.templates_dir, folder)})
    return config.model_copy(update=updates)


def _anchored(path: str, folder: Path) -> str:
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else folder.resolve() / expanded)


def parse_config(text: str, *, source: str = "config") -> Config:
    """Validate TOML text; ConfigError names the key at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc, data)}") from None
    return config.model_copy(update={"path": source})


def _first_error(exc: ValidationError, data: dict) -> str:
    error = exc.errors()[0]
    key = _key_name(error["loc"], data)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    if error["type"] == "literal_error":
        return f"{key}: {error['input']!r} is not one of {error['ctx']['expected']}"
    if error["type"].endswith("_type") or error["type"].endswith("_parsing"):
        return f"{key}: {message} (got {error['input']!r})"
    return f"{key}: {message}" if key else message


def _key_name(loc: tuple, data: dict) -> str:
    """`targets[0].interval`, with the target's name when it has one."""
    parts: list[str] = []
    node: object = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if parts == ["targets"] and isinstance(node, dict) and node.get("name"):
                    label = f"[{item}] ({node['name']})"
            parts.append(label)
            continue
        if item in ("function-after", "function-before") or str(item).startswith(("function-", "literal[")):
            continue
        node = node.get(item) if isinstance(node, dict) else None
        parts.append(f".{item}" if parts else str(item))
    return "".join(parts)
