"""Migration 0005: events recorded before the kind registry get the severity they were read with."""


from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from watcher.record.engine import MIGRATIONS, open_engine


def test_a_0002_database_gets_every_event_severity_filled(store_url):
    raw = create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with raw.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(text("INSERT INTO targets (id, name, base_url, created_at) "
                                "VALUES (1, 'prod', 'http://x/v1', '2026-01-01 00:00:00')"))
        connection.execute(text("INSERT INTO resources (id, target_id, kind, remote_id, name, first_seen_at, "
                                "current_version, current_hash) VALUES (1, 1, 'assistants', 'asst_1', 'Billing Bot', "
                                "'2026-01-01 00:00:00', 3, 'h')"))
        for event_id, change, paths in [(1, "modified", '["instructions"]'), (2, "modified", '["name"]'),
                                        (3, "deleted", "[]")]:
            connection.execute(text("INSERT INTO events (id, resource_id, change, from_version, to_version, paths, "
                                    "detected_at) VALUES (:id, 1, :change, 1, 2, :paths, '2026-01-02 00:00:00')"),
                               {"id": event_id, "change": change, "paths": paths})
        connection.commit()
    raw.dispose()
    engine = open_engine(store_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, severity FROM events ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "high"), (2, "low"), (3, "high")]
