"""The publish feed: each new drift event as it is recorded, by whichever process records it.

`follow()` reads the events table of the shared database every `interval` seconds and yields
the events it has not yielded yet, oldest first, as `DriftEvent`s (their changes read back
from the record). Ids are handed out before a transaction commits, so on PostgreSQL a later
id can become visible before an earlier one: an id missing below the newest one seen is
waited for, up to GAP_WAIT, before the feed moves past it (a rolled-back poll leaves such
holes for good). A database that is busy or unreachable is retried, never fatal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from watcher.alerts.stored import recorded_drift
from watcher.errors import one_line
from watcher.record.drift import DriftEvent
from watcher.record.models import Event, Resource, Target

log = logging.getLogger("watcher.feed")

GAP_WAIT = 60.0  # seconds an unseen id below a seen one may still be a transaction committing
MAX_RETRY_WAIT = 10.0


class Feed:
    """Where a reader of the events table is: every id at or below `low` has been yielded or given up."""

    def __init__(self, low: int, *, target: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.low, self.target, self.clock = low, target, clock
        self.seen: set[int] = set()  # ids above `low` already yielded (or filtered out)
        self.gaps: dict[int, float] = {}  # ids above `low` not seen yet, and since when they are missing

    def read(self, session: Session) -> list[DriftEvent]:
        """The events recorded since the last read, oldest first."""
        ids = [i for i in session.scalars(select(Event.id).where(Event.id > self.low).order_by(Event.id))
               if i not in self.seen]
        found = []
        if ids:
            query = select(Event).where(Event.id.in_(ids)).order_by(Event.id)
            if self.target:
                query = query.join(Resource).join(Target).where(Target.name == self.target)
            found = [recorded_drift(session, row) for row in session.scalars(query)]
            self.seen.update(ids)
            for found_id in ids:
                self.gaps.pop(found_id, None)
        self._advance()
        return found

    def _advance(self) -> None:
        now = self.clock()
        top = max(self.seen, default=self.low)
        for missing in range(self.low + 1, top):
            if missing not in self.seen:
                self.gaps.setdefault(missing, now)
        while True:
            following = self.low + 1
            if following in self.seen:
                self.seen.discard(following)
            elif following in self.gaps and now - self.gaps[following] >= GAP_WAIT:
                del self.gaps[following]
            else:
                return
            self.low = following


def start(session: Session, since: datetime | None) -> int:
    """The `low` of a feed that begins now, or with the events detected at or after `since`."""
    if since is None:
        return session.scalar(select(func.max(Event.id))) or 0
    first = session.scalar(select(func.min(Event.id)).where(Event.detected_at >= since))
    return first - 1 if first is not None else session.scalar(select(func.max(Event.id))) or 0


def follow(engine: Engine, *, target: str | None = None, since: datetime | None = None, interval: float = 1.0,
           trouble: Callable[[str | None], None] = lambda _message: None,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[DriftEvent]:
    """Every event recorded from now on (or since `since`), until the caller stops iterating.

    `trouble(message)` hears once when the database cannot be read, and `trouble(None)` when it
    can again; meanwhile the feed retries, waiting a little longer each time.
    """
    feed: Feed | None = None
    wait, failing = interval, False
    while True:
        try:
            with Session(engine) as session:
                if feed is None:
                    feed = Feed(start(session, since), target=target)
                found = feed.read(session)
        except (OperationalError, DBAPIError) as exc:
            if not failing:
                trouble(f"cannot read the database, retrying: {one_line(exc, 200)}")
            failing = True
            sleep(wait)
            wait = min(wait * 2, MAX_RETRY_WAIT)
            continue
        if failing:
            trouble(None)
        wait, failing = interval, False
        yield from found
        sleep(interval)
