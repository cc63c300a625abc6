"""`check DIR`: are the live objects the declared ones? A CI job's command (exit 0 in sync, 1 differs, 2 bad input)."""

from __future__ import annotations

from pathlib import Path

import click

from watcher.cli.app import EXIT_FAILED, EXIT_OK, App, pass_app
from watcher.cli.output import print_json
from watcher.declared.check import check, read_declared
from watcher.display import counted, printable
from watcher.record.engine import installation_key


@click.command("check")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--target", "target_name", metavar="NAME", help="Only this target.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--strict", is_flag=True, help="Also fail on live objects no file declares (in the kinds DIR holds).")
@pass_app
def check_command(app: App, directory: str, target_name: str | None, as_json: bool, strict: bool) -> None:
    """Compare the live objects with the declared ones in DIR/<target>/<kind>/<name or id>.json.

    A fresh listing, written nowhere. Only the fields `apply` may write are compared. Exits 0 when in sync,
    1 when something differs, is missing, breaks a rule (or, with --strict, is declared nowhere), 2 on bad input.
    """
    config = app.config
    targets = [config.target(target_name)] if target_name else list(config.enabled_targets)
    for target in targets:
        target.read_keys()  # a missing key is a config error, found before anything is listed
    declared = read_declared(Path(directory), [t.name for t in targets])
    # The key the record fingerprints secrets with: a file saved from `show --json` carries those fingerprints.
    report = check(targets, declared, config.rules, installation_key(app.engine), strict=strict)
    if as_json:
        print_json(report.document())
    else:
        _say(report, len(declared))
    click.get_current_context().exit(EXIT_OK if report.in_sync else EXIT_FAILED)


def _say(report, declared: int) -> None:
    for item in report.differs:
        click.echo(printable(f"differs: {item['target']}/{item['kind']} {item['name'] or item['object_id']} "
                             f"({item['file']})"))
        for change in item["changes"]:
            click.echo(printable(f"  {change['path']}: {_short(change['old'])} → {_short(change['new'])}"))
    for item in report.missing:
        click.echo(printable(f"missing: {item['target']}/{item['kind']} {item['name'] or item['object_id']} "
                             f"({item['file']}) is declared but not live"))
    for item in report.undeclared:
        click.echo(printable(f"undeclared: {item['target']}/{item['kind']} {item['name'] or item['object_id']} "
                             "is live but no file declares it"))
    for item in report.violations:
        click.echo(printable(f"violation: {item['target']}/{item['kind']} {item['name'] or item['object_id']} "
                             f"breaks rule {item['rule']}: {item['message']}"))
    if report.in_sync:
        click.echo(f"in sync: {counted(declared, 'declared object')}")
        return
    parts = [(len(report.differs), "differs"), (len(report.missing), "missing"),
             (len(report.undeclared), "undeclared"), (len(report.violations), "violations")]
    click.echo("not in sync: " + ", ".join(f"{n} {word}" for n, word in parts if n))


def _short(value, limit: int = 80) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
