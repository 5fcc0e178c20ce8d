"""fer-pi against the `fer` package, frames per second on the same clip in the same run.

    python -m fer_tools.compare_fer [--video CLIP] [--fer-python PATH] [--frames 300]

fer-pi's figures: fer-bench's pipeline run with default settings, headless, on the clip
(decode, find faces, crop, classify, track and smooth), and the whole ``fer-pi --video``
process over the same number of frames, start to exit (``process_ratio``). The fer package's is its own loop
over the same decoded frames (``FER().detect_emotions(frame)`` per frame: its Haar
detector and its model), run in a Python where it is installed (it brings TensorFlow and
opencv-contrib, which must not share a venv with fer-pi's OpenCV: ``python3 -m venv ferenv
&& ferenv/bin/pip install 'setuptools<81' fer --no-deps && ferenv/bin/pip install
tensorflow opencv-contrib-python pandas requests tqdm 'moviepy<2' ffmpeg-python Pillow
matplotlib``). Both run one after the other on this machine; the JSON printed carries
both, their ratio, the machine and the thread count. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

FER_LOOP = textwrap.dedent('''
    import json, sys, time
    import cv2
    from fer.fer import FER
    path, n, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    det = FER()
    cap = cv2.VideoCapture(path)
    frames = []
    while len(frames) < n + warm:
        ok, img = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(img)
    for img in frames[:warm]:
        det.detect_emotions(img)
    cap = cv2.VideoCapture(path)
    t0, done, faces = time.perf_counter(), 0, 0
    while done < n:  # decode included, as in fer-pi's figure
        ok, img = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        faces += len(det.detect_emotions(img))
        done += 1
    wall = time.perf_counter() - t0
    print(json.dumps({"fps": round(done / wall, 2), "frames": done,
                      "faces_per_frame": round(faces / done, 3),
                      "versions": {"opencv": cv2.__version__}}))
''')


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_tools.compare_fer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default="", help="the clip (default: fer-bench's one-face clip)")
    p.add_argument("--fer-python", default=sys.executable, help="a Python with fer installed")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--threads", type=int, default=2, help="fer-pi's interpreter threads")
    args = p.parse_args(argv)
    from fer_pi.devtools import bench
    from fer_pi.devtools.stages import generated_clip

    video = args.video or str(generated_clip(1, 640, 480))
    ours = bench.run_local(bench.parse_args(["--video", video, "--headless", "--frames",
                                             str(args.frames), "--warmup", str(args.warmup),
                                             "--threads", str(args.threads)]))
    proc = subprocess.run([args.fer_python, "-c", FER_LOOP, video, str(args.frames),
                           str(args.warmup)], capture_output=True, text=True)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"compare_fer: error: the fer package's loop failed: {last}", file=sys.stderr)
        return 2
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    run = ours["runs"][0]
    whole = whole_process(video, args.frames, args.threads)
    print(json.dumps({"video": video, "machine": ours["machine"], "threads": args.threads,
                      "fer_pi": {"fps": run["fps"], "faces_per_frame": run["faces_per_frame"],
                                 "cpu_ms_per_frame": run.get("cpu_ms_per_frame")},
                      "fer_pi_process": whole,
                      "fer_package": theirs,
                      "ratio": round(run["fps"] / theirs["fps"], 2),
                      "process_ratio": round(whole["fps"] / theirs["fps"], 2)}, indent=1))
    return 0


def whole_process(video: str, frames: int, threads: int) -> dict:
    """``fer-pi --video`` as a user runs it, start to exit (imports, model, writing no
    results): what a user waits for, against the fer package's loop alone."""
    import resource
    import time

    cmd = [sys.executable, "-m", "fer_pi", "--video", video, "--loop", "--headless",
           "--max-frames", str(frames), "--threads", str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"compare_fer: error: fer-pi failed: {last}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"fps": round(frames / wall, 2), "wall_s": round(wall, 2),
            "cpu_ms_per_frame": round(1e3 * cpu / frames, 3), "command": " ".join(cmd[1:])}


if __name__ == "__main__":
    sys.exit(main())
