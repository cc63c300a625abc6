"""What the daemon tells its journal and systemd: the targets it runs, one line per poll, and what it cannot do.

Plain values in, text out (and log lines at the level each deserves); no I/O of its own besides logging.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from watcher.display import counted
from watcher.poll.outcome import summary_line
from watcher.record.schema import PollStatus
from watcher.times import duration_text

if TYPE_CHECKING:
    from watcher.config.model import Config

log = logging.getLogger("watcher.daemon")


def warn_if_alerts_go_nowhere(config: Config) -> None:
    if config.alerts_go_nowhere:
        log.warning("no alert channel is configured ([smtp] or [[channels]]): drift is recorded, nobody is told")


def targets_text(config: Config) -> str:
    parts = [f"{t.name} every {duration_text(config.interval_of(t))}"
             for t in config.enabled_targets]
    jitter = f" (+ up to {duration_text(config.schedule.jitter)} jitter)" if config.schedule.jitter else ""
    disabled = [t.name for t in config.targets if not t.enabled]
    return (", ".join(parts) or "no target enabled") + jitter + \
        (f"; disabled: {', '.join(disabled)}" if disabled else "")


def log_outcome(outcome) -> None:
    """One line per (target, kind): drift and baselines at INFO, failures at WARNING, quiet polls at DEBUG."""
    line = summary_line(outcome)
    if outcome.status == PollStatus.FAILED:
        log.warning("%s", line)
    elif outcome.baseline or outcome.events or outcome.first_not_served:
        log.info("%s", line)
    else:
        log.debug("%s", line)


def result_word(outcomes) -> str:
    """What STATUS= says about one target's last poll."""
    if any(o.status == PollStatus.FAILED for o in outcomes):
        return "FAILED"
    changes = sum(len(o.events) for o in outcomes)
    if any(o.baseline for o in outcomes):
        return "baseline"
    return f"ok, {counted(changes, 'change')}" if changes else "ok"
