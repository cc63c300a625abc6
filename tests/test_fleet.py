"""Several daemons on one PostgreSQL share the polls (issue 11): real `run` subprocesses.

Each daemon has its own folder (config, log) and the same database; the sandbox counts the
list requests they make between them.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from test_daemon import KEY_ENV, DaemonProcess, wait_until

from watcher.demo import SmtpSink
from watcher.sandbox.server import Sandbox

pytestmark = pytest.mark.slow

SECRET_KEY = "sk-daemon-test-0123456789abcdef"  # the key DaemonProcess gives its children
TARGETS = [f"team-{n}" for n in range(8)]


@pytest.fixture
def pg_url():
    from conftest import PG_URL_ENV, _reset_postgres

    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"several daemons share PostgreSQL: set ${PG_URL_ENV}")
    _reset_postgres(url)
    return url


@pytest.fixture
def api():
    with Sandbox(api_key=SECRET_KEY) as sandbox:
        yield sandbox


@pytest.fixture
def smtp():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def fleet(tmp_path, api, smtp, pg_url):
    """start(n) starts n more daemons, each in its own folder, all on the one database."""
    started: list[DaemonProcess] = []

    def start(count: int, interval: str) -> list[DaemonProcess]:
        new = []
        for _ in range(count):
            folder = tmp_path / f"daemon-{len(started)}"
            folder.mkdir()
            new.append(DaemonProcess(_config(folder, api, smtp.port, pg_url, interval), verbose=True))
            started.append(new[-1])
        return new

    yield start
    for daemon in started:
        daemon.kill()


def _config(folder: Path, sandbox: Sandbox, smtp_port: int, url: str, interval: str) -> Path:
    path = folder / "config.toml"
    blocks = "".join(f'[[targets]]\nname = "{name}"\n\n' for name in TARGETS)
    path.write_text(
        f'[database]\nurl = "{url}"\n\n'
        f'[schedule]\ninterval = "{interval}"\njitter = "0s"\n\n'
        f'[target_defaults]\nbase_url = "{sandbox.url}"\napi_key_env = "{KEY_ENV}"\nkinds = ["assistants"]\n'
        f'timeout = "10s"\n\n{blocks}'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        f'sender = "Watcher <watcher@example.com>"\n\n[alerts]\nwatchlist = ["ops@example.com"]\n')
    return path


def _query(url: str, sql: str, **params) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).all()
    finally:
        engine.dispose()


def _complete_polls(url: str) -> int:
    try:
        return _query(url, "SELECT count(*) FROM polls WHERE status = 'complete'")[0][0]
    except Exception:  # not migrated yet
        return 0


def _list_requests_in_window(api: Sandbox, start, interval: float, periods: int) -> int:
    """List requests from the first one the daemons `start()` makes until the middle of the `periods`-th
    interval after it: every target is polled once per interval, so the window holds periods + 1 rounds."""
    before = api.count_requests()
    daemons = start()
    assert wait_until(lambda: api.count_requests() > before, 60), daemons[0].log()
    time.sleep(periods * interval + interval / 2)
    made = api.count_requests() - before
    for daemon in daemons:
        daemon.send(signal.SIGTERM)
    for daemon in daemons:
        assert daemon.process.wait(20) == 0
    return made


def test_three_daemons_make_the_list_requests_of_one(fleet, api, pg_url):
    one = _list_requests_in_window(api, lambda: fleet(1, "3s"), 3.0, 4)
    three = _list_requests_in_window(api, lambda: fleet(3, "3s"), 3.0, 4)
    assert one >= 5 * len(TARGETS) * 0.9, one  # every target polled in every interval
    assert three <= 1.1 * one, (one, three)


def test_no_target_and_kind_is_polled_twice_within_an_interval_by_three_daemons(fleet, api, pg_url):
    daemons = fleet(3, "3s")
    assert wait_until(lambda: _complete_polls(pg_url) >= 4 * len(TARGETS), 90), daemons[0].log()
    gaps = _query(pg_url, "SELECT target_id, kind, started_at - lag(started_at) OVER (PARTITION BY target_id, kind "
                          "ORDER BY started_at) FROM polls")
    seconds = [gap.total_seconds() for _t, _k, gap in gaps if gap is not None]
    # A poll's started_at is taken after its setup, which varies by up to a second on a loaded machine;
    # two daemons polling the same target would start within one look at the schedule (0.5 s) of each other.
    assert seconds and min(seconds) >= 3.0 / 2, sorted(seconds)[:5]
    workers = {row[0] for row in _query(pg_url, "SELECT DISTINCT worker FROM polls")}
    assert len(workers) >= 2, workers  # the polls spread over the daemons


def test_a_killed_daemons_targets_are_polled_by_the_others_within_one_interval(fleet, api, smtp, pg_url):
    interval = 4.0
    daemons = fleet(3, "4s")
    assert wait_until(lambda: _complete_polls(pg_url) >= 2 * len(TARGETS), 90), daemons[0].log()
    victim_object = api.objects("assistants")[0]
    api.set_latency(0.5)  # each poll takes half a second: a kill lands on a poll in flight
    holder = wait_until(lambda: _lease_holder(pg_url, daemons), 30)
    assert holder, "no daemon held a lease"
    daemon, target = holder
    api.edit("assistants", victim_object["id"], model="gpt-4.1-nano")
    daemon.process.send_signal(signal.SIGKILL)
    killed_at = _db_now(pg_url)
    daemon.process.wait(10)
    polled = wait_until(lambda: _polled_after(pg_url, target, killed_at), 30)
    assert polled is not None, "the killed daemon's target was never polled again"
    # One interval (the lease) plus the look at the schedule (0.5 s) and a loaded machine's slack.
    assert polled <= interval + 1.5, polled
    api.set_latency(0.0)
    survivors = [d for d in daemons if d is not daemon]
    assert wait_until(lambda: len(_events(pg_url)) == len(TARGETS) and len(smtp.messages) >= len(TARGETS), 60), \
        (_events(pg_url), len(smtp.messages))
    time.sleep(interval)  # more polls and sweeps: nothing recorded or sent again
    events = _events(pg_url)
    assert sorted(t for t, _change in events) == sorted(TARGETS)  # one "modified" per target, no duplicate
    assert len({m.message["Message-ID"] for m in smtp.messages}) == len(smtp.messages) == len(TARGETS)
    for survivor in survivors:
        assert survivor.stop()[0] == 0


def _lease_holder(url: str, daemons: list[DaemonProcess]):
    """(daemon, target) for a lease held now by one of `daemons`, else None."""
    pids = {daemon.process.pid: daemon for daemon in daemons}
    for target, owner in _query(url, "SELECT target, lease_owner FROM schedule WHERE lease_owner IS NOT NULL "
                                     "AND lease_expires_at > now()"):
        pid = int(owner.split(":")[1])
        if pid in pids:
            return pids[pid], target
    return None


def _db_now(url: str):
    return _query(url, "SELECT now()")[0][0]


def _polled_after(url: str, target: str, since):
    """Seconds after `since` at which another process started a poll of `target` that completed."""
    rows = _query(url, "SELECT min(polls.started_at) FROM polls JOIN targets ON targets.id = polls.target_id "
                       "WHERE targets.name = :t AND polls.status = 'complete' AND polls.started_at > :s",
                  t=target, s=since)
    return (rows[0][0] - since).total_seconds() if rows and rows[0][0] else None


def _events(url: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in _query(url, "SELECT targets.name, events.change FROM events JOIN resources ON "
                                          "resources.id = events.resource_id JOIN targets ON "
                                          "targets.id = resources.target_id")]


def test_two_daemons_put_an_out_of_band_edit_back_once(tmp_path, api, smtp, pg_url):
    daemons = []
    for n in range(2):
        folder = tmp_path / f"healer-{n}"
        folder.mkdir()
        config = folder / "config.toml"
        config.write_text(
            f'[database]\nurl = "{pg_url}"\n\n[schedule]\ninterval = "2s"\njitter = "0s"\n\n'
            f'[[targets]]\nname = "prod"\nbase_url = "{api.url}"\napi_key_env = "{KEY_ENV}"\nkinds = ["assistants"]\n'
            'timeout = "10s"\nheal = true\n\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
            'sender = "Watcher <watcher@example.com>"\n\n[alerts]\nwatchlist = ["ops@example.com"]\n')
        daemons.append(DaemonProcess(config, verbose=True))
    try:
        assert wait_until(lambda: _complete_polls(pg_url) >= 2, 90), daemons[0].log()
        victim = api.objects("assistants")[0]
        api.edit("assistants", victim["id"], model="gpt-4.1-nano")
        assert wait_until(lambda: api.get("assistants", victim["id"])["model"] == victim["model"], 60), \
            daemons[0].log() + daemons[1].log()
        polls = _complete_polls(pg_url)
        assert wait_until(lambda: _complete_polls(pg_url) >= polls + 4, 60)  # both daemons poll it again, twice
        heals = _query(pg_url, "SELECT count(*) FROM versions v JOIN resources r ON r.id = v.resource_id "
                               "WHERE r.remote_id = :rid AND v.origin = 'heal'", rid=victim["id"])[0][0]
        edits = _query(pg_url, "SELECT count(*) FROM events e JOIN resources r ON r.id = e.resource_id "
                               "WHERE r.remote_id = :rid AND e.change = 'modified'", rid=victim["id"])[0][0]
        assert (heals, edits) == (1, 1)
    finally:
        for daemon in daemons:
            daemon.kill()
