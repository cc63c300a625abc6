"""Composing alerts: what the watcher tells people, composed in the poll's transaction, stored once.

`composer(config)` gives the poll a function that turns its outcome into alerts inside the
poll's own transaction (invariant 3): one alert per drift event, or above `digest_threshold`
one digest for the channels that take digests (every event still reaches a webhook on its
own); one "failing" alert per outage of a (target, kind), one "recovered" when it ends, one
"retired" when a kind with recorded objects starts answering 404. Each alert gets one
delivery per channel it is routed to: the watchlist email when someone is on it, the default
channels (`[alerts] channels`, else every `[[channels]]` entry), and the channels of every
matching route.

Nothing is rendered here: a channel renders an alert when it delivers it (`load` reads it
back from the record: `watcher.alerts.stored`), so the poll's transaction stays short, a template or recipient fixed
later helps alerts already queued, and a rendering bug can never cost a poll its record.
"""


from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from watcher.alerts import render, templating
from watcher.alerts.channels import dispatch
from watcher.alerts.channels.base import recipients
from watcher.alerts.notices import notice_for
from watcher.config.model import Config
from watcher.config.routing import WATCHLIST_CHANNEL
from watcher.kinds import registry
from watcher.kinds.base import Severity
from watcher.poll.outcome import ComposeAlerts, PollOutcome, no_alerts
from watcher.record.models import Alert, Delivery, Poll, Target
from watcher.record.schema import DeliveryState, PollStatus, Purpose
from watcher.times import json_time, utcnow

log = logging.getLogger("watcher.alerts")

def composer(config: Config) -> ComposeAlerts:
    """The function a poll calls, in its transaction, for the alerts of its outcome.

    Without any channel (no `[smtp]`, no `[[channels]]`) nothing is ever queued. The email
    templates are loaded now, so a broken `[alerts] templates_dir` is a ConfigError before any poll.
    """
    routing = Routing(config)
    if not routing.channels:
        return no_alerts
    if config.smtp is not None:
        templating.Templates(config.alerts.templates_dir)
    return _Composer(config, routing).compose


class Routing:
    """Which channels an alert goes to, by the facts routes match on."""

    def __init__(self, config: Config):
        self.config, self.recipients = config, recipients
        self.channels = dispatch.configured(config)
        named = [c.name for c in config.channels]
        self.defaults = named if config.alerts.channels is None else list(config.alerts.channels)

    def channels_for(self, facts: list[dict[str, str]], *, exclude: str | None = None) -> list[str]:
        """The watchlist when it has someone to tell, the defaults, then every matching route's channels."""
        names = []
        if WATCHLIST_CHANNEL in self.channels and self.recipients(self.config, WATCHLIST_CHANNEL, facts):
            names.append(WATCHLIST_CHANNEL)
        names += self.defaults
        names += [name for fact in facts for route in self.config.alerts.routes
                  if route.channels and route.match.matches(**fact) for name in route.channels]
        return [name for name in dict.fromkeys(names) if name in self.channels and name != exclude]

    def deliveries(self, purpose: str, names: Iterable[str], now: datetime) -> list[Delivery]:
        """One new pending delivery per channel, each with the stable id its retries will carry."""
        return [Delivery(channel=name, state=DeliveryState.PENDING, purpose=purpose, attempts=0, created_at=now,
                         next_attempt_at=now, message_id=self.channels[name].new_delivery_id(self.config))
                for name in names]


def event_facts(event) -> dict[str, str]:
    return {"name": event.name or "", "kind": event.kind, "target": event.target, "severity": event.severity}


def _operational_facts(target: str | None, kind: str | None) -> list[dict[str, str]]:
    # Operational alerts have no object: routes that name no object pattern, at severity high.
    return [{"name": "", "kind": kind or "", "target": target or "", "severity": "high"}]


