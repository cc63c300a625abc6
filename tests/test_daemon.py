"""The daemon (`assistant-watcher run`) as a real subprocess against the sandbox and an SMTP server.

Every wait is a polling loop with a generous deadline; the only timed assertions are the
issue's own bounds (an alert within two intervals plus 5 s, a stop within 10 s).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from watcher.demo import SmtpSink
from watcher.run.daemon import Activity, SystemdNotifier, stall_limit
from watcher.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # subprocesses and real waits: `make test` runs them, a quick loop skips them

KEY_ENV = "WATCHER_TEST_DAEMON_KEY"
SECRET_KEY = "sk-daemon-test-0123456789abcdef"
INTERVAL = 1.0


# --- helpers ----------------------------------------------------------------------------------


def wait_until(predicate, timeout: float = 30.0, step: float = 0.05):
    """The first truthy value of predicate() within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(step)


def write_daemon_config(path: Path, sandbox: Sandbox, smtp_port: int, *, targets=("prod",), timeout: str = "10s",
                        interval: str = "1s") -> Path:
    blocks = "".join(
        f'[[targets]]\nname = "{name}"\nbase_url = "{sandbox.url}"\napi_key_env = "{KEY_ENV}"\ntimeout = "{timeout}"\n'
        'kinds = ["assistants", "agents"]\n\n'
        for name in targets)
    path.write_text(
        f'[database]\nurl = "sqlite:///{path.parent / "watcher.db"}"\n\n'
        f'[schedule]\ninterval = "{interval}"\njitter = "0s"\n\n'
        f"{blocks}"
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        f'sender = "Watcher <watcher@example.com>"\n\n'
        f'[alerts]\nwatchlist = ["ops@example.com"]\n'
    )
    return path


class DaemonProcess:
    """`python -m watcher --config CFG run` with stderr in a file."""

    def __init__(self, config: Path, *, env: dict | None = None, verbose: bool = False):
        self.config = config
        self.log_path = config.parent / "daemon.log"
        self.db_path = config.parent / "watcher.db"
        child_env = {k: v for k, v in os.environ.items()
                     if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
        child_env.update({KEY_ENV: SECRET_KEY, "PYTHONUNBUFFERED": "1", **(env or {})})
        self._log = open(self.log_path, "wb")
        args = [sys.executable, "-m", "watcher", "--config", str(config), *(["-v"] if verbose else []), "run"]
        self.process = subprocess.Popen(args, env=child_env, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 30.0) -> bool:
        return bool(wait_until(lambda: text in self.log() or self.process.poll() is not None, timeout)) \
            and text in self.log()

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took)."""
        started = time.monotonic()
        self.send(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()

    # -- the record, read with the standard library (WAL lets us read beside the writer) --

    def query(self, sql: str, *params):
        if not self.db_path.exists():
            return []
        connection = sqlite3.connect(self.db_path, timeout=30)
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # tables not migrated yet
            return []
        finally:
            connection.close()

    def complete_polls(self, target: str = "prod") -> int:
        rows = self.query("SELECT count(*) FROM polls JOIN targets ON targets.id = polls.target_id "
                          "WHERE targets.name = ? AND polls.status = 'complete'", target)
        return rows[0][0] if rows else 0

    def wait_baseline(self, target: str = "prod") -> None:
        # Both kinds of the target polled once: the baseline is recorded.
        assert wait_until(lambda: self.complete_polls(target) >= 2, 30), self.log()


class NotifyListener:
    """A unix datagram socket standing in for systemd's notify socket; keeps every datagram."""

    def __init__(self, tmp_path: Path, abstract: bool):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"watcher-test-{uuid.uuid4().hex}"
            self.socket.bind("\0" + name)
            self.address = "@" + name
        else:
            path = tmp_path / "notify.sock"
            self.socket.bind(str(path))
            self.address = str(path)
        self.socket.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._running = True
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while self._running:
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def fields(self, key: str) -> list[tuple[float, str]]:
        """(received at, value) of every field `key` in every datagram so far."""
        found = []
        for at, message in list(self.messages):
            for line in message.splitlines():
                name, _, value = line.partition("=")
                if name == key:
                    found.append((at, value))
        return found

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self.socket.close()


