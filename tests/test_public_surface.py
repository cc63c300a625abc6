"""The public surface, pinned: what users script against may grow, never move or vanish.

The console script and `watcher.cli:main`, every command and option, the config keys, the JSON
keys of every `--json` document and API answer, the HTTP paths, the metric names and the logger
names. Modules move inside the package freely; none of these may change by a move. A new name is
added here on purpose, in the change that adds it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import click
import pytest
from conftest import http_request
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).parent.parent

COMMANDS = {
    "": ["--config", "--verbose", "-v", "--version"],
    "ack": ["EVENT", "--by", "--note"],
    "apply": ["FILE", "--by", "--note", "--target", "--dry-run"],
    "demo": ["--html"],
    "diff": ["OBJECT", "--from", "--to", "--target", "--kind", "--json"],
    "events": ["--open", "--since", "--target", "--follow", "--json"],
    "rules": ["--json"],
    "check": ["DIR", "--target", "--json", "--strict"],
    "export": [],
    "export git": ["DIR", "--target"],
    "history": ["OBJECT", "--target", "--kind", "--json"],
    "objects": ["--target", "--kind", "--deleted", "--json"],
    "outbox": ["--limit", "--retry-now", "--json"],
    "prune": ["--keep-days", "--yes"],
    "restore": ["OBJECT", "--version", "--by", "--note", "--target", "--kind", "--dry-run"],
    "run": [],
    "sandbox": ["--host", "--port", "--seed", "--api-key", "--admin-key"],
    "serve": ["--listen"],
    "show": ["OBJECT", "--version", "--at", "--target", "--kind", "--json"],
    "snapshot": ["--target", "--kind", "--no-email"],
    "status": ["--json"],
    "test-email": ["--to"],
}

CONFIG_KEYS = [
    "database", "database.url", "database.max_connections",
    "schedule", "schedule.interval", "schedule.jitter", "schedule.poll_timeout", "schedule.max_concurrent_polls",
    "targets", "targets[].name", "targets[].kinds", "targets[].provider", "targets[].base_url",
    "targets[].azure_endpoint", "targets[].api_version", "targets[].api_key_env", "targets[].api_key_file",
    "targets[].admin_key_env", "targets[].admin_key_file", "targets[].organization", "targets[].project",
    "targets[].ignore", "targets[].redact", "targets[].interval", "targets[].timeout", "targets[].max_answer_size",
    "targets[].enabled", "targets[].heal", "targets[].heal_max", "targets[].heal_backoff",
    "smtp", "smtp.host", "smtp.port", "smtp.security", "smtp.username", "smtp.password_env", "smtp.password_file",
    "smtp.sender", "smtp.timeout", "smtp.ca_file",
    "alerts", "alerts.watchlist", "alerts.digest_threshold", "alerts.failure_after", "alerts.templates_dir",
    "alerts.routes", "alerts.routes[].match", "alerts.routes[].match.name", "alerts.routes[].match.kind",
    "alerts.routes[].match.target", "alerts.routes[].match.severity", "alerts.routes[].to",
    "alerts.routes[].channels", "alerts.channels", "alerts.give_up_after",
    "channels", "channels[].name", "channels[].type", "channels[].to", "channels[].url", "channels[].url_env",
    "channels[].url_file", "channels[].secret_env", "channels[].secret_file", "channels[].timeout",
    "http", "http.listen", "http.token_env", "http.token_file",
    "export", "export.git", "export.push",
    "rules", "rules[].name", "rules[].kinds", "rules[].match", "rules[].match.name", "rules[].match.target",
    "rules[].expression", "rules[].message", "rules[].severity",
]

# Each read-only path answers GET; the two acknowledgements take POST.
HTTP_PATHS = [
    ("/", "GET"), ("/events", "GET"), ("/events/<int:event_id>/ack", "POST"), ("/objects", "GET"),
    ("/objects/<target>/<kind>/<path:object_id>", "GET"), ("/objects/<target>/<kind>/<path:object_id>/diff", "GET"),
    ("/static/<name>", "GET"),
    ("/api/v1/status", "GET"), ("/api/v1/events", "GET"), ("/api/v1/events/<int:event_id>/ack", "POST"),
    ("/api/v1/objects", "GET"), ("/api/v1/objects/<target>/<kind>/<path:object_id>/versions", "GET"),
    ("/api/v1/objects/<target>/<kind>/<path:object_id>/versions/<int:number>", "GET"),
    ("/api/v1/objects/<target>/<kind>/<path:object_id>/diff", "GET"),
    ("/api/v1/objects/<target>/<kind>/<path:object_id>/at", "GET"),
    ("/metrics", "GET"), ("/healthz", "GET"),
]

METRICS = {
    "assistant_watcher_polls", "assistant_watcher_poll_duration_seconds", "assistant_watcher_objects",
    "assistant_watcher_drift_events", "assistant_watcher_last_complete_poll_timestamp_seconds",
    "assistant_watcher_deliveries_pending", "assistant_watcher_deliveries", "assistant_watcher_target_enabled",
    "assistant_watcher_last_poll_worker", "assistant_watcher_rule_violations",
}

LOGGERS = {
    "watcher", "watcher.alerts", "watcher.attribution", "watcher.channels.email", "watcher.daemon", "watcher.feed", "watcher.heal",
    "watcher.outbox", "watcher.poll", "watcher.source", "watcher.store", "watcher.templating", "watcher.traceback",
    "watcher.web",
}

EVENT_KEYS = ["id", "target", "kind", "object_id", "name", "change", "from_version", "to_version", "paths",
              "detected_at", "window_start", "acked_by", "acked_at", "note", "severity", "actor", "rule", "message"]
VERSION_KEYS = ["number", "hash", "observed_at", "origin", "actor", "note"]
OBJECT_KEYS = ["target", "kind", "object_id", "name", "version", "deleted", "last_change_at"]
DIFF_KEYS = ["object_id", "from", "to", "changes"]
CHANGE_KEYS = ["path", "op", "old", "new"]
STATUS_KEYS = ["polls", "open_events", "deliveries", "platform_state", "fighting"]
STATUS_POLL_KEYS = ["target", "kind", "status", "finished_at", "objects", "error", "open_events", "worker", "enabled"]
OUTBOX_KEYS = ["id", "subject", "recipients", "attempts", "sent_at", "last_error", "message_id", "channel", "state",
               "next_attempt_at"]
LIVE_KEYS = ["number", "hash", "observed_at", "origin", "actor", "edit_window"]


# --- the entry points ---------------------------------------------------------------------------


def test_the_console_script_is_watcher_cli_main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"assistant-watcher": "watcher.cli:main"}
    from watcher.cli import main

    assert isinstance(main, click.Group)


def test_python_dash_m_watcher_is_the_command():
    answer = subprocess.run([sys.executable, "-m", "watcher", "--help"], capture_output=True, text=True)
    assert answer.returncode == 0 and "Usage:" in answer.stdout and "snapshot" in answer.stdout


def test_every_command_and_option_is_the_pinned_one():
    from watcher.cli import main

    assert _commands(main) == COMMANDS


def _commands(group: click.Group) -> dict[str, list[str]]:
    context = click.Context(group)
    found = {"": _params(group)}
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        found[name] = _params(command)
        if isinstance(command, click.Group):
            found.update({f"{name} {sub}": _params(command.get_command(context, sub))
                          for sub in command.list_commands(context)})
    return found


def _params(command: click.Command) -> list[str]:
    names: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            names.append(param.human_readable_name)
        else:
            names.extend(sorted([*param.opts, *param.secondary_opts]))
    return names


# --- the config file ----------------------------------------------------------------------------


def test_every_config_key_is_the_pinned_one():
    assert _config_keys(_config_model(), "") == CONFIG_KEYS


def test_target_defaults_takes_every_target_key_but_its_name(tmp_path, cli):
    """`[target_defaults]` is every `[[targets]]` key but `name`: each is accepted there."""
    target_keys = [key.removeprefix("targets[].") for key in CONFIG_KEYS if key.startswith("targets[].")]
    model = _config_model()
    inner = _section(model.model_fields["targets"].annotation)
    assert inner is not None and sorted(inner.model_fields) == sorted(target_keys)
    config = tmp_path / "config.toml"
    config.write_text('[target_defaults]\nname = "x"\n')
    result = cli(config, "snapshot")
    assert result.exit_code == 2 and "target_defaults.name" in result.stderr


def _config_model():
    """The validated config's model: the one internal name this test reads (its keys are the surface)."""
    from watcher.config.model import Config

    return Config


