"""SMTP delivery of the outbox against a real aiosmtpd server: TLS, AUTH, outages, refusals, claims, secrets."""

import base64
import json
import re
import threading
import time
from datetime import timedelta

import pytest
from conftest import SMTP_PASSWORD, SMTP_USER
from sqlalchemy import update
from sqlalchemy.orm import Session

from watcher.alerts import outbox
from watcher.alerts.channels import email
from watcher.config.model import load_config
from watcher.errors import DeliveryError
from watcher.record.engine import open_engine
from watcher.record.models import Delivery
from watcher.times import utcnow

# aiosmtpd warns when a test server takes AUTH outside STARTTLS (plain and implicit-TLS servers here).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def db(sqlite_url):
    engine = open_engine(sqlite_url)
    yield engine
    engine.dispose()


# --- transport security and AUTH -------------------------------------------------------------------


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "auth"])
def test_delivers_over_each_security_mode_with_and_without_auth(db, sqlite_url, smtp_server, mail_settings, queue_mail,
                                                                security, auth, outbox_of):
    server = smtp_server(security=security, auth=auth)
    ids = queue_mail(db, 2)
    report = outbox.deliver_pending(db, mail_settings(server, sqlite_url))
    assert (report.sent, report.failed, report.pending) == (2, 0, 0)
    assert sorted(m.header("Message-ID") for m in server.messages) == sorted(ids)
    assert server.auth_attempts == ([(SMTP_USER, SMTP_PASSWORD)] if auth else [])
    assert all(r.sent_at is not None and r.attempts == 1 and r.last_error is None for r in outbox_of(db))


def test_starttls_refuses_to_send_in_clear_when_the_server_cannot_upgrade(db, sqlite_url, smtp_server, mail_settings,
                                                                          queue_mail):
    plain = smtp_server(security="none")
    settings = mail_settings(plain, sqlite_url)
    settings = settings.model_copy(update={"smtp": settings.smtp.model_copy(update={"security": "starttls"})})
    queue_mail(db, 1)
    report = outbox.deliver_pending(db, settings)
    assert (report.sent, report.failed) == (0, 1)
    assert "STARTTLS" in report.errors[0] and plain.messages == []


def test_a_certificate_from_an_unknown_ca_is_rejected(db, sqlite_url, smtp_server, mail_settings, queue_mail):
    server = smtp_server(security="tls")
    settings = mail_settings(server, sqlite_url)
    settings = settings.model_copy(update={"smtp": settings.smtp.model_copy(update={"ca_file": None})})
    queue_mail(db, 1)
    report = outbox.deliver_pending(db, settings)
    assert report.failed == 1 and "CERTIFICATE_VERIFY_FAILED" in report.errors[0]
    assert server.messages == []


def test_a_silent_server_times_out_after_the_configured_timeout(db, sqlite_url, smtp_server, mail_settings,
                                                                queue_mail, silent_smtp_port):
    server = smtp_server(started=False)
    server.port = silent_smtp_port
    queue_mail(db, 3)
    started = time.monotonic()
    report = outbox.deliver_pending(db, mail_settings(server, sqlite_url, timeout="1s"))
    assert time.monotonic() - started < 5  # one timed-out connect, then the others fail at once
    assert report.failed == 3 and "timed out" in report.errors[0]


# --- failures, backoff, the outage -----------------------------------------------------------------


def test_backoff_starts_at_a_minute_doubles_and_stops_at_an_hour():
    assert [outbox.backoff(n) for n in range(1, 9)] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60)]


def test_a_failed_attempt_records_the_error_and_waits_for_its_backoff(db, sqlite_url, smtp_server, mail_settings,
                                                                      queue_mail, outbox_of):
    server = smtp_server(started=False)
    settings = mail_settings(server, sqlite_url)
    now = utcnow()
    queue_mail(db, 1, now=now)
    first = outbox.deliver_pending(db, settings, now=now)
    assert (first.sent, first.failed, first.pending) == (0, 1, 1)
    [row] = outbox_of(db)
    assert row.attempts == 1 and row.next_attempt_at == now + timedelta(minutes=1)
    assert f"cannot connect to 127.0.0.1:{server.port}" in row.last_error
    assert outbox.deliver_pending(db, settings, now=now + timedelta(seconds=59)).failed == 0  # not due yet
    outbox.deliver_pending(db, settings, now=now + timedelta(seconds=61))
    [row] = outbox_of(db)
    assert row.attempts == 2 and row.next_attempt_at == now + timedelta(seconds=61) + timedelta(minutes=2)
    assert first.summary().startswith("mail: 1 not delivered, will retry (cannot connect to 127.0.0.1")


