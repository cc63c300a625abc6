"""The reading commands' own path: plain SQL that answers as the SQLAlchemy reads do, on SQLite and
PostgreSQL, a config read without its schema, and a start that stays free of the heavy libraries."""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from watcher.config import quick as config_file
from watcher.config.model import load_config
from watcher.config.quick import configured_kinds, database_url, disabled_targets
from watcher.config.quick import email_routing as configured_email_routing
from watcher.errors import ConfigError
from watcher.record import documents, history_orm, history_sql, overview_orm, overview_sql
from watcher.record.connection import open_database
from watcher.record.engine import open_engine
from watcher.record.schema import SCHEMA_HEAD

HEAVY = ("sqlalchemy", "alembic", "openai", "pydantic", "jinja2", "deepdiff")


@pytest.fixture
def config(write_config, sandbox, store_url):
    return write_config(sandbox, store_url)


@pytest.fixture
def recorded(config, cli, sandbox):
    """A baseline, an out-of-band edit of one assistant and a deletion of one agent, then a second snapshot."""
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], model="gpt-4.1-nano", instructions=victim["instructions"] + "\nCite.")
    sandbox.remove("agents", sandbox.objects("agents")[0]["id"])
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    return victim


@pytest.fixture
def both(store_url):
    """The record opened both ways: a SQLAlchemy session and a plain-SQL database."""
    engine = open_engine(store_url)
    with Session(engine) as session, open_database(store_url) as db:
        yield session, db
    engine.dispose()


def test_events_read_in_plain_sql_are_the_documents_the_models_give(recorded, both):
    session, db = both
    plain = [documents.event_document(e) for e in history_sql.list_events(db)]
    models = [documents.event_document(e) for e in history_orm.list_events(session)]
    assert plain == models and {e["change"] for e in plain} == {"modified", "deleted"}


def test_events_filters_in_plain_sql_match_the_models(recorded, both):
    session, db = both
    since = history_orm.list_events(session)[-1].detected_at
    for options in ({"open_only": True}, {"since": since}, {"target": "prod"}, {"target": "staging"}):
        assert ([documents.event_document(e) for e in history_sql.list_events(db, **options)]
                == [documents.event_document(e) for e in history_orm.list_events(session, **options)]), options


def test_versions_and_the_version_live_at_a_time_match_the_models(recorded, both):
    session, db = both
    plain, model = history_sql.find_resource(db, recorded["id"]), history_orm.find_resource(session, recorded["id"])
    assert ([documents.version_document(v) for v in history_sql.versions(db, plain)]
            == [documents.version_document(v) for v in history_orm.versions(session, model)])
    second = history_orm.version(session, model, 2)
    for moment in (second.observed_at, second.observed_at - timedelta(microseconds=1),
                   second.observed_at.replace(microsecond=0)):  # a time to the second: that whole second
        assert (documents.live_version_document(history_sql.version_at(db, plain, moment))
                == documents.live_version_document(history_orm.version_at(session, model, moment)))


def test_objects_in_plain_sql_match_the_overview(recorded, both):
    session, db = both
    for options in ({}, {"deleted": True}, {"kind": "agents"}, {"target": "staging"}):
        assert ([documents.object_document(o) for o in overview_sql.list_objects(db, **options)]
                == [documents.object_document(o) for o in overview_orm.list_objects(session, **options)]), options


def test_status_in_plain_sql_matches_the_overview(recorded, both, config):
    session, db = both
    expected = [*configured_kinds(Path(config)), ("prod", "vaults")]
    plain = documents.status_document(overview_sql.kind_statuses(db, expected), overview_sql.deliveries(db))
    models = documents.status_document(overview_orm.kind_statuses(session, expected), overview_orm.deliveries(session))
    assert plain == models and plain["open_events"] == 2


def test_reading_commands_start_without_the_heavy_libraries(recorded, config):
    """Their speed is kept: none of SQLAlchemy, Alembic, openai, pydantic, jinja2 or deepdiff is imported."""
    for command in (["events"], ["events", "--json"], ["history", recorded["id"]], ["show", recorded["id"]],
                    ["diff", recorded["id"]], ["status"], ["objects"], ["outbox"], ["rules"]):
        _listing, heavy = _heavy_modules_after(config, *command)
        assert heavy == "[]", command


