"""`run` with [http]: the daemon serves the web beside its polls, and stops both on SIGTERM."""

from __future__ import annotations

import signal
import socket

import pytest
from conftest import free_port, http_request
from test_daemon import DaemonProcess, wait_until, write_daemon_config

from watcher.demo import SmtpSink
from watcher.sandbox.server import Sandbox

TOKEN = "daemon-web-token-0123456789"


@pytest.fixture
def setup(tmp_path):
    with Sandbox(api_key="sk-daemon-test-0123456789abcdef") as api, SmtpSink() as smtp:
        yield tmp_path, api, smtp


def with_http(path, listen: str):
    path.write_text(path.read_text() + f'\n[http]\nlisten = "{listen}"\ntoken_env = "WATCHER_TEST_WEB_TOKEN"\n')
    return path


def test_the_daemon_serves_its_record_and_stops_with_it(setup):
    tmp_path, api, smtp = setup
    port = free_port()
    config = with_http(write_daemon_config(tmp_path / "config.toml", api, smtp.port), f"127.0.0.1:{port}")
    daemon = DaemonProcess(config, env={"WATCHER_TEST_WEB_TOKEN": TOKEN})
    base = f"http://127.0.0.1:{port}"
    try:
        assert daemon.wait_log(f"serving the web UI, API and metrics on {base}"), daemon.log()
        daemon.wait_baseline()

        def polls():
            return sum(p["status"] == "complete" for p in http_request("GET", base + "/api/v1/status").json()["polls"])

        assert wait_until(lambda: polls() == 2, 30)
        assert http_request("GET", base + "/healthz").status == 200
        metric = "assistant_watcher_polls_total{kind=\"agents\",status=\"complete\",target=\"prod\"}"
        count = lambda: next((float(line.split()[-1]) for line in http_request("GET", base + "/metrics")  # noqa: E731
                              .text.splitlines() if line.startswith(metric)), 0.0)
        first = count()
        assert wait_until(lambda: count() > first, 30), "the scrape follows the daemon's polls"
        daemon.send(signal.SIGHUP)
        assert daemon.wait_log("reloaded"), daemon.log()
        assert http_request("GET", base + "/healthz").status == 200
        code, _seconds = daemon.stop()
        assert code == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        daemon.kill()
    assert TOKEN not in daemon.log()


def test_a_busy_http_port_stops_the_daemon_with_exit_1_for_systemd_to_try_again(setup):
    tmp_path, api, smtp = setup
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        config = with_http(write_daemon_config(tmp_path / "config.toml", api, smtp.port), f"127.0.0.1:{port}")
        daemon = DaemonProcess(config, env={"WATCHER_TEST_WEB_TOKEN": TOKEN})
        try:
            assert daemon.process.wait(30) == 1  # restarted by systemd (RestartPreventExitStatus=2 is for config)
        finally:
            daemon.kill()
    assert f"error: http.listen: cannot listen on 127.0.0.1:{port}: Address already in use" in daemon.log()
    assert "Traceback" not in daemon.log()


def test_a_missing_http_token_stops_the_daemon_with_exit_2(setup):
    tmp_path, api, smtp = setup
    config = with_http(write_daemon_config(tmp_path / "config.toml", api, smtp.port), f"127.0.0.1:{free_port()}")
    daemon = DaemonProcess(config)
    try:
        assert daemon.process.wait(30) == 2
    finally:
        daemon.kill()
    assert "config error: http: environment variable WATCHER_TEST_WEB_TOKEN is not set" in daemon.log()
