"""On a terminal the CLI shows progress and colour; piped, it prints plain text."""

import os
import pty
import select
import subprocess
import sys

import pytest

from watcher.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # subprocesses and real waits: `make test` runs them, a quick loop skips them


def run_on_terminal(args, env) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return everything it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "watcher", *args], stdout=follower, stderr=follower,
                               stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def terminal_setup(tmp_path, write_config):
    with Sandbox(assistants=300, agents=2) as sandbox:
        config = write_config(sandbox, f"sqlite:///{tmp_path / 'w.db'}")
        env = {**os.environ, "TERM": "xterm"}
        yield sandbox, config, env


def test_snapshot_shows_page_progress_on_a_terminal(terminal_setup):
    _sandbox, config, env = terminal_setup
    output = run_on_terminal(["--config", config, "snapshot", "--no-email"], env)
    assert "prod/assistants: page 3, 300 objects" in output
    assert "prod/assistants: baseline recorded, 300 objects in 4 pages" in output


def test_snapshot_piped_shows_no_progress(terminal_setup, cli):
    _sandbox, config, _env = terminal_setup
    result = cli(config, "snapshot", "--no-email")
    assert "page 3," not in result.output
    assert "\x1b[" not in result.output


def test_diff_is_coloured_on_a_terminal(terminal_setup, cli):
    sandbox, config, env = terminal_setup
    cli(config, "snapshot", "--no-email")
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], model="gpt-4.1-nano")
    cli(config, "snapshot", "--no-email")
    output = run_on_terminal(["--config", config, "diff", victim["id"]], env)
    assert "\x1b[32m" in output and "gpt-4.1-nano" in output  # green for the new value


HOSTILE = "Store\x1b[31mRED\x1b]0;pwned\x07\r\nBcc: x\u202e"


def test_remote_text_cannot_drive_the_terminal(terminal_setup, cli):
    sandbox, config, env = terminal_setup
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], name=HOSTILE)
    cli(config, "snapshot", "--no-email")
    sandbox.edit("assistants", victim["id"], instructions="line one\x1b]0;title\x07\nline two", model="m\x9b2J")
    cli(config, "snapshot", "--no-email")
    for args in (["history", victim["id"]], ["events"], ["diff", victim["id"]], ["show", victim["id"]]):
        output = run_on_terminal(["--config", config, *args], env)
        assert "\x1b]" not in output and "\x07" not in output and "\x9b" not in output, args
        assert "\x1b[31mRED" not in output and "\u202e" not in output, args  # red diff lines are ours
        assert "\\x1b" in output, args  # shown, escaped, not dropped
    [events_row] = [line for line in cli(config, "events").output.splitlines() if "modified" in line]
    assert "Store\\x1b[31mRED" in events_row and "\\x0d\\x0aBcc: x" in events_row  # one row, not split


def test_ctrl_c_during_snapshot_says_what_was_recorded_and_what_was_not(tmp_path, write_config):
    import signal
    import time

    database = tmp_path / "w.db"
    with Sandbox(assistants=5, agents=5) as sandbox:
        config = write_config(sandbox, f"sqlite:///{database}")
        sandbox.set_latency(3.0)  # each request takes 3 s: time to interrupt the agents' poll in flight
        process = subprocess.Popen([sys.executable, "-m", "watcher", "--config", config, "snapshot", "--no-email"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _polled(database, "assistants"):
            time.sleep(0.1)
        time.sleep(0.5)  # the agents' request is in flight now
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert "Aborted!" not in err and "Traceback" not in err
    assert "interrupted: recorded prod/assistants; the poll in progress was not recorded" in err
    assert "prod/assistants: baseline recorded" in out and "prod/agents" not in out
    assert not _polled(database, "agents")


def _polled(database, kind: str) -> bool:
    import sqlite3

    try:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT count(*) FROM polls WHERE kind = ?", (kind,)).fetchone()[0] > 0
    except sqlite3.Error:
        return False
