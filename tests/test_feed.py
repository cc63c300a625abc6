"""The publish feed: `events --follow` in one process sees what another records, and leaves cleanly."""

import gc
import json
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from test_channels import DRIFT_KEYS

from watcher.alerts import feed
from watcher.record.engine import open_engine
from watcher.record.models import Event, Resource
from watcher.times import json_time, utcnow


class Follower:
    """`python -m watcher events --follow` in its own process, its stdout read line by line."""

    def __init__(self, config: str, *args: str):
        self.process = subprocess.Popen([sys.executable, "-m", "watcher", "--config", config, "events", "--follow",
                                         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def next_line(self, timeout: float = 20.0) -> str:
        return self.lines.get(timeout=timeout)

    def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=15)
        return code, self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def followers():
    started: list[Follower] = []

    def start(config: str, *args: str) -> Follower:
        started.append(Follower(config, *args))
        return started[-1]

    yield start
    for follower in started:
        follower.kill()


def snapshot_elsewhere(config: str) -> None:
    """`snapshot` in a process of its own: the feed must learn of it through the database alone."""
    done = subprocess.run([sys.executable, "-m", "watcher", "--config", config, "snapshot"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_feed_prints_what_another_process_records_as_webhook_documents(sandbox, write_config, store_url, cli,
                                                                           cli_json, followers):
    config = write_config(sandbox, store_url)
    assert cli(config, "snapshot").exit_code == 0
    since = json_time(utcnow())
    follower = followers(config, "--json", "--since", since)
    edited = sandbox.objects("agents")[1]
    sandbox.edit("agents", edited["id"], model="gpt-feed", instructions="Answer in haiku.")
    snapshot_elsewhere(config)
    document = json.loads(follower.next_line())
    [event] = cli_json(config, "events", "--since", since)
    assert list(document) == DRIFT_KEYS
    assert (document["id"], document["type"], document["object_id"]) == (f"evt_{event['id']}", "drift.modified",
                                                                         edited["id"])
    assert document["paths"] == event["paths"] == ["instructions", "model"]
    assert {c["path"]: c["new"] for c in document["changes"]} == {"instructions": "Answer in haiku.",
                                                                 "model": "gpt-feed"}
    sandbox.remove("agents", edited["id"])  # and the next one, as it comes
    snapshot_elsewhere(config)
    assert json.loads(follower.next_line())["type"] == "drift.deleted"
    code, stderr = follower.stop(signal.SIGTERM)
    assert (code, stderr) == (0, "")


def test_the_feed_without_json_prints_one_readable_line_per_event(sandbox, write_config, sqlite_url, cli, followers):
    config = write_config(sandbox, sqlite_url)
    cli(config, "snapshot")
    follower = followers(config, "--since", json_time(utcnow()))
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], model="gpt-line")
    snapshot_elsewhere(config)
    line = follower.next_line()
    assert f"prod/assistants {victim['name']} modified 1→2 [high] model" in line
    assert follower.stop(signal.SIGINT) == (0, "")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_feed_leaves_cleanly_on_a_signal(sandbox, write_config, sqlite_url, cli, followers, signum):
    config = write_config(sandbox, sqlite_url)
    cli(config, "snapshot")
    follower = followers(config, "--json", "--since", json_time(utcnow()))
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], model="gpt-signal")
    snapshot_elsewhere(config)
    follower.next_line()  # it is following now: between two reads of the database
    assert follower.stop(signum) == (0, "")


