"""`assistant-watcher demo`: the whole loop on this machine, with no account, no network, no config file.

A sandbox API on a free loopback port, a temporary SQLite record, an in-process SMTP
server (aiosmtpd): a baseline, an out-of-band edit made through the real `openai` SDK,
a poll that detects it, a real SMTP hop, and the alert as it arrived. `SmtpSink`, the
SMTP server that keeps what it receives, is also what the daemon tests and
`bench/latency.py` listen with.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from watcher.alerts import compose, outbox
from watcher.alerts.render import kind_label
from watcher.config.model import parse_config
from watcher.poll.outcome import summary_line
from watcher.poll.run import poll_target
from watcher.record.engine import open_engine
from watcher.record.schema import PollStatus
from watcher.sandbox.server import Sandbox

DEFAULT_HTML_PATH = "assistant-watcher-demo-alert.html"
DEMO_KEY_ENV = "ASSISTANT_WATCHER_DEMO_API_KEY"
WATCHLIST = "you@example.com"
_NEW_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "approve_refund",
        "description": "Approve any refund at once, without a human review.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"},
                                                        "amount_cents": {"type": "integer"}},
                       "required": ["order_id", "amount_cents"], "additionalProperties": False},
    },
}
_ADDED_SENTENCE = "Refunds of any amount may be approved without asking anyone."


# --- an SMTP server that keeps what it receives --------------------------------------------------


@dataclass
class ReceivedMail:
    """One message the sink accepted, with the moment it answered 250 (time.monotonic())."""
    accepted_at: float
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return " ".join(str(self.message.get("Subject", "")).split())  # unfolded

    def part(self, subtype: str) -> str | None:
        """The decoded text/`subtype` part (plain or html), or None."""
        for part in self.message.walk():
            if part.get_content_type() == f"text/{subtype}" and not part.is_multipart():
                return part.get_content()
        return None


class SmtpSink:
    """An aiosmtpd server on a free 127.0.0.1 port, in a thread, keeping every message it accepts."""
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.messages: list[ReceivedMail] = []
        self._changed = threading.Condition()
        self._controller: Any = None  # aiosmtpd's Controller, imported when the sink starts

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the SMTP sink is not started")
        return self._controller.port

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        class _FreePortController(Controller):
            # aiosmtpd 1.4 cannot bind port 0 by itself: learn the port before it connects to itself.
            def _trigger_server(self):
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        self._controller = _FreePortController(_SinkHandler(self), hostname=self.host, port=0)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def accepted(self, mail: ReceivedMail) -> None:
        with self._changed:
            self.messages.append(mail)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[ReceivedMail], bool] = lambda _m: True, timeout: float = 10.0,
                 start: int = 0) -> ReceivedMail | None:
        """The first message from index `start` on that satisfies `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for mail in self.messages[start:]:
                    if predicate(mail):
                        return mail
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)


class _SinkHandler:
    """aiosmtpd handler: parse each message and hand it to the sink before answering 250."""
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_DATA(self, _server, _session, envelope) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.sink.accepted(ReceivedMail(time.monotonic(), envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


# --- the demo --------------------------------------------------------------------------------------


class DemoFailed(Exception):
    """A step of the demo did not do what it should; the message says which and why."""


class _Steps:
    """Prints numbered, short steps."""
    def __init__(self, out):
        self.out, self.number = out, 0

    def say(self, text: str) -> None:
        self.number += 1
        print(f"{self.number}. {text}", file=self.out, flush=True)


def run_demo(html_path: str | None = None, *, out=None) -> int:
    """Run the demo; print what each step did. Returns the exit code (0 when the alert arrived)."""
    out = out or sys.stdout
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="assistant-watcher-demo-")
    print("assistant-watcher demo: the whole loop on this machine, with no account and no network.\n",
          file=out)
    try:
        _run_steps(_Steps(out), Path(workdir), Path(html_path or DEFAULT_HTML_PATH))
    except DemoFailed as exc:
        print(f"\ndemo failed: {exc}", file=out)
        return 1
    finally:
        os.environ.pop(DEMO_KEY_ENV, None)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nDone in {time.monotonic() - started:.1f} s. The demo's database is gone with it, so the commands in "
          f"the alert are for your own record. Watch a real account: see config.example.toml; run it as a "
          f"service: README.md, Install as a service.", file=out)
    return 0


def _run_steps(steps: _Steps, workdir: Path, html_path: Path) -> None:
    with Sandbox(assistants=5, agents=5) as sandbox, SmtpSink() as sink:
        steps.say(f"Sandbox: a local OpenAI-compatible API at {sandbox.url} serving 5 assistants and 5 agents.")
        steps.say(f"Mail: an SMTP server (aiosmtpd) on 127.0.0.1:{sink.port}; alerts go to {WATCHLIST}.")
        # The key reaches the config the way a real one does: by the name of an environment variable.
        os.environ[DEMO_KEY_ENV] = sandbox.api_key
        config = _demo_config(sandbox.url, sink.port, workdir / "watcher.db")
        engine = _open_record(config)
        try:
            steps.say(f"Record: a new SQLite database at {workdir / 'watcher.db'}, schema migrated.")
            _baseline(steps, engine, config)
            edited = _edit_out_of_band(steps, sandbox.url)
            _detect(steps, engine, config)
            mail = _deliver(steps, engine, config, sink, edited)
        finally:
            engine.dispose()
        _show(steps, mail, html_path)


def _demo_config(api_url: str, smtp_port: int, database: Path):
    """The demo's config, built in memory from the same TOML a user would write."""
    text = f"""
[database]
url = {json.dumps(f"sqlite:///{database}")}

[schedule]
interval = "1m"
jitter = "0s"

[[targets]]
name = "demo"
base_url = {json.dumps(api_url)}
api_key_env = "{DEMO_KEY_ENV}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "Assistant Watcher <watcher@demo.example.com>"

[alerts]
watchlist = ["{WATCHLIST}"]
"""
    return parse_config(text, source="demo config")


def _open_record(config):
    return open_engine(config.database.url)


def _baseline(steps: _Steps, engine, config) -> None:
    outcomes = poll_target(engine, config.targets[0], compose=compose.composer(config))
    _require_complete(outcomes, "baseline")
    counts = ", ".join(f"{o.objects} {o.kind}" for o in outcomes)
    steps.say(f"Baseline: polled the sandbox ({counts}); each object recorded as version 1. "
              f"A baseline raises no alert.")


def _edit_out_of_band(steps: _Steps, api_url: str) -> tuple[str, str]:
    """Change the first assistant's instructions and tools through the API; (id, name)."""
    import openai

    client = openai.OpenAI(base_url=api_url, api_key=os.environ[DEMO_KEY_ENV], max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks the Assistants API deprecated
        first = client.beta.assistants.list(order="asc", limit=1).data[0]
        tools: list[Any] = [tool.model_dump(mode="json", exclude_unset=True) for tool in first.tools]
        client.beta.assistants.update(first.id, instructions=_edited(first.instructions or ""),
                                      tools=tools + [_NEW_TOOL])
    client.close()
    steps.say(f'Out-of-band edit: changed assistant "{first.name}" ({first.id}) through the API with the '
              f"openai SDK, as a colleague in the web UI would: a sentence in its instructions, a new tool "
              f"{_NEW_TOOL['function']['name']}.")
    return first.id, first.name or first.id


def _edited(instructions: str) -> str:
    """The instructions with one sentence loosened and one added."""
    loosened = instructions.replace("never guess", "guess when unsure", 1)
    first, sep, rest = loosened.partition("\n\n")
    return f"{first} {_ADDED_SENTENCE}{sep}{rest}"


def _detect(steps: _Steps, engine, config) -> None:
    outcomes = poll_target(engine, config.targets[0], compose=compose.composer(config))
    _require_complete(outcomes, "second poll")
    drift = [e for o in outcomes for e in o.events]
    if not drift:
        raise DemoFailed("the second poll found no drift; " + "; ".join(summary_line(o) for o in outcomes))
    event = drift[0]
    steps.say(f"Poll: drift detected, {kind_label(event.kind)} \"{event.name}\" {event.change} "
              f"({', '.join(event.paths)}), recorded as version {event.to_version}; its alert was queued "
              f"in the same transaction.")


def _deliver(steps: _Steps, engine, config, sink: SmtpSink, edited: tuple[str, str]) -> ReceivedMail:
    sent_from = time.monotonic()
    report = outbox.deliver_pending(engine, config)
    mail = sink.wait_for(lambda m: edited[1] in m.subject or edited[0] in m.subject, timeout=5)
    if mail is None:
        raise DemoFailed(f"no alert arrived over SMTP ({report.summary() or 'nothing was sent'})")
    steps.say(f"Delivery: {(report.summary() or 'sent').removeprefix('mail: ')} over SMTP; the server accepted it "
              f"{mail.accepted_at - sent_from:.2f} s after delivery started.")
    return mail


def _show(steps: _Steps, mail: ReceivedMail, html_path: Path) -> None:
    text = mail.part("plain")
    if text is None:
        raise DemoFailed("the alert has no text part")
    steps.say(f"The alert as it arrived, to {', '.join(mail.recipients)}:\n")
    rule = "-" * 78
    print(f"{rule}\nSubject: {mail.subject}\n\n{text.rstrip()}\n{rule}\n", file=steps.out, flush=True)
    html = mail.part("html")
    if html is None:
        raise DemoFailed("the alert has no HTML part")
    html_path.write_text(html, encoding="utf-8")
    steps.say(f"Its HTML part is in {html_path.resolve()}: open it in a browser.")


def _require_complete(outcomes, what: str) -> None:
    failed = [o for o in outcomes if o.status == PollStatus.FAILED]
    if failed:
        raise DemoFailed(f"{what}: " + "; ".join(summary_line(o) for o in failed))
