"""The configuration file: TOML validated by a schema, secrets only by reference.

`load_config(path)` either returns a `Config` or raises `ConfigError` with one line
that names the key and what is wrong. Secrets are resolved on demand from an
environment variable or a file (a bare file name is looked up in systemd's
`$CREDENTIALS_DIRECTORY`) and are never kept on the config object.

The sections live beside it: targets in watcher.config.targets, smtp, alerts and channels in
watcher.config.alerts, the field types they share in watcher.config.fields over the plain checks
of watcher.config.values.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationError, model_validator

from watcher.config.alerts import AlertsConfig, ChannelConfig, SmtpConfig
from watcher.config.fields import Duration, Interval, PositiveDuration, Section
from watcher.config.routing import WATCHLIST_CHANNEL
from watcher.config.rules import RuleConfig
from watcher.config.targets import TargetConfig, with_target_defaults
from watcher.config.values import (
    CONFIG_ENV,
    DEFAULT_DATABASE_URL,
    MAX_CONCURRENT_POLLS,
    NAME_PATTERN,
    anchored,
    anchored_database_url,
    check_database_url,
    did_you_mean,
    pool_size,
    read_secret,
    toml_value,
)
from watcher.errors import ConfigError


class DatabaseConfig(Section):
    url: Annotated[str, AfterValidator(check_database_url)] = DEFAULT_DATABASE_URL
    # PostgreSQL connections one process may open; default: two per concurrent poll, plus four.
    max_connections: Annotated[int, Field(ge=4, le=1000)] | None = None


class ScheduleConfig(Section):
    interval: Interval = Field(default=300.0)
    jitter: Duration = Field(default=30.0)
    # A whole poll's deadline: past it the poll fails, is recorded and counts toward failure_after.
    poll_timeout: PositiveDuration = Field(default=600.0)
    # Polls one daemon runs at once; due polls beyond it wait for a free slot (or another daemon).
    max_concurrent_polls: Annotated[int, Field(ge=1, le=64)] = MAX_CONCURRENT_POLLS


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


class HttpConfig(Section):
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
        value = read_secret("http", self.token_env, self.token_file)
        if len(value) < HTTP_TOKEN_MIN:  # its length is not its value: saying it leaks nothing useful
            raise ConfigError(f"http: the token must be at least {HTTP_TOKEN_MIN} characters")
        return value


class ExportConfig(Section):
    """`[export]`: the daemon keeps the record's git history (`export git`) current after each poll that records."""

    git: str | None = None  # the history repository's directory (relative: beside the config file)
    push: str | None = None  # a remote (URL or path) branch main is pushed to after each export that added commits


class Config(Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    targets: list[TargetConfig] = Field(default_factory=list)
    smtp: SmtpConfig | None = None
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    channels: list[ChannelConfig] = Field(default_factory=list)
    http: HttpConfig | None = None
    export: ExportConfig = Field(default_factory=ExportConfig)
    rules: list[RuleConfig] = Field(default_factory=list)
    path: str | None = Field(default=None, exclude=True)

    @property
    def enabled_targets(self) -> list[TargetConfig]:
        """The targets to poll (`enabled = false` ones are only read)."""
        return [t for t in self.targets if t.enabled]

    @property
    def configured_kinds(self) -> list[tuple[str, str]]:
        """(target, kind) of every configured target and kind, disabled ones too: shown and checked even
        before their first poll (`watcher.config.quick.configured_kinds` reads the same without the model)."""
        return [(target.name, kind) for target in self.targets for kind in target.kinds]

    @property
    def disabled_targets(self) -> set[str]:
        """The targets configured with `enabled = false`: shown, not polled."""
        return {target.name for target in self.targets if not target.enabled}

    def kinds_of(self, name: str) -> list[str]:
        """The kinds the target called `name` watches; none for a target not configured."""
        return next((list(t.kinds) for t in self.targets if t.name == name), [])

    @property
    def max_connections(self) -> int:
        """PostgreSQL connections this process may hold: `database.max_connections` or its default."""
        return self.database.max_connections or pool_size(self.schedule.max_concurrent_polls)

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
    def _unique_rule_names(self) -> Config:
        names = [r.name for r in self.rules]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"rule name {name!r} is used twice: events and `rules` name a rule by it")
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

    @property
    def alerts_go_nowhere(self) -> bool:
        """True when no channel is configured (no `[smtp]`, no `[[channels]]`): drift is recorded, nobody is told."""
        return self.smtp is None and not self.channels

    def interval_of(self, target: TargetConfig) -> float:
        """Seconds between two polls of `target`: its own `interval`, else `[schedule] interval`."""
        return target.interval or self.schedule.interval

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
    if config.export.git:
        updates["export"] = config.export.model_copy(update={"git": anchored(config.export.git, folder)})
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
    data, inherited = with_target_defaults(data, source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc, data, inherited)}") from None
    return config.model_copy(update={"path": source})




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
        return f"{key}: {_EXPECTED[kind]} (got {toml_value(error['input'])})"
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
        return "target_defaults." + _key_name(loc[2:], {})
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
    return did_you_mean(str(loc[-1]), [n for n, f in model.model_fields.items() if not f.exclude])


def _section_model(annotation) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        inner = getattr(candidate, "__args__", (candidate,))[0] if getattr(candidate, "__origin__", None) is list \
            else candidate
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return None




def _key_name(loc: tuple, data: dict) -> str:
    """`targets[0].interval`, with the target's name when it has one."""
    parts: list[str] = []
    node: object = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if parts in (["targets"], ["channels"], ["rules"]) and isinstance(node, dict) and node.get("name"):
                    label = f"[{item}] ({node['name']})"
            parts.append(label)
            continue
        if item in ("function-after", "function-before") or str(item).startswith(("function-", "literal[")):
            continue
        node = node.get(item) if isinstance(node, dict) else None
        parts.append(f".{item}" if parts else str(item))
    return "".join(parts)
