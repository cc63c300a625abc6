"""Channels end to end: sandbox API → `snapshot` → outbox → real receivers over loopback (an aiosmtpd
server, HTTP servers that verify Standard Webhooks signatures and stand in for Slack and Teams)."""

import json
import time
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from conftest import WEBHOOK_SECRET

from watcher.alerts import outbox
from watcher.config.model import load_config
from watcher.record.engine import open_engine
from watcher.times import utcnow

SCHEMAS = Path(__file__).parent / "schemas"
SECRET_ENV = "WATCHER_TEST_WEBHOOK_SECRET"
SLACK_PATH = "/services/T0001/B0002/sEcReTsLaCkToKeN"
DRIFT_KEYS = ["type", "id", "target", "kind", "object_id", "name", "change", "severity", "paths", "from_version",
              "to_version", "detected_at", "window_start", "remote_updated_at", "actor", "changes",
              "changes_truncated", "rule", "message"]


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


@pytest.fixture
def channels_config(write_config, sqlite_url, monkeypatch, tmp_path):
    """Writes a config with any of: the watchlist through a MailServer, a webhook (siem), Slack, Teams."""

    def write(sandbox, *, url=None, mail=None, watchlist=("ops@example.com",), webhook=None, slack=None, teams=None,
              alerts="", timeout="2s", secret=WEBHOOK_SECRET) -> str:
        monkeypatch.setenv(SECRET_ENV, secret)
        text = mail.smtp_section() if mail else ""
        listed = ", ".join(f'"{a}"' for a in watchlist) if mail else ""
        text += f"\n[alerts]\nwatchlist = [{listed}]\n{alerts}\n"
        if webhook:
            text += (f'[[channels]]\nname = "siem"\ntype = "webhook"\nurl = "{webhook.url()}"\n'
                     f'secret_env = "{SECRET_ENV}"\ntimeout = "{timeout}"\n')
        if slack:
            (tmp_path / "slack-url").write_text(slack.url(SLACK_PATH) + "\n")
            text += f'[[channels]]\nname = "ops-slack"\ntype = "slack"\nurl_file = "{tmp_path / "slack-url"}"\n'
        if teams:
            monkeypatch.setenv("WATCHER_TEST_TEAMS_URL", teams.url("/workflows/abc/triggers/manual"))
            text += '[[channels]]\nname = "ops-teams"\ntype = "teams"\nurl_env = "WATCHER_TEST_TEAMS_URL"\n'
        return write_config(sandbox, url or sqlite_url, extra=text)

    return write


def edit_first(sandbox, kind="assistants", **fields):
    obj = sandbox.objects(kind)[0]
    sandbox.edit(kind, obj["id"], **fields)
    return obj


# --- the whole promise: every drift reaches every channel ---------------------------------------------


def test_one_config_delivers_every_drift_to_email_webhook_and_slack(sandbox, smtp_server, receiver, channels_config,
                                                                    cli, cli_json, store_url):
    mail, hook, slack = smtp_server(), receiver(), receiver(secret=None)
    config = channels_config(sandbox, url=store_url, mail=mail, webhook=hook, slack=slack)
    assert cli(config, "snapshot").exit_code == 0
    victim = edit_first(sandbox, model="gpt-5-channels")
    result = cli(config, "snapshot")
    assert result.exit_code == 0 and "alerts: 3 deliveries sent" in result.stdout

    [email] = mail.messages
    assert email.subject == f'[prod] [high] assistant "{victim["name"]}" modified: model'
    assert "Who:   unknown (out of band)" in email.text
    [post] = hook.requests
    assert post.verified and hook.accepted == {post.headers["webhook-id"]: 1}
    document = post.json
    assert list(document) == DRIFT_KEYS
    [event] = cli_json(config, "events")
    assert document["id"] == f"evt_{event['id']}" and document["type"] == "drift.modified"
    assert (document["object_id"], document["paths"], document["severity"]) == (victim["id"], ["model"], "high")
    assert document["changes"] == [{"path": "model", "op": "changed", "old": victim["model"], "new": "gpt-5-channels"}]
    assert document["changes_truncated"] is False and document["actor"] is None
    [message] = slack.payloads
    jsonschema.validate(message, schema("slack_message"))
    assert slack.requests[0].path == SLACK_PATH and "webhook-signature" not in slack.requests[0].headers

    rows = cli_json(config, "outbox")
    assert sorted((r["channel"], r["state"]) for r in rows) == [("ops-slack", "sent"), ("siem", "sent"),
                                                              ("watchlist", "sent")]
    assert next(r for r in rows if r["channel"] == "siem")["message_id"] == post.headers["webhook-id"]


