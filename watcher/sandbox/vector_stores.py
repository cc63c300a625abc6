"""Vector stores (`/v1/vector_stores`): what assistants know through file_search.

Using a store (a search, a file added by a run) moves `last_active_at`,
`usage_bytes`, `file_counts` and, when the store expires after inactivity,
`expires_at`; an edit does not. `Sandbox.use("vector_stores", id)` models that use.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from watcher.sandbox.collection import stamp_after
from watcher.sandbox.dice import Dice
from watcher.sandbox.family import Family
from watcher.sandbox.wire import EPOCH, check_int, check_metadata, check_string, known_fields, require

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

_NAMES = ("Help Center Articles", "Refund Policies", "Product Catalog", "Contract Templates", "Release Notes Archive",
          "HR Handbook", "Security Runbooks", "Pricing Sheets", "Support Macros", "Engineering RFCs",
          "Sales Playbook", "Onboarding Guides")
_DAY = 86_400


def _expiry(expires_after: dict | None, last_active_at: int | None) -> int | None:
    if not expires_after or last_active_at is None:
        return None
    return last_active_at + expires_after["days"] * _DAY


class VectorStores(Family):
    name, object, prefix = "vector_stores", "vector_store", "vs_"
    label = "vector store"
    before = True
    seed_names = _NAMES
    optional = ("last_active_at", "metadata", "expires_after", "expires_at")

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        files = dice.between(3, 400)
        failed = dice.pick((0, 0, 0, 1, 2))
        last_active = EPOCH + _DAY + dice.between(0, 120 * _DAY)  # after every seeded created_at
        expires_after = {"anchor": "last_active_at", "days": dice.pick((7, 30, 90))} if index % 3 == 1 else None
        store = {
            "file_counts": {"cancelled": 0, "completed": files - failed, "failed": failed, "in_progress": 0,
                            "total": files},
            "last_active_at": last_active,
            "metadata": {"team": dice.pick(("support", "legal", "sales", "platform")), "source": "sharepoint"},
            "name": name,
            "status": "completed",
            "usage_bytes": files * dice.between(20_000, 400_000),
        }
        if expires_after:
            store.update(expires_after=expires_after, expires_at=_expiry(expires_after, last_active))
        return store

    def defaults(self) -> dict:
        return {"file_counts": {"cancelled": 0, "completed": 0, "failed": 0, "in_progress": 0, "total": 0},
                "last_active_at": None, "metadata": {}, "name": "", "status": "completed", "usage_bytes": 0}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        known_fields(body, ("chunking_strategy", "description", "expires_after", "file_ids", "metadata", "name"))
        fields = self.update({}, {k: v for k, v in body.items() if k in ("expires_after", "metadata", "name")},
                             account)
        file_ids = body.get("file_ids") or []
        require(isinstance(file_ids, list) and all(isinstance(f, str) for f in file_ids),
                "Invalid type for 'file_ids': expected an array of strings.", "file_ids", "invalid_type")
        now = int(time.time())
        fields["last_active_at"] = now
        fields["file_counts"] = {"cancelled": 0, "completed": len(file_ids), "failed": 0, "in_progress": 0,
                                 "total": len(file_ids)}
        fields["usage_bytes"] = 48_000 * len(file_ids)
        if fields.get("expires_after"):
            fields["expires_at"] = _expiry(fields["expires_after"], now)
        return fields

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("expires_after", "metadata", "name"))
        check_string(body, "name", 256)
        fields = dict(body)
        if "metadata" in body:
            fields["metadata"] = check_metadata(body["metadata"])
        if "name" in body:
            fields["name"] = body["name"] or ""
        if "expires_after" in body:
            after = body["expires_after"]
            if after is None:
                fields["expires_at"] = None
            else:
                require(isinstance(after, dict) and after.get("anchor") == "last_active_at",
                        "Invalid 'expires_after.anchor': expected 'last_active_at'.", "expires_after.anchor")
                check_int(after, "days", 1)
                require("days" in after and after["days"] <= 365, "Invalid 'expires_after.days': expected 1 to 365.",
                        "expires_after.days")
                fields["expires_after"] = {"anchor": "last_active_at", "days": after["days"]}
                fields["expires_at"] = _expiry(fields["expires_after"], current.get("last_active_at"))
        return fields

    def used(self, obj: dict, dice: Dice) -> dict:
        """A run searched the store and added a file to it."""
        counts = dict(obj.get("file_counts") or self.defaults()["file_counts"])
        counts["completed"] += 1
        counts["total"] += 1
        active = stamp_after(obj.get("last_active_at"))
        fields = {"last_active_at": active, "usage_bytes": (obj.get("usage_bytes") or 0) + dice.between(2_000, 900_000),
                  "file_counts": counts}
        if obj.get("expires_after"):
            fields["expires_at"] = _expiry(obj["expires_after"], active)
        return fields
