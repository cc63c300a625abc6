"""The outbox: what is waiting, sent and dead (`outbox`), making it due again (`--retry-now`), and
`test-email`. Listing reads the record in plain SQL and, to preview a pending delivery, the channels
and email routes from the config file alone; the config is read whole only when something is sent."""

from __future__ import annotations

import click

from watcher.cli.app import App, pass_app
from watcher.cli.output import echo_table, print_json
from watcher.config.routing import email_recipients
from watcher.display import counted, header_text, printable
from watcher.record import documents, overview_sql
from watcher.record.schema import DeliveryState
from watcher.times import iso, parse_time


@click.command()
@click.option("--limit", default=50, show_default=True, help="How many recently sent or dead deliveries to show.")
@click.option("--retry-now", is_flag=True,
              help="After an outage is fixed: make every pending delivery due now, enable disabled channels "
                   "again, and deliver.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def outbox(app: App, limit: int, retry_now: bool, as_json: bool) -> None:
    """Deliveries: pending (with their next attempt), recently sent, and dead, per channel."""
    if retry_now:
        _retry_now(app, err=as_json)
    with app.database() as db:
        rows = overview_sql.outbox_rows(db, limit)
        held = overview_sql.held_channels(db)
    unsent = [r.channel for r in rows if r.recipients is None and r.alert is not None]  # what needs a preview
    types = app.channel_types() if unsent else {}
    routing = app.email_routing() if any(types.get(channel) == "email" for channel in unsent) else {}
    documents_ = [documents.outbox_document(r, **_preview(r, types, routing)) for r in rows]
    if as_json:
        print_json(documents_)
        return
    if not rows:
        click.echo("outbox is empty")
        return
    table = [[str(d["id"]), _delivery_state(d, held), str(d["attempts"]), d["channel"], _delivery_time(d),
              ", ".join(d["recipients"]), header_text(d["subject"] or "", 70), header_text(d["last_error"] or "", 60)]
             for d in documents_]
    echo_table(["id", "state", "tries", "channel", "sent or next try", "to", "subject", "last error"], table)


def _preview(row, types: dict[str, str], routing: dict) -> dict:
    """What the delivery would carry if sent now, as `watcher.alerts.outbox.preview` says: its alert's title,
    and on an email channel the recipients the config gives it today (a sent one shows what it carried).

    `types`: channel → type; `routing`: what `watcher.config.routing.email_recipients` takes.
    """
    if row.recipients is not None or row.alert is None:
        return {"subject": row.alert.title if row.alert else None, "recipients": None}
    if types.get(row.channel) != "email":
        return {"subject": row.alert.title, "recipients": []}  # webhooks and chats have no recipients
    return {"subject": row.alert.title, "recipients": email_recipients(row.channel, row.alert.routing or [], **routing)}


def _retry_now(app: App, *, err: bool) -> None:
    from watcher.alerts import outbox as box  # SQLAlchemy and the channels: only when something is sent

    waiting, enabled = box.retry_now(app.engine)
    for name in enabled:
        click.echo(f"channel {name} enabled again", err=err)
    click.echo(f"{counted(waiting, 'pending delivery', 'pending deliveries')} made due now", err=err)
    line = box.deliver_pending(app.engine, app.config).summary()
    if line:
        click.echo(printable(line), err=err)


def _delivery_state(document: dict, held: set[str]) -> str:
    if document["state"] != DeliveryState.PENDING:
        return document["state"]
    if document["channel"] in held:
        return "held"  # its channel is disabled (410)
    return "failing" if document["last_error"] else DeliveryState.PENDING


def _delivery_time(document: dict) -> str:
    moment = document["sent_at"] or document["next_attempt_at"]
    return iso(parse_time(moment)) if moment else ""


@click.command("test-email")
@click.option("--to", "to", metavar="ADDR", help="Recipient (default: the watchlist).")
@pass_app
def test_email(app: App, to: str | None) -> None:
    """Send one message with the configured SMTP settings and report the server's answer."""
    from watcher.alerts.channels.email import send_test_email  # the templates and SMTP: only test-email

    click.echo(send_test_email(app.config, to))
