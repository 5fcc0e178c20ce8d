"""fer-summary --report: a session as one self-contained HTML page to keep, mail or print.

Everything is in the file (style inline, charts as inline SVG, no script that runs, no
font or picture fetched): it opens from a USB stick with no server and no network. Its figures are
fer-summary's own (the summary dict, embedded as JSON too, for whoever wants to read them
back): the room's shown labels over time, each face's time in view and shown labels, and
the periods table. Labels and numbers only, as every output of fer-pi.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections import Counter
from collections.abc import Iterable

from fer_pi.core.colours import css_colour
from fer_pi.outputs.summary import WALL_CLOCK_FROM, FrameRow, with_runs

TIMELINE_BINS = 60
CHART_W, CHART_H = 900, 180
# --report without --by: periods that keep the table short
AUTO_BY = ((3 * 3600, "minute"), (3 * 86400, "hour"))


def auto_by(seconds: float) -> str:
    """The --by of a report that was given none: minutes for up to 3 h, hours up to 3 days,
    else days."""
    return next((by for limit, by in AUTO_BY if seconds <= limit), "day")


def timeline(frames: Iterable[FrameRow], summary: dict, bins: int = TIMELINE_BINS) -> dict:
    """The room's shown labels in ``bins`` equal slices of the summary's span: frames and
    face-frames per label in each. Faces the summary left out (--min-frames) are left out
    here too, so the slices add up to the summary's room."""
    first, last = summary["first_t"], summary["last_t"]
    if first is None:
        return {"start": 0.0, "step": 1.0, "bins": []}
    span = max(last - first, 1e-6)
    n = min(bins, math.ceil(span))  # slices of a second at least
    step = span / n
    kept = {(t["run"], t["track_id"]) for t in summary["tracks"]}
    frames_in = [0] * n
    counts = [Counter() for _ in range(n)]
    for run, fr in with_runs(frames):
        i = min(n - 1, max(0, int((fr.timestamp - first) / step)))
        frames_in[i] += 1
        for face in fr.faces:
            if face.track_id is None or (run, face.track_id) in kept:
                counts[i][face.shown] += 1
    return {"start": first, "step": step,
            "bins": [{"frames": f, "counts": dict(c)} for f, c in zip(frames_in, counts,
                                                                        strict=True)]}


def _when(t: float) -> str:
    """A camera's wall clock as local time; a clip's position as minutes and seconds."""
    if t >= WALL_CLOCK_FROM:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    m, s = divmod(t, 60)
    return f"{int(m)}:{s:04.1f}"


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _labels_in(summary: dict, line: dict) -> list[str]:
    seen = set(summary["room"]["shares"])
    for t in summary["tracks"]:
        seen |= set(t["shares"])
    for b in line["bins"]:
        seen |= set(b["counts"])
    return sorted(seen, key=lambda k: -summary["room"]["shares"].get(k, 0.0))


