"""Times as the watcher reads and writes them: parsed from what a user types or a server sends, shown in
UTC; durations as a config spells them. No heavy imports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import overload

from watcher.errors import RecordError

_DURATION_PART = re.compile(r"(\d+)\s*(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_duration(value: object) -> float:
    """Seconds in a duration such as "30s", "5m", "1h" or "1h30m"."""
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as \"30s\", \"5m\" or \"1h\", got {value!r}")
    text = value.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not text or "".join(f"{n}{u}" for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"bad duration {value!r}: use a number and a unit, such as \"30s\", \"5m\" or \"1h\"")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def duration_text(seconds: float) -> str:
    """A duration as a config spells it, the inverse of parse_duration: `30s`, `5m`, `1h30m`, `3d`, `250ms`."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole, parts = round(seconds), []
    if abs(seconds - whole) > 0.0005:  # a fraction of a second shows as it is
        return f"{seconds:g}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


def as_datetime(seconds: int | None) -> datetime | None:
    """A remote Unix timestamp as an aware UTC datetime (None when absent or absurd)."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise), Unix seconds (what OpenAI's `created_at` holds),
    or a duration ago such as "2h"."""
    value = text.strip()
    if value.isdigit():
        seconds = int(value)
        return datetime.fromtimestamp(seconds / 1000 if seconds > 100_000_000_000 else seconds, UTC)
    if re.fullmatch(r"(\d+\s*(ms|s|m|h|d)\s*)+", value.lower()):
        return (now or utcnow()) - timedelta(seconds=parse_duration(value))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RecordError(f"cannot read time {text!r}: use ISO 8601 (2026-11-23T10:00Z), Unix seconds "
                          "(1796040148) or a duration ago (2h)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# A time in, text out: callers holding a datetime get a str.
@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: datetime | None) -> str | None: ...


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, to the second, as people read times (tables, emails, messages)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def json_time(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC to the microsecond, for JSON documents a script may feed back (--at, --since)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
