"""Retention: prune forgets old history, never an object's last version nor an open event."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from watcher.record.models import Alert, Delivery, Event, Poll, Resource, Version
from watcher.record.prune import prune
from watcher.times import utcnow


@pytest.fixture
def aged_record(sandbox, write_config, store_url, engine, cli, cli_json):
    """A record with two edits of one assistant, all of it made to look 100 days old."""
    config = write_config(sandbox, store_url)
    cli(config, "snapshot", "--no-email")
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], instructions="first edit")
    cli(config, "snapshot", "--no-email")
    sandbox.edit("assistants", victim["id"], instructions="second edit")
    cli(config, "snapshot", "--no-email")
    old = utcnow() - timedelta(days=100)
    with Session(engine) as session, session.begin():
        session.execute(update(Version).values(observed_at=old))
        session.execute(update(Event).values(detected_at=old))
        session.execute(update(Poll).values(started_at=old, finished_at=old))
    return config, victim["id"]


def count(engine, model, *where) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_dry_run_deletes_nothing_and_says_what_it_would(aged_record, engine, cli):
    config, _victim = aged_record
    before = count(engine, Version), count(engine, Poll)
    result = cli(config, "prune", "--keep-days", "30")
    assert result.exit_code == 0 and result.stdout.startswith("dry run: prune would delete 0 versions")
    assert (count(engine, Version), count(engine, Poll)) == before


def test_open_events_keep_their_versions(aged_record, engine):
    with Session(engine) as session, session.begin():
        pruned = prune(session, utcnow() - timedelta(days=30), dry_run=False)
    assert (pruned.events, pruned.versions) == (0, 0)  # both edits are unacknowledged
    assert count(engine, Event) == 2


def test_acknowledged_history_goes_but_never_the_last_version(aged_record, engine, cli, cli_json):
    config, victim = aged_record
    for event in cli_json(config, "events"):
        cli(config, "ack", str(event["id"]), "--by", "alice")
    result = cli(config, "prune", "--keep-days", "30", "--yes")
    assert result.exit_code == 0 and result.stdout.startswith("deleted 2 versions, 2 acknowledged events")
    with Session(engine) as session:
        resource = session.scalar(select(Resource).where(Resource.remote_id == victim))
        assert [v.number for v in session.scalars(select(Version).where(Version.resource_id == resource.id))] == [3]
    assert cli_json(config, "show", victim)["instructions"] == "second edit"
    assert count(engine, Version) == 10 - 2 + 2  # every object keeps its current version


def test_the_last_complete_poll_of_each_kind_stays(aged_record, engine, cli, cli_json):
    config, _victim = aged_record
    for event in cli_json(config, "events"):
        cli(config, "ack", str(event["id"]), "--by", "alice")
    cli(config, "prune", "--keep-days", "30", "--yes")
    with Session(engine) as session:
        kinds = sorted(session.scalars(select(Poll.kind)))
    assert kinds == ["agents", "assistants"]
    assert cli(config, "snapshot", "--no-email").exit_code == 0  # the next poll still has its base


def test_recent_history_is_kept(aged_record, engine):
    with Session(engine) as session, session.begin():
        pruned = prune(session, utcnow() - timedelta(days=365), dry_run=False)
    assert pruned.total == 0


def test_a_digest_still_to_deliver_keeps_its_acknowledged_events(aged_record, engine, cli, cli_json):
    config, _victim = aged_record
    events = cli_json(config, "events")
    for event in events:
        cli(config, "ack", str(event["id"]), "--by", "alice")
    old = utcnow() - timedelta(days=100)
    with Session(engine) as session, session.begin():  # a channel down for 100 days: its digest waits
        alert = Alert(purpose="digest", title="2 assistants changed", created_at=old,
                      detail={"event_ids": [event["id"] for event in events]})
        alert.deliveries.append(Delivery(channel="hook", state="pending", message_id="<digest@test>",
                                         created_at=old, next_attempt_at=utcnow()))
        session.add(alert)
    with Session(engine) as session, session.begin():
        pruned = prune(session, utcnow() - timedelta(days=30), dry_run=False)
    assert (pruned.alerts, pruned.events, pruned.versions) == (0, 0, 0)
    assert count(engine, Event) == 2