def _config_keys(model, prefix: str) -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key = prefix + name
        keys.append(key)
        for candidate in (field.annotation, *typing.get_args(field.annotation)):
            listed = typing.get_origin(candidate) is list
            inner = _section(candidate)
            if inner is not None:
                keys += _config_keys(inner, key + ("[]." if listed else "."))
                break
    return keys


def _section(annotation):
    from pydantic import BaseModel

    for candidate in (annotation, *typing.get_args(annotation)):
        inner = typing.get_args(candidate)[0] if typing.get_origin(candidate) is list else candidate
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return None


# --- JSON documents -------------------------------------------------------------------------------


@pytest.fixture
def recorded(sandbox, write_config, sqlite_url, cli):
    """A baseline and one out-of-band edit, recorded; its webhook delivery waits in the outbox."""
    config = write_config(sandbox, sqlite_url, extra=(
        '[[channels]]\nname = "siem"\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n'
        'secret_env = "WATCHER_TEST_SURFACE_SECRET"\n'))
    import os

    os.environ["WATCHER_TEST_SURFACE_SECRET"] = "whsec_" + "QW5vdGhlciBzZWNyZXQga2V5IG9mIDMyIGJ5dGVzISE="
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    victim = sandbox.objects("agents")[0]
    sandbox.edit("agents", victim["id"], model="gpt-5-mini")
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    yield config, victim["id"]
    del os.environ["WATCHER_TEST_SURFACE_SECRET"]


