"""The record's engine: migrated on open, SQLite private and in WAL mode, no secret in any row."""

import os
import stat

from sqlalchemy import inspect, text

from watcher.poll.run import poll_target
from watcher.record.engine import MIGRATIONS, open_engine
from watcher.record.schema import SCHEMA_HEAD


def _head() -> str:

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_open_creates_every_table_at_the_newest_migration(engine):
    tables = set(inspect(engine).get_table_names())
    assert {"targets", "resources", "versions", "events", "polls", "outbox", "meta", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == _head()


def test_schema_head_is_the_newest_migration():
    assert SCHEMA_HEAD == _head(), "set watcher.record.schema.SCHEMA_HEAD to the newest migration's revision"


def test_a_current_database_opens_without_importing_alembic(sqlite_url):
    import subprocess
    import sys

    open_engine(sqlite_url).dispose()
    code = ("import sys; from watcher.record.engine import open_engine; open_engine(sys.argv[1]).dispose(); "
            "print('alembic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, sqlite_url], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_0001_database_migrates_keeping_its_record_and_takes_long_kind_names(store_url):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    raw = create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with raw.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("INSERT INTO targets (id, name, base_url, created_at) "
                                "VALUES (1, 'prod', 'http://x/v1', '2026-01-01 00:00:00')"))
        connection.execute(text("INSERT INTO resources (id, target_id, kind, remote_id, name, first_seen_at, "
                                "current_version, current_hash) VALUES (1, 1, 'assistants', 'asst_1', 'Billing Bot', "
                                "'2026-01-01 00:00:00', 1, 'h')"))
        connection.commit()
    raw.dispose()
    engine = open_engine(store_url)
    with engine.begin() as connection:
        assert connection.scalar(text("SELECT name FROM resources WHERE remote_id = 'asst_1'")) == "Billing Bot"
        connection.execute(text("INSERT INTO resources (id, target_id, kind, remote_id, first_seen_at, current_version, "
                                "current_hash) VALUES (2, 1, 'project_service_accounts', 'proj_1/svc_1', "
                                "'2026-01-01 00:00:00', 1, 'h')"))
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == _head()
    engine.dispose()


def test_opening_twice_keeps_the_record_and_the_schema(store_url):
    from watcher.record.engine import installation_key

    first = open_engine(store_url)
    key = installation_key(first)
    tables = set(inspect(first).get_table_names())
    first.dispose()
    again = open_engine(store_url)
    assert installation_key(again) == key  # the same record, not a new one
    assert set(inspect(again).get_table_names()) == tables
    with again.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == _head()
    again.dispose()


def test_sqlite_file_is_created_private(tmp_path):
    path = tmp_path / "new.db"
    open_engine(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_missing_database_directory_is_a_config_error(tmp_path):
    import pytest

    from watcher.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        open_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")


def test_api_key_is_in_no_database_row(engine, sandbox, make_target):
    target = make_target(sandbox.url, key=sandbox.api_key, kinds=["assistants", "agents"])
    poll_target(engine, target)
    sandbox.fail_next(10, status=401)
    poll_target(engine, target)
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                assert sandbox.api_key not in repr(tuple(row)), table


def test_poll_locks_live_in_one_hidden_folder_beside_the_database(tmp_path, sandbox, make_target):
    engine = open_engine(f"sqlite:///{tmp_path / 'watcher.db'}")
    target = make_target(sandbox.url, key=sandbox.api_key, kinds=["assistants", "agents"])
    poll_target(engine, target)
    engine.dispose()
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert visible == ["watcher.db", "watcher.db-shm", "watcher.db-wal"] or visible == ["watcher.db"]
    assert sorted(p.name for p in (tmp_path / ".watcher.db.locks").iterdir()) == \
        ["poll-prod-agents.lock", "poll-prod-assistants.lock"]
