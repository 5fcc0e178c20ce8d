"""--realtime: a recorded clip handed over at its own frame rate, as a camera gives it."""

from __future__ import annotations

import time

import pytest
from conftest import run_cli

from fer_pi.sources import Paced, VideoFile
from fer_pi.sources.demo import Placement, compose, write_clip


class Clock:
    """A clock the test moves; waiting on it moves it (what a real wait would take)."""

    def __init__(self):
        self.now, self.waits = 100.0, []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


@pytest.fixture(scope="module")
def clip10(tmp_path_factory, face):
    """Six frames at 10 FPS: 0.5 s of clip from the first to the last."""
    frames = [compose([Placement(100, 40, 300)], face=face) for _ in range(6)]
    return write_clip(tmp_path_factory.mktemp("paced") / "c.avi", frames, fps=10.0)


def test_frames_come_at_the_clips_own_pace(clip10):
    clock = Clock()
    src = Paced(VideoFile(clip10), stop=clock, clock=clock)  # an Event's wait() is all it uses
    src.open()
    handed = []
    while (frame := src.read()) is not None:
        handed.append((clock.now - 100.0, frame.timestamp))
    assert len(handed) == 6
    # each frame handed over exactly at its clip time after the first, the first at once
    for wall, clip in handed:
        assert wall == pytest.approx(clip, abs=1e-9)
    assert clock.waits == pytest.approx([0.1] * 5)


def test_a_loop_slower_than_the_clip_never_waits_and_skips_nothing(clip10):
    clock = Clock()
    src = Paced(VideoFile(clip10), stop=clock, clock=clock)
    src.open()
    count = 0
    while src.read() is not None:
        count += 1
        clock.now += 0.25  # the loop takes 0.25 s a frame, the clip gives one each 0.1 s
    assert count == 6 and clock.waits == []


def test_realtime_plays_a_clip_no_faster_than_filmed(tmp_path, face):
    """Through fer-pi itself: six frames at 2 FPS span 2.5 s of clip, which a headless run
    reads in a fraction of a second; --realtime must spend the 2.5 s, and change nothing of
    what it writes."""
    import json

    frames = [compose([Placement(100, 40, 300)], face=face) for _ in range(6)]
    clip = write_clip(tmp_path / "slow.avi", frames, fps=2.0)

    def timed(*extra: str, out: str) -> tuple[float, list[dict]]:
        t0 = time.monotonic()
        r = run_cli("--video", str(clip), "--headless", "--output", str(tmp_path / out), *extra)
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        return took, [json.loads(x) for x in (tmp_path / out).read_text().splitlines()]

    fast, fast_rows = timed(out="a.jsonl")
    paced, paced_rows = timed("--realtime", out="b.jsonl")
    # both runs start the same process; the paced one waits 2.5 s of clip on top (bounded
    # below only: how much slower than that is the machine's business)
    assert paced - fast >= 1.5, (paced, fast)
    assert [r["timestamp"] for r in paced_rows] == [r["timestamp"] for r in fast_rows] \
        == [i / 2 for i in range(6)]
    assert [len(r["faces"]) for r in paced_rows] == [len(r["faces"]) for r in fast_rows]
