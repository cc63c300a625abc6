"""Which channel is which: the channel types by name, and the channels a config delivers to.

One module per type, named for it (`watcher.alerts.channels.email` is the type "email"), each
exporting `CHANNEL`, its `Channel` class (see `watcher.alerts.channels.base`). A type's module is
imported when a channel of that type is first used, so a process that tells nobody loads none of
them (nor aiosmtplib).

`configured(config)` names every channel a config delivers to: the watchlist email (when
`[smtp]` is set) and each `[[channels]]` entry. `open_channel(name, config, sweep)` gives the
channel object that renders and sends for one sweep of the outbox.
"""

from __future__ import annotations

import importlib

from watcher.alerts.channels.base import Channel, Sweep
from watcher.config.alerts import CHANNEL_TYPES
from watcher.config.model import Config
from watcher.config.routing import WATCHLIST_CHANNEL


def channel_class(type_name: str) -> type[Channel]:
    """The `Channel` class of the type called `type_name` (one of `CHANNEL_TYPES`), its module imported now."""
    if type_name not in CHANNEL_TYPES:
        raise ValueError(f"unknown channel type {type_name!r}")
    return importlib.import_module(f"{__package__}.{type_name}").CHANNEL


def type_names(config: Config) -> dict[str, str]:
    """Every channel `config` delivers to, by name, with its type's name; imports nothing."""
    found = {WATCHLIST_CHANNEL: "email"} if config.smtp is not None else {}
    found.update({c.name: c.type for c in config.channels})
    return found


def configured(config: Config) -> dict[str, type[Channel]]:
    """Every channel `config` delivers to, by name, with its class."""
    return {name: channel_class(type_name) for name, type_name in type_names(config).items()}


def open_channel(name: str, config: Config, sweep: Sweep) -> Channel | None:
    """The channel called `name` for this sweep, or None when the config no longer has it."""
    if name not in sweep.channels:
        type_name = type_names(config).get(name)
        if type_name is None:
            return None
        sweep.channels[name] = channel_class(type_name)(name, config, sweep)
    return sweep.channels[name]