def test_a_receiver_outage_delays_alerts_never_drops_them_and_outbox_says_where(sandbox, smtp_server, receiver,
                                                                                channels_config, cli, cli_json):
    mail, hook = smtp_server(), receiver()
    hook.default = 503
    config = channels_config(sandbox, mail=mail, webhook=hook)
    cli(config, "snapshot")
    for obj in sandbox.objects("agents")[:2]:
        sandbox.edit("agents", obj["id"], model="gpt-outage")
    result = cli(config, "snapshot")
    assert result.exit_code == 0
    assert "2 not delivered, will retry (siem: 127.0.0.1:" in result.stdout and "HTTP 503" in result.stdout
    assert len(mail.messages) == 2

    pending = [r for r in cli_json(config, "outbox") if r["state"] == "pending"]
    assert [(r["channel"], r["attempts"]) for r in pending] == [("siem", 1), ("siem", 1)]
    assert all(r["next_attempt_at"] and "HTTP 503 Service Unavailable: refused with 503" in r["last_error"]
               for r in pending)
    table = cli(config, "outbox").stdout.splitlines()
    assert sum(1 for line in table if line.split()[1:4:2] == ["failing", "siem"]) == 2

    hook.default = 200  # the receiver is fixed; its operator flushes the queue
    steer = cli(config, "outbox", "--retry-now")
    assert "2 pending deliveries made due now" in steer.stdout and "alerts: 2 deliveries sent" in steer.stdout
    assert all(r["state"] == "sent" for r in cli_json(config, "outbox"))
    ids = [r.headers["webhook-id"] for r in hook.requests]
    assert len(ids) == 4 and len(set(ids)) == 2  # each retried with the id it was queued with
    assert sorted(hook.accepted.values()) == [1, 1]  # accepted once each
    assert all(r.verified for r in hook.requests)


def test_a_digest_reaches_email_and_slack_once_and_the_webhook_once_per_event(sandbox, smtp_server, receiver,
                                                                             channels_config, cli):
    mail, hook, slack = smtp_server(), receiver(), receiver(secret=None)
    config = channels_config(sandbox, mail=mail, webhook=hook, slack=slack, alerts="digest_threshold = 2\n")
    cli(config, "snapshot")
    for obj in sandbox.objects("assistants")[:3]:
        sandbox.edit("assistants", obj["id"], model="gpt-digest")
    cli(config, "snapshot")
    assert [m.subject for m in mail.messages] == ["[prod] [high] 3 assistants changed in one poll: 3 modified"]
    [digest] = slack.payloads
    jsonschema.validate(digest, schema("slack_message"))
    assert "3 assistants changed in one poll" in digest["blocks"][0]["text"]["text"]
    assert sorted(p["object_id"] for p in hook.payloads) == sorted(o["id"] for o in sandbox.objects("assistants")[:3])


# --- webhooks: signature, 410, timeouts, redirects -------------------------------------------------------


