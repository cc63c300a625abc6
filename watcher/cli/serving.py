"""The long-lived commands: `run` (the daemon, for systemd) and `serve` (the web UI, API and metrics alone)."""

from __future__ import annotations

import click

from watcher.apply import heal_and_tell
from watcher.cli.app import App, pass_app
from watcher.config.model import HttpConfig
from watcher.errors import ConfigError
from watcher.run import daemon
from watcher.web.app import Web
from watcher.web.server import HttpServer, bound, serve_until_signal


@click.command()
@pass_app
def run(app: App) -> None:
    """The daemon: poll on schedule and deliver alerts until SIGTERM (systemd Type=notify)."""
    click.get_current_context().exit(daemon.run(app.config_option, verbose=app.verbose, bind_http=bound,
                                                heal=heal_and_tell))


@click.command()
@click.option("--listen", metavar="HOST:PORT", help="Where to listen (default: [http] listen, else 127.0.0.1:8080).")
@pass_app
def serve(app: App, listen: str | None) -> None:
    """The web UI, the JSON API, /metrics and /healthz, without polling (until SIGTERM or Ctrl-C)."""
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
