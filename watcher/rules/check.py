"""Rules checked on every new version a poll records, in its transaction (DESIGN "Rules: what is allowed").

A version that breaks a rule is a `violation` event naming the rule and what it says is wrong; the first
later version that satisfies it again is `resolved`. A rule that cannot be evaluated on an object (a
missing field, a type error, an answer that is not true or false) is a violation that says so: never a
crash, never a silent pass. The baseline is checked too: a violation is not drift.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

import cel
from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.config.rules import RuleConfig
from watcher.kinds.base import EventChange
from watcher.poll.outcome import CheckRules, PollOutcome, WrittenVersion, no_checks
from watcher.record.drift import DriftEvent
from watcher.record.models import Event
from watcher.times import utcnow

MESSAGE_LIMIT = 500  # characters of a violation's message kept (an evaluation error can quote the object)


def checker(rules: Iterable[RuleConfig]) -> CheckRules:
    """What a poll calls, in its recording transaction, with the versions it wrote."""
    rules = list(rules)
    return functools.partial(check, rules) if rules else no_checks


def bindings(body: dict[str, Any], about: dict[str, Any]) -> Any:
    """What the rules see of one version (`self`, `object`), converted to CEL once for all of them; or the
    error that converting it raised, which every rule then reports."""
    try:
        return cel.Context(variables={"self": body, "object": about})
    except Exception as exc:  # a value CEL has no type for: every rule says it cannot be evaluated
        return exc


def verdict(rule: RuleConfig, bound: Any) -> str | None:
    """None when the version `bound` (see `bindings`) satisfies `rule`, else what is wrong: its message, or
    why it cannot be evaluated."""
    try:
        if isinstance(bound, Exception):
            raise bound
        answer = rule.program.execute(bound)
    except Exception as exc:  # the library raises KeyError, TypeError, ValueError, RuntimeError: all are "cannot"
        return f"cannot be evaluated on this object: {type(exc).__name__}: {exc}"[:MESSAGE_LIMIT]
    if answer is True:
        return None
    if answer is False:
        return rule.message or rule.name
    return f"cannot be evaluated on this object: it gave {str(answer)[:100]!r}, not true or false"


def verdicts(rules: Iterable[RuleConfig], body: dict[str, Any], about: dict[str, Any]) -> list[tuple[RuleConfig,
                                                                                                   str | None]]:
    """Each rule that applies to the object `about` describes (target, kind, id, name), with its verdict on
    `body` (see `verdict`); the version is converted to CEL once, and only when a rule applies."""
    applying = [r for r in rules if r.applies_to(kind=about["kind"], name=about["name"], target=about["target"])]
    if not applying:
        return []
    bound = bindings(body, about)
    return [(rule, verdict(rule, bound)) for rule in applying]


def check(rules: list[RuleConfig], session: Session, outcome: PollOutcome, written: list[WrittenVersion]) -> None:
    """Record a violation or resolved event for each version that breaks a rule or satisfies it again."""
    judged = []
    for version in written:
        if not any(r.applies_to(kind=outcome.kind, name=version.name, target=outcome.target) for r in rules):
            continue  # its body is not even parsed
        body = json.loads(version.canonical)
        about = {"target": outcome.target, "kind": outcome.kind, "id": version.object_id, "name": version.name}
        judged.append((version, body, verdicts(rules, body, about)))
    if not judged:
        return
    last = _last_verdicts(session, [version.resource_id for version, _body, _found in judged])
    now = utcnow()
    recorded: list[tuple[Event, DriftEvent]] = []
    for version, body, found in judged:
        for rule, wrong in found:
            before = last.get((version.resource_id, rule.name))
            if wrong is not None and before != EventChange.VIOLATION:
                recorded.append(_event(outcome, version, rule, EventChange.VIOLATION, wrong, body, now))
            elif wrong is None and before == EventChange.VIOLATION:
                recorded.append(_event(outcome, version, rule, EventChange.RESOLVED, None, body, now))
    if not recorded:
        return
    session.add_all(row for row, _drift in recorded)
    session.flush()
    for row, drift in recorded:
        drift.event_id = row.id
        outcome.events.append(drift)


def _last_verdicts(session: Session, resource_ids: list[int]) -> dict[tuple[int, str], str]:
    """The last violation or resolved event of each (object, rule), by their ids."""
    rows = session.execute(select(Event.resource_id, Event.rule, Event.change)
                           .where(Event.resource_id.in_(resource_ids),
                                  Event.change.in_((EventChange.VIOLATION, EventChange.RESOLVED)))
                           .order_by(Event.id))
    return {(resource_id, rule or ""): change for resource_id, rule, change in rows}


def _event(outcome: PollOutcome, version: WrittenVersion, rule: RuleConfig, change: str, message: str | None,
           body: dict[str, Any], now) -> tuple[Event, DriftEvent]:
    row = Event(resource_id=version.resource_id, poll_id=outcome.poll_id, change=change, from_version=None,
                to_version=version.number, paths=[], detected_at=now, window_start=None, remote_updated_at=None,
                severity=rule.severity, rule=rule.name, message=message)
    drift = DriftEvent(event_id=0, target=outcome.target, kind=outcome.kind, object_id=version.object_id,
                       name=version.name, change=change, from_version=None, to_version=version.number, paths=[],
                       detected_at=now, window_start=None, remote_updated_at=None, new_body=body,
                       severity=rule.severity, rule=rule.name, message=message)
    return row, drift
