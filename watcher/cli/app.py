"""The command group every command hangs on: the shared options, the App they share, logging,
and the one place where errors become exit codes and one-line messages: ConfigError exits 2,
every other WatcherError (and a database's own error) exits 1, and nothing prints a traceback
unless -v is given twice.

Nothing heavy is imported here: each command imports what it needs when it runs.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from watcher.config import quick
from watcher.config.values import config_path
from watcher.display import printable
from watcher.errors import ConfigError, WatcherError, one_line
from watcher.record.connection import Database, open_database

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from watcher.config.model import Config

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
log = logging.getLogger("watcher")


# Every command, by name: the module of watcher.cli that defines it, and its function there. A command's
# module is imported only when it runs (or when --help lists them all), so each imports at its top what
# its commands need and a reading command never loads what polling needs.
COMMANDS = {
    "history": ("reading", "history_command"), "show": ("reading", "show"), "diff": ("reading", "diff_command"),
    "events": ("reading", "events"), "objects": ("reading", "objects_command"), "status": ("reading", "status_command"),
    "rules": ("reading", "rules_command"), "check": ("declaring", "check_command"),
    "ack": ("changing", "ack"), "apply": ("changing", "apply_command"), "restore": ("changing", "restore"),
    "prune": ("changing", "prune"),
    "outbox": ("delivery", "outbox"), "test-email": ("delivery", "test_email"),
    "snapshot": ("snapshot", "snapshot"),
    "run": ("serving", "run"), "serve": ("serving", "serve"),
    "demo": ("local", "demo"), "sandbox": ("local", "sandbox"),
    "export": ("exporting", "export"),
}


class WatcherGroup(click.Group):
    """Finds each command by name (`COMMANDS`), and turns the watcher's typed errors, and click's usage
    errors, into one line on stderr and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"watcher.cli.{module}"), name)
        if not isinstance(command, click.Command):
            raise TypeError(f"watcher.cli.{module}.{name} is not a command")
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _HELP:
            raise  # no command given: click shows the help, as it should
        except click.UsageError as exc:  # the group's own options, or an unknown command
            raise _UsageLine(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a command's options and arguments
            raise _UsageLine(exc) from None
        except ConfigError as exc:
            _fail(ctx, f"config error: {exc}", EXIT_CONFIG)
        except WatcherError as exc:
            _fail(ctx, f"error: {exc}", EXIT_FAILED)
        except Exception as exc:
            if not _is_database_error(exc):
                raise
            _fail(ctx, f"database error: {one_line(exc)}", EXIT_FAILED)


# What click raises to show the help when a group is called without a command (click 8.2 and later).
_HELP: tuple[type[Exception], ...] = tuple(
    cls for cls in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if cls is not None)


class _UsageLine(click.UsageError):
    """A usage error shown as every other error is: one line (click's own form takes four), exit 2."""

    def __init__(self, error: click.UsageError):
        super().__init__(error.format_message(), error.ctx)

    def show(self, file: Any = None) -> None:
        where = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(printable(f"error: {self.format_message()}{where}"), err=True)


def _is_database_error(exc: Exception) -> bool:
    """An error of SQLAlchemy, sqlite3 or psycopg: a library never imported cannot have raised it."""
    for module, name in (("sqlalchemy.exc", "SQLAlchemyError"), ("sqlite3", "Error"), ("psycopg", "Error")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


def _fail(ctx: click.Context, message: str, code: int) -> None:
    app = ctx.obj
    if isinstance(app, App) and app.verbose >= 2:
        raise
    click.echo(printable(message), err=True)  # messages may quote the server: never let it drive the terminal
    ctx.exit(code)


@dataclass
class App:
    """What every command shares: where the config is, how loud to be, the open store.

    Reading commands ask for `database()` (plain SQL, the config's [database] only); commands that
    poll or change the record ask for `config` (the whole file, validated) and `engine` (SQLAlchemy).
    """

    config_option: str | None
    verbose: int
    _config: Config | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def path(self) -> Path:
        """Where the config file is (--config, else $ASSISTANT_WATCHER_CONFIG, else /etc)."""
        return config_path(self.config_option)

    @property
    def config(self) -> Config:
        """The whole config, validated (pydantic: only the commands that poll or change the record ask)."""
        if self._config is None:
            from watcher.config.model import load_config  # pydantic: kept out of the reading commands

            self._config = load_config(self.path)
            log.debug("config %s: %d targets", self._config.path, len(self._config.targets))
        return self._config

    @property
    def engine(self) -> Engine:
        """The record through SQLAlchemy, migrated (only the commands that poll or change it ask)."""
        if self._engine is None:
            from watcher.record.engine import open_engine  # SQLAlchemy: kept out of the reading commands

            self._engine = open_engine(self.config.database.url)
        return self._engine

    def session(self) -> Session:
        from sqlalchemy.orm import Session  # SQLAlchemy: kept out of the reading commands

        return Session(self.engine, expire_on_commit=False)

    def database(self) -> Database:
        """The record for reading, in plain SQL: opened from the config's [database] url alone."""
        url = self._config.database.url if self._config is not None else quick.database_url(self.path)
        log.debug("config %s: reading the record", self.path)
        return open_database(url)

    def configured_kinds(self) -> list[tuple[str, str]]:
        """(target, kind) of every configured target and kind, without validating the whole config."""
        return quick.configured_kinds(self.path)

    def configured_rules(self) -> list[dict]:
        """Every [[rules]] as {name, kinds, expression, severity}, without validating the whole config."""
        return quick.rules(self.path)

    def disabled_targets(self) -> set[str]:
        """The names of targets configured with `enabled = false`, without validating the whole config."""
        return quick.disabled_targets(self.path)

    def channel_types(self) -> dict[str, str]:
        """Every configured channel's type by name, without validating the whole config."""
        return quick.channel_types(self.path)

    def email_routing(self) -> dict[str, Any]:
        """The watchlist, routes and email channels' addresses, without validating the whole config."""
        return quick.email_routing(self.path)


pass_app = click.make_pass_decorator(App)


def _setup_logging(verbose: int) -> None:
    """Log to stderr, one line per event; with sd-daemon level prefixes when stderr is the journal."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JournalFormatter() if _stderr_is_journal() else
                         logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # -v: the watcher's own debug lines; -vv: tracebacks and the libraries' internals too.
    logging.basicConfig(level=logging.DEBUG if verbose >= 2 else logging.INFO, handlers=[handler])
    logging.getLogger("watcher").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("watcher.traceback").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    for noisy in ("openai", "alembic", "mail.log", "apscheduler", "aiosmtplib", "asyncio", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    # Never below WARNING: the HTTP clients log every URL, and a Slack or Teams webhook URL is a secret.
    for client in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(client).setLevel(logging.WARNING)


def _stderr_is_journal() -> bool:
    """True when systemd connected stderr to the journal ($JOURNAL_STREAM names its device:inode)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(sys.stderr.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


class _JournalFormatter(logging.Formatter):
    """`<N>name: message` (sd-daemon priority prefix); a traceback is folded into the same line."""

    _PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        priority = self._PRIORITY.get(record.levelno, 3 if record.levelno > logging.WARNING else 6)
        # journald makes one entry per line: a multi-line event must stay one entry.
        return f"<{priority}>{record.name}: " + " \\ ".join(line for line in text.splitlines() if line.strip())


@click.group(cls=WatcherGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_option", metavar="PATH",
              help="Config file (default: $ASSISTANT_WATCHER_CONFIG, else /etc/assistant-watcher/config.toml).")
@click.option("-v", "--verbose", count=True, help="The watcher's debug lines; twice for tracebacks and libraries.")
@click.version_option(package_name="assistant-watcher")
@click.pass_context
def main(ctx: click.Context, config_option: str | None, verbose: int) -> None:
    """Keep a versioned, audited history of every assistant and agent, and email drift."""
    _setup_logging(verbose)
    ctx.obj = App(config_option, verbose)
