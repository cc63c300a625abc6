"""The daemon's delivery job: sweeps the outbox one pass at a time.

The scheduler runs it every DELIVERY_INTERVAL seconds, and each poll asks for a sweep right after
it commits. A request that arrives during a sweep is not lost and does not start a second one: the
running sweep goes round once more (`watcher.run.coalesce`). A sweep never raises; a failure that repeats every 30 s is
logged once, then as debug lines until it changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.alerts import outbox
from watcher.config.model import Config
from watcher.errors import WatcherError, one_line
from watcher.run.activity import Activity
from watcher.run.coalesce import Coalesced

log = logging.getLogger("watcher.daemon")

DELIVERY_INTERVAL = 30.0  # seconds between outbox sweeps when no poll asks for one sooner


class DeliveryJob:
    """Sweeps the outbox of the record `current()` names; `request()` asks for a sweep soon."""

    def __init__(self, current: Callable[[], tuple[Engine, Config]], activity: Activity,
                 start_now: Callable[[], object], after_sweep: Callable[[], object]):
        self._current = current  # the engine and config in use now: a reload replaces them
        self._activity = activity
        self._start_now = start_now  # makes the scheduler run `run` at once
        self._after_sweep = after_sweep
        self._requests = Coalesced()
        self._last_line: str | None = None

    def request(self) -> None:
        """Run the job now (or make the running sweep go round once more)."""
        if not self._requests.ask() or self._activity.stopping:
            return
        try:
            self._start_now()
        except Exception as exc:  # the scheduler is shutting down: the outbox keeps the mail
            log.debug("delivery not rescheduled: %s", exc)

    def run(self) -> None:
        """Deliver the outbox until no poll asked for another sweep meanwhile."""
        if not self._requests.begin():
            return
        try:
            while self._requests.another_round():
                if not self._activity.begin_delivery():
                    return
                pending = None
                try:
                    pending = self._sweep()
                finally:
                    self._activity.end_delivery(pending)
                self._after_sweep()
        finally:
            self._requests.end()

    def _sweep(self) -> int | None:
        """One sweep of the outbox; never raises. Returns how many messages are still pending."""
        engine, config = self._current()
        try:
            report = outbox.deliver_pending(engine, config)
        except (WatcherError, SQLAlchemyError) as exc:
            self._log(logging.WARNING, f"delivery failed: {one_line(exc)}")
            return None
        except Exception as exc:
            self._log(logging.ERROR, f"delivery failed unexpectedly: {type(exc).__name__}: {one_line(exc)}")
            logging.getLogger("watcher.traceback").debug("traceback", exc_info=True)
            return None
        summary = report.summary()
        if summary is None:  # nothing was attempted
            return report.pending
        if report.failed:
            self._log(logging.WARNING, summary)
        elif report.sent:
            self._log(logging.INFO, summary, repeat=True)
        return report.pending

    def _log(self, level: int, line: str, repeat: bool = False) -> None:
        # The same failure every 30 s is one warning, then debug lines until it changes.
        if not repeat and line == self._last_line:
            level = logging.DEBUG
        self._last_line = line
        if line:
            log.log(level, "%s", line)
