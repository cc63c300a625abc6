"""/metrics parsed with prometheus_client's own parser, /healthz, and the `serve` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from config_text import target_toml
from conftest import HTTP_TOKEN_ENV, SANDBOX_KEY_ENV, http_request
from prometheus_client.parser import text_string_to_metric_families

CONTRACT = {
    "assistant_watcher_polls": "counter",
    "assistant_watcher_poll_duration_seconds": "gauge",
    "assistant_watcher_objects": "gauge",
    "assistant_watcher_drift_events": "counter",
    "assistant_watcher_last_complete_poll_timestamp_seconds": "gauge",
    "assistant_watcher_deliveries_pending": "gauge",
    "assistant_watcher_deliveries": "counter",
}


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of every assistant_watcher sample, parsed by prometheus_client."""
    answer = http_request("GET", base + "/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        if family.name in CONTRACT:
            assert family.type == CONTRACT[family.name], family.name
        for sample in family.samples:
            if sample.name.startswith("assistant_watcher_"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


# For what does not depend on the database behind the server.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def labels(**values) -> tuple:
    return tuple(sorted(values.items()))


@pytest.fixture
def config(write_config, sandbox, store_url):
    return write_config(sandbox, store_url)


@pytest.fixture
def drifted(config, cli, sandbox):
    """Two snapshots around one out-of-band model change."""
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], model="gpt-4.1-nano")
    assert cli(config, "snapshot", "--no-email").exit_code == 0


def test_metrics_have_the_contract_names_and_the_record_figures(drifted, config, web_server):
    samples = scrape(web_server(config))
    for kind in ("assistants", "agents"):
        assert samples[("assistant_watcher_polls_total", labels(target="prod", kind=kind, status="complete"))] == 2
        assert samples[("assistant_watcher_objects", labels(target="prod", kind=kind))] == 5
        assert samples[("assistant_watcher_poll_duration_seconds", labels(target="prod", kind=kind))] >= 0
        finished = samples[("assistant_watcher_last_complete_poll_timestamp_seconds", labels(target="prod", kind=kind))]
        assert abs(finished - time.time()) < 600
    assert samples[("assistant_watcher_drift_events_total",
                    labels(target="prod", kind="assistants", change="modified", severity="high"))] == 1


def test_a_failed_poll_is_counted_by_status(drifted, config, cli, sandbox, web_server):
    sandbox.fail_next(10, status=502)
    assert cli(config, "snapshot", "--no-email").exit_code == 1
    samples = scrape(web_server(config))
    assert samples[("assistant_watcher_polls_total", labels(target="prod", kind="assistants", status="failed"))] == 1


def test_processes_sharing_a_database_export_the_same_counts(drifted, config, cli, sandbox, web_server):
    """Counts come from the database: a poll made by another process is counted by every server."""
    first, second = web_server(config), web_server(config)
    env = {**os.environ, SANDBOX_KEY_ENV: sandbox.api_key}
    subprocess.run([sys.executable, "-m", "watcher", "--config", config, "snapshot", "--no-email"], env=env,
                   check=True, capture_output=True, timeout=120)
    one, other = scrape(first), scrape(second)
    polls = ("assistant_watcher_polls_total", labels(target="prod", kind="agents", status="complete"))
    assert one[polls] == other[polls] == 3
    counts = {key: value for key, value in one.items() if "duration" not in key[0]}
    assert counts == {key: value for key, value in other.items() if "duration" not in key[0]}


def test_deliveries_are_counted_per_channel(drifted, config, web_server, engine, queue_mail, smtp_server,
                                            mail_settings):
    from watcher.alerts import outbox

    queue_mail(engine, 3)
    base = web_server(config)
    channel = labels(channel="watchlist")  # the [alerts] watchlist is the email channel of that name
    assert scrape(base)[("assistant_watcher_deliveries_pending", channel)] == 3
    server = smtp_server(defer=("ops@example.com",))
    outbox.deliver_pending(engine, mail_settings(server, str(engine.url)))  # refused for now: 3 failed attempts
    samples = scrape(base)
    assert samples[("assistant_watcher_deliveries_total", labels(channel="watchlist", result="failed"))] == 3
    assert samples[("assistant_watcher_deliveries_pending", channel)] == 3
    server.defer.clear()
    outbox.deliver_pending(engine, mail_settings(server, str(engine.url)), now=_later())
    samples = scrape(base)
    assert samples[("assistant_watcher_deliveries_total", labels(channel="watchlist", result="sent"))] == 3
    assert samples[("assistant_watcher_deliveries_pending", channel)] == 0


def _later():
    from datetime import timedelta

    from watcher.times import utcnow

    return utcnow() + timedelta(hours=2)


