"""fer-summary: what a results file says per face: when each tracked face was in view,
for how long, and which labels the board showed it with.

    fer-summary results.jsonl            # a table a person reads
    fer-summary results.csv --json       # the same, as JSON
    fer-summary results.jsonl --csv faces.csv   # one row per face, for a spreadsheet
    fer-summary results/2026-11-*.jsonl  # a month of daily files, read in the order given
    fer-summary results.jsonl --by hour  # the room hour by hour (--by-csv FILE: a spreadsheet)
    fer-summary results.jsonl --report report.html   # a page to keep: charts and tables

It reads what `fer-pi --output` wrote (.jsonl or .csv, a file cut short included: an
unreadable line is skipped and counted, never fatal), so a museum or a study gets the
per-visitor figures without writing a parser. Shares are of the frames a face was in,
which is time where the frame rate is steady. Labels are the board's shown labels
(smoothed, "uncertain" included); a run without smoothing falls back to each frame's.
A face's ``mean_confidence`` (JSON and CSV) is the mean, over its frames, of the
probability the model gave that frame's own top label (the record's ``label`` and
``confidence``: the raw per-frame label, which is not always the one shown).

A file that fer-pi appended to across restarts holds several runs, and each run numbers
its faces from 1 again: a frame number that does not grow marks a new run, and a face is
its run and its track ID, so two visitors a restart apart are never merged into one.
Files given together are read as one stream, so a face in view across midnight stays one.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fer_pi.core.labels import LABELS, UNCERTAIN

EXIT_INPUT, EXIT_OUTPUT = 3, 5  # as fer-pi's: input cannot be opened, output not written
# --by: periods of local time, named so that sorting the names sorts the periods
PERIODS = {"minute": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d"}
# a video's or a picture folder's timestamps are positions in it (seconds from 0), not the
# wall clock: a timestamp before this (2001-09-09) names a period by its place in the clip
WALL_CLOCK_FROM = 1e9


def period_name(minute: int, by: str) -> str:
    """The --by period a minute falls in: local time for a camera's records; for a clip's,
    its position ('clip 00:01' for the second minute, 'clip day 1'), never 1970-01-01."""
    if minute * 60 >= WALL_CLOCK_FROM:
        return time.strftime(PERIODS[by], time.localtime(minute * 60))
    h, m = divmod(minute, 60)
    return {"minute": f"clip {h:02d}:{m:02d}", "hour": f"clip {h:02d}:00",
            "day": f"clip day {h // 24 + 1}"}[by]


class SummaryError(Exception):
    """A results file that cannot be read, or an output that cannot be written; names it."""


@dataclass(frozen=True)
class FaceRow:
    track_id: int | None
    shown: str
    confidence: float


@dataclass(frozen=True)
class FrameRow:
    frame: int
    timestamp: float
    faces: tuple[FaceRow, ...]
    steady: float | None = None  # a camera's monotonic clock (JSONL), for durations


@dataclass
class TrackSummary:
    run: int
    track_id: int
    first_t: float
    last_t: float
    frames: int = 0
    labels: Counter = field(default_factory=Counter)
    confidence_sum: float = 0.0
    # the steady clock's first and last reading: the duration when every frame had one
    first_s: float | None = None
    last_s: float | None = None

    def seen(self, fr: FrameRow) -> None:
        self.first_t, self.last_t = min(self.first_t, fr.timestamp), max(self.last_t, fr.timestamp)
        if self.frames == 0:
            self.first_s = self.last_s = fr.steady
        elif fr.steady is None or self.first_s is None:
            self.first_s = self.last_s = None  # a frame without it: wall-clock durations
        else:
            self.first_s, self.last_s = min(self.first_s, fr.steady), max(self.last_s, fr.steady)
        self.frames += 1

    @property
    def seconds(self) -> float:
        if self.first_s is not None and self.last_s is not None:
            return self.last_s - self.first_s
        return self.last_t - self.first_t

    def to_dict(self) -> dict:
        return {"run": self.run, "track_id": self.track_id, "first_t": round(self.first_t, 3),
                "last_t": round(self.last_t, 3), "seconds": round(self.seconds, 3),
                "frames": self.frames, "most_shown": most_shown(self.labels),
                "shares": shares(self.labels),
                "mean_confidence": round(self.confidence_sum / self.frames, 4)}


@dataclass
class PeriodCounts:
    frames: int = 0
    tracks: dict[tuple[int, int], Counter] = field(default_factory=dict)
    untracked: Counter = field(default_factory=Counter)

    def to_dict(self, name: str, left_out: set) -> dict:
        labels = Counter(self.untracked)
        faces = 0
        for key, counts in self.tracks.items():
            if key not in left_out:
                faces += 1
                labels.update(counts)
        n = sum(labels.values())
        return {"period": name, "frames": self.frames, "faces": faces, "face_frames": n,
                "most_shown": most_shown(labels), "shares": shares(labels)}


def shares(counts: Counter) -> dict[str, float]:
    """Each label's share of the counted face-frames, most shown first."""
    n = sum(counts.values())
    return {k: round(v / n, 4) for k, v in counts.most_common()}


