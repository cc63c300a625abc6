"""The daemon's claim loop: the thread that leases due polls from the shared schedule (watcher.run.schedule).

Every CLAIM_TICK seconds, or at once when a poll slot comes free, it brings the schedule's rows in
line with the targets (after start and after each reload), renews the lease of each poll in flight
that made progress, then leases due (target, kind) rows into half its free poll slots (looking again
after a short random pause, so other daemons get their share) and hands each claim to the daemon to
poll. A claim comes back through `give_back` with its next due time.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import one_line
from watcher.run import schedule
from watcher.run.activity import Activity

log = logging.getLogger("watcher.daemon")  # the daemon's logger: these lines are the daemon's

CLAIM_TICK = 0.5  # seconds between looks for due polls (a finished poll looks at once)
CLAIM_STALL = 10.0  # seconds a look at the schedule may take before the watchdog calls it hung


def fair_share(free: int) -> int:
    """How many targets one look leases: half the free poll slots (at least one). Daemons that wake
    together when polls fall due then share them, instead of the quickest one taking them all."""
    return max(1, math.ceil(free / 2)) if free > 0 else 0


@dataclass(frozen=True)
class Wanted:
    """What to lease: each target's kinds and interval, through which database (swapped whole on reload)."""

    engine: Engine
    kinds: Mapping[str, list[str]] = field(default_factory=dict)
    intervals: Mapping[str, float] = field(default_factory=dict)
    default_interval: float = 0.0  # for a claim of a target a reload removed

    def interval(self, name: str) -> float:
        return self.intervals.get(name, self.default_interval)


class ClaimLoop:
    """Leases due polls for `owner` into `slots` poll slots; `start_poll(claim)` runs one, or raises
    RuntimeError when it takes no more work (the claim is then given back at once)."""

    def __init__(self, owner: str, slots: int, activity: Activity, wanted: Wanted,
                 start_poll: Callable[[schedule.Claim], object]):
        self.owner, self.slots, self.activity = owner, slots, activity
        self._wanted = wanted
        self._start_poll = start_poll
        self._claims: dict[str, schedule.Claim] = {}  # target → its lease, while polled here
        self._renewed: dict[str, float] = {}  # target → when (monotonic) its lease was last renewed
        self._claims_lock = threading.Lock()
        self._needs_sync = True  # the schedule's rows must match the targets (at start, after a reload)
        self._problem: str | None = None
        self._wakeup = threading.Event()
        self._started: float | None = None  # when (monotonic) the look at the schedule in flight began

    def start(self) -> None:
        """Start the thread; it looks at once, then until the activity is stopping."""
        # Its own thread, not a scheduler job: it runs twice a second, and overlap warnings would fill the log.
        self._wakeup.set()
        threading.Thread(target=self._loop, name="claim", daemon=True).start()

    def retarget(self, wanted: Wanted) -> None:
        """Lease polls of `wanted` from the next look on (its rows are synced to the schedule first)."""
        self._wanted = wanted
        self._needs_sync = True

    def wake(self) -> None:
        """Look for due polls now: a slot just came free, or the daemon is stopping."""
        self._wakeup.set()

    def interval(self, name: str) -> float:
        """The interval `name` is polled at (the schedule's default for a target no longer wanted)."""
        return self._wanted.interval(name)

    def give_back(self, claim: schedule.Claim, due: datetime | None) -> None:
        """Release `claim`'s lease, due again at `due` (None: at once, the poll never ran); never raises."""
        try:
            schedule.release(self._wanted.engine, self.owner, claim, due)
        except SQLAlchemyError as exc:
            log.warning("%s: lease not released (it expires by itself): %s", claim.target, one_line(exc))
        finally:
            with self._claims_lock:
                self._claims.pop(claim.target, None)
                self._renewed.pop(claim.target, None)

    def give_back_all(self) -> None:
        """At stop: claims taken but never started are due again at once, for another process."""
        with self._claims_lock:
            claims = list(self._claims.values())
        for claim in claims:
            self.give_back(claim, None)

    def hung_for(self) -> float | None:
        """Seconds the look at the schedule in flight has taken, when more than CLAIM_STALL; else None."""
        started = self._started
        if started is None:
            return None
        seconds = time.monotonic() - started
        return seconds if seconds > CLAIM_STALL else None

    def _loop(self) -> None:
        """Look at the schedule every CLAIM_TICK seconds, or at once when woken, until stopping."""
        wait = 0.0
        while not self.activity.stopping:
            self._wakeup.wait(wait)
            self._wakeup.clear()
            if self.activity.stopping:
                return
            self._started = time.monotonic()
            wait = CLAIM_TICK
            try:
                wait = self._round()
            except Exception as exc:  # the loop must outlive a bug, or nothing is polled again
                log.error("claiming due polls failed unexpectedly: %s: %s", type(exc).__name__, one_line(exc))
                logging.getLogger("watcher.traceback").debug("traceback", exc_info=True)
            finally:
                self._started = None

    def _round(self) -> float:
        """Renew the leases of polls in flight, then lease due targets into the free poll slots; the
        seconds to wait before the next look (until the soonest due row, at most CLAIM_TICK)."""
        wanted = self._wanted
        engine, targets = wanted.engine, wanted.kinds
        intervals = {name: wanted.interval(name) for name in targets}
        try:
            if self._needs_sync:
                schedule.sync(engine, targets, intervals)
                self._needs_sync = False
            self._renew_leases(engine)
            with self._claims_lock:
                free = self.slots - len(self._claims)
                idle = {name: kinds for name, kinds in targets.items() if name not in self._claims}
            share = fair_share(free)
            claims, soonest = schedule.claim(engine, self.owner, idle, share,
                                             {name: schedule.lease_seconds(intervals[name]) for name in idle})
        except SQLAlchemyError as exc:
            self._report_problem(f"cannot read the schedule: {one_line(exc)}")
            return CLAIM_TICK
        self._report_problem(None)
        for claim in claims:
            with self._claims_lock:
                self._claims[claim.target] = claim
                self._renewed[claim.target] = time.monotonic()
            log.debug("%s: polling %s, due %.3f s ago", claim.target, ", ".join(claim.kinds), claim.lag)
            try:
                self._start_poll(claim)
            except RuntimeError:  # stopping: the pool takes no more work
                self.give_back(claim, None)
        if claims and len(claims) == share < free:  # more may be due: look again once the others had a turn
            return random.uniform(CLAIM_TICK / 10, CLAIM_TICK / 2)
        until_due = (soonest - datetime.now(UTC)).total_seconds() if soonest is not None else CLAIM_TICK
        return min(until_due, CLAIM_TICK) if until_due > 0 else CLAIM_TICK

    def _renew_leases(self, engine: Engine) -> None:
        """A poll that made progress since its lease was last renewed keeps it for another interval."""
        with self._claims_lock:
            claims = list(self._claims.values())
        now = time.monotonic()
        for claim in claims:
            lease = schedule.lease_seconds(self.interval(claim.target))
            renewed = self._renewed.get(claim.target, now)
            progress = self.activity.last_progress(claim.target)
            if now - renewed < lease / 3 or progress is None or progress <= renewed:
                continue
            self._renewed[claim.target] = now
            if not schedule.renew(engine, self.owner, claim, lease):
                log.debug("%s: lease expired before it was renewed; the recording refuses a stale write",
                          claim.target)

    def _report_problem(self, problem: str | None) -> None:
        # Once per change: an unreachable database would otherwise log twice a second.
        if problem and problem != self._problem:
            log.error("%s", problem)
        elif problem is None and self._problem:
            log.info("the schedule is readable again")
        self._problem = problem
