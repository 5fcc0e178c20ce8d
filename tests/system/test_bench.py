"""fer-bench's contract: its JSON, every stage, the remote path, and clear errors.

No timing is asserted here: figures belong in benchmark output, not in tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import need, need_tool


def bench(*args: str, tmp_path=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    if tmp_path is not None:
        env["XDG_CACHE_HOME"] = str(tmp_path)
    return subprocess.run([sys.executable, "-m", "fer_pi.devtools.bench", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def _check_stats(s: dict) -> None:
    assert set(s) == {"n", "p50", "p95", "p99", "max", "mean"}
    assert 0 <= s["p50"] <= s["p95"] <= s["p99"] <= s["max"]


def _check_report(rep: dict, n_runs: int, stages: set[str]) -> None:
    assert rep["schema"] == "fer-bench/1"
    m = rep["machine"]
    assert m["cores"] >= 1 and m["cpu"] and m["versions"]["python"] and m["versions"]["opencv"]
    assert set(rep["thermal"]) == {"before", "after"}
    assert len(rep["runs"]) == n_runs
    for r in rep["runs"]:
        assert r["runtime"] in ("ai_edge_litert", "tflite_runtime", "tensorflow")
        assert set(r["stages"]) == stages, set(r["stages"]) ^ stages
        for s in r["stages"].values():
            _check_stats(s)


ALL_STAGES = {"capture", "detect", "track", "preprocess", "infer", "infer_per_face", "smooth",
              "draw", "total"}


def test_pipeline_json_reports_every_stage(tmp_path):
    proc = bench("--json", "--frames", "12", "--warmup", "10", "--threads", "1,2",
                 "--detect-every", "1,3", "--faces", "2", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    _check_report(rep, 4, ALL_STAGES)
    assert [(r["threads"], r["detect_every"]) for r in rep["runs"]] == [(1, 1), (1, 3), (2, 1),
                                                                         (2, 3)]
    for r in rep["runs"]:
        assert r["frames"] == 12 and r["fps"] > 0
        assert r["faces_per_frame"] == 2
        assert r["stages"]["total"]["n"] == 12


def test_headless_and_untracked_runs_drop_those_stages(tmp_path):
    proc = bench("--json", "--frames", "5", "--warmup", "0", "--headless", "--no-track",
                 tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_report(json.loads(proc.stdout), 1,
                  ALL_STAGES - {"draw", "track", "smooth"})


def test_infer_stage_alone(tmp_path):
    proc = bench("--json", "--stage", "infer", "--frames", "20", "--warmup", "2",
                 tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_report(json.loads(proc.stdout), 1, {"infer_random", "infer_real"})


def test_readable_table(tmp_path):
    proc = bench("--frames", "5", "--warmup", "0", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for word in ("p50", "p95", "p99", "max", "detect", "infer_per_face", "FPS=", "cores"):
        assert word in proc.stdout


def test_remote_through_the_local_transport(tmp_path):
    out = tmp_path / "bench.json"
    proc = bench("--remote", "local", "--json", "--frames", "5", "--warmup", "0", "--headless",
                 "--output", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["remote_host"] == "local"
    _check_report(rep["remote"], 1, ALL_STAGES - {"draw"})
    _check_report(rep["local"], 1, ALL_STAGES - {"draw"})
    # the remote side ran on the copied model, not the local path
    assert rep["remote"]["runs"][0]["model_path"] != rep["local"]["runs"][0]["model_path"]
    assert json.loads(out.read_text()) == rep


def test_draw_is_timed_on_every_frame(tmp_path):
    """More frames than the overlay's 60-frame window: the draw percentiles cover them all."""
    proc = bench("--json", "--frames", "75", "--warmup", "0", "--screen", "320x240",
                 tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = json.loads(proc.stdout)["runs"]
    assert run["stages"]["draw"]["n"] == run["stages"]["total"]["n"] == 75


def test_remote_runs_what_the_local_run_runs(tmp_path, clips):
    """--config, --video and --screen reach the remote side: like for like."""
    cfg = tmp_path / "pi.toml"
    cfg.write_text("[detect]\ndetect_width = 320\n")
    proc = bench("--remote", "local", "--json", "--frames", "4", "--warmup", "0",
                 "--video", str(clips["two"]), "--config", str(cfg), "--screen", "320x240",
                 tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    for side in ("local", "remote"):
        r = rep[side]
        assert r["settings"]["detect_width"] == 320 and r["settings"]["screen"] == "320x240"
        assert r["source"]["kind"] == "video" and r["source"]["video"].endswith("two.avi")
    assert rep["remote"]["source"]["video"] != rep["local"]["source"]["video"]  # a copy


def test_a_remote_failure_is_one_line(tmp_path):
    """The remote fer-bench fails (here: a video it cannot decode): its last line, exit 2,
    no traceback."""
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    proc = bench("--remote", "local", "--frames", "2", "--warmup", "0", "--video", str(bad),
                 tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("fer-bench: error:")]
    assert "fer-bench on local failed" in line and "bad.avi" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "/nowhere/m.tflite"], "model file not found: /nowhere/m.tflite"),
        (["--frames", "0"], "--frames must be at least 1"),
        (["--threads", "1,x"], "--threads must be comma-separated integers"),
        (["--threads", "0"], "--threads values must be 1..64"),
        (["--detect-every", ","], "--detect-every values"),
        (["--video", "/nowhere.avi"], "video not found: /nowhere.avi"),
        (["--screen", "big"], "--screen must be WIDTHxHEIGHT"),
    ],
)
def test_bad_options(args, needle, tmp_path):
    proc = bench(*args, tmp_path=tmp_path)
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.startswith("fer-bench: error:")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_soak_report(tmp_path):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "fer_pi.devtools.soak", "--minutes", "0.1",
                           "--sample-s", "1", "--json"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["schema"] == "fer-soak/1" and len(rep["samples"]) >= 4
    for s in rep["samples"]:
        assert s["rss_mb"] > 10 and s["open_files"] > 0 and s["frames"] > 0
    assert rep["open_files_end"] == rep["samples"][-1]["open_files"]


