"""The store: migrated on open, SQLite private and in WAL mode, no secret in any row."""

import os
import stat

from sqlalchemy import inspect, text

from watcher.config import parse_config
from watcher.poll import poll_target
from watcher.store import open_engine


def test_open_creates_every_table_at_the_newest_migration(engine):
    tables = set(inspect(engine).get_table_names())
    assert {"targets", "resources", "versions", "events", "polls", "outbox", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0001"


def test_opening_twice_is_harmless(store_url):
    open_engine(store_url).dispose()
    open_engine(store_url).dispose()


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


def test_api_key_is_in_no_database_row(engine, sandbox, monkeypatch):
    monkeypatch.setenv("SB_KEY", sandbox.api_key)
    target = parse_config(f'[[targets]]\nname = "prod"\nbase_url = "{sandbox.url}"\napi_key_env = "SB_KEY"\n').targets[0]
    poll_target(engine, target)
    sandbox.fail_next(10, status=401)
    poll_target(engine, target)
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                assert sandbox.api_key not in repr(tuple(row)), table
