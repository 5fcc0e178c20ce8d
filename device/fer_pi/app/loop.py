"""The loop: frames (or a source's waits) in, through the pipeline, out to the sinks, the
board and the services, until the source ends or a stop is asked for. The one place that
polls the board's keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from fer_pi.core.records import FrameResult, Wait
from fer_pi.core.stats import RunStats
from fer_pi.sources.base import FrameSource
from fer_pi.vision.pipeline import Pipeline

Sink = Callable[[FrameResult], None]
# a display draws the frame (or, with None, its banner or empty board); it adds its own
# "draw" time. It returns False when it cannot go on (the user quit from a window).
Show = Callable[[FrameResult, RunStats], bool]
# called once a frame is fully done (shown): watchdog pings, health files
After = Callable[[FrameResult, RunStats], None]
# called for each Wait a source returns (at least once a second while it waits)
OnWait = Callable[[Wait, RunStats], None]
# the board's keys: False when the user asked to quit
Poll = Callable[[], bool]


def run(source: FrameSource, pipeline: Pipeline, sinks: Sequence[Sink] = (),
        show: Show | None = None, stop: threading.Event | None = None,
        max_frames: int = 0, after: Sequence[After] = (),
        pace: Callable[[FrameResult], float] | None = None,
        stats: RunStats | None = None, waits: Sequence[OnWait] = (),
        poll: Poll | None = None, poll_every_s: float = 0.05) -> RunStats:
    """Drive frames through the pipeline until the source ends, ``stop`` is set, the
    user quits (``poll``, ``show``) or ``max_frames`` have been processed.

    ``pace`` (idle.IdlePacer.wait_s) says how long to wait before the next frame is read;
    the wait polls the keys every ``poll_every_s`` (an idle wait is up to 5 s, and Esc must
    not wait for the next frame). A source that waits on purpose returns a Wait, which goes
    to ``waits`` instead of the pipeline. ``stats``: the caller's, to read while the run
    goes on (a wait's banner, health)."""
    stop = stop or threading.Event()
    stats = stats if stats is not None else RunStats()

    def keys() -> None:
        if poll is not None and not poll():
            stop.set()

    while not stop.is_set():
        t0 = time.perf_counter()
        item = source.read()
        if item is None:
            break
        if isinstance(item, Wait):
            for hook in waits:
                hook(item, stats)
            keys()
            continue
        t1 = time.perf_counter()
        result = pipeline.process(item)
        result.timings_ms["capture"] = (t1 - t0) * 1e3
        for sink in sinks:
            sink(result)
        if show is not None:
            t2 = time.perf_counter()
            keep_going = show(result, stats)
            result.timings_ms["draw"] = (time.perf_counter() - t2) * 1e3
            if not keep_going:
                stop.set()
        keys()
        result.timings_ms["total"] = (time.perf_counter() - t0) * 1e3
        stats.add(result.timings_ms, len(result.faces))
        for hook in after:
            hook(result, stats)
        if max_frames and stats.frames >= max_frames:
            break
        if pace is not None:
            _sleep(pace(result), stop, keys if poll is not None else None, poll_every_s)
    return stats


def _sleep(seconds: float, stop: threading.Event, keys: Callable[[], None] | None,
           every_s: float) -> None:
    if seconds <= 0:
        return
    if keys is None:
        stop.wait(seconds)
        return
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        keys()
        left = deadline - time.monotonic()
        if left <= 0 or stop.is_set():
            return
        stop.wait(min(every_s, left))