def test_a_receiver_with_another_secret_refuses_and_the_delivery_waits(sandbox, receiver, channels_config, cli,
                                                                       cli_json):
    hook = receiver(secret="whsec_" + "QW5vdGhlciBzZWNyZXQga2V5IG9mIDMyIGJ5dGVzISE=")
    config = channels_config(sandbox, webhook=hook)
    cli(config, "snapshot")
    edit_first(sandbox, model="gpt-x")
    cli(config, "snapshot")
    [post] = hook.requests
    assert post.verified is False and not hook.accepted
    [row] = cli_json(config, "outbox")
    assert row["state"] == "pending" and "HTTP 401" in row["last_error"]


def test_410_disables_the_channel_tells_the_others_and_retry_now_enables_it(sandbox, smtp_server, receiver,
                                                                            channels_config, cli, cli_json):
    mail, hook = smtp_server(), receiver()
    hook.plan(410)
    config = channels_config(sandbox, mail=mail, webhook=hook)
    cli(config, "snapshot")
    edit_first(sandbox, model="gpt-gone")
    result = cli(config, "snapshot")
    assert "siem: 127.0.0.1:" in result.stdout and "HTTP 410 Gone" in result.stdout, result.output
    subjects = [m.subject for m in mail.messages]
    assert "[high] channel siem disabled: its receiver answered 410 Gone" in subjects
    [notice] = [m for m in mail.messages if "disabled" in m.subject]
    assert "outbox --retry-now" in notice.text and "HTTP 410 Gone" in notice.text

    edit_first(sandbox, model="gpt-gone-again")
    cli(config, "snapshot")
    assert len(hook.requests) == 1  # nothing more is sent to a disabled channel: it waits
    states = {r["id"]: r["state"] for r in cli_json(config, "outbox") if r["channel"] == "siem"}
    assert sorted(states.values()) == ["dead", "pending"]
    assert any(line.split()[1] == "held" for line in cli(config, "outbox").stdout.splitlines()[1:])

    steer = cli(config, "outbox", "--retry-now")
    assert "channel siem enabled again" in steer.stdout
    # The delivery answered with 410 is sent again too: the channel is back, and its alert was never received.
    assert [p["to_version"] for p in hook.payloads] == [2, 3]


def test_a_receiver_still_gone_after_retry_now_is_disabled_again_without_telling_everyone_again(
        sandbox, smtp_server, receiver, channels_config, cli, cli_json):
    mail, hook = smtp_server(), receiver()
    hook.plan(*[410] * 6)
    config = channels_config(sandbox, mail=mail, webhook=hook)
    cli(config, "snapshot")
    edit_first(sandbox, model="gpt-gone")
    cli(config, "snapshot")
    for _ in range(3):
        steer = cli(config, "outbox", "--retry-now")
        assert "channel siem enabled again" in steer.stdout
    assert len(hook.requests) == 4  # each retry did ask the receiver again
    disabled = [m.subject for m in mail.messages if "disabled" in m.subject]
    assert disabled == ["[high] channel siem disabled: its receiver answered 410 Gone"]
    assert [r["state"] for r in cli_json(config, "outbox") if r["channel"] == "siem"] == ["dead"]  # disabled again


def test_a_hanging_receiver_times_out_and_does_not_hold_up_the_sweep(sandbox, receiver, channels_config, cli,
                                                                     cli_json):
    hook = receiver()
    config = channels_config(sandbox, webhook=hook, timeout="1s")
    cli(config, "snapshot")
    for obj in sandbox.objects("agents")[:3]:
        sandbox.edit("agents", obj["id"], model="gpt-hang")
    hook.plan(("hang", 4), ("hang", 4), ("hang", 4))
    started = time.monotonic()
    cli(config, "snapshot", "--no-email")
    settings = load_config(config)
    engine = open_engine(settings.database.url)
    swept = time.monotonic()
    report = outbox.deliver_pending(engine, settings)
    elapsed = time.monotonic() - swept
    engine.dispose()
    assert elapsed < 3, f"one timeout, then the channel is skipped for this sweep ({elapsed:.1f} s)"
    assert (report.sent, report.failed) == (0, 1) and started
    rows = sorted(cli_json(config, "outbox"), key=lambda r: r["id"])
    assert [(r["state"], r["attempts"]) for r in rows] == [("pending", 1), ("pending", 0), ("pending", 0)]
    assert "no answer within 1 s" in rows[0]["last_error"]  # the two never sent count no try against them


