"""`export git`: the record as a git repository an auditor clones and reads with `git log -p`."""

from __future__ import annotations

import click

from watcher.cli.app import App, pass_app
from watcher.cli.output import terminal_line
from watcher.display import counted, printable


@click.group("export")
def export() -> None:
    """Write the record somewhere else: `export git DIR`."""


@export.command("git")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--target", "target_name", metavar="NAME", help="Only this target (a history of its own).")
@pass_app
def export_git_command(app: App, directory: str, target_name: str | None) -> None:
    """Write every version as a commit of the git repository DIR (created when absent).

    One file per object, one commit per version, authored by who made the change; a second run adds
    only what was recorded since. No git binary is needed.
    """
    from watcher.export.history import export_git  # dulwich: only this command writes git

    if target_name is not None and target_name not in {t.name for t in app.config.targets}:
        raise click.BadParameter(f"no target {target_name!r} in {app.config.path}", param_hint="'--target'")
    line = terminal_line()
    report = export_git(app.engine, directory, target=target_name,
                        progress=(lambda commits: line(f"export: {commits} commits")) if line else None)
    if line:
        line("")  # the result takes the progress line's place
    where = printable(directory)
    if not report.commits:
        click.echo(f"{where}: up to date" + (f" (version {report.last_version})" if report.last_version else
                                              ": the record has no versions yet"))
        return
    click.echo(f"{where}: {counted(report.commits, 'commit')} added, through version {report.last_version}")