class _Composer:
    def __init__(self, config: Config, routing: Routing):
        self.config, self.routing = config, routing

    def compose(self, session: Session, outcome: PollOutcome) -> list[Alert]:
        rows = self._health(session, outcome)
        # A baseline tells no drift, but what breaks a rule on day one is told (a violation is not drift).
        told = [e for e in outcome.events if e.rule or not outcome.baseline]
        if outcome.status == PollStatus.COMPLETE and told:
            rows += self._drift(outcome, told)
        if outcome.status == PollStatus.COMPLETE and outcome.state_changes:
            rows += self._state(outcome)
        return rows

    # -- the platform's own state: one notice per transition, routed like the object's drift ----------------

    def _state(self, outcome: PollOutcome) -> list[Alert]:
        kind = registry.get(outcome.kind)
        rows = []
        for change in outcome.state_changes:
            severity = kind.state_severity(change.after)  # entering an alarm is high, leaving it low
            facts = [{"name": change.name or "", "kind": outcome.kind, "target": outcome.target, "severity": severity}]
            names = self.routing.channels_for(facts)
            if not names:
                continue
            detail = {"object_id": change.object_id, "name": change.name, "label": kind.label,
                      "before": change.before, "after": change.after, "severity": severity}
            rows.append(self._alert(Purpose.STATE, outcome, utcnow(), names, severity=severity, detail=detail,
                                    title=notice_for(Purpose.STATE, outcome.target, outcome.kind, detail).subject,
                                    routing=facts))
        return rows

    # -- drift ---------------------------------------------------------------------------------

    def _drift(self, outcome: PollOutcome, events: list) -> list[Alert]:
        now = utcnow()
        routed = [(event, self.routing.channels_for([event_facts(event)])) for event in events]
        digest = len(events) > self.config.alerts.digest_threshold
        takes_digest = {name for name, cls in self.routing.channels.items() if digest and cls.digests}
        rows = []
        for event, names in routed:
            one_by_one = [name for name in names if name not in takes_digest]
            if one_by_one:
                rows.append(self._alert(Purpose.EVENT, outcome, now, one_by_one, event_id=event.event_id,
                                        severity=event.severity, title=render.event_subject(event, event.severity),
                                        routing=[event_facts(event)]))
        named = dict.fromkeys(n for _e, names in routed for n in names)
        digest_names = [name for name in named if name in takes_digest]
        if digest_names:
            loudest = Severity.HIGH if any(e.severity == Severity.HIGH for e in events) else Severity.LOW
            rows.append(self._alert(Purpose.DIGEST, outcome, now, digest_names,
                                    title=render.digest_subject(events), severity=loudest,
                                    detail={"event_ids": [e.event_id for e in events]},
                                    routing=[event_facts(e) for e in events]))
        return rows

    def _alert(self, purpose: str, outcome: PollOutcome, now: datetime, names: list[str], **fields) -> Alert:
        return Alert(purpose=purpose, target_id=outcome.target_id, poll_id=outcome.poll_id, kind=outcome.kind,
                     created_at=now, deliveries=self.routing.deliveries(purpose, names, now), **fields)

    # -- health: failing, recovered, retired --------------------------------------------------

    def _health(self, session: Session, outcome: PollOutcome) -> list[Alert]:
        if outcome.poll_id is None or outcome.target_id is None:
            return []
        facts = _operational_facts(outcome.target, outcome.kind)
        names = self.routing.channels_for(facts)
        if not names:
            return []
        if outcome.status == PollStatus.FAILED:
            notice = self._failure(outcome, _failed_streak(session, outcome.target_id, outcome.kind,
                                                           through=outcome.poll_id))
        else:
            notice = self._recovery(_failed_streak(session, outcome.target_id, outcome.kind,
                                                   through=outcome.poll_id - 1))
        if notice is None:
            return []
        purpose, detail = notice
        if purpose in (Purpose.FAILING, Purpose.RECOVERED) and self._another_kind_failing(session, outcome.target_id,
                                                                              outcome.target, outcome.kind):
            # One outage of a target is one alert and one recovery, whatever the number of its kinds: this
            # kind's streak is recorded as announced (its row), but told only by the target's first and last.
            names = []
        title = notice_for(purpose, outcome.target, outcome.kind, detail).subject
        severity = Severity.LOW if purpose == Purpose.RECOVERED else Severity.HIGH
        return [self._alert(purpose, outcome, utcnow(), names, severity=severity, title=title, detail=detail,
                            routing=facts)]

    def _another_kind_failing(self, session: Session, target_id: int, target: str, kind: str) -> bool:
        """True while another kind of `target` is in a failed streak announced as failing."""
        kinds = self.config.kinds_of(target) or session.scalars(
            select(Poll.kind).distinct().where(Poll.target_id == target_id)).all()
        return any("failing" in _failed_streak(session, target_id, other).announced for other in kinds if other != kind)

    def _failure(self, outcome: PollOutcome, streak: _Streak) -> tuple[str, dict] | None:
        """`streak`: the failed polls through this one."""
        if outcome.retired and "retired" not in streak.announced:
            return "retired", {"error": outcome.error or ""}
        if streak.failures >= self.config.alerts.failure_after and not streak.announced:
            return "failing", {"error": outcome.error or "", "failures": streak.failures,
                               "since": json_time(streak.since)}
        return None

    def _recovery(self, streak: _Streak) -> tuple[str, dict] | None:
        """`streak`: the failed polls just before this healthy one."""
        if not streak.announced:  # nobody was told of an outage, so nobody needs telling it ended
            return None
        return "recovered", {"failures": streak.failures, "since": json_time(streak.since)}


