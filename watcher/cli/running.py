"""Running the watcher: snapshot (one poll of everything), run (the daemon), serve (the web UI),
demo, and the sandbox server."""

from __future__ import annotations

import sys

import click

from watcher.cli.app import EXIT_FAILED, EXIT_OK, App, main, pass_app
from watcher.cli.output import known_kinds
from watcher.display import printable
from watcher.errors import ConfigError

# --- snapshot -----------------------------------------------------------------------------


@main.command()
@click.option("--target", "target_name", metavar="NAME", help="Poll only this target.")
@click.option("--kind", "kind_names", metavar="KIND", multiple=True, callback=known_kinds,
              help="Poll only this kind (repeatable); asked even if it was not served before.")
@click.option("--no-email", is_flag=True, help="Record only; leave the outbox for later delivery.")
@pass_app
def snapshot(app: App, target_name: str | None, kind_names: tuple[str, ...], no_email: bool) -> None:
    """Poll every target once, record drift, deliver the outbox.

    Exits 0 when every poll completed, 1 when one failed, 2 on a bad config.
    """
    from watcher.poll.outcome import nothing_served, nothing_served_line, summary_line
    from watcher.poll.run import poll_kinds

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
    outcomes: list = []
    failed_targets: list[str] = []
    interrupted = _Interruption()
    try:
        for target in targets:
            only = [k for k in kind_names if k in target.kinds] if kind_names else None
            first = len(outcomes)
            for outcome in poll_kinds(app.engine, target, compose=compose, progress=_progress_printer(),
                                       only=only, poll_timeout=config.schedule.poll_timeout,
                                       cancelled=interrupted.is_set):
                click.echo(printable(summary_line(outcome)))
                outcomes.append(outcome)  # at once: an interruption later in this target still names it
            if only is None and nothing_served(outcomes[first:]):
                click.echo(printable(nothing_served_line(target)), err=True)
                failed_targets.append(target.name)
    except KeyboardInterrupt:
        _interrupted(outcomes)
    finally:
        interrupted.close()
    drift = sum(len(o.events) for o in outcomes)
    if drift and config.alerts_go_nowhere:
        click.echo(f"note: {drift} drift {'event' if drift == 1 else 'events'} recorded, but no alert channel is "
                   "configured ([smtp] or [[channels]]): nobody was told", err=True)
    if not no_email:
        _deliver_after_snapshot(app)
    ok = all(o.ok for o in outcomes) and not failed_targets
    click.get_current_context().exit(EXIT_OK if ok else EXIT_FAILED)


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
        import signal
        import threading

        self._event = threading.Event()
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, _signum, _frame) -> None:
        self._event.set()
        raise KeyboardInterrupt

    def is_set(self) -> bool:
        return self._event.is_set()

    def close(self) -> None:
        import signal

        signal.signal(signal.SIGINT, self._previous)


def _interrupted(outcomes: list) -> None:
    """Ctrl-C during snapshot: say what was recorded (whole polls) and that the rest was not."""
    done = ", ".join(f"{o.target}/{o.kind}" for o in outcomes) or "nothing"
    click.echo(f"interrupted: recorded {done}; the poll in progress was not recorded (a poll is all or nothing); "
               "alerts already queued are delivered by the next snapshot or the daemon", err=True)
    click.get_current_context().exit(130)


def _composer(config):
    from watcher.alerts import compose

    return compose.composer(config)


def _deliver_after_snapshot(app: App) -> None:
    from watcher.alerts import outbox

    report = outbox.deliver_pending(app.engine, app.config)
    line = report.summary()
    if line:
        click.echo(line)


def _progress_printer():
    """A progress callback that rewrites one line on a terminal, and does nothing when piped."""
    if not sys.stderr.isatty():
        return None

    def show(label: str, pages: int, objects: int, done: bool = False) -> None:
        end = "\n" if done else ""
        sys.stderr.write(f"\r\x1b[2K{label}: page {pages}, {objects} objects{end}")
        sys.stderr.flush()

    return show


# --- the daemon and the demo ----------------------------------------------------------------


@main.command()
@pass_app
def run(app: App) -> None:
    """The daemon: poll on schedule and deliver alerts until SIGTERM (systemd Type=notify)."""
    from watcher.run import daemon

    click.get_current_context().exit(daemon.run(app.config_option, verbose=app.verbose))


@main.command()
@click.option("--listen", metavar="HOST:PORT", help="Where to listen (default: [http] listen, else 127.0.0.1:8080).")
@pass_app
def serve(app: App, listen: str | None) -> None:
    """The web UI, the JSON API, /metrics and /healthz, without polling (until SIGTERM or Ctrl-C)."""
    from watcher.config.model import HttpConfig
    from watcher.web.app import Web
    from watcher.web.server import HttpServer, serve_until_signal

    config = app.config
    http = config.http or HttpConfig()
    if listen is not None:
        try:
            http = HttpConfig.model_validate({**http.model_dump(), "listen": listen})
        except ValueError as exc:
            raise ConfigError(f"--listen: {_validation_line(exc)}") from None
        config = config.model_copy(update={"http": http})
    server = HttpServer(Web(config, app.engine), http.host, http.port)
    click.echo(f"serving {server.url}/ (pages), {server.url}/api/v1/, /metrics and /healthz; Ctrl-C stops",
               err=True)
    serve_until_signal(server)


def _validation_line(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return errors()[0]["msg"].removeprefix("Value error, ")
    return str(exc)


@main.command()
@click.option("--html", "html_path", metavar="FILE", help="Where to write the alert's HTML part.")
def demo(html_path: str | None) -> None:
    """The whole loop on this machine, no account needed: sandbox, drift, real SMTP, the alert."""
    from watcher.demo import run_demo

    click.get_current_context().exit(run_demo(html_path=html_path))


# --- the sandbox ----------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--seed", default=5, show_default=True, type=click.IntRange(0, 100_000),
              help="How many objects of each kind to create at start.")
@click.option("--api-key", default="sk-sandbox", show_default=True, help="The project key the sandbox accepts.")
@click.option("--admin-key", default="sk-admin-sandbox", show_default=True,
              help="The admin key its organization endpoints accept.")
def sandbox(host: str, port: int, seed: int, api_key: str, admin_key: str) -> None:
    """Run the local OpenAI-compatible server that tests and the demo use."""
    from watcher.sandbox import serve

    serve(host=host, port=port, seed=seed, api_key=api_key, admin_key=admin_key)
