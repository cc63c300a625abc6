"""Times as the watcher reads and writes them: parsed from what a user types, shown in UTC. No heavy imports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import overload

from watcher.config_file import parse_duration
from watcher.errors import RecordError


def utcnow() -> datetime:
    return datetime.now(UTC)


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
