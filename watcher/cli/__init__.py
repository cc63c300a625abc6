"""The command line: `assistant-watcher [--config PATH] [-v] COMMAND`.

`main` (`watcher.cli.app`) is the group; it finds each command in the module of its family
(`watcher.cli.app.COMMANDS`): reading the record, changing it, the outbox, the snapshot, the
long-lived commands, and the local ones that need no account.
"""

# `watcher.cli:main` is the console script, the one public entry point of the package.
from watcher.cli.app import main  # noqa: F401