def test_an_smtp_outage_delays_alerts_and_each_arrives_exactly_once(sandbox, smtp_server, mail_config, cli, cli_json):
    server = smtp_server(started=False)
    config = mail_config(sandbox, server)
    assert cli(config, "snapshot").exit_code == 0
    for obj in sandbox.objects("assistants")[:3]:
        sandbox.edit("assistants", obj["id"], model="gpt-outage-test")
    result = cli(config, "snapshot")
    assert result.exit_code == 0, result.output  # undelivered mail alone does not fail a snapshot
    refused = f"cannot connect to 127.0.0.1:{server.port} (none): Connection refused"
    assert f"mail: 3 not delivered, will retry ({refused})" in result.stdout
    queued = cli_json(config, "outbox")
    assert [(r["attempts"], r["sent_at"]) for r in queued] == [(1, None)] * 3
    assert all(r["last_error"] for r in queued)

    server.start()
    settings = load_config(config)
    engine = open_engine(settings.database.url)
    assert outbox.deliver_pending(engine, settings).sent == 0  # still backing off
    later = utcnow() + timedelta(minutes=2)
    assert outbox.deliver_pending(engine, settings, now=later).sent == 3
    assert outbox.deliver_pending(engine, settings, now=later + timedelta(hours=2)).sent == 0
    engine.dispose()

    received = sorted(m.header("Message-ID") for m in server.messages)
    assert received == sorted(r["message_id"] for r in queued)  # the Message-ID queued is the one sent
    sent = cli_json(config, "outbox")
    assert all(r["last_error"] is None for r in sent)
    # The same time format as events --json, so a script can feed it back to --since.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["sent_at"]) for r in sent)


def test_snapshot_no_email_leaves_the_outbox_for_later(sandbox, smtp_server, mail_config, cli, cli_json):
    server = smtp_server()
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], model="gpt-5-mini")
    result = cli(config, "snapshot", "--no-email")
    assert "mail:" not in result.stdout and server.messages == []
    assert [r["attempts"] for r in cli_json(config, "outbox")] == [0]


# --- refusals ----------------------------------------------------------------------------------------


def test_a_refused_recipient_is_recorded_and_does_not_block_the_others(db, sqlite_url, smtp_server, mail_settings,
                                                                        queue_mail, outbox_of):
    server = smtp_server(refuse={"gone@example.com"})
    queue_mail(db, 1, to=("ops@example.com", "gone@example.com", "lead@example.com"))
    report = outbox.deliver_pending(db, mail_settings(server, sqlite_url))
    assert report.sent == 1
    [mail] = server.messages
    assert mail.rcpt_tos == ["ops@example.com", "lead@example.com"]
    [row] = outbox_of(db)
    assert row.sent_at is not None
    assert row.refused == ["gone@example.com: 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"]


def test_every_recipient_refused_for_good_is_dead_not_retried(db, sqlite_url, smtp_server, mail_settings, queue_mail,
                                                             outbox_of):
    server = smtp_server(refuse={"gone@example.com"})
    queue_mail(db, 1, to=("gone@example.com",))
    report = outbox.deliver_pending(db, mail_settings(server, sqlite_url))
    assert (report.sent, report.failed, report.dead, report.pending) == (0, 0, 1, 0)
    [row] = outbox_of(db)
    assert row.state == "dead" and row.sent_at is None and row.dead_at is not None
    assert "550 5.1.1" in row.last_error and row.attempts == 1


def test_every_recipient_refused_for_now_is_retried(db, sqlite_url, smtp_server, mail_settings, queue_mail,
                                                    outbox_of):
    server = smtp_server(defer={"busy@example.com"})
    queue_mail(db, 1, to=("busy@example.com",))
    report = outbox.deliver_pending(db, mail_settings(server, sqlite_url))
    assert (report.sent, report.failed, report.dead) == (0, 1, 0)
    [row] = outbox_of(db)
    assert row.state == "pending" and "450 4.2.1" in row.last_error and row.attempts == 1


