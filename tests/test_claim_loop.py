"""The daemon's claim loop on its own: it leases due schedule rows into free poll slots, on SQLite and PostgreSQL."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.record.models import ScheduleEntry
from watcher.run.activity import Activity
from watcher.run.claim_loop import ClaimLoop, Wanted, fair_share
from watcher.times import utcnow

WANTED = {"prod": ["assistants", "agents"], "staging": ["assistants"]}
INTERVALS = {"prod": 60.0, "staging": 60.0}


def wait_until(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def owners(engine) -> dict[tuple[str, str], str | None]:
    with Session(engine) as session:
        return {(r.target, r.kind): r.lease_owner for r in session.scalars(select(ScheduleEntry))}


class Polls:
    """Stands in for the daemon's poll pool: records each claim handed over, or refuses them all."""

    def __init__(self, refuse: bool = False):
        self.refuse, self.claims, self.lock = refuse, [], threading.Lock()

    def start(self, claim) -> None:
        with self.lock:
            self.claims.append(claim)
        if self.refuse:
            raise RuntimeError("cannot schedule new futures after shutdown")


@pytest.fixture
def run_loop(engine):
    started = []

    def run(polls: Polls, slots: int = 8, *, owner: str = "here", wanted: dict | None = None) -> ClaimLoop:
        activity = Activity()
        wanted = wanted or WANTED
        intervals = {name: 60.0 for name in wanted}
        loop = ClaimLoop(owner, slots, activity, Wanted(engine, wanted, intervals, 60.0), polls.start)
        loop.start()
        started.append((activity, loop))
        return loop

    yield run
    for activity, loop in started:
        activity.stop()
        loop.wake()


def test_the_claim_loop_hands_every_due_target_to_a_poll_with_all_its_kinds(engine, run_loop):
    polls = Polls()
    run_loop(polls)
    assert wait_until(lambda: len(polls.claims) == 2)
    assert sorted((c.target, sorted(c.kinds)) for c in polls.claims) == \
        [("prod", ["agents", "assistants"]), ("staging", ["assistants"])]
    assert set(owners(engine).values()) == {"here"}


def test_the_claim_loop_leases_no_more_targets_than_its_poll_slots(engine, run_loop):
    polls = Polls()
    run_loop(polls, slots=1)
    assert wait_until(lambda: len(polls.claims) == 1)
    time.sleep(1.2)  # two more looks at the schedule, at CLAIM_TICK
    assert len(polls.claims) == 1


def test_a_claim_given_back_frees_its_slot_for_the_next_due_target(engine, run_loop):
    polls = Polls()
    loop = run_loop(polls, slots=1)
    assert wait_until(lambda: len(polls.claims) == 1)
    loop.give_back(polls.claims[0], utcnow() + timedelta(hours=1))
    loop.wake()
    assert wait_until(lambda: len(polls.claims) == 2)
    assert {c.target for c in polls.claims} == {"prod", "staging"}


def test_a_claim_the_poll_pool_refuses_is_given_back_at_once(engine, run_loop):
    polls = Polls(refuse=True)
    run_loop(polls)
    assert wait_until(lambda: len(polls.claims) >= 2)
    assert wait_until(lambda: set(owners(engine).values()) == {None})  # not held for its 60 s lease


def test_two_daemons_looking_at_once_share_the_due_targets(engine, run_loop):
    wanted = {f"team-{n}": ["assistants"] for n in range(8)}
    here, there = Polls(), Polls()
    run_loop(here, owner="here", wanted=wanted)
    run_loop(there, owner="there", wanted=wanted)
    assert wait_until(lambda: len(here.claims) + len(there.claims) == 8)
    assert here.claims and there.claims, (len(here.claims), len(there.claims))
    assert {c.target for c in here.claims}.isdisjoint(c.target for c in there.claims)


def test_a_look_leases_half_the_free_slots_and_at_least_one():
    assert [fair_share(free) for free in (0, 1, 2, 3, 8)] == [0, 1, 1, 2, 4]