def test_a_redirect_is_followed_on_the_same_host_only(sandbox, receiver, channels_config, cli, cli_json):
    hook, elsewhere = receiver(), receiver()
    config = channels_config(sandbox, webhook=hook)
    cli(config, "snapshot")
    edit_first(sandbox, model="gpt-moved")
    hook.plan(("redirect", 308, "/moved"))
    cli(config, "snapshot")
    assert [(r.path, r.status) for r in hook.requests] == [("/hook", 308), ("/moved", 200)]
    assert hook.requests[1].verified
    edit_first(sandbox, model="gpt-moved-away")
    away = elsewhere.url("/stolen").replace("127.0.0.1", "localhost")
    hook.plan(("redirect", 307, away))
    cli(config, "snapshot")
    assert elsewhere.requests == []
    row = next(r for r in cli_json(config, "outbox") if r["state"] == "pending")
    assert f"redirect to localhost:{elsewhere.server.server_address[1]} not followed" in row["last_error"]


def test_a_delivery_failing_past_give_up_after_is_dead_and_the_other_channels_hear_of_it(
        sandbox, smtp_server, receiver, channels_config, cli, cli_json):
    mail, hook = smtp_server(), receiver()
    hook.default = 503
    config = channels_config(sandbox, mail=mail, webhook=hook, alerts='give_up_after = "1h"\n')
    cli(config, "snapshot")
    victim = edit_first(sandbox, model="gpt-dead")
    cli(config, "snapshot")
    settings = load_config(config)
    engine = open_engine(settings.database.url)
    report = outbox.deliver_pending(engine, settings, now=utcnow() + timedelta(hours=2))
    assert report.dead == 1 and report.sent == 1  # the siem delivery died; the notice about it went by email
    again = outbox.deliver_pending(engine, settings, now=utcnow() + timedelta(hours=3))
    engine.dispose()
    assert (again.sent, again.failed, again.dead) == (0, 0, 0)
    notice = mail.messages[-1]
    assert notice.subject == "[high] 1 alert could not be delivered to siem"
    assert f'assistant "{victim["name"]}" modified' in notice.text and "1h" in notice.text
    [dead] = [r for r in cli_json(config, "outbox") if r["state"] == "dead"]
    assert dead["channel"] == "siem" and "HTTP 503" in dead["last_error"]
    assert len(hook.requests) == 2


# --- email recipients are resolved when sent ---------------------------------------------------------


def test_a_watchlist_fixed_after_queueing_helps_mail_already_queued(sandbox, smtp_server, channels_config, cli):
    server = smtp_server(started=False)
    typo = channels_config(sandbox, mail=server, watchlist=("opps@example.com",))
    cli(typo, "snapshot")
    edit_first(sandbox, model="gpt-typo")
    cli(typo, "snapshot")  # the server is down: the alert waits
    fixed = channels_config(sandbox, mail=server, watchlist=("ops@example.com",))
    server.start()
    result = cli(fixed, "outbox", "--retry-now")
    assert "mail: 1 email sent" in result.stdout
    [mail] = server.messages
    assert mail.rcpt_tos == ["ops@example.com"]


# --- Slack and Teams: schema, limits, escaping -------------------------------------------------------


@pytest.fixture
def alert_of():
    """A channels.Alert for a DriftEvent (or several: a digest), as the outbox hands it to channels."""
    from watcher.alerts import render
    from watcher.alerts.channels import base as channels

    def make(*events, purpose=None):
        purpose = purpose or ("event" if len(events) == 1 else "digest")
        title = render.event_subject(events[0], events[0].severity) if purpose == "event" else \
            render.digest_subject(list(events))
        return channels.Alert(1, purpose, title, events[0].severity, events[0].target, events[0].kind,
                              events[0].detected_at, tuple(events))

    return make


