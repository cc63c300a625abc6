"""Polling and recording: the invariants of the contract, one test each."""

import threading
from datetime import UTC

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from watcher.compare.normalize import rules_for
from watcher.poll.run import poll_target
from watcher.record.models import Delivery, Event, Poll, Resource, Version
from watcher.sandbox.server import Sandbox


@pytest.fixture
def target_of(make_target):
    """The configured target for a sandbox: its assistants and agents unless `extra` TOML names kinds."""

    def make(sandbox, extra: str = ""):
        kinds = None if "kinds" in extra else ["assistants", "agents"]
        return make_target(sandbox.url, key=sandbox.api_key, kinds=kinds, extra=extra)

    return make


@pytest.fixture
def poll(engine, sandbox, target_of):
    """Polls the sandbox's assistants and agents once; returns {kind: outcome}."""

    def run(extra: str = "", **kwargs):
        outcomes = poll_target(engine, target_of(sandbox, extra), **kwargs)
        return {o.kind: o for o in outcomes}

    return run


def count(engine, model, *where):
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def events(engine):
    with Session(engine) as session:
        return [(e.change, e.resource.remote_id, e.from_version, e.to_version, e.paths)
                for e in session.scalars(select(Event).order_by(Event.id))]


# --- invariant 5: the first complete poll is the baseline ---


def test_first_poll_records_a_baseline_version_of_every_object(engine, sandbox, poll):
    outcomes = poll()
    assert outcomes["assistants"].baseline and outcomes["agents"].baseline
    assert count(engine, Version) == 10
    assert count(engine, Version, Version.origin == "baseline") == 10


def test_baseline_makes_no_events(engine, sandbox, poll):
    poll()
    assert events(engine) == []


# --- invariant 6: identical content never makes a new version ---


def test_unchanged_poll_adds_no_version_and_no_event(engine, sandbox, poll):
    poll()
    outcomes = poll()
    assert not outcomes["assistants"].baseline
    assert count(engine, Version) == 10
    assert events(engine) == []


def test_every_poll_is_recorded_with_counts(engine, sandbox, poll):
    poll()
    poll()
    with Session(engine) as session:
        rows = list(session.scalars(select(Poll).order_by(Poll.id)))
    assert [(p.kind, p.status, p.objects, p.pages) for p in rows] == [
        ("assistants", "complete", 5, 1), ("agents", "complete", 5, 1),
    ] * 2
    assert all(p.finished_at >= p.started_at for p in rows)


# --- drift events ---


def test_modified_object_gets_a_new_version_and_an_event_with_paths(engine, sandbox, poll):
    poll()
    victim = sandbox.objects("assistants")[1]
    sandbox.edit("assistants", victim["id"], model="gpt-4.1-nano", instructions=victim["instructions"] + "\nBe brief.")
    poll()
    assert events(engine) == [("modified", victim["id"], 1, 2, ["instructions", "model"])]
    assert count(engine, Version, Version.origin == "poll") == 1


def test_created_object_is_an_event(engine, sandbox, poll):
    poll()
    new = sandbox.add("assistants", name="Fresh Bot", model="gpt-4.1")
    poll()
    assert events(engine) == [("created", new["id"], None, 1, [])]


def test_deleted_object_is_an_event_and_keeps_its_versions(engine, sandbox, poll):
    poll()
    gone = sandbox.objects("agents")[0]["id"]
    sandbox.remove("agents", gone)
    poll()
    assert events(engine) == [("deleted", gone, 1, None, [])]
    assert count(engine, Resource, Resource.remote_id == gone, Resource.deleted_at.is_not(None)) == 1


def test_reappeared_object_is_an_event_and_no_new_version_when_identical(engine, sandbox, poll):
    poll()
    obj = sandbox.objects("assistants")[0]
    sandbox.remove("assistants", obj["id"])
    poll()
    sandbox.add("assistants", **obj)  # the same id and content come back
    poll()
    assert [e[0] for e in events(engine)] == ["deleted", "reappeared"]
    assert events(engine)[1][2:4] == (1, 1)
    assert count(engine, Version, Version.resource_id.is_not(None)) == 10