# --- claims: two deliverers at once ---------------------------------------------------------------


def test_two_deliverers_at_once_never_send_a_row_twice(store_url, smtp_server, mail_settings, queue_mail):
    server = smtp_server(delay=0.005)
    engines = [open_engine(store_url) for _ in range(2)]
    ids = queue_mail(engines[0], 40)
    settings = mail_settings(server, store_url)
    start = threading.Barrier(2)
    reports = []

    def deliver(engine):
        start.wait()
        reports.append(outbox.deliver_pending(engine, settings))

    threads = [threading.Thread(target=deliver, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    received = [m.header("Message-ID") for m in server.messages]
    assert sorted(received) == sorted(ids)  # every row once, none twice
    assert sum(r.sent for r in reports) == 40 and all(r.failed == 0 for r in reports)
    assert all(r.sent for r in reports), "both deliverers should have claimed rows"


def test_a_claim_left_by_a_crashed_deliverer_is_taken_over_when_it_expires(db, sqlite_url, smtp_server,
                                                                          mail_settings, queue_mail):
    server = smtp_server()
    settings = mail_settings(server, sqlite_url)
    now = utcnow()
    queue_mail(db, 2, now=now)
    with Session(db) as session, session.begin():
        session.execute(update(Delivery).where(Delivery.id == 1)
                        .values(claimed_until=now + timedelta(minutes=5)))
    assert outbox.deliver_pending(db, settings, now=now).sent == 1  # row 1 is still someone else's
    assert outbox.deliver_pending(db, settings, now=now + timedelta(minutes=6)).sent == 1
    assert len(server.messages) == 2


# --- secrets -------------------------------------------------------------------------------------------


@pytest.fixture
def secret_forms():
    """A password as it could leak: in clear, and as AUTH LOGIN and AUTH PLAIN send it."""

    def forms(password: str) -> list[str]:
        return [password, base64.b64encode(password.encode()).decode(),
                base64.b64encode(f"\0{SMTP_USER}\0{password}".encode()).decode()]

    return forms


def test_a_wrong_smtp_password_is_in_no_output_row_log_or_email(sandbox, smtp_server, mail_config, cli, cli_json,
                                                                 caplog, tmp_path, secret_forms):
    server = smtp_server(auth=True)
    wrong = "Wr0ng-hunter2-Passw0rd"
    config = mail_config(sandbox, server, password=wrong)
    cli(config, "-v", "snapshot")
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], model="gpt-4.1")
    snapshot = cli(config, "-v", "snapshot")
    test_email = cli(config, "test-email", "--to", "me@example.com")
    outbox = cli(config, "outbox", "--json")
    assert server.auth_attempts and server.auth_attempts[0][1] == wrong  # it was sent, so it could leak
    assert "535 5.7.8 Authentication credentials invalid" in snapshot.stdout
    assert test_email.exit_code == 1 and "535 5.7.8 Authentication credentials invalid" in test_email.stderr
    [row] = json.loads(outbox.stdout)
    assert "535" in row["last_error"]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("watcher.db*"))
    for text in (snapshot.output, test_email.output, outbox.output, caplog.text, stored.decode("utf-8", "replace")):
        for form in [*secret_forms(wrong), sandbox.api_key]:
            assert form not in text


def test_no_secret_reaches_a_delivered_email(sandbox, smtp_server, mail_config, cli, secret_forms):
    server = smtp_server(auth=True, security="starttls")
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], instructions="Be brief. " * 40)
    cli(config, "snapshot")
    [mail] = server.messages
    for form in [*secret_forms(SMTP_PASSWORD), sandbox.api_key]:
        assert form.encode() not in mail.raw


def test_scrub_removes_the_password_in_clear_and_in_auth_encodings(secret_forms):
    settings = type("Smtp", (), {"username": SMTP_USER})()
    leaked = " | ".join(secret_forms(SMTP_PASSWORD))
    assert email.scrub(leaked, settings, SMTP_PASSWORD) == "*** | *** | ***"


# --- test-email ------------------------------------------------------------------------------------