@pytest.fixture
def smtp():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def api():
    """A sandbox whose key is distinctive, so a test can prove it never reaches a log."""
    with Sandbox(api_key=SECRET_KEY) as sandbox:
        yield sandbox


@pytest.fixture
def daemons():
    """Starts daemons; kills any still running at the end."""
    started: list[DaemonProcess] = []

    def start(config: Path, **kwargs) -> DaemonProcess:
        daemon = DaemonProcess(config, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def first_assistant(sandbox: Sandbox) -> dict:
    return sandbox.objects("assistants")[0]


# --- the loop: an out-of-band edit is emailed --------------------------------------------------


def test_out_of_band_edit_is_emailed_within_two_intervals_plus_5s(tmp_path, api, smtp, daemons):
    daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port), verbose=True)
    daemon.wait_baseline()
    target = first_assistant(api)
    api.edit("assistants", target["id"], instructions=target["instructions"] + "\nAlways grant refunds.")
    edited_at = time.monotonic()

    mail = smtp.wait_for(lambda m: target["name"] in m.subject, timeout=60)

    assert mail is not None, daemon.log()
    assert mail.accepted_at - edited_at <= 2 * INTERVAL + 5
    assert "Always grant refunds." in mail.part("plain")
    code, _ = daemon.stop()
    assert code == 0
    log = daemon.log()
    assert "baseline recorded" in log and "1 modified" in log
    assert SECRET_KEY not in log, "the API key reached the log"


def test_the_daemon_puts_an_out_of_band_modification_back_when_its_target_heals(tmp_path, api, smtp, daemons):
    config = write_daemon_config(tmp_path / "config.toml", api, smtp.port)
    config.write_text(config.read_text().replace('kinds = ["assistants", "agents"]\n',
                                                 'kinds = ["assistants", "agents"]\nheal = true\n'))
    daemon = daemons(config, verbose=True)
    daemon.wait_baseline()
    target = first_assistant(api)
    api.edit("assistants", target["id"], model="gpt-4.1-nano")
    mail = smtp.wait_for(lambda m: "reverted automatically" in m.subject, timeout=60)
    assert mail is not None, daemon.log()
    assert api.get("assistants", target["id"])["model"] == target["model"]
    code, _ = daemon.stop()
    assert code == 0


def test_each_event_is_emailed_once_while_the_daemon_keeps_polling(tmp_path, api, smtp, daemons):
    daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port))
    daemon.wait_baseline()
    target = first_assistant(api)
    api.edit("assistants", target["id"], model="gpt-4.1-nano")
    assert smtp.wait_for(lambda m: target["name"] in m.subject, timeout=60), daemon.log()
    polls = daemon.complete_polls()
    assert wait_until(lambda: daemon.complete_polls() >= polls + 6, 30), "the daemon stopped polling"

    assert len([m for m in smtp.messages if target["name"] in m.subject]) == 1
    assert daemon.stop()[0] == 0


# --- SIGTERM ----------------------------------------------------------------------------------


def assert_record_consistent(daemon: DaemonProcess) -> None:
    """Nothing half-written: every event's versions exist and every resource points at a real version."""
    dangling_events = daemon.query(
        "SELECT e.id FROM events e WHERE e.to_version IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM versions v WHERE v.resource_id = e.resource_id AND v.number = e.to_version)")
    dangling_resources = daemon.query(
        "SELECT r.id FROM resources r WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.resource_id = r.id "
        "AND v.number = r.current_version AND v.content_hash = r.current_hash)")
    unfinished_polls = daemon.query("SELECT id FROM polls WHERE finished_at IS NULL")
    eventless_versions = daemon.query(
        "SELECT v.id FROM versions v WHERE v.origin = 'poll' AND NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.resource_id = v.resource_id AND e.to_version = v.number)")
    assert (dangling_events, dangling_resources, unfinished_polls, eventless_versions) == ([], [], [], [])


