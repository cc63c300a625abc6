"""Remote text made safe to show: on a terminal, in a mail header, in a table. No I/O, no heavy imports.

Names, ids and server messages come from a remote API that may be hostile: control characters and
bidirectional overrides are shown as escapes, never passed through to a terminal or a header.
"""

from __future__ import annotations

import re

SUBJECT_LIMIT = 200

# Control characters and bidirectional overrides are shown as escapes, never passed through.
_INVISIBLE = {c: f"\\x{c:02x}" for c in (*range(0, 9), *range(10, 32), 127, *range(128, 160))}
_INVISIBLE.update({c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                                *range(0x2066, 0x206A), 0x2028, 0x2029)})
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with control and bidi-override characters shown as escapes."""
    return text.translate(_INVISIBLE)


def header_text(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """One header-safe line: CR, LF and other controls become spaces, length capped at `limit`."""
    cleaned = " ".join(_HEADER_UNSAFE.sub(" ", text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"
