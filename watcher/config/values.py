"""The values a config file holds, read and checked in plain Python: durations, sizes, database URLs,
paths, addresses, kind names, secrets by reference. No pydantic, nothing heavy: the light reader
(`watcher.config.quick`) and the full model (`watcher.config.model`) both build on these.

Each check raises ValueError in words the config's error line passes on; a secret is read only
when asked for, from an environment variable or a file, and never echoed.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from email.utils import parseaddr
from pathlib import Path

from watcher.errors import ConfigError
from watcher.kinds import registry
from watcher.kinds.paths import parse_path
from watcher.times import parse_duration

DEFAULT_CONFIG_PATH = "/etc/assistant-watcher/config.toml"
CONFIG_ENV = "ASSISTANT_WATCHER_CONFIG"
DEFAULT_DATABASE_URL = "sqlite:///watcher.db"
MAX_CONCURRENT_POLLS = 8  # [schedule] max_concurrent_polls by default


def pool_size(polls: int) -> int:
    """PostgreSQL connections a process running `polls` polls at once holds by default: two a poll (its
    lock and the transaction that records it), and four for deliveries, the web and the schedule."""
    return 2 * polls + 4


# scheme[+driver]://rest, read without SQLAlchemy so that reading commands start fast.
_URL = re.compile(r"^(?P<scheme>(?P<backend>[A-Za-z][A-Za-z0-9]*)(\+[A-Za-z0-9_]+)?)://(?P<rest>.*)$", re.S)


def config_path(explicit: str | None) -> Path:
    """Where the config is: --config, else $ASSISTANT_WATCHER_CONFIG, else /etc."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def database_parts(value: str) -> tuple[str, str, str | None, str]:
    """(scheme, backend, SQLite file or None, query) of a database URL; ValueError if it is not one."""
    match = _URL.match(value)
    if not match:
        raise ValueError("not a database URL (sqlite:///watcher.db or postgresql+psycopg://user@host/db)")
    backend, rest = match["backend"].lower(), match["rest"]
    if backend != "sqlite":
        return match["scheme"], backend, None, ""
    path, _, query = rest.partition("?")
    if path and not path.startswith("/"):
        raise ValueError("an SQLite URL is sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE/PATH")
    return match["scheme"], backend, path[1:] or None, query


def check_database_url(value: str) -> str:
    """`value` if it is a database URL the watcher can use; ValueError saying why not."""
    _scheme, backend, database, _query = database_parts(value)
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"{backend!r} databases are not supported: use sqlite:///PATH or postgresql+psycopg://…")
    if backend == "sqlite" and database in (None, "", ":memory:"):
        raise ValueError("an SQLite URL needs a file (sqlite:///watcher.db): an in-memory database keeps nothing")
    return value


def anchored_database_url(url: str, folder: Path) -> str:
    """`url` with a relative SQLite file made absolute: in systemd's $STATE_DIRECTORY when there is one
    (the config folder is read-only under the unit), else in `folder` (the config file's)."""
    scheme, backend, database, query = database_parts(url)
    if backend != "sqlite" or not database:
        return url
    home = Path(os.environ.get("STATE_DIRECTORY", "").split(":")[0] or folder)
    return f"{scheme}:///{anchored(database, home)}" + (f"?{query}" if query else "")


def anchored(path: str, folder: Path) -> str:
    """`path` (`~` expanded) if absolute, else under `folder`."""
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else folder.resolve() / expanded)


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"  # target and channel names: they appear in commands, URLs and metrics
INTERVAL_FLOOR = 1.0  # seconds: below it a typo ("1ms" for "1m") would hammer the API
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def positive_duration(value: object) -> float:
    """Seconds in a duration that must be more than none."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    return seconds


def interval_seconds(value: object) -> float:
    """Seconds between two polls: a duration of at least INTERVAL_FLOOR."""
    seconds = positive_duration(value)
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


def did_you_mean(word: str, known: list[str]) -> str:
    """" (did you mean 'interval'?)" when one of `known` is close to `word`, else ""."""
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_kind(name: str) -> str:
    known = registry.names()
    if name not in known:
        raise ValueError(f"{name!r} is not a kind{did_you_mean(name, known)}; known kinds: {', '.join(known)}")
    return name


def check_address(value: str) -> str:
    if not isinstance(value, str) or any(c in value for c in "\r\n"):
        raise ValueError(f"bad email address {value!r}")
    _, address = parseaddr(value)
    if not _ADDRESS.match(address or ""):
        raise ValueError(f"bad email address {value!r}")
    return value


def check_ignore_rule(rule: str) -> str:
    try:
        parse_path(rule)
    except ValueError as exc:
        raise ValueError(f"ignore rule {rule!r}: {exc}") from None
    return rule


def read_secret(owner: str, env: str | None, file: str | None) -> str:
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


def toml_value(value: object) -> str:
    """`value` as a TOML file spells it, for error lines."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    return repr(value)