def test_the_feed_leaves_cleanly_when_its_reader_goes_away(sandbox, write_config, sqlite_url, cli):
    config = write_config(sandbox, sqlite_url)
    cli(config, "snapshot")
    process = subprocess.Popen([sys.executable, "-m", "watcher", "--config", config, "events", "--follow", "--json",
                                "--since", json_time(utcnow())], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdout.close()  # as `| head -0` would
        sandbox.edit("agents", sandbox.objects("agents")[0]["id"], model="gpt-pipe")
        snapshot_elsewhere(config)
        assert process.wait(timeout=20) == 0
        assert process.stderr.read() == b""
    finally:
        if process.poll() is None:
            process.kill()


# --- a busy database, and ids that commit out of order ----------------------------------------------


def _follow_in_thread(engine, since, trouble_log):
    """feed.follow in a thread: the events it yields, and a function that stops it."""
    found: queue.Queue = queue.Queue()
    stop = threading.Event()

    class Stopped(Exception):
        pass

    def sleep(seconds):
        if stop.wait(min(seconds, 0.2)):
            raise Stopped

    def run():
        try:
            for drift in feed.follow(engine, since=since, interval=0.1, trouble=trouble_log.append, sleep=sleep):
                found.put(drift)
        except Stopped:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return found, lambda: (stop.set(), thread.join(10))


def test_the_feed_waits_out_a_locked_sqlite_database(sandbox, write_config, sqlite_url, cli, tmp_path):
    config = write_config(sandbox, sqlite_url)
    cli(config, "snapshot")
    since = utcnow()
    path = str(tmp_path / "watcher.db")
    gc.collect()  # closes the connections the in-process CLI left open: an exclusive lock needs none
    locker = sqlite3.connect(path, isolation_level=None, timeout=5)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE targets SET base_url = base_url")  # holds the file's lock: nobody else may read
    reader = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})  # busy at once, not after 30 s
    trouble: list = []
    found, stop = _follow_in_thread(reader, since, trouble)
    try:
        deadline = time.monotonic() + 10
        while not trouble and time.monotonic() < deadline:
            time.sleep(0.05)
        assert trouble and "cannot read the database, retrying" in trouble[0] and "locked" in trouble[0]
        locker.execute("COMMIT")
        locker.execute("PRAGMA locking_mode=NORMAL")
        locker.execute("SELECT 1 FROM targets").fetchall()  # gives the lock up
        locker.close()
        sandbox.edit("agents", sandbox.objects("agents")[0]["id"], model="gpt-after-lock")
        cli(config, "snapshot")
        drift = found.get(timeout=15)
        assert drift.paths == ["model"]
        assert trouble[-1] is None  # it said when the database could be read again
    finally:
        stop()
        reader.dispose()


def test_the_feed_reconnects_after_postgresql_drops_its_connection(sandbox, write_config, cli, store_url):
    if not store_url.startswith("postgresql"):
        pytest.skip("a dropped server connection is a PostgreSQL matter")
    config = write_config(sandbox, store_url)
    cli(config, "snapshot")
    name = "watcher-feed-under-test"
    engine = open_engine(f"{store_url}?application_name={name}")
    trouble: list = []
    found, stop = _follow_in_thread(engine, utcnow(), trouble)
    try:
        time.sleep(0.5)
        admin = create_engine(store_url)
        with admin.begin() as connection:  # what a server restart does to the feed's connections
            dropped = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name"), {"name": name}).scalar()
        assert dropped >= 1
        admin.dispose()
        sandbox.edit("agents", sandbox.objects("agents")[0]["id"], model="gpt-after-restart")
        cli(config, "snapshot")
        assert found.get(timeout=20).paths == ["model"]  # the pool's pre-ping reconnected, or the feed retried
    finally:
        stop()
        engine.dispose()


def test_an_id_committed_after_a_later_one_is_still_printed(engine, sandbox, write_config, cli, store_url):
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite commits writers one at a time: ids are never seen out of order there")
    config = write_config(sandbox, store_url)
    cli(config, "snapshot")
    with Session(engine) as session:
        resource_id = session.scalar(Resource.__table__.select().with_only_columns(Resource.id).limit(1))
        watching = feed.Feed(feed.start(session, None))

    def event() -> Event:
        return Event(resource_id=resource_id, change="modified", paths=["model"], detected_at=utcnow(),
                     from_version=None, to_version=None, severity="high")

    slow, quick = Session(engine), Session(engine)
    slow.begin()
    slow.add(early := event())
    slow.flush()  # takes the lower id, not yet committed
    with quick.begin():
        quick.add(late := event())
    with Session(engine) as session:
        assert [d.event_id for d in watching.read(session)] == [late.id]
    slow.commit()
    with Session(engine) as session:
        assert [d.event_id for d in watching.read(session)] == [early.id]
    assert early.id < late.id and watching.low == late.id
    slow.close()
    quick.close()
