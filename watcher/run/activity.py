"""What the daemon is doing now: the polls and deliveries in flight, for STATUS=, the watchdog and the stop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class _TargetState:
    """The last result and the poll in flight of one target, for STATUS= and the watchdog."""

    last_line: str | None = None
    last_at: datetime | None = None
    running_since: float | None = None
    last_progress: float | None = None
    stall_after: float = 0.0


@dataclass
class Activity:
    """Thread-safe record of polls and deliveries in flight: the stop gate and the watchdog's view."""

    targets: dict[str, _TargetState] = field(default_factory=dict)
    delivering: bool = False
    pending_mail: int | None = None  # deliveries of every channel, not only email
    stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _idle: threading.Condition = field(init=False, repr=False)  # on _lock, made in __post_init__

    def __post_init__(self) -> None:
        self._idle = threading.Condition(self._lock)

    def begin_poll(self, name: str, stall_after: float) -> bool:
        """Mark a poll of `name` in flight; False once stopping (the poll must not start)."""
        with self._lock:
            if self.stopping:
                return False
            state = self.targets.setdefault(name, _TargetState())
            state.running_since = state.last_progress = time.monotonic()
            state.stall_after = stall_after
            return True

    def progress(self, name: str) -> None:
        with self._lock:
            state = self.targets.get(name)
            if state is not None and state.running_since is not None:
                state.last_progress = time.monotonic()

    def last_progress(self, name: str) -> float | None:
        """When (monotonic) the poll of `name` in flight last made progress; None when none is."""
        with self._lock:
            state = self.targets.get(name)
            return state.last_progress if state is not None else None

    def end_poll(self, name: str, line: str) -> None:
        with self._lock:
            state = self.targets.setdefault(name, _TargetState())
            state.running_since = state.last_progress = None
            state.last_line, state.last_at = line, datetime.now(UTC)
            self._idle.notify_all()

    def begin_delivery(self) -> bool:
        with self._lock:
            if self.stopping:
                return False
            self.delivering = True
            return True

    def end_delivery(self, pending: int | None) -> None:
        with self._lock:
            self.delivering = False
            if pending is not None:
                self.pending_mail = pending
            self._idle.notify_all()

    def forget(self, names: set[str]) -> None:
        """Drop targets no longer configured (unless a poll of theirs is still running)."""
        with self._lock:
            for name in names:
                if self.targets.get(name) and self.targets[name].running_since is None:
                    del self.targets[name]

    def stop(self) -> None:
        with self._lock:
            self.stopping = True

    def busy(self) -> list[str]:
        """What is in flight: target names, and "delivery"."""
        with self._lock:
            return self._busy()

    def _busy(self) -> list[str]:
        names = [name for name, state in self.targets.items() if state.running_since is not None]
        return names + (["delivery"] if self.delivering else [])

    def wait_idle(self, timeout: float) -> list[str]:
        """Wait until nothing is in flight or `timeout` passes; what is still running."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(left)
            return self._busy()

    def stalled(self) -> list[tuple[str, float]]:
        """(target, seconds without progress) for every poll past its stall limit."""
        now = time.monotonic()
        with self._lock:
            return [(name, now - state.last_progress) for name, state in self.targets.items()
                    if state.last_progress is not None and now - state.last_progress > state.stall_after]

    def status_line(self) -> str:
        """One human line: the last poll of every target and the deliveries (every channel's) still pending."""
        with self._lock:
            parts = [_target_status(name, state) for name, state in sorted(self.targets.items())]
            pending = self.pending_mail
        alerts = "alerts: not checked yet" if pending is None else f"alerts: {pending} pending"
        return "; ".join(parts + [alerts]) if parts else f"no poll yet; {alerts}"


def _target_status(name: str, state: _TargetState) -> str:
    if state.running_since is not None and state.last_at is None:
        return f"{name}: first poll running"
    when = state.last_at.strftime("%H:%M:%S UTC") if state.last_at else "never"
    running = ", polling now" if state.running_since is not None else ""
    return f"{name}: {state.last_line} at {when}{running}"
