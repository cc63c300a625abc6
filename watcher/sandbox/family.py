"""The one small interface every served kind implements, and what each kind is served as.

A `Family` knows one kind's objects: their shape (as the `openai` SDK models them),
realistic seed content, the defaults a create fills in and what its create, update
and extra actions accept. The generic machinery (`account`, `api`, `routing`) does
the rest: ids, timestamps, cursor pages, auth, faults and quirks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watcher.sandbox.dice import Dice

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

PROJECT, ADMIN = "project", "admin"
ALL_OPS = frozenset({"list", "retrieve", "create", "update", "delete"})


class Family:
    """How the sandbox serves one kind. Subclasses set the class attributes and override hooks."""

    name: str = ""  # the kind's name (the registry's, or the sandbox's own for kinds it only serves)
    object: str = ""  # the objects' `object` field ("": the SDK model has none)
    prefix: str = ""  # issued ids start with it
    label: str = ""  # in "No {label} found with id ..." (default: `object`)
    id_field: str = "id"  # an item path names its object by this field
    ops: frozenset[str] = ALL_OPS  # which of list/retrieve/create/update/delete the SDK has
    stamped: tuple[str, ...] = ("created_at",)  # the timestamps its objects carry at creation (or added_at)
    optional: tuple[str, ...] = ()  # top-level fields the SDK model marks Optional (nulls_for_empty quirk)
    before: bool = False  # its list takes `before`
    default_order: str = "desc"
    bump_unchanged: bool = True  # an update that changes nothing still advances updated_at
    seed_names: tuple[str, ...] = ()
    # served at, and how its pages go (for kinds the registry does not know; registry kinds take these from it)
    path: str = ""
    key: str = PROJECT
    beta: str | None = None
    parent: str | None = None
    ordered: bool = True
    next_cursor: bool = False  # its pages also say `next` (the SDK's NextCursorPage)
    routed: bool = True  # False: served through endpoints of its own (a project's settings), not {path}/{id}
    singleton: bool = False  # one object per parent, whose id is the parent's

    @property
    def what(self) -> str:
        return self.label or self.object

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        """Everything of the index-th seeded object but its id and timestamps."""
        raise NotImplementedError

    def defaults(self) -> dict:
        """A new object's fields before the request's own, as the real API fills them."""
        return {}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        """The fields of a new object from a create request; raise ApiError for a bad one."""
        raise NotImplementedError

    def update(self, current: dict, body: dict, account: Account) -> dict:
        """The fields an update request changes; raise ApiError for a bad one."""
        raise NotImplementedError

    def created(self, obj: dict, account: Account, parent: str | None) -> dict:
        """The body a create answers (some carry a secret once)."""
        return obj

    def deleted(self, obj: dict) -> dict:
        return {"id": obj["id"], "object": f"{self.object}.deleted", "deleted": True}

    def listed(self, obj: dict, query: dict[str, list[str]]) -> bool:
        """Whether a list request's filters (beyond paging) keep this object."""
        return True

    def actions(self) -> dict[str, Callable[[dict, dict, Account], tuple[dict, dict]]]:
        """POST {item}/{verb} handlers: (object, body, account) -> (changed fields, extra fields of the answer)."""
        return {}

    def fresh(self, parent: dict) -> dict | None:
        """For a one-per-parent kind: the object a new parent starts with (None: none)."""
        return None

    def after_seed(self, account: Account) -> None:
        """Tie this kind's seeded objects to those seeded before them (versions to their skill)."""

    def removing(self, obj: dict, account: Account, parent: str | None) -> None:
        """Refuse a deletion (ApiError) or update what depends on the object; the lock is held."""

    def used(self, obj: dict, dice: Dice) -> dict:
        """The fields that change when the object is used (not edited); ValueError if use means nothing."""
        raise ValueError(f"using a {self.what} changes nothing the API serves")

    def audit(self, change: str, obj: dict, fields: dict, old: dict | None) -> tuple[str, dict] | None:
        """The audit log event (type, payload) an organization change makes; None: not audited.

        `change` is created, updated, deleted or an action's verb; `fields` what it set; `old`
        the object before an update.
        """
        return None


@dataclass(frozen=True)
class Served:
    """One kind as the sandbox serves it: its family and where (from the registry when it knows the kind)."""

    family: Family
    path: str  # below /v1, "{parent}" standing for the parent's id
    key: str
    beta: str | None
    parent: str | None
    ordered: bool
    next_cursor: bool  # its pages also say `next` (the SDK's NextCursorPage)
    azure: bool
    updated_field: str | None  # the timestamp an edit advances, when the kind's objects carry one
    timestamps: tuple[str, ...]  # seconds since the epoch (the timestamps_ms quirk multiplies them)

    @property
    def name(self) -> str:
        return self.family.name

    @classmethod
    def from_registry(cls, family: Family, kind: Any) -> Served:
        updated = kind.updated_field if kind.updated_field in family.stamped else None
        return cls(family, kind.path, kind.key, kind.beta, kind.parent, kind.ordered, kind.cursor == "next",
                   kind.azure, updated, tuple(kind.timestamps))

    @classmethod
    def local(cls, family: Family) -> Served:
        updated = "updated_at" if "updated_at" in family.stamped else None
        return cls(family, family.path, family.key, family.beta, family.parent, family.ordered, family.next_cursor,
                   False, updated, family.stamped)

