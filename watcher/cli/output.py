"""How commands print: JSON documents, aligned tables, an object's title, one change of a diff.

Remote values (names, ids, text) are shown with control characters escaped, never passed to a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from watcher.config.values import did_you_mean
from watcher.display import json_text, printable
from watcher.errors import RecordError
from watcher.kinds import registry
from watcher.times import iso, parse_time


def terminal_line() -> Callable[..., None] | None:
    """A writer that rewrites one line of stderr on a terminal (`done=True` ends the line, an empty text clears
    it), or None when stderr is piped: progress is for people watching."""
    if not sys.stderr.isatty():
        return None

    def write(text: str, done: bool = False) -> None:
        sys.stderr.write(f"\r\x1b[2K{text}{chr(10) if done else ''}")
        sys.stderr.flush()

    return write


def print_json(document: Any) -> None:
    """`--json` output: indented, with nothing in it a terminal would act on (see `display.json_text`)."""
    click.echo(json_text(document, indent=2))


def printable_json(document: Any) -> str:
    """Indented JSON for a terminal: still JSON (its own newlines kept), remote text escaped line by line."""
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)
    return "\n".join(printable(line) for line in text.split("\n"))


def resource_title(resource) -> str:
    """`target/kind/id "name"`, and when it was deleted if it was."""
    name = f' "{resource.name}"' if resource.name else ""
    gone = f" (deleted {iso(resource.deleted_at)})" if resource.deleted_at else ""
    return printable(f"{resource.target.name}/{resource.kind}/{resource.remote_id}{name}{gone}")


def echo_table(headers: list[str], rows: list[list[str]]) -> None:
    """Aligned columns; remote values are shown with control characters escaped, one row per line."""
    rows = [[printable(str(cell)) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    click.secho("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), bold=True)
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def echo_change(change) -> None:
    """One change of a diff: its path, then its line diff, or its old and new values."""
    click.secho(printable(f"{change.op} {change.path}"), bold=True)
    if change.text_diff:
        for line in change.text_diff:
            color = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1])
            click.secho(f"    {printable(line)}", fg=color)
        return
    if change.op in ("changed", "removed"):
        click.secho(f"    - {_short(change.old)}", fg="red")
    if change.op in ("changed", "added"):
        click.secho(f"    + {_short(change.new)}", fg="green")


def _short(value: Any, limit: int = 300) -> str:
    text = printable(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def known_kinds(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    """Click callback for --kind (one name or several): each is a kind of the registry, or a did-you-mean."""
    if not value:
        return value
    names = registry.names()
    for name in (value,) if isinstance(value, str) else value:
        if name not in names:
            raise click.BadParameter(f"unknown kind {name!r}{did_you_mean(name, names)}; known kinds: "
                                     f"{', '.join(names)}")
    return value


def readable_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """Click callback for a TIME option: the moment it names, read once; one the watcher cannot read is a
    usage error (exit 2), said at once."""
    if value is None:
        return value
    try:
        return parse_time(value)
    except RecordError as exc:
        raise click.BadParameter(str(exc)) from None
