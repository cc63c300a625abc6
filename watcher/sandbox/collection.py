"""One list of objects as the API pages it: ordered ids, objects by id, cached wire bytes."""

from __future__ import annotations

import bisect
import time
from typing import Any

from watcher.sandbox.dice import BASE62, Dice
from watcher.sandbox.wire import EPOCH, ApiError, dumps


class Collection:
    """The objects of one kind (under one parent): a dict by id and a sorted id list (= list order).

    Ids the sandbox issues sort in creation order (a base-62 counter, then random
    characters), so ascending id order is ascending `created_at` and a cursor is a
    bisection. Ids given by the caller (a rate limit named after its model) sort
    where they fall.
    """

    def __init__(self, prefix: str, label: str, dice: Dice):
        self.prefix, self.label, self.dice = prefix, label, dice
        self.by_id: dict[str, dict] = {}
        self.ids: list[str] = []
        self.wire: dict[str, bytes] = {}  # pre-serialized objects, filled on first serve
        self.counter = dice.rng.randrange(62**7 * 12, 62**7 * 20)  # sortable id prefix, random start
        self.last_created = EPOCH

    def __len__(self) -> int:
        return len(self.ids)

    def next_id(self) -> str:
        """An id that sorts after every id issued so far: 8 base-62 counter chars, 16 random."""
        self.counter += self.dice.between(1_000, 5_000_000)
        n, head = self.counter, []
        for _ in range(8):
            n, digit = divmod(n, 62)
            head.append(BASE62[digit])
        return self.prefix + "".join(reversed(head)) + self.dice.token(16)

    def next_created_at(self) -> int:
        """Now, but never before the newest object, so id order stays creation order."""
        self.last_created = max(int(time.time()), self.last_created)
        return self.last_created

    def append(self, obj: dict) -> None:
        """Store a new object (seeding appends in order; insort covers explicit ids)."""
        oid = obj["id"]
        if oid in self.by_id:
            raise ValueError(f"duplicate id {oid}")
        self.by_id[oid] = obj
        if not self.ids or oid > self.ids[-1]:
            self.ids.append(oid)
        else:
            bisect.insort(self.ids, oid)

    def replace(self, obj: dict) -> None:
        self.by_id[obj["id"]] = obj
        self.wire.pop(obj["id"], None)

    def delete(self, oid: str) -> None:
        del self.by_id[oid]
        self.wire.pop(oid, None)
        del self.ids[bisect.bisect_left(self.ids, oid)]

    def lookup(self, key: str, field: str = "id") -> dict | None:
        """The object whose `field` is `key` (a scan for fields other than id: small collections)."""
        if field == "id":
            return self.by_id.get(key)
        return next((obj for obj in self.by_id.values() if str(obj.get(field)) == key), None)

    def find(self, key: str, field: str = "id") -> dict:
        """Like lookup, but a missing object is the API's 404."""
        obj = self.lookup(key, field)
        if obj is None:
            raise ApiError(404, f"No {self.label} found with id '{key}'.")
        return obj

    def ordered(self) -> list[dict]:
        return [self.by_id[oid] for oid in self.ids]

    def serialized(self, oid: str) -> bytes:
        data = self.wire.get(oid)
        if data is None:
            data = self.wire[oid] = dumps(self.by_id[oid])
        return data

    def page(self, limit: int, order: str, after: str | None, before: str | None,
             repeat_last: bool = False) -> tuple[list[str], bool]:
        return page(self.ids, limit, order, after, before, repeat_last)


def page(ids: list[str], limit: int, order: str, after: str | None, before: str | None,
         repeat_last: bool = False) -> tuple[list[str], bool]:
    """The ids of one list page of sorted `ids` in order, and has_more; O(log N + limit)."""
    n = len(ids)
    if order == "asc":
        lo = bisect.bisect_right(ids, after) if after else 0
        hi = bisect.bisect_left(ids, before) if before else n
        if repeat_last and after:
            lo = max(0, lo - 1)  # the repeat_id quirk: start again at the cursor object
    else:
        lo = bisect.bisect_right(ids, before) if before else 0
        hi = bisect.bisect_left(ids, after) if after else n
        if repeat_last and after:
            hi = min(n, hi + 1)
    hi = max(lo, hi)
    # walk from the `after` side, or from the `before` side when only `before` is given
    from_low = (order == "asc") != bool(before and not after)
    if from_low:
        start, stop, has_more = lo, min(hi, lo + limit), lo + limit < hi
    else:
        start, stop, has_more = max(lo, hi - limit), hi, hi - limit > lo
    chosen = ids[start:stop]
    return (chosen if order == "asc" else chosen[::-1]), has_more


def stamp_after(previous: Any) -> int:
    """A timestamp for an edit: now, but strictly after `previous` (edits faster than the clock)."""
    last = previous if isinstance(previous, int) and not isinstance(previous, bool) else 0
    return max(int(time.time()), last + 1)
