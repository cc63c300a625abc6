"""At least once, and a duplicate only where it must be: deliveries across kill -9 of the delivering process.

A receiver that accepted a delivery before the sender recorded it ("accepted" → "marked") gets it
again after a crash in between; nowhere else may a duplicate come from, and nothing may be lost.
The test kills a real `outbox --retry-now` process with SIGKILL at random moments, records what the
receiver had accepted and the database had marked at each kill, and prints the figures.
"""

import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

from conftest import WEBHOOK_SECRET
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_channels import SECRET_ENV

from watcher.alerts import outbox
from watcher.config.model import load_config
from watcher.record.engine import open_engine
from watcher.record.models import Delivery
from watcher.times import utcnow

KILLS = 4


def test_kill_9_during_delivery_loses_nothing_and_duplicates_only_accepted_unmarked(
        sandbox, receiver, write_config, store_url, cli, monkeypatch):
    hook = receiver()
    hook.linger = 0.05  # holds each 2xx that long after counting it: the window a kill can hit
    monkeypatch.setenv(SECRET_ENV, WEBHOOK_SECRET)
    config = write_config(sandbox, store_url, extra=(
        f'[[channels]]\nname = "siem"\ntype = "webhook"\nurl = "{hook.url()}"\nsecret_env = "{SECRET_ENV}"\n'
        'timeout = "5s"\n'))
    cli(config, "snapshot")
    for round_ in range(3):
        for kind in ("assistants", "agents"):
            for obj in sandbox.objects(kind):
                sandbox.edit(kind, obj["id"], metadata={"round": str(round_)})
        cli(config, "snapshot", "--no-email")
    settings = load_config(config)
    engine = open_engine(settings.database.url)
    queued = set(_ids(engine))
    assert len(queued) == 30

    rng = random.Random(12)
    windows: set[str] = set()  # accepted by the receiver but not marked sent, at the moment of a kill
    kills = 0
    while kills < KILLS:
        before = sum(hook.accepted.values())
        process = subprocess.Popen([sys.executable, "-m", "watcher", "--config", config, "outbox", "--retry-now"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = before + rng.randint(1, 4)
        deadline = time.monotonic() + 30
        while sum(hook.accepted.values()) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if process.poll() is not None:
            break  # it finished before we could kill it: nothing left to hit
        time.sleep(rng.uniform(0, 0.06))  # sometimes inside the window, sometimes past it
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        windows |= set(hook.accepted) - set(_ids(engine, state="sent"))

    # The killed processes' claims expire; whoever sweeps next takes them over.
    outbox.deliver_pending(engine, settings, now=utcnow() + timedelta(minutes=5))
    assert set(_ids(engine, state="sent")) == queued
    engine.dispose()

    duplicated = {msg_id: n for msg_id, n in hook.accepted.items() if n > 1}
    lost = queued - set(hook.accepted)
    print(f"\nkill -9 during delivery: {len(queued)} deliveries, {kills} kills, "
          f"{len(windows)} accepted-but-unmarked at a kill, {sum(n - 1 for n in duplicated.values())} duplicates, "
          f"{len(lost)} lost")
    assert not lost
    assert set(duplicated) <= windows, "a duplicate outside the accepted → marked window"
    assert all(n == 2 for n in duplicated.values()) and len(duplicated) <= kills
    assert all(r.verified for r in hook.requests)


def _ids(engine, state: str | None = None) -> list[str]:
    with Session(engine) as session:
        query = select(Delivery.message_id)
        if state:
            query = query.where(Delivery.state == state)
        return list(session.scalars(query))
