"""fer-bench --remote: the same benchmark on a Pi over SSH (or 'local', the same path on
this machine), with the model, clip and settings copied there, so both sides run like for
like."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol

from fer_pi.devtools.stages import BenchError
from fer_pi.vision.modelfile import resolve_model


class Transport(Protocol):
    name: str

    def put(self, local: Path) -> str: ...
    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess: ...
    def close(self) -> None: ...


class SSHTransport:
    """ssh/scp in batch mode: keys, not passwords, so it never hangs at a prompt."""

    OPTS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]

    def __init__(self, host: str, config: str | None = None):
        self.name = host
        self.host = host
        if config:  # an ssh_config(5) file: port, key, jump host, as the user keeps them
            if not Path(config).is_file():
                raise BenchError(f"ssh config not found: {config}")
            self.OPTS = ["-F", config, *self.OPTS]
        proc = subprocess.run(["ssh", *self.OPTS, host, "mktemp -d /tmp/fer-bench.XXXXXX"],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise BenchError(f"cannot reach {host} over ssh: {proc.stderr.strip()[:200]}")
        self.dir = proc.stdout.strip()

    def put(self, local: Path) -> str:
        if not local.is_file():
            raise BenchError(f"file not found: {local}")
        dest = f"{self.dir}/{local.name}"
        files = [str(local)] + ([str(local.with_suffix(".json"))]
                                if local.with_suffix(".json").is_file() else [])
        proc = subprocess.run(["scp", "-q", *self.OPTS, *files, f"{self.host}:{self.dir}/"],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise BenchError(f"scp to {self.host} failed: {proc.stderr.strip()[:200]}")
        return dest

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", *self.OPTS, self.host, shlex.join(argv)],
                              capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        subprocess.run(["ssh", *self.OPTS, self.host, f"rm -rf {shlex.quote(self.dir)}"],
                       capture_output=True, timeout=30)


class LocalTransport:
    """The remote path on this machine, through a subprocess and a scratch folder."""

    def __init__(self):
        self.name = "local"
        self._tmp = tempfile.TemporaryDirectory(prefix="fer-bench-")
        self.dir = Path(self._tmp.name)

    def put(self, local: Path) -> str:
        import shutil

        if not local.is_file():
            raise BenchError(f"file not found: {local}")
        shutil.copy2(local, self.dir / local.name)
        if local.with_suffix(".json").is_file():
            shutil.copy2(local.with_suffix(".json"), self.dir / local.with_suffix(".json").name)
        return str(self.dir / local.name)

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "fer_pi.devtools.bench", *argv[1:]]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        self._tmp.cleanup()


def run_remote(args, transport: Transport) -> dict:
    models = [resolve_model(m.strip()) for m in args.model.split(",") if m.strip()]
    remote_models = [transport.put(m) for m in models]
    argv = [args.remote_cmd, "--json", "--model", ",".join(remote_models),
            "--threads", args.threads, "--detect-every", args.detect_every,
            "--frames", str(args.frames), "--warmup", str(args.warmup), "--stage", args.stage,
            "--faces", str(args.faces), "--width", str(args.width), "--height", str(args.height)]
    if args.headless:
        argv.append("--headless")
    if args.live:
        argv.append("--live")
    if args.face_width:
        argv += ["--face-width", str(args.face_width)]
    if args.no_track:
        argv.append("--no-track")
    if not args.flip_tta:
        argv.append("--no-flip-tta")
    if not args.headless:
        argv += ["--screen", args.screen]
    if args.camera:
        argv += ["--camera", args.camera]
    if args.video:  # like for like: the same clip and settings on both machines
        argv += ["--video", transport.put(Path(args.video))]
    if args.config:
        argv += ["--config", transport.put(Path(args.config))]
    proc = transport.run(argv, timeout=3600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"fer-bench on {transport.name} failed: {last}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"fer-bench on {transport.name} printed no JSON") from None
