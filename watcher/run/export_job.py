"""The daemon's export job: keeps `[export] git` current after each poll that recorded something.

One thread, one export at a time: a request during an export makes it go round once more, so a burst
of polls is one or two exports. Several daemons on one database take turns under the export lock
(`watcher.record.locks.export_lock`), and each adds only what the others have not. An export never
raises; a failure is logged once, and again only when it changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.config.model import Config
from watcher.errors import WatcherError, one_line
from watcher.run.coalesce import Coalesced

log = logging.getLogger("watcher.daemon")


class ExportJob:
    """Exports the record `current()` names to its `[export] git` directory; `request()` asks for it."""

    def __init__(self, current: Callable[[], tuple[Engine, Config]]):
        self._current = current  # the engine and config in use now: a reload replaces them
        self._requests = Coalesced()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
        self._last_problem: str | None = None
        self._push_owed = False  # a push that failed: the next export pushes even if it adds nothing

    def request(self) -> None:
        """Export soon, when `[export] git` is set (or make the running export go round once more)."""
        if self._current()[1].export.git is None or not self._requests.ask():
            return
        try:
            self._pool.submit(self._run)
        except RuntimeError:  # shutting down: the next start exports what this one did not
            pass

    def close(self) -> None:
        """Finish the export in progress, if any, and take no more."""
        self._pool.shutdown(wait=True)

    def _run(self) -> None:
        if not self._requests.begin():
            return
        try:
            while self._requests.another_round():
                self._export()
        finally:
            self._requests.end()

    def _export(self) -> None:
        from watcher.export.history import export_git  # dulwich: loaded only by a daemon that exports

        engine, config = self._current()
        if config.export.git is None:
            return
        try:
            report = export_git(engine, config.export.git)
        except (WatcherError, SQLAlchemyError, OSError) as exc:
            problem = f"export git {config.export.git} failed: {one_line(exc)}"
            if problem != self._last_problem:
                log.warning("%s", problem)
            self._last_problem = problem
            return
        if report.commits:
            log.info("export git %s: %d commits added, through version %s", config.export.git, report.commits,
                     report.last_version)
        if config.export.push and (report.commits or self._push_owed):
            self._push_owed = not self._pushed(config.export.git, config.export.push)  # owed: tried again next time
            if self._push_owed:
                return
        self._last_problem = None

    def _pushed(self, directory: str, remote: str) -> bool:
        from watcher.export.git import push  # dulwich: loaded only by a daemon that exports

        try:
            push(directory, remote)
        except WatcherError as exc:
            problem = str(exc)
            if problem != self._last_problem:
                log.warning("export git %s: %s", directory, problem)
            self._last_problem = problem
            return False
        return True