def most_shown(counts: Counter) -> str:
    """The label shown in most frames; "uncertain" only when nothing else was shown."""
    named = [(n, k) for k, n in counts.most_common() if k != UNCERTAIN]
    return named[0][1] if named else (UNCERTAIN if counts else "none")


def _whole_lines(lines: Iterable[str], skipped: list[int]) -> Iterator[str]:
    """Lines as fer-pi ended them: a last line without its newline was cut short by a
    crash or a power cut, and is counted, not read."""
    for line in lines:
        if not line.endswith("\n"):
            skipped[0] += 1
            return
        yield line


def _jsonl_frames(lines: Iterable[str], skipped: list[int]) -> Iterator[FrameRow]:
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            faces = tuple(FaceRow(f.get("track_id"), f.get("shown") or f["label"],
                                  float(f["confidence"])) for f in rec["faces"])
            steady = rec.get("steady")
            ts = float(rec["timestamp"])
            if not math.isfinite(ts) or (steady is not None and not math.isfinite(steady)):
                raise ValueError("a timestamp that is not a finite number")
            yield FrameRow(int(rec["frame"]), ts, faces,
                           None if steady is None else float(steady))
        except (ValueError, KeyError, TypeError):
            skipped[0] += 1


def _csv_frames(lines: Iterable[str], skipped: list[int]) -> Iterator[FrameRow]:
    rows = csv.DictReader(lines)
    need = {"frame", "timestamp", "faces", "track_id", "label", "confidence", "shown"}
    if not need <= set(rows.fieldnames or ()):
        raise SummaryError(f"missing columns {sorted(need - set(rows.fieldnames or ()))}")
    current: tuple[int, float] | None = None
    faces: list[FaceRow] = []
    for row in rows:
        try:
            if None in row.values():
                raise ValueError("a row with missing fields")
            key = (int(row["frame"]), float(row["timestamp"]))
            if not math.isfinite(key[1]):
                raise ValueError("a timestamp that is not a finite number")
            face = None if row["faces"] == "0" else FaceRow(
                int(row["track_id"]) if row["track_id"] else None,
                row["shown"] or row["label"], float(row["confidence"]))
        except (ValueError, TypeError):
            skipped[0] += 1
            continue
        if key != current:
            if current is not None:
                yield FrameRow(*current, tuple(faces))
            current, faces = key, []
        if face is not None:
            faces.append(face)
    if current is not None:
        yield FrameRow(*current, tuple(faces))


def iter_frames(path: Path, skipped: list[int]) -> Iterator[FrameRow]:
    """The frames of a fer-pi results file, read as a stream (a day of them at 30 FPS
    is a gigabyte); unreadable lines are counted in ``skipped[0]``."""
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("jsonl", "csv"):
        raise SummaryError(f"results must end in .jsonl or .csv: {path}")
    try:
        fh = open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
    except OSError as exc:
        raise SummaryError(f"cannot read results {path}: {exc.strerror or exc}") from None
    with fh:
        lines = _whole_lines(fh, skipped)
        try:
            yield from (_jsonl_frames if kind == "jsonl" else _csv_frames)(lines, skipped)
        except SummaryError as exc:
            raise SummaryError(f"not a fer-pi results file: {path} ({exc})") from None
        except OSError as exc:
            raise SummaryError(f"cannot read results {path}: {exc.strerror or exc}") from None


def iter_files(paths: Iterable[Path], skipped: list[int]) -> Iterator[FrameRow]:
    """The frames of several results files as one stream, in the order given."""
    for path in paths:
        yield from iter_frames(path, skipped)


def read_frames(path: Path) -> tuple[list[FrameRow], int]:
    """All frames of a results file in memory, and how many lines could not be read."""
    skipped = [0]
    frames = list(iter_frames(path, skipped))
    return frames, skipped[0]


def with_runs(frames: Iterable[FrameRow]) -> Iterator[tuple[int, FrameRow]]:
    """Each frame with its run, from 1: a frame number that does not grow is fer-pi
    restarted (frame numbers and track IDs begin again)."""
    run, last_frame = 1, None
    for fr in frames:
        if last_frame is not None and fr.frame <= last_frame:
            run += 1
        last_frame = fr.frame
        yield run, fr


