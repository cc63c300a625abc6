"""On a terminal the CLI shows progress and colour; piped, it prints plain text."""

import os
import pty
import select
import subprocess
import sys

import pytest

from watcher.sandbox import Sandbox

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
