"""The outbox across the upgrade to channels, and what `outbox` shows of deliveries not sent yet."""


from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from watcher.alerts import outbox
from watcher.record.engine import MIGRATIONS, open_engine
from watcher.record.models import Alert, Base


def test_the_models_match_the_migrations(engine):
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def _database_at_0002(url: str) -> None:
    engine = create_engine(url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.commit()
        connection.execute(text("INSERT INTO targets (id, name, base_url, created_at) "
                                "VALUES (1, 'prod', 'http://x', '2026-11-01 00:00:00')"))
        connection.execute(text("INSERT INTO polls (id, target_id, kind, started_at, status, objects, pages, changes) "
                                "VALUES (7, 1, 'agents', '2026-11-01 00:00:00', 'failed', 0, 0, 0)"))
        connection.execute(text(
            "INSERT INTO outbox (id, purpose, target_id, poll_id, recipients, subject, text_body, html_body, "
            "message_id, created_at, attempts, next_attempt_at, last_error) VALUES (1, 'failing', 1, 7, "
            "'[\"ops@example.com\", \"lead@example.com\"]', '[prod] [high] watcher failing: agents polls failed 3 "
            "times in a row', 'queued before channels\n', '<p>queued before channels</p>', "
            "'<old.1@watcher.example.com>', '2026-11-01 00:00:00', 2, '2026-11-01 00:00:00', '421 busy')"))
        connection.commit()
    engine.dispose()


def test_an_email_queued_before_channels_is_sent_as_it_was_rendered(store_url, smtp_server, mail_settings, cli_json,
                                                                    sandbox, write_config):
    _database_at_0002(store_url)
    engine = open_engine(store_url)  # migrates to head
    with Session(engine) as session:
        alert = session.scalar(select(Alert))
        assert (alert.id, alert.purpose, alert.target_id, alert.poll_id, alert.severity) == (1, "failing", 1, 7, "high")
    server = smtp_server()
    report = outbox.deliver_pending(engine, mail_settings(server, store_url))
    engine.dispose()
    assert report.sent == 1
    [mail] = server.messages
    assert mail.header("Message-ID") == "<old.1@watcher.example.com>"
    assert mail.rcpt_tos == ["ops@example.com", "lead@example.com"]
    assert mail.subject == "[prod] [high] watcher failing: agents polls failed 3 times in a row"
    assert mail.text == "queued before channels\n"
    [row] = cli_json(write_config(sandbox, store_url), "outbox")
    assert (row["channel"], row["state"], row["attempts"]) == ("watchlist", "sent", 3)


def test_outbox_shows_whom_a_pending_email_would_go_to_now(sandbox, smtp_server, mail_config, cli, cli_json):
    server = smtp_server(started=False)
    config = mail_config(sandbox, server, alerts='[[alerts.routes]]\nmatch = { kind = "agents" }\n'
                                                 'to = ["agents@example.com"]\n')
    cli(config, "snapshot")
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], model="gpt-pending")
    cli(config, "snapshot")
    [row] = cli_json(config, "outbox")
    assert row["state"] == "pending" and row["recipients"] == ["ops@example.com", "agents@example.com"]
    assert row["subject"] == f'[prod] [high] agent "{agent["name"]}" modified: model'
    assert row["next_attempt_at"].endswith("Z") and "cannot connect" in row["last_error"]
