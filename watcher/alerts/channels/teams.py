"""The Teams channel: a Workflows webhook ("when a Teams webhook request is received"), the
message an Adaptive Card (1.4) in a message attachment.

Every remote value is a TextRun inside a RichTextBlock: TextRuns are never read as Markdown,
so a name cannot add a link or bold text. The whole body stays under PAYLOAD_LIMIT bytes
(Teams refuses messages past about 28 KB): diff lines are dropped from the end until it fits.
"""

from __future__ import annotations

import json

from watcher.alerts.channels.base import Alert, Claimed, Payload
from watcher.alerts.channels.card import Card, card
from watcher.alerts.channels.http import HttpChannel
from watcher.kinds.base import Severity

CARD_VERSION = "1.4"
PAYLOAD_LIMIT = 20 * 1024  # bytes of the whole POST body; Teams' own limit is about 28 KB
DIFF_CHARS = 8000
_COLORS = {"add": "Good", "del": "Attention", "hunk": "Accent", "path": "Default", "ctx": "Default",
           "item": "Default"}


class TeamsChannel(HttpChannel):
    type = "teams"

    def render(self, alert: Alert, delivery: Claimed) -> Payload:
        return Payload(payload_bytes(alert), alert.title)


def payload_bytes(alert: Alert) -> bytes:
    """The POST body, within PAYLOAD_LIMIT."""
    content = card(alert, line_chars=DIFF_CHARS)
    while True:
        data = json.dumps(message(content), ensure_ascii=False).encode("utf-8")
        if len(data) <= PAYLOAD_LIMIT or not content.lines:
            return data
        drop = max(1, len(content.lines) // 4)
        content.lines = content.lines[:-drop]
        content.more = content.more or next((f"more: run {c}" for _label, c in content.commands), "more lines")


def message(content: Card) -> dict:
    """The message a Workflows webhook takes: one Adaptive Card attachment."""
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                    "version": CARD_VERSION, "msteams": {"width": "Full"}, "body": _body(content)},
    }]}


def _body(content: Card) -> list[dict]:
    high = content.severity == Severity.HIGH
    body = [_rich(_run(content.headline, size="Medium", weight="Bolder", color="Attention" if high else "Default"))]
    for label, value in content.facts:
        body.append(_rich(_run(f"{label}: ", weight="Bolder"), _run(value)))
    body += [_rich(_run(paragraph)) for paragraph in content.paragraphs]
    if content.lines:
        body.append({"type": "Container", "style": "emphasis", "items": [
            _rich(_run(text, fontType="Monospace", color=_COLORS.get(kind, "Default")), spacing="None")
            for kind, text in content.lines]})
    if content.more:
        body.append(_rich(_run(f"… {content.more}", isSubtle=True)))
    if content.error:
        body.append(_rich(_run("Last error: ", weight="Bolder"), _run(content.error, fontType="Monospace")))
    for label, command in content.commands:
        body.append(_rich(_run(f"{label}: ", weight="Bolder"), _run(command, fontType="Monospace")))
    return body


def _rich(*runs: dict, **options) -> dict:
    return {"type": "RichTextBlock", "inlines": list(runs), **options}


def _run(text: str, **style) -> dict:
    return {"type": "TextRun", "text": text, **{k: v for k, v in style.items() if v not in (None, "Default")}}


CHANNEL = TeamsChannel  # what watcher.alerts.channels.dispatch finds by this module's name
