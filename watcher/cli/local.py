"""The commands that need no account: `demo` (the whole loop on this machine) and `sandbox` (the local
OpenAI-compatible server that tests and the demo use)."""

from __future__ import annotations

import click

from watcher.demo import run_demo
from watcher.sandbox.server import serve


@click.command()
@click.option("--html", "html_path", metavar="FILE", help="Where to write the alert's HTML part.")
def demo(html_path: str | None) -> None:
    """The whole loop on this machine, no account needed: sandbox, drift, real SMTP, the alert."""
    click.get_current_context().exit(run_demo(html_path=html_path))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--seed", default=5, show_default=True, type=click.IntRange(0, 100_000),
              help="How many objects of each kind to create at start.")
@click.option("--api-key", default="sk-sandbox", show_default=True, help="The project key the sandbox accepts.")
@click.option("--admin-key", default="sk-admin-sandbox", show_default=True,
              help="The admin key its organization endpoints accept.")
def sandbox(host: str, port: int, seed: int, api_key: str, admin_key: str) -> None:
    """Run the local OpenAI-compatible server that tests and the demo use."""
    serve(host=host, port=port, seed=seed, api_key=api_key, admin_key=admin_key)
