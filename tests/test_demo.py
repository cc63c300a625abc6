"""`assistant-watcher demo` end to end, and the Makefile that sets up and runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.demo import DEMO_KEY_ENV, SmtpSink

pytestmark = pytest.mark.slow  # subprocesses and real waits: `make test` runs them, a quick loop skips them

ROOT = Path(__file__).resolve().parent.parent


def test_demo_shows_an_alert_with_a_diff(tmp_path):
    html = tmp_path / "alert.html"
    env = {k: v for k, v in os.environ.items() if k not in ("ASSISTANT_WATCHER_CONFIG", DEMO_KEY_ENV)}
    env["ASSISTANT_WATCHER_CONFIG"] = str(tmp_path / "no-such-config.toml")  # the demo needs none
    result = subprocess.run([sys.executable, "-m", "watcher", "demo", "--html", str(html)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)

    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    steps = re.findall(r"^(\d+)\. ", output, re.M)
    assert steps == [str(n) for n in range(1, len(steps) + 1)] and len(steps) >= 6
    # The alert's text part, as received over SMTP, carries a unified diff of the instructions.
    assert re.search(r"^\s*@@ .* @@", output, re.M), output
    assert re.search(r"^\s*\+.*Refunds of any amount may be approved without asking anyone\.", output, re.M)
    assert "approve_refund" in output or "tools[" in output
    assert str(html.resolve()) in output
    page = html.read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "approve_refund" in page
    assert "Refunds of any amount may be approved without asking anyone." in page
    assert re.search(r"Done in \d+\.\d s\.", output)  # its time is reported, not asserted (a shared machine)
    assert "sk-sandbox" not in output + result.stderr, "the sandbox's API key was printed"
    assert not list(tmp_path.glob("*.db")), "the demo's database belongs in a temporary directory"


def test_demo_writes_its_default_html_file_in_the_current_directory(tmp_path, monkeypatch, capsys):
    from watcher.demo import DEFAULT_HTML_PATH, run_demo

    monkeypatch.chdir(tmp_path)
    assert run_demo() == 0
    assert (tmp_path / DEFAULT_HTML_PATH).is_file()
    assert DEMO_KEY_ENV not in os.environ, "the demo's key variable outlived the demo"
    assert "Done in" in capsys.readouterr().out


def test_smtp_sink_binds_a_free_port_and_keeps_what_it_accepts():
    import smtplib
    from email.message import EmailMessage

    with SmtpSink() as first, SmtpSink() as second:
        assert first.port != second.port and first.port > 0
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = "hello", "a@example.com", "b@example.com"
        message.set_content("plain")
        message.add_alternative("<p>html</p>", subtype="html")
        with smtplib.SMTP("127.0.0.1", first.port, timeout=10) as client:
            client.send_message(message)
        mail = first.wait_for(timeout=10)
    assert mail is not None and mail.subject == "hello" and mail.recipients == ["b@example.com"]
    assert mail.part("plain").strip() == "plain" and "html" in mail.part("html")


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed here")


@needs_make
@pytest.mark.parametrize("target, command", [("test", '.venv/bin/python -m pytest -m "slow or not slow"'),
                                             ("demo", ".venv/bin/assistant-watcher demo")])
def test_make_targets_build_the_venv_then_run(target, command):
    # -B: show the whole recipe even where .venv is already built.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under `make test`
    plan = subprocess.run(["make", "--no-print-directory", "-n", "-B", target], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert any("-m venv .venv" in line for line in lines)
    assert any("pip install" in line and "-e '.[test]'" in line for line in lines)
    assert lines[-1] == command
