"""`fer-pi --list-cameras`: which value of `--camera` opens which camera.

On a Pi, /dev/video* holds a dozen nodes that are not cameras OpenCV can open (the
ISP, the codecs, the CSI receiver that only libcamera drives), which is why
`--camera 0` so often fails for a Pi camera. This lists the USB/V4L2 capture
devices by index, and the Pi cameras that picamera2 sees, with the flag for each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# V4L2 drivers on Raspberry Pis that are not a camera for OpenCV: codecs, ISPs, the CSI
# receivers (their frames are raw Bayer that only libcamera turns into pictures)
NOT_A_CAMERA = re.compile(r"bcm2835-(codec|isp)|unicam|rp1-cfe|pispbe|rpivid|hevc|"
                          r"pisp|bcm2835-v4l2-isp", re.IGNORECASE)


@dataclass(frozen=True)
class CameraInfo:
    flag: str  # what to pass to --camera
    device: str
    name: str


SYSFS = Path("/sys/class/video4linux")


def not_a_camera(index: int, sysfs: Path | None = None) -> str | None:
    """The driver name when /dev/videoN is a Pi's codec, ISP or CSI receiver (OpenCV may
    open it, but never gets a picture from it), else None."""
    name = _read((sysfs or SYSFS) / f"video{index}" / "name")
    return name if name and NOT_A_CAMERA.search(name) else None


def v4l2_cameras(sysfs: Path | None = None) -> list[CameraInfo]:
    """Capture nodes as OpenCV numbers them (/dev/videoN is --camera N). A USB camera
    makes two nodes, the picture (index 0) and its metadata (index 1): only the first
    is listed."""
    nodes = {int(p.name[5:]): p for p in (sysfs or SYSFS).glob("video*") if p.name[5:].isdigit()}
    found = []
    for n, node in sorted(nodes.items()):
        name = _read(node / "name") or "?"
        if NOT_A_CAMERA.search(name) or _read(node / "index") not in ("", "0"):
            continue
        found.append(CameraInfo(str(n), f"/dev/video{n}", name))
    return found


def pi_cameras() -> tuple[list[CameraInfo], str]:
    """The cameras libcamera sees, and a note when picamera2 cannot be asked."""
    try:
        from picamera2 import Picamera2  # lazy: it probes devices on import
    except ImportError:
        return [], "picamera2 is not installed (apt: python3-picamera2), Pi cameras not listed"
    try:
        info = Picamera2.global_camera_info()
    except Exception as exc:  # noqa: BLE001 - libcamera errors come as many types
        return [], f"picamera2 could not list cameras: {exc}"
    return [CameraInfo("picam" if i == 0 else f"picam{i}", str(c.get("Id", "")),
                       str(c.get("Model", "?"))) for i, c in enumerate(info)], ""


def describe(sysfs: Path | None = None) -> tuple[list[str], bool]:
    """Lines to print, and whether any camera was found."""
    pis, note = pi_cameras()
    usb = v4l2_cameras(sysfs)
    lines = [f"--camera {c.flag:<6} {c.name}  ({c.device})" for c in pis + usb]
    if note:
        lines.append(note)
    if not pis and not usb:
        lines.insert(0, "no camera found: connect one (a Pi camera's ribbon with the power off), "
                        "then try again")
    return lines, bool(pis or usb)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