def test_window_start_is_the_last_poll_that_saw_the_old_content(engine, sandbox, poll):
    poll()
    poll()
    with Session(engine) as session:
        second_start = session.scalars(select(Poll.started_at).where(Poll.kind == "agents").order_by(Poll.id)).all()[1]
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], instructions="new")
    poll()
    with Session(engine) as session:
        event = session.scalar(select(Event))
        assert event.window_start == second_start
        assert event.detected_at > event.window_start


def test_agent_event_carries_the_remote_updated_at(engine, sandbox, poll):
    poll()
    agent = sandbox.edit("agents", sandbox.objects("agents")[0]["id"], instructions="changed")
    poll()
    with Session(engine) as session:
        event = session.scalar(select(Event))
        assert int(event.remote_updated_at.timestamp()) == agent["updated_at"]


# --- ignore rules ---


def test_change_only_in_an_ignored_path_is_not_drift(engine, sandbox, poll):
    poll('ignore = ["metadata.hwm"]')
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], metadata={**agent.get("metadata", {}), "hwm": "123456"})
    poll('ignore = ["metadata.hwm"]')
    assert events(engine) == []
    assert count(engine, Version) == 10


def test_adding_an_ignore_rule_is_not_drift(engine, sandbox, poll):
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], metadata={"hwm": "1", "team": "ops"})
    poll()
    poll('ignore = ["metadata.hwm"]')
    assert events(engine) == []


def test_removing_an_ignore_rule_is_not_drift_but_records_what_it_reveals(engine, sandbox, poll):
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], metadata={"hwm": "1", "team": "ops"})
    poll('ignore = ["metadata.hwm"]')
    poll()
    assert events(engine) == []
    revealed = [o for kind in ("assistants", "agents") for o in sandbox.objects(kind) if "hwm" in (o.get("metadata") or {})]
    assert count(engine, Version) == 10 + len(revealed)  # the revealed values are now part of the record


def test_a_version_recorded_because_the_rules_changed_says_so(engine, sandbox, poll):
    from watcher.record.schema import RULES_CHANGED

    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], metadata={"hwm": "1", "team": "ops"})
    poll('ignore = ["metadata.hwm"]')
    poll()
    with Session(engine) as session:
        notes = {(v.number, v.origin, v.note) for v in session.scalars(
            select(Version).join(Resource).where(Resource.remote_id == agent["id"]))}
    assert notes == {(1, "baseline", None), (2, "poll", RULES_CHANGED)}


def test_a_real_change_beside_a_removed_rule_is_still_drift(engine, sandbox, poll):
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], metadata={"hwm": "1", "team": "ops"})
    poll('ignore = ["metadata.hwm"]')
    sandbox.edit("agents", agent["id"], model="gpt-5")
    poll('ignore = ["metadata.team"]')  # one rule removed, another added, and a real change
    assert [(e[0], e[1], e[4]) for e in events(engine)] == [("modified", agent["id"], ["model"])]


# --- invariant 1: all or nothing per target and kind ---


@pytest.fixture
def two_page_sandbox():
    with Sandbox(assistants=150, agents=3) as sb:
        yield sb


def test_incomplete_listing_changes_nothing_and_infers_no_deletion(engine, two_page_sandbox, target_of):
    target = target_of(two_page_sandbox)
    poll_target(engine, target)
    two_page_sandbox.remove("assistants", two_page_sandbox.objects("assistants")[0]["id"])
    two_page_sandbox.fail_pages_after_first(status=500)
    outcomes = {o.kind: o for o in poll_target(engine, target)}
    assert outcomes["assistants"].status == "failed"
    assert "HTTP 500" in outcomes["assistants"].error
    assert events(engine) == []
    assert count(engine, Resource, Resource.deleted_at.is_not(None)) == 0
    with Session(engine) as session:
        failed = session.scalar(select(Poll).where(Poll.status == "failed"))
        assert failed.kind == "assistants" and "HTTP 500" in failed.error


