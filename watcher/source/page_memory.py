"""What a long-lived process remembers of the pages it listed, so an unchanged page is not read again.

A daemon lists the same pages every interval and most come back byte for byte as before. For
each page of its last complete poll of a (target, kind) it keeps a digest of the answer's bytes
and what reading them gave: the ids, labels and raw fingerprints of the objects, and where the
next page starts. A page whose bytes have that digest is then known without being parsed.

It never decides alone: a remembered page counts as unchanged only when every object on it
still has that raw fingerprint in the record loaded at the start of the poll (see
`watcher.poll.run`), so whatever another process recorded meanwhile is read and compared as usual.
Nothing of an object's content is kept, and nothing of this leaves memory.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from watcher.compare.normalize import Normalization


@dataclass(frozen=True)
class PageSummary:
    """What reading one page's bytes gave, under one kind's rules."""

    ids: tuple[str, ...]
    labels: tuple[str | None, ...]
    raw_hashes: tuple[str, ...]  # each object's raw fingerprint (watcher.compare.normalize.raw_fingerprint)
    has_more: bool | None
    cursor: str | None  # the next page's `after`


def page_digest(path: str, data: bytes) -> bytes:
    """The digest that recognizes an answer: its bytes and the path they answered (ids depend on the parent)."""
    digest = hashlib.sha256(path.encode("utf-8"))  # sha256, not blake2b: twice as fast where the CPU has SHA
    digest.update(b"\0")
    digest.update(data)
    return digest.digest()[:16]


class PageMemory:
    """The pages of this process's last complete poll of each (target, kind), by their digest."""

    def __init__(self) -> None:
        self._slots: dict[tuple[str, str], tuple[bytes, dict[bytes, PageSummary]]] = {}
        self._lock = threading.Lock()  # the daemon polls different targets in parallel threads

    def recall(self, target: str, kind: str, rules: Normalization) -> dict[bytes, PageSummary]:
        """The remembered pages of (target, kind), if they were read under the same rules; else none."""
        with self._lock:
            mark, pages = self._slots.get((target, kind), (b"", {}))
        return pages if mark == _rules_mark(rules) else {}

    def keep(self, target: str, kind: str, rules: Normalization, pages: dict[bytes, PageSummary]) -> None:
        """Remember the pages of a poll that was just recorded complete, in place of the previous one's."""
        with self._lock:
            self._slots[(target, kind)] = (_rules_mark(rules), pages)

    def forget(self, polled: set[tuple[str, str]]) -> None:
        """Drop what is remembered of every (target, kind) not in `polled` (after a reload)."""
        with self._lock:
            for key in [key for key in self._slots if key not in polled]:
                del self._slots[key]


def _rules_mark(rules: Normalization) -> bytes:
    # Raw fingerprints depend on the rules and on the installation key: either changing makes them lapse.
    return hashlib.blake2b(rules.digest, key=rules.secret_key[:64], digest_size=16).digest()