@pytest.fixture
def notice_alert():
    from watcher.alerts import notices
    from watcher.alerts.channels import base as channels

    def make():
        notice = notices.failing_notice("prod", "agents", "prod/agents: HTTP 500: <b>boom</b>\nline 2", 3, None)
        return channels.Alert(2, "failing", notice.subject, "high", "prod", "agents", utcnow(), notice=notice)

    return make


def _cases(drift_event, alert_of, notice_alert, long_instructions):
    before = long_instructions()
    after = "\n".join(line.replace("Always", "Never") if n % 50 == 0 else line
                      for n, line in enumerate(before.split("\n")))
    body = {"name": "Billing Bot", "model": "gpt-4o", "instructions": before, "tools": [{"type": "code_interpreter"}]}
    return {
        "256k instructions": alert_of(drift_event(body, {**body, "instructions": after})),
        "rewrite": alert_of(drift_event(body, {**body, "instructions": long_instructions(verb="Never")})),
        "created": alert_of(drift_event(None, body, change="created")),
        "deleted": alert_of(drift_event(body, None, change="deleted")),
        "digest": alert_of(*[drift_event({"model": "a"}, {"model": f"b{n}"}, name=f"Bot {n}", object_id=f"asst_{n}")
                             for n in range(300)]),
        "notice": notice_alert(),
    }


def test_slack_messages_fit_block_kit_for_every_alert(drift_event, alert_of, notice_alert, long_instructions):
    from watcher.alerts.channels import slack

    for case, alert in _cases(drift_event, alert_of, notice_alert, long_instructions).items():
        message = slack.message(alert)
        jsonschema.validate(message, schema("slack_message"))
        assert len(json.dumps(message)) < 16 * 1024, case


def test_teams_cards_fit_the_adaptive_card_schema_and_the_size_limit(drift_event, alert_of, notice_alert,
                                                                     long_instructions):
    from watcher.alerts.channels import teams

    for case, alert in _cases(drift_event, alert_of, notice_alert, long_instructions).items():
        data = teams.payload_bytes(alert)
        jsonschema.validate(json.loads(data), schema("teams_message"))
        assert len(data) <= teams.PAYLOAD_LIMIT < 28 * 1000, case


def test_slack_shows_the_edited_lines_of_256k_instructions_and_the_command_for_the_rest(
        drift_event, alert_of, long_instructions):
    from watcher.alerts.channels import slack

    before = long_instructions()
    after = before.replace("00050 Always", "00050 Never")
    message = slack.message(alert_of(drift_event({"instructions": before}, {"instructions": after})))
    text = json.dumps(message, ensure_ascii=False)
    assert "-00050 Always answer" in text and "+00050 Never answer" in text
    assert "assistant-watcher diff asst_abc123 --target prod --from 3 --to 4" in text
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    assert "*Who*\nunknown (out of band)" in fields and "*Severity*\nhigh" in fields


def test_remote_text_cannot_mention_link_or_format_in_slack_or_teams(drift_event, alert_of):
    from watcher.alerts.channels import slack, teams

    hostile = "<!channel> <https://evil.example|click> *bold* [x](javascript:alert(1)) ```"
    alert = alert_of(drift_event({"model": "a", "name": hostile}, {"model": "b```\n<!here>", "name": hostile},
                                 name=hostile))
    payload = slack.message(alert)
    assert payload["blocks"][0]["text"]["type"] == "plain_text"  # shown as it is, never parsed
    payload["blocks"] = payload["blocks"][1:]
    message = json.dumps(payload, ensure_ascii=False)  # the text Slack reads as mrkdwn
    assert "<!channel>" not in message and "<!here>" not in message and "<https://" not in message
    assert "&lt;!channel&gt;" in message
    code = [b["text"]["text"] for b in slack.message(alert)["blocks"] if b["type"] == "section" and "text" in b
            and b["text"]["text"].startswith("```")]
    assert code and all(c.count("```") == 2 for c in code)  # a remote ``` cannot close the code block
    card = json.loads(teams.payload_bytes(alert))["attachments"][0]["content"]
    assert {element["type"] for element in card["body"]} <= {"RichTextBlock", "Container"}  # no Markdown anywhere
    assert hostile in json.dumps(card, ensure_ascii=False)


