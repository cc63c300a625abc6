"""The shared schedule: when each (target, kind) is due, and which process polls it now.

Several daemons on one database share their polls through the `schedule` table, one row per
configured (target, kind). A process claims due rows whose lease is free or expired by writing
its id (host:pid:random) and an expiry into them, polls, then moves `next_due_at` on by one
interval (plus jitter) and clears the lease. So each (target, kind) is polled once per interval
in total, whichever process gets it; one that dies mid-poll gives its lease back by expiry.

On PostgreSQL the claim reads the due rows `FOR UPDATE SKIP LOCKED`, so two processes claiming
at once take different rows; on SQLite the claim's transaction holds the write lock (BEGIN
IMMEDIATE), which serializes claims just as well for the processes of one host.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher.record.engine import reader
from watcher.record.models import ScheduleEntry, rows_updated
from watcher.times import utcnow

LEASE_FLOOR = 3.0  # seconds: a lease shorter than this would expire under a healthy poll's first request


@dataclass(frozen=True)
class Claim:
    """Kinds of one target leased to this process, due since `due_at` (the earliest of them)."""

    target: str
    kinds: tuple[str, ...]
    due_at: datetime
    claimed_at: datetime

    @property
    def lag(self) -> float:
        """Seconds the poll started behind its schedule."""
        return max((self.claimed_at - self.due_at).total_seconds(), 0.0)


def lease_seconds(interval: float) -> float:
    """How long a lease lasts without renewal: one interval, so a dead holder's targets wait no longer."""
    return max(interval, LEASE_FLOOR)


def next_due(started: datetime, interval: float, jitter: float, now: datetime | None = None) -> datetime:
    """One interval after the poll started, plus up to `jitter`; never in the past (missed runs coalesce)."""
    now = now or utcnow()
    base = max(started + timedelta(seconds=interval), now)
    return base + timedelta(seconds=random.uniform(0, jitter) if jitter else 0)


def sync(engine: Engine, wanted: Mapping[str, Iterable[str]], intervals: Mapping[str, float],
         now: datetime | None = None) -> None:
    """A row for every wanted (target, kind), due now when new; a row due further away than one
    interval (its interval was shortened) is brought back within it."""
    now = now or utcnow()
    pairs = [(target, kind) for target, kinds in wanted.items() for kind in kinds]
    if not pairs:
        return
    with Session(engine) as session, session.begin():
        existing = set(session.execute(select(ScheduleEntry.target, ScheduleEntry.kind)
                                       .where(ScheduleEntry.target.in_(list(wanted)))).all())
        missing = [{"target": t, "kind": k, "next_due_at": now} for t, k in pairs if (t, k) not in existing]
        if missing:
            session.execute(_insert_ignoring_duplicates(engine), missing)  # another process may add them too
        for target, interval in intervals.items():
            latest = now + timedelta(seconds=interval)
            session.execute(update(ScheduleEntry)
                            .where(ScheduleEntry.target == target, ScheduleEntry.next_due_at > latest)
                            .values(next_due_at=latest))


def _insert_ignoring_duplicates(engine: Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(ScheduleEntry).on_conflict_do_nothing(index_elements=["target", "kind"])
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(ScheduleEntry).on_conflict_do_nothing(index_elements=["target", "kind"])


def claim(engine: Engine, owner: str, wanted: Mapping[str, Iterable[str]], slots: int, leases: Mapping[str, float],
          now: datetime | None = None) -> tuple[list[Claim], datetime | None]:
    """Lease to `owner` the due kinds of up to `slots` targets that no live lease holds, most overdue
    first; `leases` gives each target's lease length in seconds. Also returns when the soonest
    unleased row is due (None: no such row, or no free slot), so the caller can sleep until then."""
    now = now or utcnow()
    pairs = [(target, kind) for target, kinds in wanted.items() for kind in kinds]
    if not pairs or slots <= 0:  # no free slot: a freed one wakes the caller, not a due time
        return [], None
    unleased = and_(or_(ScheduleEntry.lease_expires_at.is_(None), ScheduleEntry.lease_expires_at <= now),
                    tuple_(ScheduleEntry.target, ScheduleEntry.kind).in_(pairs))
    with Session(reader(engine)) as session:  # most looks find nothing due: no write lock for them
        soonest = session.scalar(select(func.min(ScheduleEntry.next_due_at)).where(unleased))
    if soonest is None or soonest > now:
        return [], soonest
    due = and_(unleased, ScheduleEntry.next_due_at <= now)
    per_target = max(len(list(kinds)) for kinds in wanted.values()) or 1
    with Session(engine) as session, session.begin():
        rows = session.execute(select(ScheduleEntry.target, ScheduleEntry.kind, ScheduleEntry.next_due_at)
                               .where(due).order_by(ScheduleEntry.next_due_at, ScheduleEntry.target)
                               .limit(slots * per_target).with_for_update(skip_locked=True)).all()
        grouped: dict[str, list[tuple[str, datetime]]] = {}
        for target, kind, due_at in rows:
            if target in grouped or len(grouped) < slots:
                grouped.setdefault(target, []).append((kind, due_at))
        claims = []
        for target, kinds in grouped.items():
            names = tuple(kind for kind, _ in kinds)
            session.execute(update(ScheduleEntry)
                            .where(ScheduleEntry.target == target, ScheduleEntry.kind.in_(names))
                            .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=leases[target])))
            claims.append(Claim(target, names, min(due_at for _, due_at in kinds), now))
    return claims, soonest


def renew(engine: Engine, owner: str, claim_: Claim, lease: float, now: datetime | None = None) -> bool:
    """Push the lease's expiry to `lease` seconds from now; False if `owner` no longer holds it."""
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        return rows_updated(session, update(ScheduleEntry).where(*_held_by(owner, claim_))
                            .values(lease_expires_at=now + timedelta(seconds=lease))) > 0


def release(engine: Engine, owner: str, claim_: Claim, due: datetime | None) -> None:
    """Clear the lease and set the next due time (None: leave it, the poll never ran)."""
    values: dict[str, datetime | None] = {"lease_owner": None, "lease_expires_at": None}
    if due is not None:
        values["next_due_at"] = due
    with Session(engine) as session, session.begin():
        # A lease lost to expiry and taken by another process is theirs now: leave their row alone.
        session.execute(update(ScheduleEntry).where(*_held_by(owner, claim_)).values(**values))


def _held_by(owner: str, claim_: Claim) -> tuple:
    return (ScheduleEntry.target == claim_.target, ScheduleEntry.kind.in_(claim_.kinds),
            ScheduleEntry.lease_owner == owner)

