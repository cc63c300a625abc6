"""The daemon behind `assistant-watcher run`: polls on schedule, delivers alerts, talks to systemd.

Polls follow the shared schedule in the database (watcher.run.schedule): the claim loop
(watcher.run.claim_loop) leases due (target, kind) rows up to the free poll slots and hands each
target to a poll thread, so daemons sharing one database poll each (target, kind) once per
interval between them, jittered and coalesced; a poll's lease is renewed while it makes
progress. One delivery job empties the outbox every 30 s and right after each poll; a
watchdog job pings systemd only while every poll in flight, and the claim loop, makes progress
(watcher.run.systemd speaks sd_notify). The main thread does nothing but wait for signals:
SIGTERM/SIGINT stop (in-flight polls finish or never commit), SIGHUP reloads the config (a
bad one is logged and the running one kept).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor as PollPool
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.alerts import compose
from watcher.config.model import Config, HttpConfig, load_config
from watcher.config.targets import TargetConfig
from watcher.config.values import config_path
from watcher.errors import ConfigError, WatcherError, one_line
from watcher.poll.outcome import WORKER, nothing_served, nothing_served_line
from watcher.poll.run import poll_target
from watcher.record.engine import open_engine
from watcher.rules.check import checker
from watcher.run import schedule
from watcher.run.activity import Activity
from watcher.run.claim_loop import ClaimLoop, Wanted
from watcher.run.delivery_job import DELIVERY_INTERVAL, DeliveryJob
from watcher.run.export_job import ExportJob
from watcher.run.journal import log_outcome, result_word, targets_text, warn_if_alerts_go_nowhere
from watcher.run.systemd import SignalInbox, SystemdNotifier
from watcher.source.page_memory import PageMemory

if TYPE_CHECKING:
    from watcher.web.app import Web
    from watcher.web.server import HttpServer

# Given the config and the engine, the web application and its server with its port bound: the CLI
# hands it to the daemon (`watcher.web.server.bound`), so the web stays an edge above the daemon.
BindHttp = Callable[[Config, Engine], "tuple[Web, HttpServer]"]
# Self-heal after one poll of a target: (engine, config, target, outcome); its report is the caller's to log.
Heal = Callable[[Engine, Config, TargetConfig, Any], Any]

log = logging.getLogger("watcher.daemon")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
STOP_GRACE = 7.0  # seconds an in-flight poll may take to finish after SIGTERM (exit within 10 s)
HTTP_STOP_GRACE = 1.0  # seconds a web request in flight may take to finish after SIGTERM (within the 10 s too)
SDK_ATTEMPTS = 3  # the openai client's first try plus its 2 retries (watcher.source.sdk.make_client)
DELIVER_JOB, WATCHDOG_JOB = "deliver", "watchdog"


# --- the daemon ------------------------------------------------------------------------------


def stall_limit(target: TargetConfig) -> float:
    """Seconds a poll may go without a page before it counts as hung.

    The longest a healthy page can take is every SDK attempt timing out in turn, plus slack.
    """
    return SDK_ATTEMPTS * target.timeout + 5.0


def check_secrets(config: Config) -> None:
    """Read every configured secret once so a missing one is a config error at start, not at 3 a.m."""
    if not config.targets:
        raise ConfigError(f"{config.path}: no [[targets]] configured")
    for target in config.enabled_targets:  # a disabled target's key may be gone: it is not polled
        target.read_keys()
    if config.smtp is not None:
        config.smtp.password()
    for channel in config.channels:
        channel.check_secrets()
    if config.http is not None:
        config.http.token()


class Daemon:
    """Owns the scheduler and the jobs; `serve()` blocks until a stop signal."""

    def __init__(self, config_option: str | None, config: Config, engine: Engine, notifier: SystemdNotifier,
                 *, stop_grace: float = STOP_GRACE, bind_http: BindHttp | None = None, heal: Heal | None = None):
        self.config_option = config_option
        self.config, self.engine, self.notifier = config, engine, notifier
        self.compose = compose.composer(config)
        self.check = checker(config.rules)
        self.stop_grace = stop_grace
        self.activity = Activity()
        self.owner = WORKER
        self.max_polls = config.schedule.max_concurrent_polls
        self._targets: dict[str, TargetConfig] = {}
        self._timing: dict[str, tuple[float, float]] = {}
        self._nothing_served: set[str] = set()  # targets already warned about
        self.page_memory = PageMemory()  # pages of the last polls, so unchanged ones are not read again
        self._polls = PollPool(max_workers=self.max_polls, thread_name_prefix="poll")
        self.claims = ClaimLoop(self.owner, self.max_polls, self.activity, Wanted(engine), self._start_poll)
        self.delivery = DeliveryJob(lambda: (self.engine, self.config), self.activity,
                                    lambda: self.scheduler.modify_job(DELIVER_JOB, next_run_time=_now()),
                                    lambda: self.notifier.status(self.activity.status_line()))
        self.export = ExportJob(lambda: (self.engine, self.config))
        self._watchdog_problem: str | None = None
        self._bind_http = bind_http
        self._heal = heal  # self-heal after a poll (the CLI passes watcher.apply's); None: nothing is put back
        self.web: Web | None = None  # the web application and its server, when [http] is set (bind_http)
        self.http_server: HttpServer | None = None
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1),
                       DELIVER_JOB: ThreadPoolExecutor(max_workers=2),
                       # Its own thread: polls filling the pool must not starve the watchdog.
                       WATCHDOG_JOB: ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def bind_http(self) -> None:
        """With `[http]`, create the web application and bind its port (a busy port: ConfigError now)."""
        if self.config.http is None:
            return
        if self._bind_http is None:
            log.warning("[http] is set, but this process serves no web UI (it was started without one)")
            return
        self.web, self.http_server = self._bind_http(self.config, self.engine)

    def serve(self, inbox: SignalInbox) -> int:
        """Start the jobs, tell systemd we are ready, then handle signals until told to stop."""
        self.scheduler.start()
        self._schedule_targets(self.config)
        self._schedule_service_jobs()
        if self.http_server is not None:
            self.http_server.start()
            log.info("serving the web UI, API and metrics on %s", self.http_server.url)
        self.notifier.ready(self.activity.status_line())
        log.info("running as %s (up to %d polls at once): %s; %s", self.owner, self.max_polls,
                 targets_text(self.config), self._watchdog_text())
        warn_if_alerts_go_nowhere(self.config)
        while True:
            for signum in inbox.wait(None):
                if signum == signal.SIGHUP:
                    self.reload()
                elif signum in (signal.SIGTERM, signal.SIGINT):
                    return self.stop(signal.Signals(signum).name)

    def stop(self, reason: str) -> int:
        """Stop scheduling, let in-flight work finish (or exit without committing it); exit code 0."""
        busy = self.activity.busy()
        log.info("%s: stopping%s", reason, f"; waiting for {', '.join(busy)}" if busy else "")
        self.notifier.stopping(f"stopping ({reason})")
        self.activity.stop()
        self.claims.wake()
        self.scheduler.shutdown(wait=False)
        self._polls.shutdown(wait=False, cancel_futures=True)
        if self.http_server is not None:
            self.http_server.stop(timeout=HTTP_STOP_GRACE)
        still = self.activity.wait_idle(self.stop_grace)
        if still:
            # Nothing it did is committed: a poll writes in one transaction, mail is marked sent after SMTP.
            log.warning("still running after %.0f s: %s; exiting now, without committing it", self.stop_grace,
                        ", ".join(still))
            _exit_now(EXIT_OK)
        self.claims.give_back_all()
        self.export.close()  # a history stopped mid-write is put right by the next export (see export.git)
        self.engine.dispose()
        self.notifier.close()
        log.info("stopped")
        return EXIT_OK

    def reload(self) -> None:
        """SIGHUP: read the config again; keep the running one if the new one is bad."""
        self.notifier.reloading()
        try:
            config = load_config(config_path(self.config_option))
            check_secrets(config)
            engine = self._engine_for(config)
        except (WatcherError, SQLAlchemyError) as exc:
            log.error("reload failed, keeping the running config: %s", one_line(exc))
            self.notifier.ready(self.activity.status_line())
            return
        if config.schedule.max_concurrent_polls != self.max_polls:
            log.warning("schedule.max_concurrent_polls changed; restart the service to apply it (up to %d "
                        "polls at once as before)", self.max_polls)
        old_engine, old_http = self.engine, self.config.http
        self.config, self.engine, self.compose = config, engine, compose.composer(config)
        self.check = checker(config.rules)
        changed = self._schedule_targets(config)
        self.page_memory.forget({(target.name, kind) for target in config.enabled_targets for kind in target.kinds})
        self._reload_http(old_http, config, engine)
        if engine is not old_engine:
            old_engine.dispose()
        log.info("reloaded %s: %s; %s", config.path, targets_text(config),
                 f"rescheduled {', '.join(changed)}" if changed else "no schedule changed")
        warn_if_alerts_go_nowhere(config)
        self.notifier.ready(self.activity.status_line())

    def _reload_http(self, old: HttpConfig | None, config: Config, engine: Engine) -> None:
        """The web application serves the new config and database; a new [http] waits for a restart."""
        if self.web is None or self.http_server is None:  # bind_http sets both, or neither
            if config.http is not None:
                log.warning("[http] added; restart the service to serve it")
            return
        if config.http != old:
            # Still bound where `old` said, so still guarded as `old` said (its address, its token).
            log.warning("[http] changed; restart the service to apply it (serving %s as before)",
                        self.http_server.url)
            config = config.model_copy(update={"http": old})
        try:
            self.web.update(config, engine)
        except WatcherError as exc:  # the old token file went away: keep serving with what was read before
            log.error("[http] not reloaded: %s", one_line(exc))

    def _engine_for(self, config: Config) -> Engine:
        """The running engine, or a new (migrated) one when database.url changed."""
        if config.database.url == self.config.database.url:
            return self.engine
        return open_engine(config.database.url, max_connections=config.max_connections)

    # -- scheduling --------------------------------------------------------------------------

    def _schedule_targets(self, config: Config) -> list[str]:
        """Poll the enabled targets of `config` from now on; the names whose schedule changed."""
        wanted = {t.name: t for t in config.enabled_targets}
        changed = [f"{name} (removed)" for name in set(self._targets) - set(wanted)]
        for name, target in wanted.items():
            if self._targets.get(name) != target or self._timing.get(name) != _timing(target, config):
                changed.append(name)
                self._nothing_served.discard(name)
        self.activity.forget(set(self._targets) - set(wanted))
        self._timing = {name: _timing(t, config) for name, t in wanted.items()}
        self._targets = wanted
        self.claims.retarget(Wanted(self.engine, {n: t.kinds for n, t in wanted.items()},
                                    {n: timing[0] for n, timing in self._timing.items()}, config.schedule.interval))
        return changed

    def _schedule_service_jobs(self) -> None:
        self.claims.start()
        # Two instances allowed: a second one only flags the first to sweep again (see DeliveryJob.run).
        self.scheduler.add_job(self.delivery.run, IntervalTrigger(seconds=DELIVERY_INTERVAL, timezone=UTC),
                               id=DELIVER_JOB, name="deliver", next_run_time=_now(), max_instances=2,
                               executor=DELIVER_JOB)
        seconds = self.notifier.watchdog_seconds
        if seconds is not None:  # the watchdog is enabled
            ping = max(seconds / 2, 0.1)
            self.scheduler.add_job(self._watchdog_job, IntervalTrigger(seconds=ping, timezone=UTC),
                                   id=WATCHDOG_JOB, name="watchdog", next_run_time=_now(), executor=WATCHDOG_JOB)

    # -- jobs --------------------------------------------------------------------------------

    def _start_poll(self, claim: schedule.Claim) -> None:
        """Poll `claim` on a free poll thread; RuntimeError once stopping (the pool takes no more work)."""
        self._polls.submit(self._poll_job, claim)

    def _poll_job(self, claim: schedule.Claim) -> None:
        """Poll the leased kinds of one target, log one line per kind, hand the lease back, deliver."""
        name = claim.target
        target = self._targets.get(name)
        if target is None or not self.activity.begin_poll(name, stall_limit(target)):
            self.claims.give_back(claim, None)
            return
        interval, jitter = self.claims.interval(name), self.config.schedule.jitter
        started, line, outcomes = _now(), "FAILED", list[Any]()
        try:
            every_kind = set(claim.kinds) == set(target.kinds)
            line, outcomes = self._poll(target if every_kind else
                                        target.model_copy(update={"kinds": list(claim.kinds)}))
            if every_kind:
                self._warn_if_nothing_served(target, outcomes)
        finally:
            self.claims.give_back(claim, schedule.next_due(started, interval, jitter))
            self.activity.end_poll(name, line)
            self.notifier.status(self.activity.status_line())
        self.delivery.request()
        if any(outcome.events or outcome.baseline for outcome in outcomes):  # it recorded something
            self.export.request()
        self.claims.wake()  # a slot just came free

    def _warn_if_nothing_served(self, target: TargetConfig, outcomes) -> None:
        """Once per target: every kind answering 404 means a wrong base_url, not kinds retired."""
        if not nothing_served(outcomes):
            self._nothing_served.discard(target.name)
        elif target.name not in self._nothing_served:
            self._nothing_served.add(target.name)
            log.warning("%s", nothing_served_line(target))

    def _poll(self, target: TargetConfig) -> tuple[str, list]:
        """The poll itself; never raises. Returns the short result for STATUS= and the outcomes."""
        def progress(_label, _pages, _objects, done=False):
            self.activity.progress(target.name)

        try:
            outcomes = poll_target(self.engine, target, compose=self.compose, check=self.check, progress=progress,
                                   poll_timeout=self.config.schedule.poll_timeout, memory=self.page_memory)
        except (WatcherError, SQLAlchemyError) as exc:
            log.error("%s: poll failed: %s", target.name, one_line(exc))
            return "FAILED", []
        except Exception as exc:  # a bug must not kill the job thread silently, nor print a traceback
            log.error("%s: poll failed unexpectedly: %s: %s", target.name, type(exc).__name__, one_line(exc))
            logging.getLogger("watcher.traceback").debug("traceback", exc_info=True)
            return "FAILED", []
        for outcome in outcomes:
            log_outcome(outcome)
            self._heal_after(target, outcome)
        return result_word(outcomes), outcomes

    def _heal_after(self, target: TargetConfig, outcome) -> None:
        """Self-heal what this poll recorded; never raises (a failure is one log line)."""
        if self._heal is None or not target.heal:
            return
        try:
            report = self._heal(self.engine, self.config, target, outcome)
        except (WatcherError, SQLAlchemyError) as exc:
            log.error("%s/%s: self-heal failed: %s", target.name, outcome.kind, one_line(exc))
            return
        for event, result in report.healed:
            log.info("%s/%s %s: put back to version %s (self-heal; recorded as version %s)", target.name,
                     outcome.kind, event.name or event.object_id, event.from_version, result.version)

    def _watchdog_job(self) -> None:
        """Ping systemd, unless a poll or the schedule stopped making progress (then let systemd restart us)."""
        stalled = [(f"poll of {name}", seconds) for name, seconds in self.activity.stalled()]
        claiming = self.claims.hung_for()
        if claiming is not None:
            stalled.append(("the look for due polls", claiming))
        if not stalled:
            if self._watchdog_problem:
                log.info("watchdog: polls make progress again; pinging systemd again")
                self._watchdog_problem = None
            self.notifier.watchdog()
            return
        names = ", ".join(name for name, _seconds in stalled)
        if names != self._watchdog_problem:  # once per change, not on every tick
            detail = ", ".join(f"{name} (no progress for {seconds:.0f} s)" for name, seconds in stalled)
            log.error("watchdog: %s is hung; no more watchdog pings, systemd will restart the service", detail)
        self._watchdog_problem = names

    def _watchdog_text(self) -> str:
        if not self.notifier.enabled:
            return "not under systemd (NOTIFY_SOCKET unset)"
        seconds = self.notifier.watchdog_seconds
        if seconds is None:
            return "systemd notified, no watchdog"
        return f"systemd watchdog every {seconds / 2:g} s"


# --- small helpers --------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _timing(target: TargetConfig, config: Config) -> tuple[float, float]:
    return (config.interval_of(target), config.schedule.jitter)


def _exit_now(code: int) -> None:
    """Leave without joining worker threads (one is stuck); flush what was logged first."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(code)