def test_one_kind_failing_does_not_stop_the_other(engine, two_page_sandbox, target_of):
    target = target_of(two_page_sandbox)
    poll_target(engine, target)
    two_page_sandbox.edit("agents", two_page_sandbox.objects("agents")[0]["id"], instructions="changed")
    two_page_sandbox.fail_pages_after_first(status=500)
    outcomes = {o.kind: o for o in poll_target(engine, target)}
    assert outcomes["assistants"].status == "failed"
    assert outcomes["agents"].status == "complete"
    assert [e[0] for e in events(engine)] == ["modified"]


@pytest.mark.parametrize("quirk", ["empty_listing", "null_data"])
def test_an_empty_listing_of_objects_still_served_records_no_deletion(engine, sandbox, poll, quirk):
    poll()
    sandbox.set_quirk(quirk)
    outcome = poll()["assistants"]
    assert outcome.status == "failed"
    assert "listing incomplete: 5 recorded objects missing from it, but the server still serves" in outcome.error
    assert events(engine) == []
    assert count(engine, Resource, Resource.deleted_at.is_not(None)) == 0


def test_an_account_emptied_for_real_records_every_deletion(engine, sandbox, poll):
    poll()
    for obj in sandbox.objects("assistants"):
        sandbox.remove("assistants", obj["id"])
    outcome = poll()["assistants"]
    assert outcome.status == "complete" and outcome.objects == 0
    assert [e[0] for e in events(engine)] == ["deleted"] * 5


def test_an_empty_first_listing_of_a_new_kind_is_a_baseline_of_nothing(engine, sandbox, poll):
    sandbox.set_quirk("null_data")
    outcome = poll()["assistants"]
    assert outcome.status == "complete" and outcome.objects == 0 and events(engine) == []


# --- invariant 2: a retired kind is loud, a never-served kind is said once ---


def test_retired_kind_with_recorded_objects_is_a_loud_failure_not_deletions(engine, sandbox, poll):
    poll()
    sandbox.retire("assistants")
    outcome = poll()["assistants"]
    assert outcome.status == "failed" and outcome.retired
    assert "this endpoint no longer serves assistants" in outcome.error
    assert count(engine, Resource, Resource.deleted_at.is_not(None)) == 0
    assert events(engine) == []


def test_kind_not_served_on_first_poll_is_reported_once_then_not_asked_again(engine, sandbox, poll):
    sandbox.retire("assistants")
    first = poll()["assistants"]
    asked = sandbox.count_requests("GET", "/v1/assistants")
    second = poll()["assistants"]
    assert first.status == second.status == "not_served"
    assert first.first_not_served and first.ok
    assert second.poll_id is None and "not asked again" in second.reason
    assert sandbox.count_requests("GET", "/v1/assistants") == asked == 1  # no request on later polls


def test_a_kind_not_served_is_asked_again_when_the_settings_change_or_when_named(engine, sandbox, poll):
    sandbox.retire("assistants")
    poll()
    sandbox.restore_kind("assistants")
    assert poll()["assistants"].poll_id is None  # not asked
    assert poll('organization = "org-new"\n')["assistants"].status == "complete"  # settings changed: asked


def test_snapshot_kind_asks_a_kind_not_served_before(engine, sandbox, poll, target_of):
    sandbox.retire("assistants")
    poll()
    sandbox.restore_kind("assistants")
    [outcome] = poll_target(engine, target_of(sandbox), only=["assistants"])
    assert outcome.status == "complete"


# --- invariant 3: versions, events and outbox rows commit together ---


def test_an_error_before_commit_writes_nothing_of_the_poll_but_its_failure(engine, sandbox, target_of):
    target = target_of(sandbox)
    poll_target(engine, target)
    edited = sandbox.objects("assistants")[2]["id"]
    sandbox.edit("assistants", edited, instructions="out of band")

    def crash(_session, outcome):
        if outcome.events:
            raise RuntimeError("power cut while composing alerts")
        return []

    assistants, agents = poll_target(engine, target, compose=crash)
    assert (assistants.status, agents.status) == ("failed", "complete")  # the other kind is still polled
    assert assistants.error == "prod/assistants: could not record this listing: RuntimeError: power cut while composing alerts"
    assert events(engine) == []
    assert count(engine, Version) == 10
    poll_target(engine, target)
    assert [(e[0], e[1]) for e in events(engine)] == [("modified", edited)]


