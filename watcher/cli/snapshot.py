"""`snapshot`: poll every target once, record the drift, deliver the outbox (cron's and a timer's command)."""

from __future__ import annotations

import signal
import threading

import click

from watcher.apply import heal_and_tell
from watcher.cli.app import EXIT_FAILED, EXIT_OK, App, pass_app
from watcher.cli.output import known_kinds, terminal_line
from watcher.display import counted, printable
from watcher.errors import ConfigError
from watcher.poll.outcome import ComposeAlerts, no_alerts, nothing_served, nothing_served_line, summary_line
from watcher.poll.run import poll_kinds
from watcher.record.overview_orm import count_pending
from watcher.rules.check import checker


@click.command()
@click.option("--target", "target_name", metavar="NAME", help="Poll only this target.")
@click.option("--kind", "kind_names", metavar="KIND", multiple=True, callback=known_kinds,
              help="Poll only this kind (repeatable); asked even if it was not served before.")
@click.option("--no-email", is_flag=True, help="Record only; leave the outbox for later delivery.")
@pass_app
def snapshot(app: App, target_name: str | None, kind_names: tuple[str, ...], no_email: bool) -> None:
    """Poll every target once, record drift, deliver the outbox.

    Exits 0 when every poll completed, 1 when one failed, 2 on a bad config.
    """
    config = app.config
    # A disabled target is polled only when named: its record is kept, its polling stopped.
    targets = [_configured_target(config, target_name)] if target_name else list(config.enabled_targets)
    if not targets:
        raise ConfigError(f"{config.path}: " + ("every target has enabled = false" if config.targets
                                                 else "no [[targets]] configured"))
    for target in targets:
        target.read_keys()  # a missing key is a config error, found before anything is polled
    _check_kinds(targets, kind_names)
    for channel in config.channels:
        channel.check_secrets()
    compose = _composer(config)
    check = checker(config.rules)
    outcomes: list = []
    failed_targets: list[str] = []
    interrupted = _Interruption()
    try:
        for target in targets:
            only = [k for k in kind_names if k in target.kinds] if kind_names else None
            first = len(outcomes)
            for outcome in poll_kinds(app.engine, target, compose=compose, check=check, progress=_progress_printer(),
                                       only=only, poll_timeout=config.schedule.poll_timeout,
                                       cancelled=interrupted.is_set):
                click.echo(printable(summary_line(outcome)))
                outcomes.append(outcome)  # at once: an interruption later in this target still names it
                _say_healed(target, outcome, heal_and_tell(app.engine, config, target, outcome) if target.heal
                            else None)
            if only is None and nothing_served(outcomes[first:]):
                click.echo(printable(nothing_served_line(target)), err=True)
                failed_targets.append(target.name)
    except KeyboardInterrupt:
        _interrupted(outcomes)
    finally:
        interrupted.close()
    drift = sum(1 for o in outcomes for e in o.events if not e.rule)
    ruled = sum(1 for o in outcomes for e in o.events if e.rule)
    if (drift or ruled) and config.alerts_go_nowhere:
        said = [counted(n, word) for n, word in ((drift, "drift event"), (ruled, "rule event")) if n]
        click.echo(f"note: {' and '.join(said)} recorded, but no alert channel is "
                   "configured ([smtp] or [[channels]]): nobody was told", err=True)
    if not no_email:
        _deliver_after_snapshot(app)
    ok = all(o.ok for o in outcomes) and not failed_targets
    click.get_current_context().exit(EXIT_OK if ok else EXIT_FAILED)


def _say_healed(target, outcome, report) -> None:
    """One line per object self-heal put back, left alone or could not put back."""
    if report is None:
        return
    where = f"{target.name}/{outcome.kind}"
    for event, result in report.healed:
        click.echo(printable(f"{where}: {event.name or event.object_id} put back to version {event.from_version} "
                             f"(self-heal; recorded as version {result.version})"))
    for event in report.fighting:
        click.echo(printable(f"{where}: {event.name or event.object_id} not put back: something keeps changing it "
                             "(self-heal put it back twice within heal_backoff)"), err=True)
    for event, why in report.failed:
        click.echo(printable(f"{where}: {event.name or event.object_id} not put back: {why}"), err=True)


def _configured_target(config, name: str):
    """The target called `name`; a mistyped --target is a usage error, not a config error."""
    try:
        return config.target(name)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="'--target'") from None


def _check_kinds(targets: list, kind_names: tuple[str, ...]) -> None:
    """Every --kind is watched by one of the chosen targets."""
    for name in kind_names:  # each is a kind: known_kinds checked it
        if not any(name in target.kinds for target in targets):
            raise click.UsageError(f"--kind: no chosen target watches {name} (set its `kinds` in the config)")


class _Interruption:
    """Ctrl-C during a snapshot, remembered: a library that swallows the KeyboardInterrupt its signal
    raised (inside a C call) cannot make the snapshot go on; the next request or record stops it."""

    def __init__(self):
        self._event = threading.Event()
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, _signum, _frame) -> None:
        self._event.set()
        raise KeyboardInterrupt

    def is_set(self) -> bool:
        return self._event.is_set()

    def close(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _interrupted(outcomes: list) -> None:
    """Ctrl-C during snapshot: say what was recorded (whole polls) and that the rest was not."""
    done = ", ".join(f"{o.target}/{o.kind}" for o in outcomes) or "nothing"
    click.echo(f"interrupted: recorded {done}; the poll in progress was not recorded (a poll is all or nothing); "
               "alerts already queued are delivered by the next snapshot or the daemon", err=True)
    click.get_current_context().exit(130)


def _composer(config) -> ComposeAlerts:
    """What the polls call for their alerts: nothing at all when no channel is configured."""
    if config.alerts_go_nowhere:
        return no_alerts
    from watcher.alerts.compose import composer  # jinja and the channels: only when someone is told

    return composer(config)


def _deliver_after_snapshot(app: App) -> None:
    if app.config.alerts_go_nowhere and not count_pending(app.engine):
        return  # nobody to tell and nothing left from before: the outbox has nothing to do
    from watcher.alerts import outbox  # jinja and the channels: only when there is something to deliver

    report = outbox.deliver_pending(app.engine, app.config)
    line = report.summary()
    if line:
        click.echo(line)


def _progress_printer():
    """A progress callback that rewrites one line on a terminal, and does nothing when piped."""
    line = terminal_line()
    if line is None:
        return None
    return lambda label, pages, objects, done=False: line(f"{label}: page {pages}, {objects} objects", done)
