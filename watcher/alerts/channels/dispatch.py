"""Which channel is which: the channel types by name, and the channels a config delivers to.

One module per type, each a `Channel` (see `watcher.alerts.channels.base`).

`configured(config)` names every channel a config delivers to: the watchlist email (when
`[smtp]` is set) and each `[[channels]]` entry. `open_channel(name, config, sweep)` gives the
channel object that renders and sends for one sweep of the outbox.
"""

from __future__ import annotations

from watcher.alerts.channels.base import Channel, Sweep
from watcher.alerts.channels.email import EmailChannel
from watcher.alerts.channels.slack import SlackChannel
from watcher.alerts.channels.teams import TeamsChannel
from watcher.alerts.channels.webhook import WebhookChannel
from watcher.config.model import Config
from watcher.config.routing import WATCHLIST_CHANNEL

TYPES: dict[str, type[Channel]] = {c.type: c for c in (EmailChannel, WebhookChannel, SlackChannel, TeamsChannel)}


def configured(config: Config) -> dict[str, type[Channel]]:
    """Every channel `config` delivers to, by name, with its class."""
    found: dict[str, type[Channel]] = {}
    if config.smtp is not None:
        found[WATCHLIST_CHANNEL] = EmailChannel
    found.update({c.name: TYPES[c.type] for c in config.channels})
    return found


def open_channel(name: str, config: Config, sweep: Sweep) -> Channel | None:
    """The channel called `name` for this sweep, or None when the config no longer has it."""
    if name not in sweep.channels:
        cls = configured(config).get(name)
        if cls is None:
            return None
        sweep.channels[name] = cls(name, config, sweep)
    return sweep.channels[name]