@pytest.fixture
def sshd(tmp_path):
    """A real OpenSSH server on a loopback port, key login only, for this user."""
    import getpass
    import socket
    import time

    exe = need_tool("sshd", "Debian: apt install openssh-server")
    need_tool("ssh", "Debian: apt install openssh-client")
    need_tool("ssh-keygen", "Debian: apt install openssh-client")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation folder
    d = tmp_path / "ssh"
    d.mkdir()
    for key in ("host", "id"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True, timeout=30)
    (d / "authorized_keys").write_text((d / "id.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\n"
        "UsePAM no\nSubsystem sftp internal-sftp\n")
    proc = subprocess.Popen([exe, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            need(f"an sshd that starts here ({proc.stderr.read().strip()[-200:]})")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    cfg = d / "ssh_config"
    cfg.write_text(f"Host testpi\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
                   f"  IdentityFile {d / 'id'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
                   "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    yield cfg
    proc.terminate()
    proc.wait(10)


def test_remote_over_a_real_ssh_server(sshd, tmp_path):
    """The --remote path as on a Pi: ssh to a host, scp the model, run fer-bench there."""
    remote_cmd = os.path.join(os.path.dirname(sys.executable), "fer-bench")
    if not os.path.exists(remote_cmd):
        pytest.skip("fer-bench is not installed beside this Python (pip install .)")
    proc = bench("--remote", "testpi", "--ssh-config", str(sshd), "--remote-cmd", remote_cmd,
                 "--stage", "infer", "--json", "--frames", "20", "--warmup", "0", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rep = json.loads(proc.stdout)
    assert rep["remote_host"] == "testpi"
    remote_model = rep["remote"]["runs"][0]["model_path"]
    assert remote_model.startswith("/tmp/fer-bench.") and not os.path.exists(remote_model), \
        "the model went to a scratch folder over scp, and that folder was removed after"
    assert rep["remote"]["runs"][0]["stages"]["infer_real"]["n"] == 20


def test_ssh_config_that_does_not_exist_is_one_line(tmp_path):
    proc = bench("--remote", "testpi", "--ssh-config", str(tmp_path / "nope"), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"fer-bench: error: ssh config not found: {tmp_path / 'nope'}"


def test_an_interrupted_sweep_resumes_with_the_runs_it_finished(tmp_path):
    """Killed after its first run, a sweep run again with --resume keeps that run as it
    was measured and measures only the rest; other settings are refused."""
    import signal
    import time

    out = tmp_path / "sweep.json"
    partial = tmp_path / "sweep.json.partial.jsonl"
    args = ["--json", "--headless", "--frames", "150", "--warmup", "0", "--threads", "1,2",
            "--detect-every", "1,2", "--output", str(out)]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "fer_pi.devtools.bench", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and (
            not partial.is_file() or len(partial.read_text().splitlines()) < 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    lines = partial.read_text().splitlines()
    assert 2 <= len(lines) <= 4, "killed after the first run and before the last"
    kept = [json.loads(x)["run"] for x in lines[1:]]
    assert not out.exists()

    other = bench(*[a if a != "150" else "151" for a in args], "--resume", tmp_path=tmp_path)
    assert other.returncode == 2 and "measured with different settings" in other.stderr

    proc2 = bench(*args, "--resume", tmp_path=tmp_path)
    assert proc2.returncode == 0, proc2.stderr
    rep = json.loads(proc2.stdout)
    assert [(r["threads"], r["detect_every"]) for r in rep["runs"]] == [(1, 1), (1, 2), (2, 1),
                                                                         (2, 2)]
    assert rep["runs"][:len(kept)] == kept  # reused, not measured again
    assert proc2.stderr.count("kept from the interrupted sweep") == len(kept)
    assert json.loads(out.read_text()) == rep and not partial.exists()


def test_resume_needs_an_output(tmp_path):
    proc = bench("--resume", tmp_path=tmp_path)
    assert proc.returncode == 2 and "--resume needs --output" in proc.stderr


def test_a_turned_board_is_benchmarked_as_the_config_turns_it(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[board]\nrotate = 90\n")
    proc = bench("--json", "--frames", "5", "--warmup", "0", "--screen", "480x800",
                 "--config", str(cfg), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    _check_report(rep, 1, ALL_STAGES)
    assert rep["settings"]["rotate"] == 90 and rep["settings"]["screen"] == "480x800"


def test_every_report_names_the_cpus_simd():
    """Int8 inference is about 5x slower on an AVX2-only host than with VNNI (and on a Pi
    4's A72, without the dot product, than on a Pi 5's A76): the SIMD stands beside every
    figure, from /proc/cpuinfo's own words."""
    from fer_pi import machine

    x86 = "processor : 0\nflags : fpu sse4_2 avx avx2 fma avx512f avx512_vnni\n"
    pi4 = "processor : 0\nFeatures : fp asimd evtstrm crc32 cpuid\n"
    pi5 = "processor : 0\nFeatures : fp asimd evtstrm crc32 atomics fphp asimdhp asimddp\n"
    assert machine.simd(x86) == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni"]
    assert machine.simd(pi4) == ["asimd"] and machine.simd(pi5) == ["asimd", "asimddp"]
    assert machine.simd("") == []
    proc = bench("--stage", "infer", "--frames", "5", "--warmup", "0", "--headless")
    assert proc.returncode == 0, proc.stderr
    assert "SIMD " in proc.stdout.splitlines()[0]
