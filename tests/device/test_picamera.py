"""The Pi camera adapter against a stand-in picamera2 module (the real one needs a Pi):
two streams, detection on the lores Y plane, boxes in full-frame pixels."""

from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest

from fer_pi.app.assemble import build
from fer_pi.app.config import Config, ConfigError, DetectConfig
from fer_pi.sources import PiCamera, SourceError, make_source
from fer_pi.sources.demo import Placement, compose
from fer_pi.vision.detect import HaarDetector, to_gray

# faces shown from their first sighting: these tests are about where the camera's pixels go
SHOW_AT_ONCE = Config(detect=DetectConfig(confirm_frames=1))


class FakePicamera2:
    """Enough of picamera2.Picamera2 for the adapter: arrays as picamera2 lays them out."""

    frames: list[np.ndarray] = []
    fail_open = False
    fail_start = False
    held = 0  # cameras acquired and not closed: a real one stays busy for the next open

    def __init__(self, camera_num=0):
        if FakePicamera2.fail_open:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        if FakePicamera2.held:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        FakePicamera2.held += 1
        self.camera_num = camera_num
        self.config = None
        self.i = 0

    def create_video_configuration(self, main, lores=None, controls=None, buffer_count=4):
        cfg = {"main": dict(main), "controls": controls, "buffer_count": buffer_count}
        if lores:
            cfg["lores"] = dict(lores)
        return cfg

    def align_configuration(self, config):
        pass

    def configure(self, config):
        assert config["main"]["format"] == "RGB888"
        assert config.get("lores", {}).get("format", "YUV420") == "YUV420"
        self.config = config

    def camera_configuration(self):
        return self.config

    def start(self):
        if FakePicamera2.fail_start:
            raise RuntimeError("Camera frontend has timed out!")

    def _main(self):
        f = FakePicamera2.frames[self.i % len(FakePicamera2.frames)]
        self.i += 1
        return f

    def capture_arrays(self, names):
        main = self._main()
        lw, lh = self.config["lores"]["size"]
        y = cv2.cvtColor(cv2.resize(main, (lw, lh), interpolation=cv2.INTER_AREA),
                         cv2.COLOR_BGR2GRAY)
        yuv = np.zeros((lh * 3 // 2, lw), np.uint8)
        yuv[:lh] = y
        return [main, yuv], {}

    def capture_array(self, name="main"):
        return self._main()

    def stop(self):
        pass

    def close(self):
        FakePicamera2.held = max(0, FakePicamera2.held - 1)


@pytest.fixture
def fake_picamera2(monkeypatch, face):
    mod = types.ModuleType("picamera2")
    mod.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", mod)
    FakePicamera2.frames = [compose([Placement(80 + 8 * i, 40, 400)], face=face)
                            for i in range(5)]
    FakePicamera2.fail_open = FakePicamera2.fail_start = False
    FakePicamera2.held = 0
    return FakePicamera2


def test_two_streams_and_detection_on_lores(fake_picamera2):
    cam = make_source("picam", width=640, height=480, detect_width=480)
    assert isinstance(cam, PiCamera)
    cam.open()
    assert cam.lores_size == (480, 360)
    pipeline = build(SHOW_AT_ONCE)
    reference = HaarDetector()
    for _ in range(5):
        frame = cam.read()
        assert frame.image.shape == (480, 640, 3) and frame.detect_gray.shape == (360, 480)
        result = pipeline.process(frame)
        want = reference.detect(to_gray(frame.image))
        assert len(result.faces) == len(want) == 1
        assert result.faces[0].box.iou(want[0]) > 0.6  # full-frame pixels, not lores
    cam.close()


def test_no_lores_when_not_downscaling(fake_picamera2):
    cam = PiCamera(640, 480, detect_width=0)
    cam.open()
    frame = cam.read()
    assert cam.lores_size is None and frame.detect_gray is None
    assert len(build(SHOW_AT_ONCE).process(frame).faces) == 1


def test_camera_absent_is_a_source_error(fake_picamera2):
    fake_picamera2.fail_open = True
    with pytest.raises(SourceError, match="cannot open the Pi camera"):
        PiCamera().open()


def test_a_camera_that_fails_to_start_is_let_go(fake_picamera2):
    """configure/start failing after the camera was acquired: the adapter closes it, so the
    next try (ResilientSource's reopen) does not find it busy."""
    fake_picamera2.fail_start = True
    with pytest.raises(SourceError, match="frontend has timed out"):
        PiCamera().open()
    assert fake_picamera2.held == 0
    fake_picamera2.fail_start = False
    cam = PiCamera()
    cam.open()  # not "Device or resource busy"
    cam.close()


def test_a_usb_camera_that_fails_to_open_is_released(monkeypatch):
    """cv2.VideoCapture objects that did not open are released, not left to the collector."""
    import fer_pi.sources.usb as camera_mod
    from fer_pi.sources import OpenCVCamera

    made = []

    class DeadCapture:
        def __init__(self, *args):
            self.released = False
            made.append(self)

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return False

        def release(self):
            self.released = True

    monkeypatch.setattr(camera_mod.cv2, "VideoCapture", DeadCapture)
    monkeypatch.setattr("fer_pi.sources.camera_list.not_a_camera", lambda index: "")
    with pytest.raises(SourceError, match="cannot open camera 7"):
        OpenCVCamera(7).open()
    assert made and all(c.released for c in made)


def test_picamera2_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails
    with pytest.raises(SourceError, match="apt install python3-picamera2"):
        PiCamera().open()


def test_bench_sizes_the_lores_stream_from_the_config(fake_picamera2, tmp_path):
    from fer_pi.devtools import bench, stages

    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("[detect]\ndetect_width = 320\n")
    args = bench.parse_args(["--camera", "picam", "--config", str(cfg_file)])
    from fer_pi.app.config import load_file

    src = stages.open_bench_source(args, load_file(cfg_file))
    assert src.lores_size == (320, 240)
    src.close()


@pytest.mark.parametrize("degrees, undo", [(180, cv2.ROTATE_180),
                                           (90, cv2.ROTATE_90_COUNTERCLOCKWISE),
                                           (270, cv2.ROTATE_90_CLOCKWISE)])
def test_a_camera_mounted_turned_finds_faces_once_rotate_turns_it_back(fake_picamera2, face,
                                                                        degrees, undo):
    """The stand-in camera delivers the picture as a camera mounted upside down or on its
    side would; Haar finds nothing in it, and source.rotate turns picture and lores back."""
    # the scene as it stands: landscape for a camera upside down, portrait for one on its side
    w, h = (640, 480) if degrees == 180 else (480, 640)
    upright = [compose([Placement(20 + 8 * i, 60, 400)], width=w, height=h, face=face)
               for i in range(3)]
    reference = HaarDetector()
    fake_picamera2.frames = [np.ascontiguousarray(cv2.rotate(f, undo)) for f in upright]
    raw = make_source("picam", width=640, height=480, detect_width=480)
    raw.open()
    assert all(not reference.detect(to_gray(raw.read().image)) for _ in range(3))
    raw.close()
    cam = make_source("picam", width=640, height=480, detect_width=480, rotate=degrees)
    cam.open()
    pipeline = build(SHOW_AT_ONCE)
    for i in range(3):
        frame = cam.read()
        assert np.array_equal(frame.image, upright[i])
        lores = (480, 360) if degrees == 180 else (360, 480)
        assert frame.detect_gray.shape[::-1] == lores  # turned with the picture
        result = pipeline.process(frame)
        (want,) = reference.detect(to_gray(upright[i]))
        assert len(result.faces) == 1 and result.faces[0].box.iou(want) > 0.6
    cam.close()


def _sysfs(root, nodes):
    for n, (name, index) in nodes.items():
        d = root / f"video{n}"
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "index").write_text(f"{index}\n")
    return root


PI4_WITH_WEBCAMS = {  # what a Pi 4 with a Pi camera and two USB webcams shows in sysfs
    0: ("HD Pro Webcam C920", 0), 1: ("HD Pro Webcam C920", 1),  # picture, metadata
    2: ("USB2.0 PC CAMERA", 0), 3: ("USB2.0 PC CAMERA", 1),
    10: ("bcm2835-codec-decode", 0), 11: ("bcm2835-codec-encode", 0),
    12: ("bcm2835-codec-isp", 0), 13: ("bcm2835-isp-output0", 0), 19: ("rpivid", 0),
    20: ("unicam-image", 0), 21: ("unicam-embedded", 0),
    22: ("rp1-cfe-csi2_ch0", 0), 23: ("pispbe-input", 0), 24: ("rpi-hevc-dec", 0),
}


def test_list_cameras_names_the_flag_for_each_real_camera(fake_picamera2, tmp_path,
                                                          monkeypatch):
    from fer_pi.sources.camera_list import describe, v4l2_cameras

    monkeypatch.setattr(fake_picamera2, "global_camera_info", staticmethod(
        lambda: [{"Model": "imx708", "Id": "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a"},
                 {"Model": "imx477", "Id": "/base/axi/pcie@120000/rp1/i2c@80000/imx477@1a"}]),
        raising=False)
    sysfs = _sysfs(tmp_path / "v4l", PI4_WITH_WEBCAMS)
    assert [(c.flag, c.name) for c in v4l2_cameras(sysfs)] == [
        ("0", "HD Pro Webcam C920"), ("2", "USB2.0 PC CAMERA")]
    lines, found = describe(sysfs)
    assert found and lines[0].startswith("--camera picam") and "imx708" in lines[0]
    assert [x.split()[1] for x in lines] == ["picam", "picam1", "0", "2"]
    assert "imx477" in lines[1]  # a Pi 5's second camera port


def test_picam1_opens_the_second_pi_camera(fake_picamera2):
    from fer_pi.app.config import from_dict

    cam = make_source("picam1", width=640, height=480, detect_width=480)
    assert isinstance(cam, PiCamera) and cam.name == "picam1"
    cam.open()
    assert cam.cam.camera_num == 1 and cam.read().image.shape == (480, 640, 3)
    cam.close()
    assert from_dict({"source": {"camera": "picam1"}}).source.camera == "picam1"
    with pytest.raises(ConfigError, match="picam1"):
        from_dict({"source": {"camera": "picamera"}})


def test_list_cameras_says_when_there_is_none(monkeypatch, tmp_path):
    from fer_pi.sources.camera_list import describe

    monkeypatch.setitem(sys.modules, "picamera2", None)  # not installed
    lines, found = describe(_sysfs(tmp_path / "v4l", {10: ("bcm2835-codec-decode", 0)}))
    assert not found
    assert lines[0].startswith("no camera found") and "python3-picamera2" in lines[1]


def test_list_cameras_exit_code_follows_what_it_found():
    from conftest import run_cli

    proc = run_cli("--list-cameras")
    assert proc.returncode == (3 if "no camera found" in proc.stdout else 0), proc.stdout
    assert proc.stdout.strip()


def test_bench_turns_the_camera_as_the_config_says(fake_picamera2, face, tmp_path):
    from fer_pi.app.config import load_file
    from fer_pi.devtools import bench, stages

    fake_picamera2.frames = [cv2.rotate(compose([Placement(120, 40, 400)], face=face),
                                        cv2.ROTATE_180)]
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("[source]\nrotate = 180\n")
    args = bench.parse_args(["--camera", "picam", "--config", str(cfg_file)])
    src = stages.open_bench_source(args, load_file(cfg_file))
    frame = src.read()
    assert len(HaarDetector().detect(to_gray(frame.image))) == 1
    src.close()


def test_camera_0_on_a_pi_camera_s_receiver_says_use_picam(tmp_path, monkeypatch):
    """On a Pi with only a Pi camera, /dev/video0 is the CSI receiver: OpenCV may open it
    but never reads a picture, so --camera 0 would wait forever for a 'lost' camera."""
    from fer_pi.sources import OpenCVCamera, camera_list

    sysfs = _sysfs(tmp_path / "v4l", {0: ("unicam-image", 0), 1: ("unicam-embedded", 0)})
    monkeypatch.setattr(camera_list, "SYSFS", sysfs)
    with pytest.raises(SourceError, match=r"/dev/video0 is 'unicam-image'.*--camera picam"):
        OpenCVCamera(0).open()
