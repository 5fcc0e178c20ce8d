"""The Pi's platform: every dependency of the device install resolves to binary wheels
for 64-bit Raspberry Pi OS (aarch64, glibc 2.36) on Bookworm's Python 3.11 and Trixie's
Python 3.13. A dependency that would need a compiler on the Pi fails here, by name.

Needs the package index; skips where pip cannot reach one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# pip matches manylinux tags exactly: list every glibc up to Bookworm's 2.36, or it
# silently picks old wheels (ai-edge-litert 1.4.0 with manylinux_2_17 alone)
PLATFORMS = [f"manylinux_2_{n}_aarch64" for n in range(36, 16, -1)] + ["manylinux2014_aarch64"]
NETWORK_ERRORS = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name",
                  "Network is unreachable", "ConnectionError", "ProxyError", "ReadTimeoutError",
                  "ConnectTimeoutError", "IncompleteRead", "incomplete-download",
                  "Connection broken", "Connection interrupted")


@pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file(), reason="not a source checkout")
@pytest.mark.parametrize("python", ["3.11", "3.13"])
def test_device_install_resolves_to_aarch64_wheels(python, tmp_path):
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
           "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
           "--target", str(tmp_path / "t"), "--report", str(report), "--quiet"]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    for _ in range(2):  # a dropped connection is tried once more before the test skips
        proc = subprocess.run([*cmd, str(ROOT)], capture_output=True, text=True, timeout=600)
        if proc.returncode == 0 or not any(e in proc.stderr for e in NETWORK_ERRORS):
            break
    else:
        pytest.skip("package index unreachable: " + proc.stderr.strip().splitlines()[-1][:200])
    missing = [line for line in proc.stderr.splitlines() if "No matching distribution" in line]
    assert proc.returncode == 0, "\n".join(missing) or proc.stderr[-2000:]
    installs = json.loads(report.read_text())["install"]
    resolved = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    print(f"aarch64 / Python {python}: {json.dumps(resolved, sort_keys=True)}")
    for name in ("ai-edge-litert", "opencv-python-headless", "pygame-ce", "numpy"):
        assert name in resolved, f"{name} did not resolve for aarch64 Python {python}"
    assert int(resolved["opencv-python-headless"].split(".")[0]) == 4
    assert int(resolved["ai-edge-litert"].split(".")[0]) >= 2, "an old wheel was picked"
    for item in installs:
        url = item["download_info"]["url"]
        if item["metadata"]["name"].lower() != "fer-pi":
            assert url.endswith(".whl") and ("aarch64" in url or "none-any" in url), url
