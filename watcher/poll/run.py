"""One poll of one target and kind: list everything, compare, then record the drift at once.

Three phases, each with one job:

1. list: read every page through a `Source`; objects whose content hash differs from the
   record are spooled to a temporary file (`watcher.poll.spool`);
2. compare: for each spooled object, the diff against its recorded version, computed before
   any write lock is taken, so a slow diff never blocks an `ack` (`watcher.poll.recording.prepare`);
3. record: versions, events and alerts in one transaction (`watcher.poll.recording.record`),
   which refuses to write over a state another process recorded meanwhile.

A listing that fails changes nothing but the `polls` row that says why.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher.compare.normalize import rules_for
from watcher.display import counted
from watcher.errors import KindNotServed, SourceError, one_line
from watcher.kinds import registry
from watcher.kinds.base import Kind
from watcher.poll import attribution, recording
from watcher.poll.outcome import WORKER, CheckRules, ComposeAlerts, Context, LastPoll, PollOutcome, no_alerts, no_checks
from watcher.poll.spool import Known, collect, load_known, read_spool
from watcher.record.engine import ensure_target, installation_key
from watcher.record.locks import poll_lock
from watcher.record.models import Poll
from watcher.record.schema import PollStatus
from watcher.source.listing import Page, Source
from watcher.source.page_memory import PageMemory, PageSummary
from watcher.times import utcnow

log = logging.getLogger("watcher.poll")
tracebacks = logging.getLogger("watcher.traceback")  # shown only at -vv


# --- the edge: polling configured targets ---------------------------------------------------------


def poll_target(engine: Engine, target, **options) -> list[PollOutcome]:
    """Poll every kind of one configured target (see `poll_kinds`); the outcomes, kind by kind."""
    return list(poll_kinds(engine, target, **options))


def poll_kinds(engine: Engine, target, *, compose: ComposeAlerts = no_alerts, check: CheckRules = no_checks,
               progress=None,
               only: Iterable[str] | None = None, poll_timeout: float = 600.0,
               cancelled: Callable[[], bool] | None = None,
               memory: PageMemory | None = None) -> Iterator[PollOutcome]:
    """Poll every kind of one configured target, yielding each outcome as its poll is recorded.

    One kind failing does not stop the others.
    `only` names kinds to poll (default: the target's); a kind named there is asked even when it
    was not served before. Each kind's poll must end within `poll_timeout` seconds. Once
    `cancelled()` is true, KeyboardInterrupt is raised before the next request or record: the
    poll in flight is not recorded. A long-lived process passes its `memory` of pages, so the
    pages that come back byte for byte are not read again (see `watcher.source.page_memory`).
    """
    asked = list(only) if only is not None else list(target.kinds)
    secret_key = installation_key(engine)
    settings = settings_fingerprint(target)
    with Source(target, cancelled=cancelled) as source:
        for kind in _in_registry_order(asked):
            source.deadline = time.monotonic() + poll_timeout
            source.poll_timeout = poll_timeout
            context = Context(target.name, target.base_url, kind,
                              rules_for(kind, ignore=target.ignore, redact=target.redact, secret_key=secret_key),
                              settings, compose, check)
            label = f"{target.name}/{kind.name}"
            report = functools.partial(progress, label) if progress else None
            remembered, remember = None, None
            if memory is not None:
                remembered = memory.recall(target.name, kind.name, context.rules)
                remember = functools.partial(memory.keep, target.name, kind.name, context.rules)
            outcome = poll_kind(engine, context, functools.partial(source.pages, kind, remembered), progress=report,
                                ask_again=only is not None, cancelled=cancelled, remember=remember,
                                still_served=functools.partial(source.still_served, kind))
            if outcome.status == PollStatus.COMPLETE:  # after the commit: who made the drift, where an audit log says
                _attributed(outcome, attribution.attribute(engine, source, target.name, kind))
            if progress:
                progress(label, outcome.pages, outcome.objects, done=True)
            yield outcome


def _attributed(outcome: PollOutcome, actors: dict[int, dict[str, Any]]) -> None:
    for event in outcome.events:
        event.actor = actors.get(event.event_id, event.actor)


def _in_registry_order(names: list[str]) -> list[Kind]:
    """Parents before the kinds listed under them, so their listing is reused, not repeated."""
    order = registry.names()
    return [registry.get(name) for name in sorted(dict.fromkeys(names), key=order.index)]


def settings_fingerprint(target) -> str:
    """What identifies where a target's objects come from: a kind "not served here" is asked again when it changes."""
    fields = (target.provider, target.base_url, target.api_version, target.organization, target.project,
              target.api_key_env, target.api_key_file, target.admin_key_env, target.admin_key_file)
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


# --- one (target, kind) ----------------------------------------------------------------------------


def poll_kind(engine: Engine, context: Context, pages: Callable[[], Iterable[Page]], *,
              progress: Callable[[int, int], None] | None = None, ask_again: bool = False,
              cancelled: Callable[[], bool] | None = None,
              remember: Callable[[dict[bytes, PageSummary]], None] | None = None,
              still_served: Callable[[str], bool | None] | None = None) -> PollOutcome:
    """Poll (target, kind) from `pages()` and record the result, complete or failed.

    Once a poll is recorded complete, `remember` is given what to remember of its pages.
    `still_served(object_id)` asks the server for a recorded object the listing left out
    (see `Source.still_served`): a listing that leaves out a live object records no deletion.

    Raises only when even a failed poll cannot be recorded (the database is unreachable).
    """
    kind = context.kind.name
    with poll_lock(engine, context.target, kind):
        with Session(engine) as session, session.begin():
            target_id = ensure_target(session, context.target, context.base_url).id
            last = _last_poll(session, target_id, kind)
            if last is not None and last.status == PollStatus.NOT_SERVED and last.settings == context.settings \
                    and not ask_again:
                return PollOutcome(context.target, kind, PollStatus.NOT_SERVED, target_id=target_id,
                                   reason="not asked again until the target's settings change")
            known = load_known(session, target_id, kind)
            previous = _last_complete_poll(session, target_id, kind)
            _warn_if_rules_differ(session, target_id, context, previous)
        started = utcnow()
        log.debug("%s/%s: %d objects in the record; listing", context.target, kind, len(known))
        try:
            with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
                counts = collect(pages(), known, context.rules, spool, progress)
                log.debug("%s/%s: listed %s in %s: %d differ from the record, %d listed byte for byte as last "
                          "time (%s)", context.target, kind, counted(counts.objects, "object"),
                          counted(counts.pages, "page"), counts.differ, counts.same_bytes,
                          counted(counts.unread_pages, "page") + " not read again")
                if cancelled and cancelled():
                    raise KeyboardInterrupt  # interrupted while listing: this poll is not recorded
                if still_served is not None:
                    _confirm_missing(context, known, counts.seen, still_served)
                spool.seek(0)
                prepared = recording.prepare(engine, context, known, previous, read_spool(spool), counts)
                spool.seek(0)
                outcome = recording.record(engine, context, target_id, known, previous, started, counts, prepared,
                                           read_spool(spool))
                if remember is not None and outcome.status == PollStatus.COMPLETE:
                    remember(counts.listed)
                return outcome
        except KindNotServed as exc:
            return _record_not_served(engine, context, target_id, known, started, str(exc))
        except SourceError as exc:
            return _record_failure(engine, context, target_id, started, str(exc))
        except recording.AlreadyRecorded as exc:
            log.info("%s/%s: %s", context.target, kind, exc)
            return PollOutcome(context.target, kind, "skipped", target_id=target_id, reason=str(exc))
        except Exception as exc:  # hostile content or a database refusal: still a recorded, announced failure
            log.error("%s/%s: poll failed unexpectedly: %s: %s", context.target, kind, type(exc).__name__,
                      one_line(exc, 300))
            tracebacks.debug("traceback of that failure", exc_info=True)
            error = (f"{context.target}/{kind}: could not record this listing: {type(exc).__name__}: "
                     f"{one_line(exc, 300)}")
            return _record_failure(engine, context, target_id, started, error)


CONFIRMED = 3  # recorded objects missing from a listing that are asked for by id before it is believed


def _confirm_missing(context: Context, known: dict[str, Known], seen: set[str],
                     still_served: Callable[[str], bool | None]) -> None:
    """Believe a listing's deletions only once the missing objects are gone (a real deletion answers 404).

    Up to CONFIRMED of the recorded objects the listing left out are asked for. When those are all it left
    out of a listing that has objects, one still served is kept as it is recorded (added to `seen`: a
    listing that hides an object the server still has deletes nothing, and its other objects are still
    seen). Otherwise one still served fails the poll as incomplete: an empty first page from a proxy,
    `data: null`, a listing cut short.
    """
    missing = sorted(object_id for object_id, mine in known.items() if not mine.deleted and object_id not in seen)
    served = [object_id for object_id in missing[:CONFIRMED] if still_served(object_id)]
    if not served:
        return
    if seen and len(missing) <= CONFIRMED:
        log.info("%s/%s: %s left out of the listing but still served: kept as recorded", context.target,
                 context.kind.name, ", ".join(served))
        seen.update(served)
        return
    raise SourceError(f"{context.target}/{context.kind.name}: listing incomplete: "
                      f"{counted(len(missing), 'recorded object')} missing from it, but the server still "
                      f"serves {served[0]}; nothing is recorded as deleted")


def _last_complete_poll(session: Session, target_id: int, kind: str) -> LastPoll | None:
    row = session.execute(
        select(Poll.id, Poll.started_at, Poll.ignore, Poll.worker)
        .where(Poll.target_id == target_id, Poll.kind == kind, Poll.status == PollStatus.COMPLETE)
        .order_by(Poll.id.desc())
        .limit(1)
    ).first()
    return LastPoll(row[0], row[1], row[2], row[3]) if row else None


_rules_warned: set[tuple[str, str]] = set()  # (target, kind) whose ignore rules differ from another process's


def _warn_if_rules_differ(session: Session, target_id: int, context: Context, previous: LastPoll | None) -> None:
    """Once per (target, kind) and process: processes with other ignore rules take turns polling it (the
    last poll's rules differ from ours, the one before had ours), so each poll records the objects again
    (as a rules change, not an edit) until their configs agree. A single change of config is no warning."""
    if previous is None or previous.worker in (None, WORKER):
        return
    ours, theirs = list(context.rules.ignore), list(previous.ignore or [])
    key = (context.target, context.kind.name)
    if ours == theirs or key in _rules_warned:
        return
    before = session.scalar(select(Poll.ignore).where(Poll.target_id == target_id, Poll.kind == key[1],
                                                      Poll.status == PollStatus.COMPLETE, Poll.id < previous.id)
                            .order_by(Poll.id.desc()).limit(1))
    if list(before or []) != ours:
        return
    _rules_warned.add(key)
    log.warning("%s/%s: the last poll, by %s, ignored %s and this process ignores %s: each poll by either records "
                "new versions (noted as a rules change) until every process has the same config", *key,
                previous.worker, theirs or "nothing", ours or "nothing")


def _last_poll(session: Session, target_id: int, kind: str) -> Poll | None:
    return session.scalar(select(Poll).where(Poll.target_id == target_id, Poll.kind == kind)
                          .order_by(Poll.id.desc()).limit(1))


def _record_failure(engine, context: Context, target_id, started, error, retired=False) -> PollOutcome:
    kind = context.kind.name
    outcome = PollOutcome(context.target, kind, PollStatus.FAILED, target_id=target_id, error=error, retired=retired)
    with Session(engine) as session, session.begin():
        poll = Poll(target_id=target_id, kind=kind, started_at=started, finished_at=utcnow(), status=PollStatus.FAILED,
                    error=error, settings=context.settings, worker=WORKER)
        session.add(poll)
        session.flush()
        outcome.poll_id = poll.id
        session.add_all(context.compose(session, outcome))
    return outcome


def _record_not_served(engine, context: Context, target_id, known, started, error) -> PollOutcome:
    """404 for a whole kind: loud when objects were recorded, else "not served here" once."""
    kind = context.kind.name
    recorded = sum(not k.deleted for k in known.values())
    if recorded:
        message = (f"{context.target}/{kind}: this endpoint no longer serves {kind} ({error.split(': ', 1)[-1]}); "
                   f"{recorded} recorded {kind} kept as they were")
        return _record_failure(engine, context, target_id, started, message, retired=True)
    outcome = PollOutcome(context.target, kind, PollStatus.NOT_SERVED, target_id=target_id,
                          error=f"{kind} not served by this endpoint")
    with Session(engine) as session, session.begin():
        earlier = session.scalar(
            select(func.count()).select_from(Poll)
            .where(Poll.target_id == target_id, Poll.kind == kind, Poll.status == PollStatus.NOT_SERVED)
        )
        outcome.first_not_served = earlier == 0
        poll = Poll(target_id=target_id, kind=kind, started_at=started, finished_at=utcnow(),
                    status=PollStatus.NOT_SERVED, error=outcome.error, settings=context.settings, worker=WORKER)
        session.add(poll)
        session.flush()
        outcome.poll_id = poll.id
        session.add_all(context.compose(session, outcome))
    return outcome