def test_sigterm_during_a_poll_exits_0_within_10s_and_the_poll_commits_whole(tmp_path, api, smtp, daemons):
    daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port))
    daemon.wait_baseline()
    target = first_assistant(api)
    api.set_latency(1.5)  # every page now takes 1.5 s: the poll below is surely in flight
    seen = len(api.requests)
    assert wait_until(lambda: any(path.startswith("/v1/assistants") for _, path in api.requests[seen:]), 30)
    # The listing is built after the latency: this edit is in the page the poll in flight receives.
    api.edit("assistants", target["id"], instructions="Answer in French only.")

    code, took = daemon.stop()

    assert code == 0, daemon.log()
    assert took < 10
    assert_record_consistent(daemon)
    # The poll in flight finished and committed whole: the edit is recorded with its event and its mail.
    events = daemon.query("SELECT e.id, e.change FROM events e JOIN resources r ON r.id = e.resource_id "
                          "WHERE r.remote_id = ?", target["id"])
    assert [change for _id, change in events] == ["modified"], daemon.log()
    assert daemon.query("SELECT count(*) FROM outbox")[0][0] >= 1
    assert "SIGTERM: stopping; waiting for prod" in daemon.log()


def test_sigterm_while_a_poll_hangs_exits_0_within_10s_without_writing_it(tmp_path, api, smtp, daemons):
    daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port))
    daemon.wait_baseline()
    target = first_assistant(api)
    api.set_latency(1.0)
    seen = len(api.requests)
    assert wait_until(lambda: any(path.startswith("/v1/assistants") for _, path in api.requests[seen:]), 30)
    blocker = sqlite3.connect(daemon.db_path, timeout=30, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the poll in flight cannot record
    try:
        polls_before = daemon.query("SELECT count(*) FROM polls")[0][0]
        api.edit("assistants", target["id"], instructions="Answer in German only.")
        code, took = daemon.stop()
    finally:
        blocker.rollback()
        blocker.close()

    assert code == 0, daemon.log()
    assert took < 10
    assert "exiting now, without committing it" in daemon.log()
    assert_record_consistent(daemon)
    assert daemon.query("SELECT count(*) FROM events WHERE change = 'modified'")[0][0] == 0
    assert daemon.query("SELECT count(*) FROM polls")[0][0] == polls_before


def test_sigint_stops_like_sigterm(tmp_path, api, smtp, daemons):
    daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port))
    daemon.wait_baseline()
    daemon.send(signal.SIGINT)
    assert daemon.process.wait(20) == 0
    assert "SIGINT: stopping" in daemon.log() and "Traceback" not in daemon.log()


# --- SIGHUP -----------------------------------------------------------------------------------


def test_sighup_with_a_bad_config_keeps_running_and_polling(tmp_path, api, smtp, daemons):
    config = write_daemon_config(tmp_path / "config.toml", api, smtp.port)
    daemon = daemons(config)
    daemon.wait_baseline()
    good = config.read_text()
    config.write_text(good.replace('interval = "1s"', 'interval = "soon"'))

    daemon.send(signal.SIGHUP)

    assert daemon.wait_log("reload failed, keeping the running config"), daemon.log()
    reload_line = [line for line in daemon.log().splitlines() if "reload failed" in line]
    assert len(reload_line) == 1 and "schedule.interval" in reload_line[0]
    polls = daemon.complete_polls()
    assert wait_until(lambda: daemon.complete_polls() >= polls + 4, 30), "no poll after the bad reload"
    target = first_assistant(api)
    api.edit("assistants", target["id"], name="Renamed After Reload")
    assert smtp.wait_for(lambda m: "Renamed After Reload" in m.subject, timeout=60), daemon.log()
    assert daemon.process.poll() is None
    assert daemon.stop()[0] == 0


def test_sighup_with_a_good_config_reschedules(tmp_path, api, smtp, daemons):
    config = write_daemon_config(tmp_path / "config.toml", api, smtp.port)
    daemon = daemons(config)
    daemon.wait_baseline()
    write_daemon_config(config, api, smtp.port, targets=("prod", "staging"))

    daemon.send(signal.SIGHUP)

    assert daemon.wait_log("reloaded"), daemon.log()
    daemon.wait_baseline("staging")
    assert "rescheduled staging" in daemon.log()
    assert daemon.stop()[0] == 0