def test_outbox_rows_commit_with_the_events(engine, sandbox, target_of):
    from datetime import datetime

    target = target_of(sandbox)
    poll_target(engine, target)
    sandbox.edit("agents", sandbox.objects("agents")[1]["id"], model="gpt-5")

    def one_mail_per_event(_session, outcome):
        now = datetime.now(UTC)
        return [Delivery(purpose="event", recipients=["ops@example.com"], subject=f"{e.change} {e.object_id}",
                              text_body="t", html_body="h", message_id=f"<{e.event_id}@test>", created_at=now,
                              attempts=0, next_attempt_at=now) for e in outcome.events]

    poll_target(engine, target, compose=one_mail_per_event)
    assert count(engine, Delivery) == count(engine, Event) == 1


# --- invariant 9: processes sharing a database never record a change twice ---


def test_concurrent_polls_of_one_target_record_a_change_once(engine, sandbox, target_of):
    target = target_of(sandbox)
    poll_target(engine, target)
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], instructions="raced")
    sandbox.set_latency(0.05)
    errors = []

    def worker():
        try:
            poll_target(engine, target)
        except Exception as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert [e[0] for e in events(engine)] == ["modified"]
    assert count(engine, Version) == 11


def _in_threads(work, args_list) -> list:
    results, errors = [], []

    def run(*args):
        try:
            results.append(work(*args))
        except Exception as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    return results


def test_as_many_targets_as_the_daemon_polls_at_once_fit_the_connection_pool(engine, sandbox, make_target):
    from watcher.config.values import MAX_CONCURRENT_POLLS

    targets = [make_target(sandbox.url, key=sandbox.api_key, name=f"t{n}", kinds=["assistants", "agents"])
               for n in range(MAX_CONCURRENT_POLLS)]
    engine.pool._timeout = 5  # exhaustion shows as a pool timeout; no need to wait the default 30 s
    sandbox.set_latency(0.3)  # every poll holds its lock connection while it lists
    results = _in_threads(lambda t: poll_target(engine, t), [(t,) for t in targets])
    assert sorted(o.status for outcomes in results for o in outcomes) == ["complete"] * 2 * MAX_CONCURRENT_POLLS


def test_two_processes_creating_one_new_target_at_once_both_record(store_url, sandbox, make_target):
    from watcher.record.engine import open_engine

    engines = [open_engine(store_url), open_engine(store_url)]  # two pools, as two processes have
    for attempt in range(5):  # the window is small: several new targets make a lost race all but certain
        start = threading.Barrier(2)

        def poll_when_both_ready(engine, kind, attempt=attempt, start=start):
            target = make_target(sandbox.url, key=sandbox.api_key, name=f"new{attempt}", kinds=[kind])
            start.wait(timeout=30)
            return poll_target(engine, target)

        results = _in_threads(poll_when_both_ready, [(engines[0], "assistants"), (engines[1], "agents")])
        assert sorted(o.status for outcomes in results for o in outcomes) == ["complete", "complete"]
    for e in engines:
        e.dispose()


# --- pagination defects and normalization seen through a whole poll ---


def test_server_switching_to_milliseconds_and_nulls_is_not_drift(engine, sandbox, poll):
    poll()
    sandbox.set_quirk("timestamps_ms")
    sandbox.set_quirk("nulls_for_empty")
    poll()
    assert events(engine) == []
    assert count(engine, Version) == 10


def test_listing_with_repeated_ids_records_a_failed_poll(engine, two_page_sandbox, target_of):
    target = target_of(two_page_sandbox)
    two_page_sandbox.set_quirk("repeat_id")
    outcome = {o.kind: o for o in poll_target(engine, target)}["assistants"]
    assert outcome.status == "failed" and "repeats id" in outcome.error
    assert count(engine, Resource, Resource.kind == "assistants") == 0


# --- invariants 6 and 9 without trusting the lock (issue 11 item 0) ---


