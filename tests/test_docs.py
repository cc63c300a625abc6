"""The documented JSON shapes (docs/json.md) are the shapes the commands print."""

import json
import re
from datetime import UTC
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"


def documented_keys(command: str) -> list[str]:
    """The keys of the first object in the example under `## \\`COMMAND --json\\``."""
    text = (DOCS / "json.md").read_text()
    section = text.split(f"## `{command}")[1]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1).replace("…64 hex…", "")
                         .replace("…", ""))
    first = example[0] if isinstance(example, list) else example
    return list(first)


@pytest.fixture
def recorded(sandbox, write_config, sqlite_url, cli):
    config = write_config(sandbox, sqlite_url)
    cli(config, "snapshot", "--no-email")
    victim = sandbox.objects("agents")[0]
    sandbox.edit("agents", victim["id"], model="gpt-5-mini")
    cli(config, "snapshot", "--no-email")
    return config, victim["id"]


@pytest.mark.parametrize("command", ["events", "history", "diff", "objects", "status"])
def test_the_documented_shape_is_the_printed_shape(recorded, cli_json, command):
    config, object_id = recorded
    args = [command, object_id] if command in ("history", "diff") else [command]
    document = cli_json(config, *args)
    first = document[0] if isinstance(document, list) else document
    assert list(first) == documented_keys(command)
    if command == "status":
        assert list(first["polls"][0]) == list(_documented_example("status")["polls"][0])


def test_the_documented_outbox_and_feed_shapes_are_the_printed_ones(drift_event):
    from datetime import datetime

    from watcher.record import documents
    from watcher.record.models import Delivery

    row = Delivery(id=1, channel="watchlist", state="pending", message_id="msg_1", attempts=0,
                   next_attempt_at=datetime.now(UTC), recipients=["ops@example.com"], subject="s")
    assert list(documents.outbox_document(row)) == documented_keys("outbox")
    event = drift_event({"id": "agent_1", "instructions": "a"}, {"id": "agent_1", "instructions": "b"}, kind="agents")
    assert list(documents.drift_document(event)) == documented_keys("events --follow")
    notice = documents.notice_document(1, "watcher.failing", target="prod", kind="agents", severity="high",
                                       created_at=datetime.now(UTC), message="m")
    assert list(notice)[: len(documented_keys("events --follow"))] == documented_keys("events --follow")


def _documented_example(command: str):
    text = (DOCS / "json.md").read_text()
    section = text.split(f"## `{command}")[1]
    return json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1).replace("…", ""))


def test_the_readme_links_the_docs_and_not_the_design_folder_outside_the_repository():
    readme = (DOCS.parent / "README.md").read_text()
    assert "../shared" not in readme
    for name in ("json.md", "kinds.md", "configuration.md", "guarantees.md"):
        assert f"docs/{name}" in readme and (DOCS / name).exists()
