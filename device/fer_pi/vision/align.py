"""Where a face with landmarks is, how big and how tilted, in the framing of a Haar box.

The model learnt faces framed as the Haar cascade frames them (FER2013's were cut that way,
and the trainer's ``input.face`` is relative to a Haar box). A learned detector's box frames
a face differently and, for a tilted head, is the upright rectangle around a turned face; its
landmarks say where the face really is. These pure functions turn the five points into the
box Haar would have drawn around the same face held upright, and the angle to turn it by.
"""

from __future__ import annotations

import math

# Haar's box (frontalface_alt2, the device's settings) about the same faces' YuNet landmarks,
# on 155 photographs of data/realfaces performers 01-15 that both found (the development
# people; 16-30 are kept for scoring): its side is 2.58 times the distance from the eyes'
# midpoint to the mouth's (interquartile range 0.17), its centre 0.30 of that distance below
# the eyes' midpoint along the face's own axis, and not aside (-0.02).
HAAR_SIDE_PER_EYE_MOUTH = 2.58
HAAR_CENTRE_BELOW_EYES = 0.30


def points(landmarks) -> tuple[tuple[float, float], ...]:
    """Landmarks as a detector gives them (x, y, x, y ...) as (x, y) pairs."""
    return tuple((float(landmarks[i]), float(landmarks[i + 1]))
                 for i in range(0, len(landmarks) - 1, 2))


def roll_deg(landmarks) -> float:
    """The eye line's angle in degrees, from the face's right eye (on the picture's left) to its
    left; positive where the face leans to the picture's right (clockwise on the screen)."""
    (rx, ry), (lx, ly) = points(landmarks)[:2]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def upright_frame(landmarks) -> tuple[float, float, float, float]:
    """(cx, cy, side, roll): the centre and side of the Haar box the face would have upright,
    and the angle the crop is turned by to make it so."""
    pts = points(landmarks)
    (rx, ry), (lx, ly) = pts[0], pts[1]
    ex, ey = (rx + lx) / 2.0, (ry + ly) / 2.0
    (ax, ay), (bx, by) = pts[3], pts[4]
    mx, my = (ax + bx) / 2.0, (ay + by) / 2.0
    eye_mouth = max(1.0, math.hypot(mx - ex, my - ey))
    a = math.atan2(ly - ry, lx - rx)
    down = (-math.sin(a), math.cos(a))  # the face's own "down", perpendicular to its eyes
    k = HAAR_CENTRE_BELOW_EYES * eye_mouth
    return (ex + k * down[0], ey + k * down[1], HAAR_SIDE_PER_EYE_MOUTH * eye_mouth,
            math.degrees(a))