# --- configuration and secrets ---------------------------------------------------------------------


@pytest.mark.parametrize("channel, expected", [
    ('name = "s"\ntype = "slack"\nurl = "https://hooks.slack.com/services/X"',
     "channels[0] (s): a slack webhook URL is a secret: give url_env or url_file, not url"),
    ('name = "w"\ntype = "webhook"\nurl = "https://siem.example.com/h"',
     "channels[0] (w): a webhook channel needs exactly one of secret_env or secret_file (a whsec_ secret)"),
    ('name = "m"\ntype = "email"\nto = ["a@example.com"]', "an email channel needs an [smtp] section to send through"),
    ('name = "watchlist"\ntype = "teams"\nurl_env = "X"', "channel name 'watchlist' is reserved"),
    ('name = "t"\ntype = "teams"\nurl_env = "X"\nto = ["a@example.com"]',
     "channels[0] (t): `to` is not a key of a teams channel"),
    ('name = "t"\ntype = "pager"', "channels[0] (t).type: 'pager' is not one of"),
])
def test_a_bad_channel_is_one_line_naming_it(channel, expected):
    from watcher.config.model import parse_config
    from watcher.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(f'[[targets]]\nname = "prod"\n\n[[channels]]\n{channel}\n', source="config.toml")
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_route_or_default_naming_no_channel_is_a_config_error():
    from watcher.config.model import parse_config
    from watcher.errors import ConfigError

    with pytest.raises(ConfigError, match=r"alerts.routes\[0\].channels: no channel named 'ops-slak'"):
        parse_config('[[targets]]\nname = "p"\n[[alerts.routes]]\nmatch = { kind = "agents" }\n'
                     'channels = ["ops-slak"]\n[[channels]]\nname = "ops-slack"\ntype = "slack"\nurl_env = "X"\n')


def test_a_missing_or_malformed_channel_secret_stops_snapshot_before_polling(sandbox, receiver, channels_config, cli,
                                                                             monkeypatch):
    config = channels_config(sandbox, webhook=receiver(), secret="not-a-whsec-secret")
    result = cli(config, "snapshot")
    assert result.exit_code == 2 and "not-a-whsec-secret" not in result.stderr
    assert result.stderr.strip() == ("config error: channels.siem: the secret in $WATCHER_TEST_WEBHOOK_SECRET is not "
                                     "a whsec_ secret (whsec_ and at least 24 bytes in base64)")
    monkeypatch.delenv(SECRET_ENV)
    result = cli(config, "snapshot")
    assert result.exit_code == 2 and "environment variable WATCHER_TEST_WEBHOOK_SECRET is not set" in result.stderr


def test_the_slack_url_and_the_webhook_secret_are_in_no_output_row_or_log(sandbox, receiver, channels_config, cli,
                                                                          caplog, tmp_path):
    hook, slack = receiver(), receiver(secret=None)
    slack.default = 404
    config = channels_config(sandbox, webhook=hook, slack=slack)
    cli(config, "-v", "snapshot")
    edit_first(sandbox, model="gpt-secret")
    snapshot = cli(config, "-v", "snapshot")
    listing = cli(config, "outbox", "--json")
    assert "HTTP 404" in listing.stdout
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("watcher.db*")).decode("utf-8", "replace")
    for text in (snapshot.output, listing.output, caplog.text, stored):
        assert "sEcReTsLaCkToKeN" not in text and WEBHOOK_SECRET.removeprefix("whsec_") not in text
