"""Alerts: what the watcher tells people, composed in the poll's transaction, stored once.

`composer(config)` gives the poll a function that turns its outcome into alerts inside the
poll's own transaction (invariant 3): one alert per drift event, or above `digest_threshold`
one digest for the channels that take digests (every event still reaches a webhook on its
own); one "failing" alert per outage of a (target, kind), one "recovered" when it ends, one
"retired" when a kind with recorded objects starts answering 404. Each alert gets one
delivery per channel it is routed to: the watchlist email when someone is on it, the default
channels (`[alerts] channels`, else every `[[channels]]` entry), and the channels of every
matching route.

Nothing is rendered here: a channel renders an alert when it delivers it (`load` reads it
back from the record), so the poll's transaction stays short, a template or recipient fixed
later helps alerts already queued, and a rendering bug can never cost a poll its record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from watcher import notices, render, templating
from watcher.compare import diff
from watcher.config.model import Config
from watcher.config.routing import WATCHLIST_CHANNEL
from watcher.kinds import registry
from watcher.poll.outcome import ComposeAlerts, PollOutcome, no_alerts
from watcher.record.documents import event_severity
from watcher.record.drift import DriftEvent
from watcher.record.models import Alert, Delivery, Event, Poll, Version
from watcher.times import json_time, utcnow

log = logging.getLogger("watcher.alerts")

HEALTH = ("failing", "recovered", "retired")


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
        from watcher import channels
        from watcher.channels.email import recipients

        self.config, self.recipients = config, recipients
        self.channels = channels.configured(config)
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
        return [Delivery(channel=name, state="pending", purpose=purpose, attempts=0, created_at=now,
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
        if outcome.status == "complete" and not outcome.baseline and outcome.events:
            rows += self._drift(outcome)
        return rows

    # -- drift ---------------------------------------------------------------------------------

    def _drift(self, outcome: PollOutcome) -> list[Alert]:
        now = utcnow()
        routed = [(event, self.routing.channels_for([event_facts(event)])) for event in outcome.events]
        digest = len(outcome.events) > self.config.alerts.digest_threshold
        takes_digest = {name for name, cls in self.routing.channels.items() if digest and cls.digests}
        rows = []
        for event, names in routed:
            one_by_one = [name for name in names if name not in takes_digest]
            if one_by_one:
                rows.append(self._alert("event", outcome, now, one_by_one, event_id=event.event_id,
                                        severity=event.severity, title=render.event_subject(event, event.severity),
                                        routing=[event_facts(event)]))
        named = dict.fromkeys(n for _e, names in routed for n in names)
        digest_names = [name for name in named if name in takes_digest]
        if digest_names:
            rows.append(self._alert("digest", outcome, now, digest_names, title=render.digest_subject(outcome.events),
                                    severity="high" if any(e.severity == "high" for e in outcome.events) else "low",
                                    detail={"event_ids": [e.event_id for e in outcome.events]},
                                    routing=[event_facts(e) for e in outcome.events]))
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
        if outcome.status == "failed":
            notice = self._failure(outcome, _failed_streak(session, outcome.target_id, outcome.kind,
                                                           through=outcome.poll_id))
        else:
            notice = self._recovery(_failed_streak(session, outcome.target_id, outcome.kind,
                                                   through=outcome.poll_id - 1))
        if notice is None:
            return []
        purpose, detail = notice
        if purpose in ("failing", "recovered") and self._another_kind_failing(session, outcome.target_id,
                                                                              outcome.target, outcome.kind):
            # One outage of a target is one alert and one recovery, whatever the number of its kinds: this
            # kind's streak is recorded as announced (its row), but told only by the target's first and last.
            names = []
        title = _notice(purpose, outcome.target, outcome.kind, detail).subject
        return [self._alert(purpose, outcome, utcnow(), names, severity="low" if purpose == "recovered" else "high",
                            title=title, detail=detail, routing=facts)]

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
    last_ok = session.scalar(select(func.max(Poll.id)).where(*scope, Poll.status != "failed", *until))
    in_streak = (*scope, Poll.id > (last_ok or 0), *until)
    failures, since = session.execute(select(func.count(), func.min(Poll.started_at)).where(*in_streak)).one()
    if not failures:  # the usual case, after every healthy poll: nothing can have been announced
        return _Streak(0, None, frozenset())
    announced = session.scalars(select(Alert.purpose).distinct().join(Poll, Alert.poll_id == Poll.id)
                                .where(*in_streak, Alert.purpose.in_(("failing", "retired"))))
    return _Streak(failures, since, frozenset(announced))


# --- notices from the outbox: dead deliveries, disabled channels ------------------------------


def queue_notice(session: Session, config: Config, purpose: str, detail: dict[str, Any], *,
                 exclude: str) -> Alert | None:
    """Queue a `dead` or `disabled` notice on every channel but `exclude`; None when there is none."""
    routing = Routing(config)
    facts = _operational_facts(None, None)
    names = routing.channels_for(facts, exclude=exclude)
    if not names:
        log.warning("%s: no other channel to tell", _notice(purpose, None, None, detail).subject)
        return None
    now = utcnow()
    row = Alert(purpose=purpose, severity="high", title=_notice(purpose, None, None, detail).subject, detail=detail,
                routing=facts, created_at=now, deliveries=routing.deliveries(purpose, names, now))
    session.add(row)
    return row


# --- reading an alert back, to deliver it -----------------------------------------------------


def load(session: Session, alert_id: int | None):
    """The alert as channels render it (a `watcher.channels.Alert`), read from the record now (the
    latest `actor` included)."""
    from watcher import channels  # not for the feed, which reads events only

    row = session.get(Alert, alert_id) if alert_id is not None else None
    if row is None:  # a delivery queued by hand, with its email already rendered
        return channels.Alert(0, "event", "", "low", None, None, utcnow())
    target = row.target.name if row.target else None
    events: tuple = ()
    if row.purpose == "event" and row.event_id is not None:
        event = session.get(Event, row.event_id)
        if event is None:  # the foreign key, and prune keeps every event an alert it keeps names
            raise LookupError(f"alert {row.id}: its event {row.event_id} is not in the record")
        events = (recorded_drift(session, event),)
    elif row.purpose == "digest" and row.detail:
        found = session.scalars(select(Event).where(Event.id.in_(row.detail.get("event_ids", []))).order_by(Event.id))
        events = tuple(recorded_drift(session, event, with_changes=False) for event in found)
    notice = None
    if not events:
        notice = _notice(row.purpose, target, row.kind, row.detail) if row.detail is not None else \
            notices.Notice(row.purpose, row.title, row.title, [], [])  # a row from before channels
    return channels.Alert(row.id, row.purpose, row.title, row.severity, target, row.kind, row.created_at, events,
                          notice, dict(row.detail or {}), tuple(row.routing or ()))


def _notice(purpose: str, target: str | None, kind: str | None, detail: dict[str, Any]) -> notices.Notice:
    target, kind = target or "", kind or ""
    if purpose == "failing":
        return notices.failing_notice(target, kind, detail.get("error", ""), detail.get("failures", 0),
                                     _time(detail.get("since")))
    if purpose == "recovered":
        return notices.recovered_notice(target, kind, detail.get("failures", 0), _time(detail.get("since")))
    if purpose == "retired":
        return notices.retired_notice(target, kind, detail.get("error", ""))
    if purpose == "dead":
        return notices.dead_notice(detail.get("channel", ""), detail.get("deliveries", []),
                                  detail.get("give_up_after", ""))
    if purpose == "disabled":
        return notices.disabled_notice(detail.get("channel", ""), detail.get("reason", ""))
    return notices.Notice(purpose, purpose, purpose, [], [])


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def recorded_drift(session: Session, row: Event, *, with_changes: bool = True) -> DriftEvent:
    """A recorded event as the poll described it: its versions' bodies and (with_changes) their diff.

    The diff is limited to the event's recorded paths: what ignore rules hid or revealed
    between the two versions was never drift.
    """
    resource = row.resource
    old = _body(session, resource.id, row.from_version)
    new = _body(session, resource.id, row.to_version)
    changes: list[diff.Change] = []
    if with_changes and row.change in ("modified", "reappeared") and old is not None and new is not None:
        wanted = set(row.paths or [])
        changes = [change for change in diff.compare(old, new) if change.path in wanted]
    return DriftEvent(event_id=row.id, target=resource.target.name, kind=resource.kind, object_id=resource.remote_id,
                      name=_name_at(resource, new or old or {}), change=row.change, from_version=row.from_version,
                      to_version=row.to_version, paths=list(row.paths or []), changes=changes,
                      detected_at=row.detected_at, window_start=row.window_start,
                      remote_updated_at=row.remote_updated_at, old_body=old, new_body=new,
                      severity=event_severity(row), actor=row.actor)


def _name_at(resource, body: dict[str, Any]) -> str | None:
    """The object's name at that version (a renamed object), or the record's label where the listing made it."""
    kind = registry.get(resource.kind) if resource.kind in registry.names() else None
    if kind is not None and kind.named_under_parent:
        return resource.name
    named = body.get(kind.name_field if kind else "name")
    return named if isinstance(named, str) else resource.name


def _body(session: Session, resource_id: int, number: int | None) -> dict[str, Any] | None:
    if number is None:
        return None
    body = session.scalar(select(Version.body).where(Version.resource_id == resource_id, Version.number == number))
    return json.loads(body) if body else None
