"""The shared schedule (issue 11): leases on (target, kind) rows, on SQLite and PostgreSQL."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.record.models import ScheduleEntry
from watcher.run import schedule
from watcher.times import utcnow

WANTED = {"prod": ["assistants", "agents"], "staging": ["assistants"]}
INTERVALS = {"prod": 60.0, "staging": 60.0}
LEASES = {"prod": 60.0, "staging": 60.0}


def rows(engine):
    with Session(engine) as session:
        return {(r.target, r.kind): r for r in session.scalars(select(ScheduleEntry))}


def test_sync_makes_a_row_per_configured_target_and_kind_due_now(engine):
    before = utcnow()
    schedule.sync(engine, WANTED, INTERVALS)
    found = rows(engine)
    assert set(found) == {("prod", "assistants"), ("prod", "agents"), ("staging", "assistants")}
    assert all(r.next_due_at >= before and r.lease_owner is None for r in found.values())


def test_sync_twice_keeps_the_rows_and_their_due_times(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    first = {key: r.next_due_at for key, r in rows(engine).items()}
    schedule.sync(engine, WANTED, INTERVALS)
    assert {key: r.next_due_at for key, r in rows(engine).items()} == first


def test_a_due_target_is_claimed_with_all_its_kinds_by_one_owner(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    claims, _ = schedule.claim(engine, "a", WANTED, 8, LEASES)
    assert sorted((c.target, sorted(c.kinds)) for c in claims) == \
        [("prod", ["agents", "assistants"]), ("staging", ["assistants"])]
    assert {r.lease_owner for r in rows(engine).values()} == {"a"}


def test_a_leased_target_is_not_claimed_by_another_owner(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    schedule.claim(engine, "a", WANTED, 8, LEASES)
    claims, _ = schedule.claim(engine, "b", WANTED, 8, LEASES)
    assert claims == []


def test_an_owner_claims_no_more_targets_than_its_free_slots(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    mine, _ = schedule.claim(engine, "a", WANTED, 1, LEASES)
    theirs, _ = schedule.claim(engine, "b", WANTED, 8, LEASES)
    assert len(mine) == 1 and len(theirs) == 1 and mine[0].target != theirs[0].target


def test_an_expired_lease_is_claimed_by_another_owner(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    schedule.claim(engine, "dead", WANTED, 8, LEASES)
    later = utcnow() + timedelta(seconds=61)
    claims, _ = schedule.claim(engine, "alive", WANTED, 8, LEASES, now=later)
    assert sorted(c.target for c in claims) == ["prod", "staging"]


def test_a_renewed_lease_outlives_its_first_expiry(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    [claim], _ = schedule.claim(engine, "a", {"prod": WANTED["prod"]}, 8, LEASES)
    assert schedule.renew(engine, "a", claim, 120.0)
    claims, _ = schedule.claim(engine, "b", WANTED, 8, LEASES, now=utcnow() + timedelta(seconds=61))
    assert [c.target for c in claims] == ["staging"]


def test_a_lease_taken_over_cannot_be_renewed_or_released_by_its_old_owner(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    [claim], _ = schedule.claim(engine, "old", {"staging": ["assistants"]}, 8, LEASES)
    schedule.claim(engine, "new", {"staging": ["assistants"]}, 8, LEASES, now=utcnow() + timedelta(seconds=61))
    assert not schedule.renew(engine, "old", claim, 60.0)
    schedule.release(engine, "old", claim, utcnow() + timedelta(hours=1))
    assert rows(engine)[("staging", "assistants")].lease_owner == "new"


def test_release_clears_the_lease_and_sets_the_next_due_time(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    [claim], _ = schedule.claim(engine, "a", {"staging": ["assistants"]}, 8, LEASES)
    due = utcnow() + timedelta(seconds=60)
    schedule.release(engine, "a", claim, due)
    row = rows(engine)[("staging", "assistants")]
    assert (row.lease_owner, row.lease_expires_at) == (None, None)
    assert abs((row.next_due_at - due).total_seconds()) < 0.001
    claims, soonest = schedule.claim(engine, "b", {"staging": ["assistants"]}, 8, LEASES)
    assert claims == [] and abs((soonest - due).total_seconds()) < 0.001


def test_sync_brings_a_row_due_later_than_a_shortened_interval_back_within_it(engine):
    schedule.sync(engine, WANTED, INTERVALS)
    [claim], _ = schedule.claim(engine, "a", {"staging": ["assistants"]}, 8, LEASES)
    schedule.release(engine, "a", claim, utcnow() + timedelta(hours=1))
    schedule.sync(engine, WANTED, {"staging": 10.0})
    assert rows(engine)[("staging", "assistants")].next_due_at <= utcnow() + timedelta(seconds=10)


def test_next_due_is_one_interval_after_the_start_plus_at_most_the_jitter():
    started = utcnow()
    due = schedule.next_due(started, 60.0, 5.0, now=started)
    assert timedelta(seconds=60) <= due - started <= timedelta(seconds=65)


def test_next_due_after_a_poll_longer_than_its_interval_is_now_not_in_the_past():
    started = utcnow() - timedelta(seconds=300)
    now = utcnow()
    assert schedule.next_due(started, 60.0, 0.0, now=now) == now


def test_a_lease_lasts_one_interval_but_never_less_than_the_floor():
    assert schedule.lease_seconds(300.0) == 300.0
    assert schedule.lease_seconds(1.0) == schedule.LEASE_FLOOR
