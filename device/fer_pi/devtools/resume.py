"""An interrupted fer-bench sweep continues where it stopped: finished runs kept a line
each in OUTPUT.partial.jsonl, reused only for the very same sweep."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from fer_pi import machine
from fer_pi.app.config import Config
from fer_pi.devtools.stages import BenchError

SCHEMA = "fer-bench/1"


class Partial:
    """OUTPUT.partial.jsonl: a header naming what the sweep measures, then one finished run
    a line. A run is reused only when the header matches: same machine, software, source,
    settings and model files (by hash), so a resumed sweep is one sweep."""

    def __init__(self, args, cfg: Config, models: list[Path]):
        self.path = Path(args.output + ".partial.jsonl")
        m = machine.describe()
        self.header = {
            "schema": SCHEMA, "stage": args.stage,
            "machine": {k: m[k] for k in ("pi_model", "cpu", "cores", "arch", "versions")},
            "source": [args.camera, args.video, args.faces, args.face_width, args.width,
                       args.height],
            "settings": [args.frames, args.warmup, args.headless, args.live, args.screen,
                         args.no_track,
                         cfg.model.flip_tta, cfg.detect.detect_width, cfg.board.rotate],
            "models": {str(p): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in models},
        }

    def load(self, resume: bool) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        if not resume:
            print(f"fer-bench: starting over; {self.path} is replaced (--resume would have "
                  "continued it)", file=sys.stderr)
            self.path.unlink()
            return {}
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0])
        except (IndexError, json.JSONDecodeError):
            raise BenchError(f"--resume: {self.path} has no valid header") from None
        for key in self.header:
            if header.get(key) != self.header[key]:
                raise BenchError(f"--resume: {self.path} was measured with different {key}: "
                                 "start over without --resume")
        done = {}
        for line in lines[1:]:
            try:
                rec = json.loads(line)
                done[rec["key"]] = rec["run"]
            except (json.JSONDecodeError, KeyError, TypeError):
                break  # a line cut short by the interruption: measure that run again
        # rewrite what was read, so a torn last line does not stay before new runs
        self.path.write_text("".join(json.dumps(x) + "\n" for x in
                                     [self.header, *({"key": k, "run": r} for k, r in done.items())]))
        return done

    def add(self, key: str, run: dict) -> None:
        new = not self.path.is_file()
        with self.path.open("a") as fh:
            if new:
                fh.write(json.dumps(self.header) + "\n")
            fh.write(json.dumps({"key": key, "run": run}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