# --- sd_notify --------------------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_ready_status_watchdog_stopping(tmp_path, api, smtp, daemons, abstract):
    listener = NotifyListener(tmp_path, abstract)
    try:
        daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port),
                         env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"})
        assert wait_until(lambda: listener.fields("READY"), 30), daemon.log()
        daemon.wait_baseline()
        assert wait_until(lambda: len(listener.fields("WATCHDOG")) >= 3, 30), daemon.log()
        assert wait_until(lambda: any("prod: ok" in s for _, s in listener.fields("STATUS")), 30)
        assert wait_until(lambda: any("alerts: 0 pending" in s for _, s in listener.fields("STATUS")), 30)

        code, _ = daemon.stop()

        assert code == 0
        assert listener.fields("READY")[0][1] == "1"
        assert listener.fields("STOPPING") and listener.fields("STOPPING")[0][1] == "1"
        assert all(value == "1" for _, value in listener.fields("WATCHDOG"))
        # READY comes first: the config was loaded and the database migrated before it.
        assert listener.fields("READY")[0][0] <= listener.fields("WATCHDOG")[0][0]
    finally:
        listener.close()


def test_sd_notify_without_watchdog_usec_sends_no_watchdog(tmp_path, api, smtp, daemons):
    listener = NotifyListener(tmp_path, abstract=True)
    try:
        daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port),
                         env={"NOTIFY_SOCKET": listener.address})
        daemon.wait_baseline()
        assert wait_until(lambda: listener.fields("READY"), 30)
        assert daemon.stop()[0] == 0
        assert listener.fields("WATCHDOG") == []
        assert listener.fields("STOPPING")
    finally:
        listener.close()


