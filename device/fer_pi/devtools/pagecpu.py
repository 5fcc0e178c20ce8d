"""What the room's page costs the device: the status endpoint's own thread's CPU while a
headless Chromium keeps the page open, with four faces fed to it at 30 FPS.

    python -m fer_pi.devtools.pagecpu --seconds 60 [--no-page]

Prints JSON: requests served, the thread's CPU seconds, its share of one core, CPU ms a
request. The thread is found by its OS id (/proc/self/task), so the figure is the
endpoint's alone, not the pipeline's. Needs Linux and, for the page, chromium on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

from fer_pi.core.labels import LABELS
from fer_pi.core.records import Face, FaceBox, Frame, FrameResult, Prediction, room_summary
from fer_pi.outputs.health import HealthState
from fer_pi.outputs.roomlog import RoomLog
from fer_pi.outputs.status import StatusServer


def thread_cpu_s(tid: int) -> float:
    fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def feed(state: HealthState, room: RoomLog, stop: threading.Event, faces_n: int = 4) -> None:
    probs = tuple(0.6 if k == "happy" else 0.4 / 6 for k in LABELS)
    i = 0
    while not stop.is_set():
        faces = tuple(Face(FaceBox(60 * j, 10, 50, 50), Prediction(probs, LABELS), track_id=j + 1,
                           smoothed=probs, shown="happy", held_s=1.0) for j in range(faces_n))
        state.update(30.0, faces_n, i, {"detect": 10.0, "infer": 5.0, "total": 20.0},
                     room_summary(faces, LABELS))
        room.on_frame(FrameResult(Frame(i, time.time(), None), faces))
        i += 1
        stop.wait(1 / 30)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_pi.devtools.pagecpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--no-page", action="store_true", help="the endpoint alone, for comparison")
    args = p.parse_args(argv)
    chromium = shutil.which("chromium")
    if not args.no_page and chromium is None:
        print("pagecpu: chromium is not on PATH (Debian: apt install chromium)", file=sys.stderr)
        return 2
    state, room = HealthState(model="bench"), RoomLog(LABELS)
    server = StatusServer("127.0.0.1", 0, state, room=room)
    server.start()
    while server.bound_port is None:
        time.sleep(0.05)
    tid = server._thread.native_id
    stop = threading.Event()
    threading.Thread(target=feed, args=(state, room, stop), daemon=True).start()
    browser = None
    if not args.no_page:
        browser = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                    f"http://127.0.0.1:{server.bound_port}/"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(5)  # loaded, polling
    c0, t0, s0 = thread_cpu_s(tid), time.monotonic(), server.counters.served
    time.sleep(args.seconds)
    c1, t1, s1 = thread_cpu_s(tid), time.monotonic(), server.counters.served
    stop.set()
    if browser is not None:
        browser.terminate()
        browser.wait(10)
    server.close()
    cpu, wall, served = c1 - c0, t1 - t0, s1 - s0
    print(json.dumps({"page_open": not args.no_page, "seconds": round(wall, 1),
                      "requests": served, "thread_cpu_s": round(cpu, 3),
                      "share_of_a_core_pct": round(100 * cpu / wall, 3),
                      "cpu_ms_per_request": round(1000 * cpu / served, 2) if served else None,
                      "cpu": os.environ.get("FER_CPU_NOTE", "")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
