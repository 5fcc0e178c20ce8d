"""Facts about the machine that belong beside every benchmark figure and health report."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# the instruction sets that decide int8 inference speed (XNNPACK's kernels): on x86 the
# VNNI dot products (an AVX2-only host runs the same model about 5x slower), on ARM the
# dot product (asimddp: Pi 5's A76 has it, Pi 4's A72 does not) and i8mm
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
              "asimd", "asimddp", "i8mm", "sve")


def simd(cpuinfo: str | None = None) -> list[str]:
    """The CPU's SIMD that matters to inference, as /proc/cpuinfo names it ('flags' on
    x86, 'Features' on ARM); [] where it says nothing."""
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    have: set[str] = set()
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            have |= set(value.split())
    return [f for f in SIMD_FLAGS if f in have]


def pi_model() -> str | None:
    """'Raspberry Pi 5 Model B Rev 1.0' on a Pi, None elsewhere."""
    model = _read("/proc/device-tree/model")
    return model if model and "Raspberry Pi" in model else None


def temperature_c() -> float | None:
    raw = _read("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(raw) / 1000.0, 1) if raw else None
    except ValueError:
        return None


def throttled() -> str | None:
    """``vcgencmd get_throttled`` (0x0 is healthy); None where vcgencmd is absent."""
    if not shutil.which("vcgencmd"):
        return None
    try:
        out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.split("=", 1)[-1] or None


def thermal() -> dict:
    return {"temperature_c": temperature_c(), "throttled": throttled()}


def versions() -> dict:
    import cv2
    import numpy as np

    from fer_pi import __version__

    out = {"fer_pi": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "opencv": cv2.__version__}
    for mod in ("ai_edge_litert", "tflite_runtime", "pygame"):
        if mod in sys.modules or _importable(mod):
            try:
                from importlib.metadata import version

                dist = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime",
                        "pygame": "pygame-ce"}[mod]
                out[mod] = version(dist)
            except Exception:  # noqa: BLE001 - a version string is optional
                out[mod] = "unknown"
    return out


def _importable(mod: str) -> bool:
    from importlib.util import find_spec

    return find_spec(mod) is not None


def describe() -> dict:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "simd": simd(),
        "pi_model": pi_model(),
        "os": platform.platform(),
        "versions": versions(),
    }
