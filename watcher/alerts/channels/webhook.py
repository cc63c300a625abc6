"""The webhook channel: the contract's JSON body, signed as Standard Webhooks describe.

Headers: `webhook-id` (the delivery's stable id, the same on every retry, so a receiver can
de-duplicate), `webhook-timestamp` (seconds, when this attempt was made) and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the bytes
of the channel's `whsec_` secret. A receiver checks the signature and the timestamp's age.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from watcher.alerts.channels.base import Alert, Claimed, Payload
from watcher.alerts.channels.http import HttpChannel


class WebhookChannel(HttpChannel):
    type = "webhook"
    digests = False  # a SIEM wants every event as its own document

    def render(self, alert: Alert, delivery: Claimed) -> Payload:
        return Payload(body(alert.document()), alert.title)

    def headers(self, payload: Payload, delivery: Claimed) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {"webhook-id": delivery.message_id, "webhook-timestamp": timestamp,
                "webhook-signature": signature(self.settings.signing_key(), delivery.message_id, timestamp,
                                               payload.body)}


def body(document: dict) -> bytes:
    """The bytes sent and signed: compact JSON, UTF-8."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(key: bytes, message_id: str, timestamp: str, content: bytes) -> str:
    """The `webhook-signature` header value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + content
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


CHANNEL = WebhookChannel  # what watcher.alerts.channels.dispatch finds by this module's name