def summarize(frames: Iterable[FrameRow], skipped: int = 0, min_frames: int = 1,
              by: str | None = None) -> dict:
    """One pass over the frames. ``min_frames``: tracks seen in fewer frames (a passing
    false detection) are left out, of the room's shares too, and counted. ``by`` (a key
    of PERIODS) adds the room per period of local time: faces seen, face-frames, shares."""
    tracks: dict[tuple[int, int], TrackSummary] = {}
    room: Counter = Counter()
    untracked = n_frames = with_faces = 0
    run = 1
    t_min, t_max = float("inf"), float("-inf")
    periods: dict[str, PeriodCounts] = {}
    minute_names: dict[int, str] = {}  # every period is whole minutes: name each minute once
    for run, fr in with_runs(frames):
        n_frames += 1
        with_faces += bool(fr.faces)
        t_min, t_max = min(t_min, fr.timestamp), max(t_max, fr.timestamp)
        period = None
        if by:
            minute = int(fr.timestamp // 60)
            name = minute_names.get(minute)
            if name is None:
                name = minute_names[minute] = period_name(minute, by)
            period = periods.setdefault(name, PeriodCounts())
            period.frames += 1
        for face in fr.faces:
            room[face.shown] += 1
            if face.track_id is None:
                untracked += 1
                if period is not None:
                    period.untracked[face.shown] += 1
                continue
            key = (run, face.track_id)
            if period is not None:
                period.tracks.setdefault(key, Counter())[face.shown] += 1
            tr = tracks.setdefault(key, TrackSummary(run, face.track_id, fr.timestamp,
                                                     fr.timestamp))
            tr.seen(fr)
            tr.labels[face.shown] += 1
            tr.confidence_sum += face.confidence
    short = [k for k, t in tracks.items() if t.frames < min_frames]
    for k in short:
        room.subtract(tracks.pop(k).labels)
    room = +room  # drop the labels left at zero
    face_frames = sum(room.values())
    summary = {
        "frames": n_frames,
        "runs": run if n_frames else 0,
        "skipped_lines": skipped,
        "seconds": round(t_max - t_min, 3) if n_frames else 0.0,
        "first_t": round(t_min, 3) if n_frames else None,
        "last_t": round(t_max, 3) if n_frames else None,
        "frames_with_faces": with_faces,
        "faces_tracked": len(tracks),
        "short_tracks_left_out": len(short),
        "untracked_face_frames": untracked,
        "room": {"face_frames": face_frames, "most_shown": most_shown(room),
                 "shares": shares(room)},
        "tracks": [tracks[k].to_dict() for k in sorted(tracks)],
    }
    if by:
        left_out = set(short)
        summary["by"] = by
        summary["periods"] = [periods[k].to_dict(k, left_out) for k in sorted(periods)]
    return summary


def summarize_files(paths: list[Path], min_frames: int = 1, by: str | None = None) -> dict:
    skipped = [0]
    summary = summarize(iter_files(paths, skipped), 0, min_frames, by)
    summary["skipped_lines"] = skipped[0]
    if skipped[0] and not summary["frames"]:
        raise SummaryError(f"not a fer-pi results file: {', '.join(map(str, paths))} "
                           "(no readable frame)")
    return summary


def _shares_text(shares: dict[str, float], most: int = 3) -> str:
    items = list(shares.items())
    text = ", ".join(f"{k} {100 * v:.0f} %" for k, v in items[:most])
    return text + (f" (+{len(items) - most} more)" if len(items) > most else "")


def render_text(what: str, s: dict) -> str:
    many = s["runs"] > 1
    lines = [f"{what}: {s['frames']} frames over {s['seconds']:.1f} s, "
             + (f"{s['runs']} runs (fer-pi restarted), " if many else "")
             + f"{s['frames_with_faces']} with faces, {s['faces_tracked']} tracked face(s)"
             + (f", {s['skipped_lines']} unreadable line(s) skipped" if s["skipped_lines"] else "")]
    if s["short_tracks_left_out"]:
        lines.append(f"{s['short_tracks_left_out']} track(s) seen in fewer frames than "
                     "--min-frames left out")
    if s["untracked_face_frames"]:
        lines.append(f"{s['untracked_face_frames']} face-frame(s) without a track ID (--no-track)")
    if s["tracks"]:
        head = "run:face" if many else "face"
        lines.append(f"{head:>8} {'from s':>8} {'to s':>8} {'seconds':>8} {'frames':>7}  "
                     f"{'most shown':<11} shares of its frames")
        for t in s["tracks"]:
            face = f"{t['run']}:{t['track_id']}" if many else str(t["track_id"])
            lines.append(f"{face:>8} {t['first_t']:>8.2f} {t['last_t']:>8.2f} "
                         f"{t['seconds']:>8.2f} {t['frames']:>7}  {t['most_shown']:<11} "
                         f"{_shares_text(t['shares'])}")
    if s["room"]["face_frames"]:
        lines.append(f"all faces: {_shares_text(s['room']['shares'], most=8)}")
    if s.get("periods"):
        lines.append(f"{'by ' + s['by']:<16} {'frames':>8} {'faces':>6} {'face-frames':>11}  "
                     f"{'most shown':<11} shares")
        for per in s["periods"]:
            lines.append(f"{per['period']:<16} {per['frames']:>8} {per['faces']:>6} "
                         f"{per['face_frames']:>11}  {per['most_shown']:<11} "
                         f"{_shares_text(per['shares'])}")
    return "\n".join(lines)


def write_tracks_csv(path: Path, s: dict) -> None:
    _write_csv(path, s["tracks"], ["run", "track_id", "first_t", "last_t", "seconds", "frames",
                                   "most_shown", "mean_confidence"])


def write_periods_csv(path: Path, s: dict) -> None:
    _write_csv(path, s.get("periods", []), ["period", "frames", "faces", "face_frames",
                                            "most_shown"])


def write_report(path: Path, paths: list[Path], what: str, summary: dict,
                 min_frames: int) -> None:
    """The report reads the files again: for its periods when --by was not given (chosen
    from the span), and for its timeline (slices of the span, known after the first read)."""
    from fer_pi.core.atomic import write_whole
    from fer_pi.outputs.report import auto_by, render_report, timeline

    if "periods" not in summary:
        summary = summarize_files(paths, min_frames, auto_by(summary["seconds"]))
    line = timeline(iter_files(paths, [0]), summary)
    try:
        write_whole(path, render_report(what, summary, line).encode("utf-8"))
    except OSError as exc:
        raise SummaryError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_csv(path: Path, items: list[dict], columns: list[str]) -> None:
    """The columns, then a share column per label the items hold: FER2013's order first,
    then any other."""
    seen = {k for it in items for k in it["shares"]}
    labels = [*LABELS, UNCERTAIN] + sorted(seen - {*LABELS, UNCERTAIN})
    rows = [[*columns, *(f"share_{k}" for k in labels)]]
    rows += [[*(it[c] for c in columns), *(it["shares"].get(k, 0.0) for k in labels)]
             for it in items]
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    try:
        path.write_text(buf.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise SummaryError(f"cannot write {path}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fer-summary", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="results files written by fer-pi --output (.jsonl "
                   "or .csv), read as one stream in the order given")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--csv", metavar="FILE", help="also write one row per tracked face to FILE")
    p.add_argument("--min-frames", type=int, default=1, metavar="N",
                   help="leave out faces tracked in fewer than N frames (brief false "
                   "detections); default 1: keep all")
    p.add_argument("--by", choices=sorted(PERIODS), help="also the room per minute, hour or "
                   "day of local time: faces seen, face-frames, shares of shown labels")
    p.add_argument("--by-csv", metavar="FILE", help="with --by: also write one row per period "
                   "to FILE")
    p.add_argument("--report", metavar="FILE", help="also write a self-contained HTML page to "
                   "FILE (opens with no server): the room over time, each face, the periods "
                   "(--by, else chosen from the span)")
    args = p.parse_args(argv)
    if args.by_csv and not args.by:
        p.error("--by-csv needs --by minute|hour|day")
    if args.min_frames < 1:
        p.error(f"--min-frames must be at least 1, not {args.min_frames}")
    paths = [Path(r) for r in args.results]
    what = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files ({paths[0]} ... {paths[-1]})"
    try:
        summary = summarize_files(paths, args.min_frames, args.by)
    except SummaryError as exc:
        print(f"fer-summary: {exc}", file=sys.stderr)
        return EXIT_INPUT
    try:
        if args.csv:
            write_tracks_csv(Path(args.csv), summary)
        if args.by_csv:
            write_periods_csv(Path(args.by_csv), summary)
        if args.report:
            write_report(Path(args.report), paths, what, summary, args.min_frames)
    except SummaryError as exc:
        print(f"fer-summary: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    try:
        print(json.dumps(summary, indent=1) if args.json else render_text(what, summary),
              flush=True)
    except BrokenPipeError:  # `fer-summary ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # and Python's own flush at exit stays quiet
    return 0


if __name__ == "__main__":
    sys.exit(main())
