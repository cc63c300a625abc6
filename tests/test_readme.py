"""The README's walkthrough works as written: its shell blocks, run in order against a sandbox."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.sandbox.server import Sandbox

README = Path(__file__).parent.parent / "README.md"


def walkthrough_blocks(heading: str = "Record a history by hand") -> list[str]:
    """The sh blocks of a README section, but the one that starts the sandbox."""
    section = README.read_text().split(f"## {heading}")[1].split("\n## ")[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [b for b in blocks if "assistant-watcher sandbox" not in b]


def run_blocks(blocks: list[str], sandbox: Sandbox, cwd) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent) + "/"
    port = sandbox.url.rsplit(":", 1)[1].split("/")[0]
    script = ("set -euo pipefail\n" + "\n".join(blocks)).replace("8765", port).replace(".venv/bin/", bin_dir)
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(tmp_path):
    with Sandbox(assistants=5, agents=5) as sandbox:
        result = run_blocks(walkthrough_blocks(), sandbox, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "edited: " in out and "baseline recorded" in out
    assert "modified" in out and "+Always offer a refund." in out
    assert "dry run, nothing sent; restore would change version 2:" in out


@pytest.mark.slow
def test_who_changed_it_runs_as_written_and_names_who_lowered_the_rate_limit(tmp_path):
    with Sandbox(assistants=5, agents=5) as sandbox:
        result = run_blocks(walkthrough_blocks()[:1] + walkthrough_blocks("Who changed it"), sandbox, tmp_path)
        entry = sandbox.audit_log()[0]
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "org/project_rate_limits" in line and "1→2" in line]
    assert "user priya.nair@acme.example from 198.51.100.23 at " in line
    assert entry["type"] == "rate_limit.updated" and "sk-admin-sandbox" not in result.stdout + result.stderr
