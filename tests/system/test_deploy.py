"""The kiosk's unit file and installer, checked with the tools systemd and shellcheck ship."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import need_tool, run_cli

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "fer-pi.service"
INSTALL = ROOT / "deploy" / "install.sh"
pytestmark = pytest.mark.skipif(not UNIT.is_file(), reason="not a source checkout")


@pytest.fixture
def systemd_analyze() -> str:
    return need_tool("systemd-analyze", "Debian: apt install systemd")


needs_analyze = pytest.mark.usefixtures("systemd_analyze")


def _unit_copy(tmp_path: Path) -> Path:
    """The unit as shipped, but ExecStart pointing at a file that exists here:
    verify checks the executable, and /opt/fer-pi exists only on an installed Pi."""
    text = UNIT.read_text()
    assert "ExecStart=/opt/fer-pi/venv/bin/fer-pi " in text
    exe = tmp_path / "fer-pi"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    out = tmp_path / "fer-pi.service"
    out.write_text(text.replace("/opt/fer-pi/venv/bin/fer-pi", str(exe)))
    return out


@needs_analyze
def test_unit_verifies(tmp_path):
    proc = subprocess.run(["systemd-analyze", "verify", str(_unit_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "fer-pi.service" not in proc.stderr, proc.stderr  # no warnings about our unit


@needs_analyze
def test_unit_exposure_is_low(tmp_path):
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true",
                           str(_unit_copy(tmp_path))], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for fer-pi\.service: (\d+\.\d+)", proc.stdout)
    assert m, proc.stdout[-2000:] + proc.stderr
    assert float(m.group(1)) <= 3.5


def test_unit_has_the_appliance_settings():
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StartLimitIntervalSec=0",
                 "RestartPreventExitStatus=2 4",
                 "Environment=SDL_VIDEODRIVER=kmsdrm", "ProtectSystem=strict", "ProtectHome=yes",
                 "NoNewPrivileges=yes", "PrivateTmp=yes", "DevicePolicy=closed",
                 "StateDirectory=fer-pi", "PrivateNetwork=yes"):
        assert line in text, line
    allowed = re.findall(r"^DeviceAllow=(\S+)", text, re.M)
    assert set(allowed) == {"char-video4linux", "char-media", "char-drm", "char-dma_heap",
                            "char-input", "char-cec"}


def test_install_dry_run_lists_every_step_and_changes_nothing(tmp_path):
    watched = [Path("/opt/fer-pi"), Path("/etc/fer-pi"), Path("/etc/systemd/system/fer-pi.service")]
    before = [p.exists() for p in watched]
    proc = subprocess.run(["bash", str(INSTALL), "--dry-run"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("apt-get install", "python3-picamera2", "python3-systemd",
                   "venv --system-site-packages /opt/fer-pi/venv", "pip install",
                   "video,render", "/etc/fer-pi/config.toml", "fer-pi.service",
                   "systemctl enable fer-pi.service", "consoleblank=0", "CAMERA:"):
        assert needle in out, needle
    assert [p.exists() for p in watched] == before


def test_uninstall_dry_run():
    proc = subprocess.run(["bash", str(INSTALL), "--dry-run", "--uninstall", "--purge"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "systemctl disable --now fer-pi.service" in proc.stdout
    assert "rm -rf /etc/fer-pi" in proc.stdout


def test_install_rejects_unknown_options():
    proc = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option --frobnicate" in proc.stderr


def test_shell_scripts_are_shellcheck_clean():
    need_tool("shellcheck", "Debian: apt install shellcheck")
    scripts = [INSTALL, ROOT / ".ci" / "run"]
    proc = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_ci_runs_the_readme_test_command():
    """CI must install what the README's quickstart installs and run the same pytest, so a
    dependency missing from the extras fails CI, not a user (pipi is pip install, retried)."""
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    quick = blocks[1].strip()
    m = re.fullmatch(r"python3 -m venv \.venv && \. \.venv/bin/activate && pip install (\S+) && "
                     r"(python -m pytest)", quick)
    assert m, quick
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"pipi {m.group(1)} && {m.group(2)}\n" in ci
    assert re.search(r"pipi\(\) \{\n(.*\n)*?\s+pip install \"\$@\" && return 0", ci)


def test_shipped_config_is_valid():
    proc = run_cli("--config", str(ROOT / "deploy" / "config.toml"), "--print-config")
    assert proc.returncode == 0, proc.stderr
    assert 'camera = "picam"' in proc.stdout and "detect_every = 3" in proc.stdout


def _unit_with_network_dropin(tmp_path: Path) -> Path:
    """The unit with the network drop-in applied: systemd reads a drop-in as if its lines
    followed the unit's, so appending them is what systemd would see."""
    unit = _unit_copy(tmp_path)
    unit.write_text(unit.read_text() + "\n" + (ROOT / "systemd" / "network.conf").read_text())
    return unit


@needs_analyze
def test_network_dropin_verifies_and_opens_only_ip(tmp_path):
    unit = _unit_with_network_dropin(tmp_path)
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "fer-pi.service" not in proc.stderr, proc.stderr
    sec = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for fer-pi\.service: (\d+\.\d+)", sec.stdout)
    assert m, sec.stdout[-2000:] + sec.stderr
    assert 0.9 < float(m.group(1)) <= 3.5  # more open than without, still low
    assert "AF_INET AF_INET6" in unit.read_text() and "AF_PACKET" not in unit.read_text()


def test_install_adds_the_network_dropin_only_when_asked():
    with_net = subprocess.run(["bash", str(INSTALL), "--dry-run", "--network"],
                              capture_output=True, text=True, timeout=60)
    without = subprocess.run(["bash", str(INSTALL), "--dry-run"], capture_output=True, text=True,
                             timeout=60)
    target = "/etc/systemd/system/fer-pi.service.d/network.conf"
    assert with_net.returncode == 0 and target in with_net.stdout
    assert without.returncode == 0 and target not in without.stdout