def _poll_losing_the_lock_midway(engine, target, lose_lock):
    """Poll `target`'s assistants; after the first page call `lose_lock()`, then let another process poll."""
    from watcher.kinds import registry
    from watcher.poll.outcome import Context
    from watcher.poll.run import poll_kind, settings_fingerprint
    from watcher.record.engine import installation_key
    from watcher.source.listing import Source

    kind = registry.get("assistants")
    context = Context(target.name, target.base_url, kind,
                      rules_for(kind, ignore=target.ignore, secret_key=installation_key(engine)),
                      settings_fingerprint(target))

    def pages():
        with Source(target) as source:
            for number, page in enumerate(source.pages(kind)):
                if number == 0:
                    lose_lock()
                    poll_target(engine, target)  # the other process, which now gets the lock
                yield page

    return poll_kind(engine, context, pages)


def _terminate_advisory_lock_holders(engine):
    from sqlalchemy import text

    with engine.connect() as connection:
        # Only this database's lock holders: other test runs may share the server.
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND pid <> pg_backend_pid() AND database = "
                                "(SELECT oid FROM pg_database WHERE datname = current_database())"))
        connection.commit()


def test_a_poll_whose_lock_was_lost_records_nothing_twice(engine, sandbox, target_of, monkeypatch):
    import contextlib

    target = target_of(sandbox, 'kinds = ["assistants"]')
    poll_target(engine, target)
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], model="gpt-4.1-nano")
    sandbox.add("assistants", name="Brand New", model="gpt-4o")
    if engine.dialect.name == "postgresql":
        lose = lambda: _terminate_advisory_lock_holders(engine)  # noqa: E731  (a real dropped connection)
    else:
        lose = lambda: monkeypatch.setattr("watcher.poll.run.poll_lock", lambda *_a: contextlib.nullcontext())  # noqa
    outcome = _poll_losing_the_lock_midway(engine, target, lose)
    assert outcome.status == "skipped" and outcome.reason.startswith("already recorded by another process")
    assert sorted(e[0] for e in events(engine)) == ["created", "modified"]
    assert count(engine, Version) == 5 + 1 + 1  # baseline, the edit's version 2, the new object's version 1


# --- a failure is one line; its traceback only at -vv (issue 9 item 6) ---


def test_an_unexpected_failure_logs_one_line_and_keeps_the_traceback_for_vv(engine, sandbox, target_of, caplog):
    import logging

    target = target_of(sandbox, 'kinds = ["assistants"]')
    poll_target(engine, target)
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], instructions="out of band")

    def crash(_session, outcome):
        if outcome.status == "complete":
            raise RuntimeError("the database refused the write")
        return []

    caplog.set_level(logging.DEBUG, logger="watcher")
    logging.getLogger("watcher.traceback").setLevel(logging.WARNING)  # as without -vv
    poll_target(engine, target, compose=crash)
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert "RuntimeError: the database refused the write" in record.getMessage()
    caplog.clear()
    logging.getLogger("watcher.traceback").setLevel(logging.DEBUG)  # as with -vv
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], instructions="out of band again")
    poll_target(engine, target, compose=crash)
    assert any(r.exc_info for r in caplog.records if r.name == "watcher.traceback")


def test_an_object_listed_with_other_bytes_but_the_same_content_gets_its_new_raw_fingerprint(
        engine, sandbox, make_target):
    """A vector store searched: only its usage moved, no drift; its new bytes are remembered, so the next
    poll does not normalize it again."""
    target = make_target(sandbox.url, key=sandbox.api_key, kinds=["vector_stores"])
    poll_target(engine, target)
    store = sandbox.objects("vector_stores")[0]

    def raw_hash():
        with Session(engine) as session:
            return session.scalar(select(Resource.raw_hash).where(Resource.remote_id == store["id"]))

    before = raw_hash()
    sandbox.use("vector_stores", store["id"])
    [outcome] = poll_target(engine, target)
    assert outcome.events == [] and count(engine, Version) == len(sandbox.objects("vector_stores"))
    assert raw_hash() not in (before, None)


def _mark_last_poll_as_another_process(engine):
    from sqlalchemy import update

    with Session(engine) as session, session.begin():
        last = session.scalar(select(func.max(Poll.id)))
        session.execute(update(Poll).where(Poll.id == last).values(worker="elsewhere:1:abcdef"))