def test_watchdog_stops_while_a_poll_hangs_and_resumes_after(tmp_path, api, smtp, daemons):
    listener = NotifyListener(tmp_path, abstract=True)
    blocker = None
    try:
        # timeout 1s: a poll with no progress for 3 × 1 s + 5 s counts as hung.
        daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port, timeout="1s"),
                         env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"})
        daemon.wait_baseline()
        assert wait_until(lambda: listener.fields("WATCHDOG"), 30)
        blocker = sqlite3.connect(daemon.db_path, timeout=30, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the next claim (or poll) blocks on the database: no progress

        def pings_stopped():
            pings = listener.fields("WATCHDOG")
            return pings and time.monotonic() - pings[-1][0] > 3.0  # six ping intervals without one

        assert wait_until(pings_stopped, 40), daemon.log()
        hung = [line for line in daemon.log().splitlines() if "watchdog: " in line and "is hung" in line]
        assert hung and ("poll of prod" in hung[0] or "the look for due polls" in hung[0]), daemon.log()
        stopped_count = len(listener.fields("WATCHDOG"))
        blocker.rollback()
        blocker.close()
        blocker = None
        assert wait_until(lambda: len(listener.fields("WATCHDOG")) > stopped_count, 40), daemon.log()
        assert daemon.wait_log("polls make progress again")
        assert daemon.stop()[0] == 0
    finally:
        if blocker is not None:
            blocker.rollback()
            blocker.close()
        listener.close()


def test_a_target_where_no_kind_is_served_is_warned_about_once(tmp_path, api, smtp, daemons):
    config = write_daemon_config(tmp_path / "config.toml", api, smtp.port)
    root = api.url.removesuffix("/v1")  # the usual mistake: the host without /v1
    config.write_text(config.read_text().replace(f'base_url = "{api.url}"', f'base_url = "{root}"'))
    daemon = daemons(config)
    assert daemon.wait_log("no kind is served at"), daemon.log()
    assert wait_until(lambda: len(daemon.query("SELECT id FROM polls")) >= 2, 30)
    time.sleep(3 * INTERVAL)  # more polls (each kind now skipped as not served): no second warning
    assert daemon.log().count("no kind is served at") == 1, daemon.log()
    assert "check the target's base_url" in daemon.log()
    assert daemon.stop()[0] == 0


def test_a_daemon_without_any_alert_channel_warns_that_nobody_is_told(tmp_path, api, smtp, daemons):
    config = write_daemon_config(tmp_path / "config.toml", api, smtp.port)
    text = config.read_text()
    config.write_text(text[:text.index("[smtp]")])
    daemon = daemons(config)
    assert daemon.wait_log("no alert channel is configured"), daemon.log()
    assert daemon.stop()[0] == 0


def test_a_daemon_with_a_channel_does_not_warn_about_alerts(tmp_path, api, smtp, daemons):
    daemon = daemons(write_daemon_config(tmp_path / "config.toml", api, smtp.port))
    assert wait_until(lambda: len(daemon.query("SELECT id FROM polls")) >= 2, 30)
    assert daemon.stop()[0] == 0
    assert "no alert channel" not in daemon.log()


# --- start-up errors and logs -----------------------------------------------------------------


def test_bad_config_exits_2_with_one_line(tmp_path, daemons):
    config = tmp_path / "config.toml"
    config.write_text('[schedule]\ninterval = "often"\n')
    daemon = daemons(config)
    assert daemon.process.wait(30) == 2
    lines = daemon.log().strip().splitlines()
    assert len(lines) == 1 and "schedule.interval" in lines[0] and lines[0].startswith("ERROR")


def test_missing_api_key_exits_2_before_polling(tmp_path, api, smtp, daemons):
    config = write_daemon_config(tmp_path / "config.toml", api, smtp.port)
    daemon = daemons(config, env={KEY_ENV: ""})
    assert daemon.process.wait(30) == 2
    assert KEY_ENV in daemon.log() and "Traceback" not in daemon.log()
    assert api.count_requests() == 0


def test_logs_carry_journald_priorities_when_stderr_is_the_journal(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[schedule]\ninterval = "often"\n')
    log_path = tmp_path / "journal.log"
    with open(log_path, "wb") as log:
        stat = os.fstat(log.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        code = subprocess.run([sys.executable, "-m", "watcher", "--config", str(config), "run"], env=env,
                              stdout=log, stderr=log, timeout=60).returncode
    assert code == 2
    line = log_path.read_text().strip()
    assert line.startswith("<3>watcher.daemon: config error:") and "\n" not in line


# --- the pieces, in process -------------------------------------------------------------------


def test_notifier_reads_and_removes_its_environment(tmp_path):
    environ = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid()), "HOME": "/h"}
    notifier = SystemdNotifier.from_environ(environ)
    assert environ == {"HOME": "/h"}  # children do not inherit the socket
    assert notifier.address == "\0x" and notifier.watchdog_seconds == 4.0


def test_notifier_does_nothing_without_a_socket():
    notifier = SystemdNotifier.from_environ({})
    assert not notifier.enabled and not notifier.watchdog_enabled
    assert notifier.send("READY=1") is False


def test_watchdog_for_another_pid_is_ignored():
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000",
                                             "WATCHDOG_PID": "1"})
    assert notifier.enabled and not notifier.watchdog_enabled


def test_notifier_sends_one_datagram_to_an_abstract_socket(tmp_path):
    listener = NotifyListener(tmp_path, abstract=True)
    try:
        notifier = SystemdNotifier(listener.address)
        assert notifier.send("READY=1", "STATUS=two\nlines")
        assert wait_until(lambda: listener.messages, 5)
        assert listener.messages[0][1] == "READY=1\nSTATUS=two lines"
        notifier.close()
    finally:
        listener.close()


def test_activity_reports_stalled_polls_and_a_status_line():
    activity = Activity()
    assert activity.begin_poll("prod", stall_after=0.0)
    time.sleep(0.01)
    assert [name for name, _ in activity.stalled()] == ["prod"]
    activity.end_poll("prod", "ok")
    assert activity.stalled() == []
    assert activity.status_line().startswith("prod: ok at ")
    activity.stop()
    assert not activity.begin_poll("prod", stall_after=1.0)


def test_stall_limit_covers_every_sdk_attempt():
    from watcher.config.targets import TargetConfig

    assert stall_limit(TargetConfig(name="p", timeout="60s")) == 185.0
