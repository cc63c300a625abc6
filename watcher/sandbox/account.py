"""The sandbox's account: every object it serves, by kind and parent, and the one place they change.

Objects live in `Collection`s keyed by (kind, parent id): a top-level kind has one,
a kind listed under each parent (skill versions, a project's users) has one per
parent. The API, the Python controls and seeding all create, change and remove
objects through `Account`, so ids, timestamps, children and audit entries follow
the same rules whichever way a change arrives. Callers hold `lock`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from watcher.sandbox.collection import Collection, stamp_after
from watcher.sandbox.dice import Dice, dice_for, names
from watcher.sandbox.family import Served
from watcher.sandbox.wire import ABSENT, EPOCH, ApiError, copy, gc_paused

_SEEDED_EDITS = (0, 0, 45, 3_600, 86_400 * 3)  # how long after creation a seeded object was last edited

AuditSink = Callable[[Served, str, dict, dict, dict], None]  # (kind, event type, payload, object, context)


class Account:
    """Every served object (see the module docstring)."""

    def __init__(self, served: Iterable[Served], seed: int, admin_key: str | None = None):
        self.served: dict[str, Served] = {s.name: s for s in served}
        self.lock = threading.RLock()
        self._seed = seed
        self._dice = {name: dice_for(seed, name) for name in self.served}
        self._side: dict[str, Dice] = {}
        self._collections: dict[tuple[str, str | None], Collection] = {}
        self.admin_key = admin_key  # the organization's own admin key is one of its seeded admin keys
        self.audit_sink: AuditSink | None = None  # set when an organization plane is served

    # -- lookups ---------------------------------------------------------------------------

    def kind(self, name: str) -> Served:
        served = self.served.get(name)
        if served is None:
            raise ValueError(f"unknown kind {name!r}; expected one of {', '.join(self.served)}")
        return served

    def collection(self, name: str, parent: str | None = None) -> Collection:
        """The collection of `name` under `parent`, made on first use."""
        key = (name, parent)
        col = self._collections.get(key)
        if col is None:
            family = self.served[name].family
            col = self._collections[key] = Collection(family.prefix, family.what, self._dice[name])
        return col

    def side_dice(self, name: str) -> Dice:
        """A second stream for a kind's seed: draws from it never shift the main one's."""
        if name not in self._side:
            self._side[name] = dice_for(self._seed, f"{name}:side")
        return self._side[name]

    def existing(self, name: str, parent: str | None = None) -> Collection | None:
        """The collection if it holds or held objects (reads never make one: no draw from the dice)."""
        return self._collections.get((name, parent))

    def parent_object(self, served: Served, parent: str | None) -> dict | None:
        """The parent a per-parent kind is listed under; the API's 404 when it does not exist."""
        if served.parent is None:
            return None
        owner = self.served[served.parent]
        col = self.existing(owner.name)
        found = col.lookup(parent or "", owner.family.id_field) if col else None
        if found is None:
            raise ApiError(404, f"No {owner.family.what} found with id '{parent}'.")
        return found

    def locate(self, name: str, address: str) -> tuple[Served, Collection, dict, str | None]:
        """An object by its control address: its id, or "parent/key" for a per-parent kind; KeyError if none."""
        served = self.kind(name)
        parent, key = (None, address)
        if served.family.singleton and served.parent is not None:
            parent = key = address  # one object per parent, named by it
        elif served.parent is not None:
            parent, _, key = address.partition("/")
        col = self.existing(name, parent)
        obj = col.lookup(key, served.family.id_field) if col and key else None
        if col is None or obj is None:
            raise KeyError(address)
        return served, col, obj, parent

    def objects(self, name: str) -> list[dict]:
        """Every object of a kind in list order (per-parent kinds: parent by parent)."""
        served = self.kind(name)
        if served.parent is None:
            col = self.existing(name)
            return col.ordered() if col else []
        parents = self.existing(served.parent)
        if parents is None:
            return []
        out: list[dict] = []
        for pid in parents.ids:
            col = self.existing(name, self._parent_key(served.parent, parents.by_id[pid]))
            out.extend(col.ordered() if col else [])
        return out

    def _parent_key(self, parent_kind: str, parent_obj: dict) -> str:
        return str(parent_obj[self.served[parent_kind].family.id_field])

    # -- changes ---------------------------------------------------------------------------

    def add(self, served: Served, fields: dict, parent: str | None, context: dict | None = None) -> dict:
        """A new object: id, object, timestamps now, the family's defaults, then `fields`."""
        col = self.collection(served.name, parent)
        now = col.next_created_at()
        obj = _head(served.family.object, col.next_id())
        for stamp in served.family.stamped:
            obj[stamp] = now
        obj.update(served.family.defaults())
        obj.update(fields)
        col.append(obj)
        self._audit(served, "created", obj, parent, fields, context)
        self._start_singletons(served, obj)
        return obj

    def _start_singletons(self, served: Served, obj: dict) -> None:
        """A new parent's one-per-parent objects (a project's settings), as the platform makes them."""
        key = str(obj[served.family.id_field])
        for child in self.served.values():
            fresh = child.family.fresh(obj) if child.parent == served.name and child.family.singleton else None
            if fresh is not None:
                col = self.collection(child.name, key)
                col.append({**_head(child.family.object, col.next_id()), **fresh, "id": key})

    def change(self, served: Served, col: Collection, old: dict, fields: dict, *, bump: bool = True,
               change: str = "updated", parent: str | None = None, context: dict | None = None) -> dict:
        """Replace `old` by `old` + fields (ABSENT drops a key); advance updated_at when the kind has one."""
        new = {k: v for k, v in {**old, **fields}.items() if v is not ABSENT}
        stamp = served.updated_field
        if bump and stamp and stamp in old and stamp not in fields:
            new[stamp] = stamp_after(old.get(stamp))
        col.replace(new)
        self._audit(served, change, new, parent, fields, context, old)
        return new

    def remove(self, served: Served, col: Collection, obj: dict, parent: str | None = None,
               context: dict | None = None) -> None:
        """Delete an object and everything listed under it."""
        served.family.removing(obj, self, parent)
        col.delete(obj["id"])
        key = str(obj[served.family.id_field])
        for child in self.served.values():
            if child.parent == served.name:
                self._collections.pop((child.name, key), None)
        self._audit(served, "deleted", obj, parent, {}, context)

    def _audit(self, served: Served, change: str, obj: dict, parent: str | None, fields: dict,
               context: dict | None, old: dict | None = None) -> None:
        if self.audit_sink is None:
            return
        event = served.family.audit(change, obj, fields, old)
        if event is not None:
            self.audit_sink(served, event[0], event[1], obj, {"parent": parent, **(context or {})})

    # -- seeding ---------------------------------------------------------------------------

    def seed(self, counts: dict[str, int]) -> None:
        """Seed every kind in order (parents first): counts[name] objects, per parent for child kinds."""
        for served in self.served.values():
            count = counts.get(served.name, 0)
            if served.parent is None:
                self._seed_kind(served, count, None, EPOCH)
            else:
                parents = self.existing(served.parent)
                for parent_obj in parents.ordered() if parents else []:
                    self._seed_kind(served, count, self._parent_key(served.parent, parent_obj),
                                    parent_obj.get("created_at", EPOCH))
            served.family.after_seed(self)

    def _seed_kind(self, served: Served, count: int, parent: str | None, created: int) -> None:
        """Append `count` deterministic objects, a few seconds apart."""
        family, col = served.family, self.collection(served.name, parent)
        with gc_paused():
            for index, name in enumerate(names(col.dice, family.seed_names, count)):
                created += col.dice.between(1, 5)
                head = _head(family.object, col.next_id())
                for stamp in family.stamped:  # most objects were last edited some time after creation
                    head[stamp] = created + col.dice.pick(_SEEDED_EDITS) if stamp == "updated_at" else created
                col.append({**head, **family.seed(col.dice, index, name, self, parent)})
        col.last_created = max(col.last_created, created)

    def snapshot(self, name: str) -> list[dict]:
        """Copies of every object of a kind, in list order."""
        with self.lock:
            stored = self.objects(name)
        with gc_paused():
            return [copy(obj) for obj in stored]


def _head(object_type: str, oid: str) -> dict[str, Any]:
    """The first fields of every object: its id and, when its SDK model has one, its `object`."""
    return {"id": oid, "object": object_type} if object_type else {"id": oid}