def test_processes_taking_turns_with_other_ignore_rules_are_warned_about_once(engine, sandbox, make_target, caplog,
                                                                             monkeypatch):
    monkeypatch.setattr("watcher.poll.run._rules_warned", set())  # once per process: this test's process is shared
    ours = make_target(sandbox.url, key=sandbox.api_key, kinds=["agents"])
    theirs = make_target(sandbox.url, key=sandbox.api_key, kinds=["agents"], extra='ignore = ["metadata.hwm"]')
    poll_target(engine, ours)
    poll_target(engine, theirs)
    _mark_last_poll_as_another_process(engine)
    with caplog.at_level("WARNING", logger="watcher.poll"):
        poll_target(engine, ours)
        poll_target(engine, theirs)
        _mark_last_poll_as_another_process(engine)
        poll_target(engine, ours)
    warnings = [r.getMessage() for r in caplog.records if "every process has the same config" in r.getMessage()]
    assert len(warnings) == 1
    assert "by elsewhere:1:abcdef, ignored ['metadata.hwm'] and this process ignores nothing" in warnings[0]


def test_one_change_of_ignore_rules_by_another_process_is_no_warning(engine, sandbox, make_target, caplog,
                                                                     monkeypatch):
    monkeypatch.setattr("watcher.poll.run._rules_warned", set())
    before = make_target(sandbox.url, key=sandbox.api_key, kinds=["agents"], extra='ignore = ["metadata.hwm"]')
    after = make_target(sandbox.url, key=sandbox.api_key, kinds=["agents"])
    poll_target(engine, before)
    poll_target(engine, before)
    _mark_last_poll_as_another_process(engine)  # the process before a restart with a new config
    with caplog.at_level("WARNING", logger="watcher.poll"):
        poll_target(engine, after)
    assert not [r for r in caplog.records if "every process has the same config" in r.getMessage()]


def test_an_object_listed_with_the_same_content_takes_the_label_the_listing_gives_it_now(engine, make_target):
    """A record made while skill versions were labelled with their skill's name alone gets "<skill> / <version>"
    at the next poll whose rules differ (the raw fingerprints lapse), without a new version."""
    from sqlalchemy import update

    with Sandbox(assistants=0, agents=0, skills=1) as sandbox:
        target = make_target(sandbox.url, key=sandbox.api_key, kinds=["skills", "skill_versions"])
        poll_target(engine, target)
        skill = sandbox.objects("skills")[0]
        with Session(engine) as session, session.begin():  # as recorded under the old label and the old rules
            session.execute(update(Resource).where(Resource.kind == "skill_versions")
                            .values(name=skill["name"], raw_hash="0" * 32))
        versions = count(engine, Version)
        poll_target(engine, target)
    with Session(engine) as session:
        names = set(session.scalars(select(Resource.name).where(Resource.kind == "skill_versions")))
    assert names == {f"{skill['name']} / {v['version']}" for v in sandbox.objects("skill_versions")}
    assert count(engine, Version) == versions and events(engine) == []


@pytest.mark.parametrize("remembering", [False, True], ids=["snapshot", "daemon"])
def test_versions_of_a_renamed_skill_take_its_new_name_without_a_new_version(engine, make_target, remembering):
    from watcher.source.page_memory import PageMemory

    memory = PageMemory() if remembering else None
    with Sandbox(assistants=0, agents=0, skills=1) as sandbox:
        target = make_target(sandbox.url, key=sandbox.api_key, kinds=["skills", "skill_versions"])
        poll_target(engine, target, memory=memory)
        poll_target(engine, target, memory=memory)
        skill = sandbox.objects("skills")[0]
        sandbox.edit("skills", skill["id"], name="renamed-skill")
        outcomes = {o.kind: o for o in poll_target(engine, target, memory=memory)}
    assert [e.change for e in outcomes["skills"].events] == ["modified"]
    assert outcomes["skill_versions"].events == []
    with Session(engine) as session:
        names = set(session.scalars(select(Resource.name).where(Resource.kind == "skill_versions")))
    assert names == {f"renamed-skill / {v['version']}" for v in sandbox.objects("skill_versions")}
