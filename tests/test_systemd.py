"""The systemd units: what they must say, and how exposed systemd-analyze finds the service."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
SERVICE = UNITS / "assistant-watcher.service"
SNAPSHOT = UNITS / "assistant-watcher-snapshot.service"
TIMER = UNITS / "assistant-watcher-snapshot.timer"
MAX_EXPOSURE = 1.5
HARDENING = {
    "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "PrivateUsers": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "ProtectProc": "invisible",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "UMask": "0077",
    "DynamicUser": "yes", "StateDirectory": "assistant-watcher", "ConfigurationDirectory": "assistant-watcher",
}


def directives(path: Path) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, by key, in order (systemd allows a key several times)."""
    found: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def exposure(unit: Path) -> float:
    """The "Overall exposure level" systemd-analyze gives a unit file, offline."""
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout + result.stderr)
    assert match, f"no exposure level in systemd-analyze's output:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1))


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed here (it comes with systemd); the exposure score is not checked")


@pytest.mark.parametrize("unit", [SERVICE, SNAPSHOT], ids=lambda p: p.name)
def test_service_units_are_hardened(unit):
    found = directives(unit)
    for key, value in HARDENING.items():
        assert found.get(key, [None])[0] == value, f"{unit.name}: {key}={value} expected, got {found.get(key)}"
    assert found["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    assert "IPAddressDeny" not in found, "outbound HTTPS and SMTP need every address"
    credentials = [value.split(":", 1)[0] for value in found["LoadCredential"]]
    assert credentials == ["openai-api-key", "smtp-password"]


def test_only_the_unit_without_metrics_hides_proc_stat():
    """ProcSubset=pid hides /proc/stat, which prometheus_client's process_* series read: the daemon serves them."""
    assert "ProcSubset" not in directives(SERVICE)
    assert directives(SNAPSHOT)["ProcSubset"] == ["pid"]


@needs_systemd_analyze
@pytest.mark.parametrize("unit", [SERVICE, SNAPSHOT], ids=lambda p: p.name)
def test_systemd_analyze_exposure_is_at_most_1_5(unit):
    assert exposure(unit) <= MAX_EXPOSURE


def test_daemon_unit_is_type_notify_with_watchdog_and_restart():
    found = directives(SERVICE)
    assert found["Type"] == ["notify"] and found["NotifyAccess"] == ["main"]
    assert found["WatchdogSec"] and found["Restart"] == ["on-failure"]
    assert found["RestartPreventExitStatus"] == ["2"], "a bad config must not restart in a loop"
    exec_start = found["ExecStart"][0]
    assert exec_start.startswith("/usr/local/bin/assistant-watcher ") and exec_start.endswith(" run")
    assert "--config /etc/assistant-watcher/config.toml" in exec_start
    assert found["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # The daemon stops within 10 s of SIGTERM; systemd must wait at least that long.
    assert found["TimeoutStopSec"] == ["15s"]


def test_snapshot_unit_and_timer():
    service, timer = directives(SNAPSHOT), directives(TIMER)
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"][0].endswith(" snapshot")
    assert timer["Persistent"] == ["true"]
    assert timer["RandomizedDelaySec"] and (timer.get("OnCalendar") or timer.get("OnUnitActiveSec"))
    assert timer["WantedBy"] == ["timers.target"]


def test_install_guide_covers_every_step():
    guide = (UNITS.parent / "README.md").read_text().split("## Install as a service", 1)[1]
    for step in ("/opt/assistant-watcher", "/usr/local/bin/assistant-watcher", "config.toml",
                 'api_key_file = "openai-api-key"', "systemd-creds", "LoadCredential", "systemctl enable --now",
                 "systemctl status", "journalctl -u assistant-watcher", "assistant-watcher-snapshot.timer"):
        assert step in guide, f"README.md's Install as a service does not mention {step}"


def test_the_config_the_install_guide_writes_loads(tmp_path, monkeypatch):
    from watcher.config.model import parse_config

    guide = (UNITS.parent / "README.md").read_text().split("## Install as a service", 1)[1]
    written = guide.split("cat > /etc/assistant-watcher/config.toml <<'TOML'\n", 1)[1].split("\nTOML\n", 1)[0]
    for name in ("openai-api-key", "smtp-password"):
        (tmp_path / name).write_text(f"secret-{name}\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = parse_config(written)
    assert config.database.url == "sqlite:////var/lib/assistant-watcher/watcher.db"
    assert config.targets[0].api_key() == "secret-openai-api-key"
    assert config.smtp.password() == "secret-smtp-password"