def test_test_email_sends_one_message_and_says_so(sandbox, smtp_server, mail_config, cli):
    server = smtp_server(security="tls", auth=True)
    config = mail_config(sandbox, server)
    result = cli(config, "test-email", "--to", "me@example.com")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"test email sent to me@example.com via 127.0.0.1:{server.port} (tls)"
    [mail] = server.messages
    assert mail.rcpt_tos == ["me@example.com"] and mail.subject == "assistant-watcher test email"
    assert mail.header("Auto-Submitted") == "auto-generated"
    assert mail.header("Message-ID").endswith("@watcher.example.com>")
    assert f"127.0.0.1:{server.port}" in mail.text and SMTP_PASSWORD not in mail.text


def test_test_email_defaults_to_the_watchlist(sandbox, smtp_server, mail_config, cli):
    server = smtp_server()
    config = mail_config(sandbox, server, watchlist=("ops@example.com", "lead@example.com"))
    assert cli(config, "test-email").exit_code == 0
    assert server.messages[0].rcpt_tos == ["ops@example.com", "lead@example.com"]


def test_test_email_reports_the_servers_exact_refusal(sandbox, smtp_server, mail_config, cli):
    server = smtp_server(refuse={"gone@example.com"})
    config = mail_config(sandbox, server)
    result = cli(config, "test-email", "--to", "gone@example.com")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: every recipient refused: gone@example.com: 550 5.1.1 <gone@example.com>: "
                                     "Recipient address rejected: User unknown")


def test_test_email_when_the_server_is_down(sandbox, smtp_server, mail_config, cli):
    server = smtp_server(started=False)
    result = cli(mail_config(sandbox, server), "test-email", "--to", "me@example.com")
    assert result.exit_code == 1 and f"cannot connect to 127.0.0.1:{server.port} (none)" in result.stderr


def test_test_email_without_smtp_is_a_config_error(sandbox, write_config, sqlite_url, cli):
    result = cli(write_config(sandbox, sqlite_url), "test-email", "--to", "me@example.com")
    assert result.exit_code == 2 and "no [smtp] section" in result.stderr


def test_test_email_rejects_a_header_injection_in_to(sandbox, smtp_server, mail_config):
    server = smtp_server()
    settings = load_config(mail_config(sandbox, server))
    with pytest.raises(DeliveryError, match="is not an email address"):
        email.send_test_email(settings, "me@example.com\r\nBcc: evil@example.com")
    assert server.messages == []


# --- the outbox command ---------------------------------------------------------------------------


def test_outbox_lists_pending_and_failing_first_then_recently_sent(db, sqlite_url, smtp_server, mail_settings,
                                                                   queue_mail, write_config, sandbox, cli, cli_json):
    server = smtp_server()
    settings = mail_settings(server, sqlite_url)
    queue_mail(db, 2)
    outbox.deliver_pending(db, settings)
    queue_mail(db, 1)
    with Session(db) as session, session.begin():
        session.execute(update(Delivery).where(Delivery.id == 3).values(attempts=2, last_error="421 busy"))
    queue_mail(db, 1)
    config = write_config(sandbox, sqlite_url)
    documents = cli_json(config, "outbox")
    assert [d["id"] for d in documents] == [3, 4, 2, 1]
    assert list(documents[0]) == ["id", "subject", "recipients", "attempts", "sent_at", "last_error", "message_id",
                                  "channel", "state", "next_attempt_at"]
    assert documents[0]["last_error"] == "421 busy" and documents[0]["sent_at"] is None
    assert (documents[0]["channel"], documents[0]["state"]) == ("watchlist", "pending")
    assert documents[0]["next_attempt_at"].endswith("Z") and documents[2]["next_attempt_at"] is None
    assert documents[2]["sent_at"].endswith("Z") and documents[2]["recipients"] == ["ops@example.com"]
    assert documents[2]["state"] == "sent"
    table = cli(config, "outbox").stdout.splitlines()
    assert table[0].split() == ["id", "state", "tries", "channel", "sent", "or", "next", "try", "to", "subject", "last",
                                "error"]
    assert [line.split()[1] for line in table[1:]] == ["failing", "pending", "sent", "sent"]
    assert all(line.split()[3] == "watchlist" for line in table[1:])
    assert [d["id"] for d in cli_json(config, "outbox", "--limit", "1")] == [3, 4, 2]


def test_outbox_is_empty_at_first(sandbox, write_config, sqlite_url, cli):
    assert cli(write_config(sandbox, sqlite_url), "outbox").stdout.strip() == "outbox is empty"
