"""Misbehaviour on purpose: induced failures, latency, a trickling server, retired kinds and quirks.

A watcher that must never silently miss an object is tested against these: each
one is what some real or OpenAI-compatible server has done.
"""

from __future__ import annotations

import threading

from watcher.sandbox.wire import ApiError, induced

QUIRKS = (
    "full_page_has_more_false",  # a full page says has_more false though more follow
    "repeat_id",  # each page after the first starts with the previous page's last object
    "stuck_cursor",  # `after` is ignored: the first page again, has_more true
    "timestamps_ms",  # created_at/updated_at (every timestamp of the kind) in milliseconds
    "nulls_for_empty",  # empty lists/objects and absent optional fields served as null
    "omit_has_more",  # list answers leave has_more out altogether
    "fixed_page_20",  # a page is 20 objects whatever `limit` says
    "ignore_limit",  # the whole collection in one page, whatever `limit` says
    "empty_listing",  # every list answers one empty page, has_more false, though the objects are still served
    "null_data",  # every list answers `"data": null`, has_more false, as a broken proxy does
)


class Faults:
    """The current misbehaviour; every read takes a consistent snapshot under the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Clear induced failures, latency, trickle, retired kinds and quirks."""
        with self._lock:
            self._fail_n, self._fail_status, self._fail_message = 0, 500, ""
            self._fail_after_status: int | None = None
            self.latency = 0.0
            self.trickle: tuple[int, float] | None = None
            self.retired: frozenset[str] = frozenset()
            self.quirks: frozenset[str] = frozenset()

    def fail_next(self, n: int, status: int = 500, message: str = "sandbox induced failure") -> None:
        with self._lock:
            self._fail_n, self._fail_status, self._fail_message = int(n), int(status), str(message)

    def fail_pages_after_first(self, status: int = 500) -> None:
        with self._lock:
            self._fail_after_status = int(status)

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self.latency = max(0.0, float(seconds))

    def set_trickle(self, bytes_per_chunk: int, seconds_between: float) -> None:
        """Send every API response body `bytes_per_chunk` bytes at a time; 0 bytes turns it off."""
        size, pause = int(bytes_per_chunk), float(seconds_between)
        if size < 0 or pause < 0:
            raise ValueError("set_trickle takes a chunk size and a pause of 0 or more")
        with self._lock:
            self.trickle = (size, pause) if size else None

    def retire(self, kind: str) -> None:
        with self._lock:
            self.retired = self.retired | {kind}

    def restore_kind(self, kind: str) -> None:
        with self._lock:
            self.retired = self.retired - {kind}

    def set_quirk(self, name: str, on: bool = True) -> None:
        if name not in QUIRKS:
            raise ValueError(f"unknown quirk {name!r}; expected one of {', '.join(QUIRKS)}")
        with self._lock:
            self.quirks = self.quirks | {name} if on else self.quirks - {name}

    def failure(self, later_page: bool) -> ApiError | None:
        """The induced failure this request answers with, if any (counting it down)."""
        with self._lock:
            if self._fail_n > 0:
                self._fail_n -= 1
                return induced(self._fail_status, self._fail_message)
            if self._fail_after_status is not None and later_page:
                return induced(self._fail_after_status, "sandbox induced failure of a page after the first")
        return None