def _open(config_option: str | None) -> tuple[Config, Engine]:
    """The config (secrets checked) and the migrated database, or ConfigError/SQLAlchemyError."""
    config = load_config(config_path(config_option))
    check_secrets(config)
    return config, open_engine(config.database.url, max_connections=config.max_connections)


def run(config_option: str | None, *, verbose: int = 0, bind_http: BindHttp | None = None,
        heal: Heal | None = None) -> int:
    """`assistant-watcher run`: the daemon. Returns the exit code (0 stopped by a signal, 2 bad config).

    `bind_http` serves `[http]` from this process (the CLI passes the web UI's)."""
    notifier = SystemdNotifier.from_environ()
    inbox = SignalInbox((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
    try:
        try:
            config, engine = _open(config_option)
        except ConfigError as exc:
            log.error("config error: %s", exc)
            return EXIT_CONFIG
        except SQLAlchemyError as exc:
            log.error("database error: %s", one_line(exc))
            return EXIT_FAILED
        log.debug("config %s loaded, database migrated", config.path)
        daemon = Daemon(config_option, config, engine, notifier, bind_http=bind_http, heal=heal)
        try:
            daemon.bind_http()
        except ConfigError as exc:
            log.error("config error: %s", exc)
            return EXIT_CONFIG
        except WatcherError as exc:  # the port is busy: a passing condition, worth a restart
            log.error("error: %s", exc)
            return EXIT_FAILED
        return daemon.serve(inbox)
    finally:
        inbox.close()


__all__ = ["run", "Daemon", "SystemdNotifier", "SignalInbox", "Activity", "stall_limit", "check_secrets"]