def test_every_json_document_has_the_pinned_keys(recorded, cli_json):
    config, object_id = recorded
    assert list(cli_json(config, "events")[0]) == EVENT_KEYS
    assert list(cli_json(config, "history", object_id)[0]) == VERSION_KEYS
    assert list(cli_json(config, "objects")[0]) == OBJECT_KEYS
    diff = cli_json(config, "diff", object_id)
    assert list(diff) == DIFF_KEYS and list(diff["changes"][0]) == CHANGE_KEYS
    status = cli_json(config, "status")
    assert list(status) == STATUS_KEYS and list(status["polls"][0]) == STATUS_POLL_KEYS
    assert list(status["deliveries"]) == ["pending", "dead"]
    assert list(cli_json(config, "outbox")[0]) == OUTBOX_KEYS
    assert cli_json(config, "show", object_id)["id"] == object_id


def test_the_api_answers_the_pinned_keys(recorded, web_server):
    config, object_id = recorded
    base = web_server(config)
    assert list(_get(f"{base}/api/v1/events")[0]) == EVENT_KEYS
    assert list(_get(f"{base}/api/v1/objects")[0]) == OBJECT_KEYS
    assert list(_get(f"{base}/api/v1/status")) == STATUS_KEYS
    versions = f"{base}/api/v1/objects/prod/agents/{object_id}"
    assert list(_get(f"{versions}/versions")[0]) == VERSION_KEYS
    assert list(_get(f"{versions}/diff")) == DIFF_KEYS
    live = _get(f"{versions}/at?time=" + cli_now())
    assert list(live) == LIVE_KEYS


def _get(url: str):
    answer = http_request("GET", url)
    assert answer.status == 200, (url, answer.status, answer.body)
    return json.loads(answer.body)


def cli_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- HTTP paths and metrics ------------------------------------------------------------------------


def test_every_http_path_is_the_pinned_one():
    from watcher.web.app import _routes

    rules = sorted((rule.rule, ",".join(sorted(rule.methods or ["any"]))) for rule in _routes().iter_rules())
    assert rules == sorted((path, "POST" if method == "POST" else "GET,HEAD") for path, method in HTTP_PATHS)


def test_every_metric_name_is_the_pinned_one(recorded, web_server):
    config, _object_id = recorded
    answer = http_request("GET", web_server(config) + "/metrics")
    names = {family.name for family in text_string_to_metric_families(answer.text)}
    assert {name for name in names if name.startswith("assistant_watcher_")} == METRICS


# --- logger names ---------------------------------------------------------------------------------


def test_every_logger_name_is_the_pinned_one():
    """Operators filter the journal by logger name: a module that moves keeps the name it logged under."""
    assert _logger_names() == LOGGERS


def _logger_names() -> set[str]:
    names = set()
    for path in (ROOT / "watcher").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger":
                if not node.args:  # the root logger: its handlers, not a name of ours
                    continue
                argument = node.args[0]
                assert ast.unparse(argument) != "__name__", f"{path}: a logger is named by a literal, not its module"
                if isinstance(argument, ast.Constant) and str(argument.value).startswith("watcher"):
                    names.add(argument.value)
    return names