def test_a_config_the_light_reader_cannot_read_gets_the_full_models_error(tmp_path, cli, sqlite_url):
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{sqlite_url}"\nuri = "typo"\n')
    result = cli(path, "events")
    assert result.exit_code == 2
    assert result.stderr.startswith("config error: ") and "uri" in result.stderr


def test_the_light_reader_anchors_a_relative_sqlite_file_beside_the_config(tmp_path, monkeypatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///w.db"\n')
    assert database_url(path) == load_config(path).database.url == f"sqlite:///{tmp_path.resolve() / 'w.db'}"


def test_the_light_reader_gives_the_models_default_kinds(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[[targets]]\nname = "a"\napi_key_env = "K"\n\n[[targets]]\nname = "b"\nadmin_key_env = "A"\n\n'
                    '[[targets]]\nname = "c"\nkinds = ["agents"]\n\n[[targets]]\nname = "d"\n\n'
                    '[[targets]]\nname = "e"\napi_key_file = "/k"\nadmin_key_file = "/a"\n\n'
                    '[[targets]]\nname = "f"\nprovider = "azure"\nazure_endpoint = "https://x.openai.azure.com"\n'
                    'api_version = "2025-04-01-preview"\napi_key_env = "K"\n')
    assert configured_kinds(path) == [(t.name, k) for t in load_config(path).targets for k in t.kinds]


def test_a_reading_command_on_a_new_database_creates_it_at_the_current_schema(tmp_path, cli, sqlite_url):
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{sqlite_url}"\n')
    assert json.loads(cli(path, "events", "--json").stdout) == []
    with open_database(sqlite_url) as db:
        assert db.schema() == SCHEMA_HEAD


@pytest.fixture
def hook_down(write_config, sandbox, store_url, monkeypatch, cli):
    """A webhook channel whose receiver is gone, and an edit: its alert waits in the outbox, pending."""
    monkeypatch.setenv("WATCHER_TEST_HOOK_SECRET", "whsec_" + "QW5vdGhlciBzZWNyZXQga2V5IG9mIDMyIGJ5dGVzISE=")
    config = write_config(sandbox, store_url, extra='[[channels]]\nname = "siem"\ntype = "webhook"\n'
                                                    'url = "http://127.0.0.1:9/hook"\nsecret_env = "WATCHER_TEST_HOOK_SECRET"\n')
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], model="gpt-4.1-nano")
    cli(config, "snapshot")
    return config


def test_outbox_in_plain_sql_matches_the_outbox_with_a_pending_webhook_delivery(hook_down, both, cli_json):
    from watcher.alerts import outbox

    session, _db = both
    settings = load_config(hook_down)
    models = [documents.outbox_document(r, **outbox.preview(r, settings)) for r in outbox.rows(session)]
    plain = cli_json(hook_down, "outbox")
    assert plain == json.loads(json.dumps(models))
    assert [(d["state"], d["channel"], d["recipients"]) for d in plain] == [("pending", "siem", [])]


def _heavy_modules_after(config, *command):
    """The heavy libraries a whole process running `command` imported, or its failure."""
    stdout, modules = _modules_after(config, *command, prefixes=HEAVY)
    return stdout, repr(sorted({m for m in modules if m.split(".")[0] in HEAVY}))


def test_outbox_with_a_pending_webhook_delivery_starts_without_the_heavy_libraries(hook_down):
    listing, heavy = _heavy_modules_after(hook_down, "outbox")
    assert "failing" in listing and heavy == "[]"


ROUTED = ('[smtp]\nhost = "127.0.0.1"\nport = 9\nsender = "w@example.com"\ntimeout = "2s"\n\n'
          '[alerts]\nwatchlist = ["ops@example.com"]\n\n'
          '[[alerts.routes]]\nmatch = { name = "*", severity = "high" }\nto = ["Lead@example.com", "ops@example.com"]\n\n'
          '[[alerts.routes]]\nmatch = { kind = "agents" }\nto = ["agents@example.com"]\n\n'
          '[[channels]]\nname = "audit"\ntype = "email"\nto = ["audit@example.com"]\n')


