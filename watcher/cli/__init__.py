"""The command line: `assistant-watcher [--config PATH] [-v] COMMAND`.

`main` (watcher.cli.app) is the group; each module here adds one family of commands to it:
reading the record, the outbox, changing the record and objects, running the watcher. A command
imports what only it needs when it runs, so reading commands never load SQLAlchemy or pydantic.
"""

from watcher.cli import changing, delivery, reading, running  # noqa: F401  (each adds its commands to main)
from watcher.cli.app import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, App, main

__all__ = ["main", "App", "EXIT_OK", "EXIT_FAILED", "EXIT_CONFIG"]
