"""Webhook endpoints (`/v1/webhook_endpoints`): where platform events are sent.

The signing secret is returned once, by create and by rotate_secret; every other
answer carries only `signing_secret_hint`. `updated_at` moves when the endpoint's
configuration or secret changes, not on an update that changes nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from watcher.sandbox.dice import Dice
from watcher.sandbox.family import Family
from watcher.sandbox.wire import check_string, known_fields, missing, require

if TYPE_CHECKING:
    from watcher.sandbox.account import Account

EVENT_TYPES = (
    "batch.completed", "batch.failed", "batch.expired", "batch.cancelled", "response.completed", "response.failed",
    "response.cancelled", "response.incomplete", "eval.run.succeeded", "eval.run.failed", "eval.run.canceled",
    "fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled", "realtime.call.incoming",
    "video.completed", "video.failed", "agent.environment.ready", "agent.environment.failed",
    "agent.environment.suspended", "agent.environment.expired", "agent.session.created",
    "agent.session.action_required", "agent.session.in_progress", "agent.session.idle", "agent.session.failed",
    "safety.alert.created",
)
_ENDPOINTS = (
    ("Batch results to the data lake", "https://hooks.acme.example/openai/batches", ("batch.completed", "batch.failed",
                                                                                   "batch.expired")),
    ("Agent session alerts", "https://ops.acme.example/webhooks/agents", ("agent.session.failed",
                                                                         "agent.session.action_required")),
    ("Fine-tuning notifications", "https://ml.acme.example/hooks/ft", ("fine_tuning.job.succeeded",
                                                                       "fine_tuning.job.failed")),
    ("Background responses", "https://api.acme.example/internal/openai-events", ("response.completed",
                                                                                 "response.failed",
                                                                                 "response.incomplete")),
    ("Safety alerts to the SOC", "https://soc.acme.example/intake/openai", ("safety.alert.created",)),
    ("Eval pipeline", "https://ci.acme.example/hooks/evals", ("eval.run.succeeded", "eval.run.failed")),
)


def _secret(dice: Dice) -> str:
    return "whsec_" + base64.b64encode(dice.rng.randbytes(24)).decode()  # 32 characters, no padding


def _hint(secret: str) -> str:
    return f"whsec_...{secret[-4:]}"


class WebhookEndpoints(Family):
    name, object, prefix = "webhook_endpoints", "webhook_endpoint", "we_"
    label = "webhook endpoint"
    stamped = ("created_at", "updated_at")
    optional = ("signing_secret_hint", "updated_at")
    bump_unchanged = False  # "tests and unchanged updates do not advance it"

    def seed(self, dice: Dice, index: int, name: str, account: Account, parent: str | None) -> dict:
        label, url, events = _ENDPOINTS[index % len(_ENDPOINTS)]
        if index >= len(_ENDPOINTS):
            label, url = f"{label} {index // len(_ENDPOINTS) + 1}", f"{url}/{index}"
        return {"event_types": list(events), "name": label, "signing_secret_hint": _hint(_secret(dice)), "url": url}

    def create(self, body: dict, account: Account, parent: str | None) -> dict:
        for key in ("event_types", "name", "url"):
            if key not in body:
                raise missing(key)
        return self.update({}, body, account)

    def update(self, current: dict, body: dict, account: Account) -> dict:
        known_fields(body, ("event_types", "name", "url"))
        check_string(body, "name", 256, nullable=False)
        check_string(body, "url", 2048, nullable=False)
        if "url" in body:
            require(body["url"].startswith("https://"), "Invalid 'url': webhook endpoints must use HTTPS.", "url")
        if "event_types" in body:
            events = body["event_types"]
            require(isinstance(events, list) and bool(events), "Invalid 'event_types': expected a non-empty array.",
                    "event_types")
            for i, event in enumerate(events):
                require(event in EVENT_TYPES, f"Invalid value for 'event_types[{i}]': '{str(event)[:60]}'.",
                        f"event_types[{i}]")
        return dict(body)

    def created(self, obj: dict, account: Account, parent: str | None) -> dict:
        secret = _secret(account.side_dice(self.name))  # told once, never kept
        obj["signing_secret_hint"] = _hint(secret)  # not served yet: the lock is held since it was added
        return {**obj, "signing_secret": secret}

    def actions(self) -> dict[str, Callable[[dict, dict, Account], tuple[dict, dict]]]:
        return {"rotate_secret": self._rotate}

    def _rotate(self, obj: dict, body: dict, account: Account) -> tuple[dict, dict[str, Any]]:
        known_fields(body, ("keep_old_secret_active_for_24_hours",))
        secret = _secret(account.side_dice(self.name))
        return {"signing_secret_hint": _hint(secret)}, {"signing_secret": secret}