# --- /healthz --------------------------------------------------------------------------------------


def test_healthz_is_200_when_every_target_and_kind_polled_recently(drifted, config, web_server):
    answer = http_request("GET", web_server(config) + "/healthz")
    assert answer.status == 200
    assert answer.json() == {"status": "ok", "checked": 2}


def test_healthz_is_503_naming_a_target_never_polled(drifted, write_config, sandbox, store_url, web_server):
    config = write_config(sandbox, store_url, extra=target_toml(sandbox.url, name="staging", kinds=["agents"]))
    answer = http_request("GET", web_server(config) + "/healthz")
    assert answer.status == 503
    assert answer.json()["error"] == "stale: staging/agents"
    assert answer.json()["stale"] == [{"target": "staging", "kind": "agents", "reason": "no complete poll yet",
                                       "last_complete_at": None}]


def test_healthz_is_503_for_a_target_that_serves_no_kind(drifted, write_config, sandbox, store_url, cli, web_server):
    root = sandbox.url.removesuffix("/v1")  # a base_url without /v1: every kind answers 404
    config = write_config(sandbox, store_url, extra=target_toml(root, name="typo", kinds=["agents"]))
    cli(config, "snapshot", "--no-email", "--target", "typo")
    answer = http_request("GET", web_server(config) + "/healthz")
    assert answer.status == 503
    [row] = answer.json()["stale"]
    assert (row["target"], row["kind"]) == ("typo", "agents") and "serves no kind at all" in row["reason"]


@SQLITE_ONLY
def test_healthz_turns_503_three_intervals_after_the_last_complete_poll(write_config, sandbox, store_url, cli,
                                                                         web_server):
    config = write_config(sandbox, store_url, target_extra='interval = "1s"\nkinds = ["assistants"]')
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    base = web_server(config)
    sandbox.fail_next(1000, status=502)
    deadline = time.monotonic() + 15
    answer = http_request("GET", base + "/healthz")
    while answer.status == 200 and time.monotonic() < deadline:
        cli(config, "snapshot", "--no-email")  # failing polls keep coming; none is complete
        time.sleep(0.5)
        answer = http_request("GET", base + "/healthz")
    assert answer.status == 503
    [stale] = answer.json()["stale"]
    assert (stale["target"], stale["kind"]) == ("prod", "assistants")
    assert stale["reason"].startswith("no complete poll for ")


def test_a_kind_the_endpoint_does_not_serve_is_not_stale(write_config, sandbox, store_url, cli, web_server):
    sandbox.retire("agents")
    config = write_config(sandbox, store_url)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    assert http_request("GET", web_server(config) + "/healthz").status == 200


# --- serve -----------------------------------------------------------------------------------------


def start_serve(config: str, sandbox, *extra: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, SANDBOX_KEY_ENV: sandbox.api_key, HTTP_TOKEN_ENV: "serve-token-0123456789abcdef",
           "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "watcher", "--config", config, "serve", *extra], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, process.stderr.readline()

@SQLITE_ONLY

def test_serve_answers_until_sigterm(drifted, config, sandbox):
    process, line = start_serve(config, sandbox, "--listen", "127.0.0.1:0")
    try:
        base = line.split()[1].rstrip("/")
        assert base.startswith("http://127.0.0.1:")
        assert http_request("GET", base + "/healthz").status == 200
        assert len(http_request("GET", base + "/api/v1/events").json()) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

@SQLITE_ONLY

def test_serve_on_a_busy_port_exits_1_with_one_line(drifted, config, sandbox):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        process, line = start_serve(config, sandbox, "--listen", f"127.0.0.1:{port}")
        assert process.wait(30) == 1  # not a config error: systemd restarts it, and it listens once the port is free
    assert line.strip() == f"error: http.listen: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert process.stderr.read() == ""  # one line, no traceback

@SQLITE_ONLY

def test_serve_on_a_public_address_without_a_token_exits_2(drifted, config, sandbox):
    process, line = start_serve(config, sandbox, "--listen", "0.0.0.0:0")
    assert process.wait(30) == 2
    assert line.startswith("config error: --listen: listen '0.0.0.0:0' is reachable from other machines")


def test_metrics_name_the_process_that_did_each_last_poll(drifted, config, web_server):
    from watcher.poll.outcome import WORKER

    samples = scrape(web_server(config))
    for kind in ("assistants", "agents"):
        assert samples[("assistant_watcher_last_poll_worker", labels(target="prod", kind=kind, worker=WORKER))] == 1
    assert samples[("assistant_watcher_target_enabled", labels(target="prod"))] == 1
