"""Remote text made safe to show: on a terminal, in a mail header, in a table. No I/O, no heavy imports.

Names, ids and server messages come from a remote API that may be hostile: control characters and
bidirectional overrides are shown as escapes, never passed through to a terminal or a header.
"""

from __future__ import annotations

import json
import re
from typing import Any

SUBJECT_LIMIT = 200

# Control characters and bidirectional overrides are shown as escapes, never passed through.
_INVISIBLE = {c: f"\\x{c:02x}" for c in (*range(0, 9), *range(10, 32), 127, *range(128, 160))}
_INVISIBLE.update({c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                                *range(0x2066, 0x206A), 0x2028, 0x2029)})
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


# What json.dumps passes through raw (it escapes only C0 controls) that a terminal would act on.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def json_text(document: Any, *, indent: int | None = None) -> str:
    """`document` as JSON (UTF-8 kept), with DEL, C1 controls and bidi overrides as `\\uXXXX` escapes:
    still the same JSON to a parser, nothing a terminal acts on."""
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda c: f"\\u{ord(c.group()):04x}", text)


def printable(text: str) -> str:
    """`text` with control and bidi-override characters shown as escapes."""
    return text.translate(_INVISIBLE)


def header_text(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """One header-safe line: CR, LF and other controls become spaces, length capped at `limit`."""
    cleaned = " ".join(_HEADER_UNSAFE.sub(" ", text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def counted(n: int, word: str, plural: str | None = None) -> str:
    """`1 object`, `3 objects`; `plural` where adding an s is wrong (`2 deliveries`)."""
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


UNKNOWN_ACTOR = "unknown (out of band)"

_ACTOR_TYPES = {"user": "user", "api_key": "API key", "service_account": "service account"}


def actor_text(actor: dict[str, Any] | None) -> str:
    """Who made a change, in a few words, or that nobody knows:
    `user alice@example.com from 203.0.113.7 at 2026-11-23T10:02:11Z`, `API key key_abc of bob@example.com`."""
    if not actor:
        return UNKNOWN_ACTOR
    email, ident = actor.get("email"), actor.get("id")
    who = str(email or ident or "someone")
    if actor.get("type") == "api_key" and email and ident:
        who = f"{ident} of {email}"
    text = f"{_ACTOR_TYPES.get(actor.get('type', ''), 'actor')} {who}"
    if actor.get("ip"):
        text += f" from {actor['ip']}"
    if actor.get("at"):
        text += f" at {str(actor['at']).replace('.000000Z', 'Z')}"  # the audit log counts whole seconds
    return printable(header_text(text, 200))
