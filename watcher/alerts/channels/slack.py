"""The Slack channel: an incoming webhook, the message in Block Kit.

A header (the headline), a section of fields (severity, what, when, who, where), the diff in a
code block, and a context line with the commands that show everything, within Block Kit's
limits: 50 blocks, a header of 150 characters, section text of 3000, 10 fields of 2000 each.
Remote text is escaped for mrkdwn (&, <, >), so a name cannot mention @channel or hide a link.
"""

from __future__ import annotations

import json

from watcher.alerts.channels.base import Alert, Claimed, Payload
from watcher.alerts.channels.card import card
from watcher.alerts.channels.http import HttpChannel

HEADER_LIMIT = 150
TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_FIELDS = 10
DIFF_CHARS = 2600  # of diff lines in the code block, inside TEXT_LIMIT with room for the fences and a note


class SlackChannel(HttpChannel):
    type = "slack"

    def render(self, alert: Alert, delivery: Claimed) -> Payload:
        return Payload(json.dumps(message(alert), ensure_ascii=False).encode("utf-8"), alert.title)


def message(alert: Alert) -> dict:
    """The incoming-webhook payload: `text` for notifications, `blocks` for the message."""
    content = card(alert, line_chars=DIFF_CHARS)
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": _cut(content.headline,
                                                                                         HEADER_LIMIT)}}]
    fields = [_mrkdwn(f"*{_escape(label)}*\n{_escape(value)}", FIELD_LIMIT) for label, value in content.facts]
    if fields:
        blocks.append({"type": "section", "fields": fields[:MAX_FIELDS]})
    for paragraph in content.paragraphs:
        blocks.append({"type": "section", "text": _mrkdwn(_escape(paragraph), TEXT_LIMIT)})
    if content.lines:
        note = f"\n… {_escape(content.more)}" if content.more else ""
        text = "\n".join(text for _kind, text in content.lines)
        blocks.append({"type": "section", "text": _mrkdwn(_code(text, TEXT_LIMIT - len(note)) + note, TEXT_LIMIT)})
    if content.error:
        head = "*Last error*\n"
        blocks.append({"type": "section", "text": _mrkdwn(head + _code(content.error, TEXT_LIMIT - len(head)),
                                                          TEXT_LIMIT)})
    if content.commands:
        blocks.append({"type": "context", "elements": [
            _mrkdwn(f"{_escape(label)}: `{_inline(command)}`", FIELD_LIMIT) for label, command in content.commands]})
    # `text` is read as mrkdwn (notifications show it); the header is plain_text, shown as it is.
    return {"text": _cut(_escape(content.summary), TEXT_LIMIT), "blocks": blocks}


def _mrkdwn(text: str, limit: int) -> dict:
    return {"type": "mrkdwn", "text": _cut(text, limit)}


def _escape(text: str) -> str:
    """Slack's three control characters, as its docs ask: nothing else in mrkdwn can mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str, limit: int) -> str:
    """A code block of at most `limit` characters; a remote ``` would close it early, a lookalike keeps it shut."""
    body = _escape(text).replace("```", "ˋˋˋ")
    if len(body) > limit - 6:
        body = body[: limit - 7] + "…"
    return "```" + body + "```"


def _inline(command: str) -> str:
    return _escape(command).replace("`", "ˋ")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


CHANNEL = SlackChannel  # what watcher.alerts.channels.dispatch finds by this module's name