@dataclass(frozen=True)
class _Streak:
    failures: int  # consecutive failed polls, the last one at or before `through`
    since: datetime | None  # when the first of them started
    announced: frozenset[str]  # the health alerts (failing, retired) those polls queued


def _failed_streak(session: Session, target_id: int, kind: str, *, through: int | None = None) -> _Streak:
    """The run of failed polls of (target, kind) that ends at poll id `through` (or just before it; None: its
    last poll)."""
    scope = (Poll.target_id == target_id, Poll.kind == kind)
    until = () if through is None else (Poll.id <= through,)
    last_ok = session.scalar(select(func.max(Poll.id)).where(*scope, Poll.status != PollStatus.FAILED, *until))
    in_streak = (*scope, Poll.id > (last_ok or 0), *until)
    failures, since = session.execute(select(func.count(), func.min(Poll.started_at)).where(*in_streak)).one()
    if not failures:  # the usual case, after every healthy poll: nothing can have been announced
        return _Streak(0, None, frozenset())
    announced = session.scalars(select(Alert.purpose).distinct().join(Poll, Alert.poll_id == Poll.id)
                                .where(*in_streak, Alert.purpose.in_((Purpose.FAILING, Purpose.RETIRED))))
    return _Streak(failures, since, frozenset(announced))


# --- notices of self-heal: what was put back, what was left alone ----------------------------


def queue_heal_notices(session: Session, config: Config, target: str, kind: str, healed: Iterable, fighting: Iterable
                       ) -> list[Alert]:
    """One notice per object self-heal put back (`healed`: (event, write result)) or left alone (`fighting`:
    events), routed as the object's drift is."""
    routing, label, now, rows = Routing(config), registry.get(kind).label, utcnow(), []
    target_id = session.scalar(select(Target.id).where(Target.name == target))
    told = [(Purpose.HEALED, event, {"back_to": event.from_version, "recorded_as": result.version})
            for event, result in healed]
    told += [(Purpose.FIGHTING, event, {}) for event in fighting]
    for purpose, event, extra in told:
        facts = [event_facts(event)]
        names = routing.channels_for(facts)
        if not names:
            continue
        detail = {"object_id": event.object_id, "name": event.name, "label": label, "event_id": event.event_id,
                  "paths": list(event.paths), **extra}
        row = Alert(purpose=purpose, target_id=target_id, kind=kind, severity=Severity.HIGH, created_at=now,
                    detail=detail, routing=facts,
                    title=notice_for(purpose, target, kind, detail).subject,
                    deliveries=routing.deliveries(purpose, names, now))
        session.add(row)
        rows.append(row)
    return rows


# --- notices from the outbox: dead deliveries, disabled channels ------------------------------


def queue_notice(session: Session, config: Config, purpose: str, detail: dict[str, Any], *,
                 exclude: str) -> Alert | None:
    """Queue a `dead` or `disabled` notice on every channel but `exclude`; None when there is none."""
    routing = Routing(config)
    facts = _operational_facts(None, None)
    names = routing.channels_for(facts, exclude=exclude)
    if not names:
        log.warning("%s: no other channel to tell", notice_for(purpose, None, None, detail).subject)
        return None
    now = utcnow()
    row = Alert(purpose=purpose, severity=Severity.HIGH, title=notice_for(purpose, None, None, detail).subject,
                detail=detail, routing=facts, created_at=now, deliveries=routing.deliveries(purpose, names, now))
    session.add(row)
    return row