def _timeline_svg(line: dict) -> str:
    """Stacked bars: the height is faces per frame in the slice, split by shown label."""
    bins = line["bins"]
    peak = max((sum(b["counts"].values()) / b["frames"] for b in bins if b["frames"]),
               default=0.0)
    top = max(1.0, math.ceil(peak))
    w = CHART_W / max(1, len(bins))
    parts = [f'<svg class="chart" viewBox="0 -20 {CHART_W} {CHART_H + 40}" role="img" '
             f'aria-label="faces per frame by shown label over time" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for k in range(int(top) + 1):
        y = CHART_H - CHART_H * k / top
        parts.append(f'<line x1="0" x2="{CHART_W}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
    for i, b in enumerate(bins):
        y = float(CHART_H)
        for label, n in sorted(b["counts"].items()):
            h = CHART_H * n / b["frames"] / top
            y -= h
            parts.append(f'<rect x="{i * w + 0.5:.1f}" y="{y:.1f}" width="{max(w - 1, 1):.1f}" '
                         f'height="{h:.1f}" fill="{css_colour(label)}"><title>{_e(label)}: '
                         f'{n / b["frames"]:.2f} faces a frame</title></rect>')
    end = line["start"] + line["step"] * len(bins)
    parts.append(f'<text x="0" y="{CHART_H + 16}">{_e(_when(line["start"]))}</text>')
    parts.append(f'<text x="{CHART_W}" y="{CHART_H + 16}" text-anchor="end">'
                 f'{_e(_when(end))}</text>')
    parts.append(f'<text x="0" y="-6">{int(top)} face{"s" if top > 1 else ""} a frame</text>')
    parts.append("</svg>")
    return "".join(parts)


def _share_bar(shares: dict[str, float]) -> str:
    cells = "".join(f'<span style="width:{100 * v:.2f}%;background:{css_colour(k)}" '
                    f'title="{_e(k)} {100 * v:.0f} %"></span>' for k, v in shares.items())
    return f'<span class="sharebar">{cells}</span>'


def _share_text(shares: dict[str, float]) -> str:
    return ", ".join(f"{_e(k)} {100 * v:.0f} %" for k, v in shares.items())


def _legend(labels: list[str]) -> str:
    return "".join(f'<span><i style="background:{css_colour(k)}"></i>{_e(k)}</span>'
                   for k in labels)


STYLE = """
body{font:15px/1.45 system-ui,sans-serif;color:#1c1c24;margin:24px auto;max-width:960px;
padding:0 16px}h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.dim{color:#5a5a66}table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #e2e2ea;vertical-align:middle}
th{font-weight:600;color:#44444f}td.n,th.n{text-align:right}
.facts{display:flex;flex-wrap:wrap;gap:6px 22px;margin:10px 0}.facts b{font-size:18px}
.chart{width:100%;height:auto}.chart .grid{stroke:#e2e2ea}.chart text{font-size:13px;
fill:#5a5a66}.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:6px 0}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;
vertical-align:-1px}.sharebar{display:flex;width:160px;height:12px;border-radius:3px;
overflow:hidden;background:#eee}.sharebar span{display:block;height:100%}
.empty{padding:24px;background:#f4f4f8;border-radius:8px}
@media print{body{margin:0}}
"""


def render_report(what: str, summary: dict, line: dict) -> str:
    """The page. ``what`` names the files read; ``line``: timeline()."""
    s = summary
    labels = _labels_in(s, line)
    many = s["runs"] > 1
    facts = [("frames", f"{s['frames']:,}"), ("span", _duration(s["seconds"])),
             ("with faces", f"{s['frames_with_faces']:,}"),
             ("faces tracked", f"{s['faces_tracked']:,}")]
    if many:
        facts.append(("runs", f"{s['runs']} (fer-pi restarted)"))
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>fer-pi report: {_e(what)}</title><style>{STYLE}</style></head><body>",
           "<h1>fer-pi: what the board showed</h1>",
           f'<p class="dim">{_e(what)}'
           + (f", from {_e(_when(s['first_t']))} to {_e(_when(s['last_t']))}"
              if s["first_t"] is not None else "") + "</p>",
           '<div class="facts">' + "".join(f'<span>{_e(k)} <b>{_e(v)}</b></span>'
                                           for k, v in facts) + "</div>"]
    notes = []
    if s["skipped_lines"]:
        notes.append(f"{s['skipped_lines']} unreadable line(s) skipped")
    if s["short_tracks_left_out"]:
        notes.append(f"{s['short_tracks_left_out']} face(s) seen in fewer frames than "
                     "--min-frames left out")
    if s["untracked_face_frames"]:
        notes.append(f"{s['untracked_face_frames']} face-frame(s) without a track ID")
    if notes:
        out.append(f'<p class="dim">{_e("; ".join(notes))}.</p>')
    if not s["room"]["face_frames"]:
        out.append('<p class="empty" id="empty">No face was shown in '
                   + (f"these {s['frames']:,} frames ({_e(_duration(s['seconds']))})."
                      if s["frames"] else "this file: it holds no frame.") + "</p>")
    else:
        out += ["<h2>The room over time</h2>",
                f'<p class="dim">Faces a frame by shown label, in {len(line["bins"])} '
                f'slices of {_e(_duration(line["step"]))}. All faces: '
                f'{_share_text(s["room"]["shares"])}.</p>',
                _timeline_svg(line), f'<div class="legend">{_legend(labels)}</div>']
    if s["tracks"]:
        out += ["<h2>Faces</h2>", '<table id="faces"><thead><tr>'
                f'<th>{"run:face" if many else "face"}</th><th>from</th><th>to</th>'
                '<th class="n">seconds</th><th class="n">frames</th><th>most shown</th>'
                "<th>shown labels</th><th></th></tr></thead><tbody>"]
        for t in s["tracks"]:
            face = f"{t['run']}:{t['track_id']}" if many else str(t["track_id"])
            out.append(f"<tr><td>{_e(face)}</td><td>{_e(_when(t['first_t']))}</td>"
                       f"<td>{_e(_when(t['last_t']))}</td><td class=n>{t['seconds']:.2f}</td>"
                       f"<td class=n>{t['frames']}</td><td>{_e(t['most_shown'])}</td>"
                       f"<td>{_share_bar(t['shares'])}</td>"
                       f"<td class=dim>{_share_text(t['shares'])}</td></tr>")
        out.append("</tbody></table>")
    if s.get("periods"):
        out += [f"<h2>By {_e(s['by'])}</h2>", '<table id="periods"><thead><tr><th>period</th>'
                '<th class="n">frames</th><th class="n">faces</th><th class="n">face-frames</th>'
                "<th>most shown</th><th>shown labels</th><th></th></tr></thead><tbody>"]
        for p in s["periods"]:
            out.append(f"<tr><td>{_e(p['period'])}</td><td class=n>{p['frames']}</td>"
                       f"<td class=n>{p['faces']}</td><td class=n>{p['face_frames']}</td>"
                       f"<td>{_e(p['most_shown'])}</td><td>{_share_bar(p['shares'])}</td>"
                       f"<td class=dim>{_share_text(p['shares'])}</td></tr>")
        out.append("</tbody></table>")
    data = json.dumps(s).replace("</", "<\\/")
    out += ['<p class="dim">Made by fer-summary. Shares are of the frames a face was in; '
            "labels are the board's shown labels. Labels and numbers only: fer-pi keeps no "
            "picture.</p>",
            f'<script type="application/json" id="summary">{data}</script>', "</body></html>"]
    return "\n".join(out) + "\n"
