"""The README's walkthrough works as written: its shell blocks, run in order against a sandbox."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.sandbox import Sandbox

README = Path(__file__).parent.parent / "README.md"


def walkthrough_blocks() -> list[str]:
    """The sh blocks of "Record a history by hand", after the one that starts the sandbox."""
    section = README.read_text().split("## Record a history by hand")[1].split("\n## ")[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [b for b in blocks if "assistant-watcher sandbox" not in b]


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(tmp_path):
    bin_dir = str(Path(sys.executable).parent) + "/"
    with Sandbox(assistants=5, agents=5) as sandbox:
        port = sandbox.url.rsplit(":", 1)[1].split("/")[0]
        script = "set -euo pipefail\n" + "\n".join(walkthrough_blocks())
        script = script.replace("8765", port).replace(".venv/bin/", bin_dir)
        result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "edited: " in out and "baseline recorded" in out
    assert "modified" in out and "+Always offer a refund." in out
    assert "dry run, nothing sent; restore would change version 2:" in out
