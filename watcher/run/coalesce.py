"""The bookkeeping of a job asked for more often than it runs (the outbox sweep, the git export).

A request while the job runs is not lost and does not start a second run: the running one goes
round once more. Thread-safe; the job itself decides how a run is started.
"""

from __future__ import annotations

import threading


class Coalesced:
    """Requests of one job, and whether a run of it is in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = self._wanted = False

    def ask(self) -> bool:
        """Record a request; True when no run is in progress (the caller should start one)."""
        with self._lock:
            self._wanted = True
            return not self._running

    def begin(self) -> bool:
        """Called by a run as it starts: False when another run is in progress (this one then does nothing,
        the other goes round once more)."""
        with self._lock:
            self._wanted = True
            if self._running:
                return False
            self._running = True
            return True

    def another_round(self) -> bool:
        """Within a run: True (and the request taken) while a request is waiting."""
        with self._lock:
            wanted, self._wanted = self._wanted, False
            return wanted

    def end(self) -> None:
        with self._lock:
            self._running = False
