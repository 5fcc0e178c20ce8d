"""The board as a room sees it, at every screen size, drawn off-screen: for docs/board.md,
the README, and the legibility tests (which draw the same scenes and read what was drawn).

    python -m fer_pi.devtools.screenshots docs/img [--scale 0.5]

The faces are the bundled astronaut photo placed into a 640x480 frame; their labels and
probabilities are set by hand (a board is drawn from records: no model runs here).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from fer_pi.core.labels import LABELS, UNCERTAIN
from fer_pi.core.records import Face, FaceBox, Frame, FrameResult, Prediction, room_summary

SIZES = ((800, 480), (1280, 720), (1920, 1080), (480, 800), (1080, 1920))
FACE_COUNTS = (0, 1, 2, 4, 6)
# (shown label, its probability, held seconds) for the faces of a scene, in order
_MOODS = (("happy", 0.86, 4.0), ("surprise", 0.71, 2.5), ("neutral", 0.64, 9.0),
          ("sad", 0.58, 1.5), ("angry", 0.62, 3.0), ("fear", 0.55, 0.8))


def _probs(label: str, p: float) -> tuple[float, ...]:
    rest = (1.0 - p) / (len(LABELS) - 1)
    return tuple(p if k == label else rest for k in LABELS)


def scene(n: int, uncertain: bool = False, t: float = 10.0) -> FrameResult:
    """n faces of the astronaut in a 640x480 frame, each with a track ID and a held label;
    ``uncertain``: the first face leans to happy at 41 % and is shown as uncertain."""
    from fer_pi.sources.demo import Placement, astronaut_bgr, compose

    side = {0: 300, 1: 300, 2: 260, 4: 200, 6: 150}.get(n, 150)
    cols = 1 if n <= 1 else 2 if n <= 4 else 3
    places = [Placement(20 + (i % cols) * (620 // cols), 10 + (i // cols) * (470 // 2), side)
              for i in range(n)]
    image = compose(places, face=astronaut_bgr()) if n else compose([], noise=2,
                                                                   rng=np.random.default_rng(0))
    faces = []
    for i, pl in enumerate(places):
        label, p, held = _MOODS[i % len(_MOODS)]
        box = FaceBox(pl.x + int(pl.size * 0.33), pl.y + int(pl.size * 0.1),
                      int(pl.size * 0.3), int(pl.size * 0.3))
        probs = _probs(label, p)
        shown = label
        if uncertain and i == 0:
            probs, shown = _probs("happy", 0.41), UNCERTAIN
        faces.append(Face(box, Prediction(probs, LABELS), i + 1, probs, shown, held))
    frame = Frame(0, t, image, "screenshots")
    return FrameResult(frame, tuple(faces), room=room_summary(faces, LABELS))


def render(size: tuple[int, int], result: FrameResult | None, privacy: str = "off",
           status: str = ""):
    """(surface, board) with the scene drawn: an empty room is a frame with no faces."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame

    from fer_pi.board.paint import Board, BoardStats

    pygame.display.init()
    surface = pygame.Surface(size)
    board = Board(LABELS, privacy=privacy)
    board.draw(surface, result, BoardStats(fps=15.0, status=status), overlay=False)
    return surface, board


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_pi.devtools.screenshots",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder for the pictures")
    p.add_argument("--scale", type=float, default=0.5, help="pictures at this scale (docs)")
    args = p.parse_args(argv)
    import cv2

    from fer_pi.board.paint import frame_to_array

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shots = [(f"board_{w}x{h}_{n}.jpg", (w, h), scene(n), "off")
             for (w, h) in SIZES for n in (1, 4)]
    shots += [(f"board_{w}x{h}_{name}.jpg", (w, h), res, priv)
              for (w, h) in ((1920, 1080), (800, 480))
              for name, res, priv in (("uncertain", scene(2, uncertain=True), "off"),
                                      ("empty", scene(0), "off"),
                                      ("privacy", scene(2), "pixelate"))]
    for name, size, result, privacy in shots:
        surface, _ = render(size, result, privacy)
        rgb = frame_to_array(surface)
        if args.scale != 1.0:
            rgb = cv2.resize(rgb, None, fx=args.scale, fy=args.scale,
                             interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 82])
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