def test_the_light_reader_gives_the_models_email_routing(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(ROUTED)
    settings = load_config(path)
    assert configured_email_routing(path) == {
        "watchlist": settings.alerts.watchlist,
        "routes": [(r.match.model_dump(), r.to) for r in settings.alerts.routes],
        "channel_to": {"audit": ["audit@example.com"]},
    }


@pytest.fixture
def mail_down(write_config, sandbox, store_url, cli):
    """Email channels whose relay is down, and an edit: its emails wait in the outbox, pending."""
    config = write_config(sandbox, store_url, extra=ROUTED)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], model="gpt-4.1-nano")
    cli(config, "snapshot")
    return config


def test_outbox_in_plain_sql_previews_pending_emails_as_the_outbox_does(mail_down, both, cli_json):
    from watcher.alerts import outbox

    session, _db = both
    settings = load_config(mail_down)
    models = [documents.outbox_document(r, **outbox.preview(r, settings)) for r in outbox.rows(session)]
    plain = cli_json(mail_down, "outbox")
    assert plain == json.loads(json.dumps(models))
    assert {d["channel"]: d["recipients"] for d in plain} == {
        "watchlist": ["ops@example.com", "Lead@example.com"], "audit": ["audit@example.com"]}


def test_outbox_with_a_pending_email_starts_without_the_heavy_libraries(mail_down):
    listing, heavy = _heavy_modules_after(mail_down, "outbox")
    assert "ops@example.com" in listing and heavy == "[]"


def test_target_defaults_are_merged_by_the_light_reader_as_the_model_merges_them(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:////srv/w.db"\n\n[target_defaults]\nadmin_key_env = "A"\nenabled = false\n\n'
                    '[[targets]]\nname = "a"\napi_key_env = "K"\n\n[[targets]]\nname = "b"\napi_key_env = "K"\nenabled = true\n'
                    'kinds = ["agents"]\n')
    assert database_url(path) == "sqlite:////srv/w.db"
    assert [t["name"] for t in config_file._targets(path)] == ["a", "b"]  # read here, not left to the model
    model = load_config(path)
    assert configured_kinds(path) == [(t.name, k) for t in model.targets for k in t.kinds]
    assert disabled_targets(path) == {t.name for t in model.targets if not t.enabled} == {"a"}


@pytest.mark.parametrize("reader", [disabled_targets, config_file.channel_types, configured_email_routing])
def test_a_name_that_is_not_a_string_is_left_to_the_model_to_explain(tmp_path, reader):
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:////srv/w.db"\n\n[smtp]\nhost = "127.0.0.1"\nsender = "w@example.com"\n\n'
                    '[[targets]]\nname = ["a"]\napi_key_env = "K"\n\n'
                    '[[channels]]\nname = ["c"]\ntype = "email"\nto = ["c@example.com"]\n')
    with pytest.raises(ConfigError, match="expected a string"):  # a list cannot be a dict key: no TypeError
        reader(path)


def _modules_after(config, *command, prefixes: tuple[str, ...]) -> tuple[str, list[str]]:
    """What a whole process running `command` printed, and the modules under `prefixes` it imported (it must
    succeed)."""
    probe = ("import json, sys\nfrom watcher.cli import main\n"
             f"try:\n    main(['--config', {config!r}, *{list(command)!r}])\nexcept SystemExit as exit:\n"
             "    assert not exit.code, exit.code\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(result.stderr.strip().splitlines()[-1])


def test_a_snapshot_that_tells_nobody_loads_no_alert_machinery(config):
    _stdout, loaded = _modules_after(config, "snapshot", "--no-email",
                                     prefixes=("jinja2", "aiosmtplib", "watcher.alerts"))
    assert loaded == []


def test_a_snapshot_loads_only_the_channel_types_it_delivers_to(write_config, sandbox, store_url, tmp_path):
    (tmp_path / "slack-url").write_text("http://127.0.0.1:9/hook\n")
    hooked = write_config(sandbox, store_url, extra=f'[[channels]]\nname = "ops"\ntype = "slack"\n'
                                                  f'url_file = "{tmp_path / "slack-url"}"\n')
    _stdout, loaded = _modules_after(hooked, "snapshot", "--no-email", prefixes=("watcher.alerts.channels.", "aiosmtplib"))
    assert "watcher.alerts.channels.slack" in loaded
    assert not {"watcher.alerts.channels.email", "watcher.alerts.channels.webhook", "aiosmtplib"} & set(loaded)
