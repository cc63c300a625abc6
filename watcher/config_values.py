"""Values the config's sections share: durations, sizes, kind names, addresses, secrets by reference.

Each check raises ValueError in words the config's error line (watcher.config) passes on; a
secret is read only when asked for, from an environment variable or a file, and never echoed.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from watcher.errors import ConfigError
from watcher.kinds import registry
from watcher.times import parse_duration

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


def did_you_mean(word: str, known: list[str]) -> str:
    """" (did you mean 'interval'?)" when one of `known` is close to `word`, else ""."""
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_kind(name: str) -> str:
    known = registry.names()
    if name not in known:
        raise ValueError(f"{name!r} is not a kind{did_you_mean(name, known)}; known kinds: {', '.join(known)}")
    return name


def _check_address(value: str) -> str:
    if not isinstance(value, str) or any(c in value for c in "\r\n"):
        raise ValueError(f"bad email address {value!r}")
    _, address = parseaddr(value)
    if not _ADDRESS.match(address or ""):
        raise ValueError(f"bad email address {value!r}")
    return value


def _check_ignore_rule(rule: str) -> str:
    from watcher.kinds.paths import parse_path

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


class Section(BaseModel):
    """A table of the config file: an unknown key is an error, and values never change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
