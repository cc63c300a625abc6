"""What one poll of (target, kind) is given and what it gives back, as plain values: the context it
runs in, the last complete poll it records on, and its outcome (with the drift events it recorded).

The orchestrator (`watcher.poll.run`) and the recording (`watcher.poll.recording`) both build on
these; the CLI and the daemon read outcomes and say them in one line each.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from watcher.compare.normalize import Normalization
from watcher.display import counted
from watcher.kinds.base import Kind
from watcher.record.drift import DriftEvent
from watcher.record.schema import PollStatus

# This process (host:pid:random, unique even when a pid is reused): who polled, who holds a lease.
WORKER = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass(frozen=True, kw_only=True)
class StateChange:
    """The platform set an object's state (its kind's state fields) to `after`; it was `before`."""

    object_id: str
    name: str | None
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass
class PollOutcome:
    """What one poll of (target, kind) did, for the CLI summary and the alert composer."""

    target: str
    kind: str
    status: str  # complete | failed | not_served | skipped (nothing asked or nothing written)
    target_id: int | None = None
    poll_id: int | None = None
    baseline: bool = False
    objects: int = 0
    pages: int = 0
    error: str | None = None
    first_not_served: bool = False
    retired: bool = False
    reason: str | None = None  # why a poll was skipped
    events: list[DriftEvent] = field(default_factory=list)
    state_changes: list[StateChange] = field(default_factory=list)  # the platform's own, never drift

    def count(self, change: str) -> int:
        return sum(1 for e in self.events if e.change == change)

    @property
    def ok(self) -> bool:
        return self.status != PollStatus.FAILED


# Given the open recording session and the outcome so far, the rows to add (alerts and their deliveries).
ComposeAlerts = Callable[[Session, PollOutcome], list[Any]]


def no_alerts(_session: Session, _outcome: PollOutcome) -> list[Any]:
    return []


class WrittenVersion(NamedTuple):
    """A version a poll wrote: what rules are checked on (`watcher.rules.check`)."""

    resource_id: int
    object_id: str
    name: str | None
    number: int
    canonical: str


# Given the open recording session, the outcome so far and the versions it wrote: record what rules say.
CheckRules = Callable[[Session, PollOutcome, list[WrittenVersion]], None]


def no_checks(_session: Session, _outcome: PollOutcome, _written: list[WrittenVersion]) -> None:
    return None


@dataclass(frozen=True)
class Context:
    """Everything one poll of (target, kind) needs besides its pages: plain values."""

    target: str
    base_url: str
    kind: Kind
    rules: Normalization  # this poll's normalization (ignore rules, redaction, volatile fields)
    settings: str  # fingerprint of the target's settings (see settings_fingerprint)
    compose: ComposeAlerts = no_alerts
    check: CheckRules = no_checks



@dataclass(frozen=True)
class LastPoll:
    """The last complete poll of (target, kind), as plain values: the base this poll records on."""

    id: int
    started_at: datetime
    ignore: list[str] | None
    worker: str | None = None  # the process that made it



def nothing_served(outcomes: list[PollOutcome]) -> bool:
    """True when every kind of a target answered 404: the address is wrong, not every kind retired."""
    return bool(outcomes) and all(o.status == PollStatus.NOT_SERVED for o in outcomes)


def nothing_served_line(target) -> str:
    return (f"{target.name}: FAILED: no kind is served at {target.base_url} (every kind answered 404): check the "
            "target's base_url, which is the API's root, such as https://api.openai.com/v1")


def summary_line(outcome: PollOutcome) -> str:
    """One line for a human: what a poll of (target, kind) found."""
    where = f"{outcome.target}/{outcome.kind}"
    if outcome.status == PollStatus.FAILED:
        return f"{where}: FAILED: {(outcome.error or '').removeprefix(where + ': ')}"
    if outcome.status == PollStatus.NOT_SERVED:
        if outcome.poll_id is None:
            return (f"{where}: not served by this endpoint (as before; asked again when the target's settings "
                    f"change, or with `snapshot --kind {outcome.kind}`)")
        once = "" if outcome.first_not_served else " (as before)"
        return f"{where}: not served by this endpoint{once}"
    if outcome.status == PollStatus.SKIPPED:
        return f"{where}: {outcome.reason}"
    seen = f"{counted(outcome.objects, 'object')} in {counted(outcome.pages, 'page')}"
    ruled = [counted(outcome.count("violation"), "rule violation")] if outcome.count("violation") else []
    ruled += [f"{outcome.count('resolved')} resolved"] if outcome.count("resolved") else []
    if outcome.baseline:
        return f"{where}: baseline recorded, {seen}" + "".join(f", {said}" for said in ruled)
    counts = [f"{outcome.count(c)} {c}" for c in ("created", "modified", "deleted", "reappeared") if outcome.count(c)]
    return f"{where}: {seen}, " + (", ".join(counts + ruled) if counts or ruled else "no drift")
