"""The board drawn off-screen under SDL_VIDEODRIVER=dummy, saved to PNG, checked for its parts."""

from __future__ import annotations

import numpy as np
import pygame
import pytest

from fer_pi.board import BACKGROUND, PANEL, Board, BoardStats, colour_for, frame_to_array, layout
from fer_pi.labels import LABELS
from fer_pi.schema import Face, FaceBox, Frame, FrameResult, Prediction
from fer_pi.synth import Placement, compose


def _result(face_img, n_faces=2):
    img = compose([Placement(0, 90, 310), Placement(325, 90, 310)], face=face_img)
    faces = []
    for i in range(n_faces):
        probs = np.full(7, 0.02)
        probs[3 if i == 0 else 5] = 0.88
        faces.append(Face(FaceBox(100 + 320 * (i % 2), 150, 90, 90),
                          Prediction(tuple(probs / probs.sum()), LABELS)))
    return FrameResult(Frame(0, 0.0, img), tuple(faces))


def _count(arr, colour, tol=8):
    return int(np.all(np.abs(arr.astype(int) - colour) <= tol, axis=2).sum())


@pytest.mark.parametrize("size", [(800, 480), (1920, 1080)])
def test_board_elements(face, tmp_path, size):
    pygame.display.init()
    surface = pygame.Surface(size)
    board = Board(LABELS)
    board.draw(surface, _result(face), BoardStats(fps=24.5, timings_ms={"detect": 12.0}))
    pygame.image.save(surface, str(tmp_path / "board.png"))
    arr = frame_to_array(surface)
    lay = layout(size)
    # the panel is on the right and stays readable on the 7" screen
    assert lay.panel.w >= 240 and lay.picture.w >= size[0] // 2
    panel = arr[:, lay.panel.x:]
    picture = arr[:, : lay.panel.x]
    assert _count(panel, PANEL) > 0.2 * panel.shape[0] * panel.shape[1]
    # the boxes and tags in each face's emotion colour, on the picture
    happy, surprise = colour_for("happy"), colour_for("surprise")
    assert _count(picture, happy) > 50 and _count(picture, surprise) > 50
    # cards: the winning bar of each face is long, in its emotion's colour, in the panel
    assert _count(panel, happy) > 200 and _count(panel, surprise) > 200
    # the overlay's dark strip at the bottom of the picture carries text
    strip = picture[-lay.unit:, : picture.shape[1] // 2]
    assert (strip.max(axis=2) > 200).sum() > 20
    # the picture itself is there: not background everywhere
    assert _count(picture, BACKGROUND, tol=2) < 0.5 * picture.shape[0] * picture.shape[1]
    loaded = pygame.image.load(str(tmp_path / "board.png"))
    assert loaded.get_size() == size


def test_board_without_faces_and_overlay_off(face):
    pygame.display.init()
    surface = pygame.Surface((800, 480))
    board = Board(LABELS)
    result = _result(face, n_faces=0)
    board.draw(surface, result, BoardStats(), overlay=False)
    panel = frame_to_array(surface)[:, layout((800, 480)).panel.x:]
    for label in LABELS:
        assert _count(panel, colour_for(label), tol=0) < 20  # no cards, no bars
    assert _count(panel, PANEL) > 0.8 * panel.shape[0] * panel.shape[1]


def test_many_faces_fit_the_small_screen(face):
    pygame.display.init()
    surface = pygame.Surface((800, 480))
    board = Board(LABELS, max_cards=12)
    base = _result(face)
    faces = tuple(Face(FaceBox(10 * i, 10, 40, 40), base.faces[i % 2].prediction)
                  for i in range(12))
    board.draw(surface, FrameResult(base.frame, faces), BoardStats())  # must not raise


def test_display_keys(face, monkeypatch):
    """Keys as pygame events: d toggles the overlay, m the mirror, q quits."""
    from fer_pi.display import PygameDisplay
    from fer_pi.pipeline import RunStats

    d = PygameDisplay(LABELS, fullscreen=False, window_size=(800, 480))
    d.open()
    try:
        stats = RunStats()
        assert d.show(_result(face), stats)
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_d))
        assert d.show(_result(face), stats) and d.overlay is False
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_m))
        assert d.show(_result(face), stats) and d.board.mirror is True
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q))
        assert d.show(_result(face), stats) is False
    finally:
        d.close()


def test_mirror_flips_the_picture_boxes_and_thumbnails_not_the_result(face):
    """One face left of centre: mirrored, its box is drawn as far right of the picture's
    centre, its thumbnail is the flipped one, and the FrameResult is unchanged."""
    result = _result(face, n_faces=1)
    box_before = result.faces[0].box
    pic = layout((800, 480)).picture
    colour = colour_for(result.faces[0].shown_label)
    centre, thumb = {}, {}
    for mirror in (False, True):
        board = Board(LABELS, mirror=mirror)
        surface = pygame.Surface((800, 480))
        board.draw(surface, result, BoardStats(), overlay=False)
        hit = np.all(np.abs(frame_to_array(surface)[:, : pic.w].astype(int) - colour) <= 8, axis=2)
        per_row = hit.sum(1)
        sides = (per_row > 0) & (per_row <= 12)  # rows crossing only the box's two sides
        centre[mirror] = np.nonzero(hit[sides])[1].mean()
        thumb[mirror] = next(iter(board.cards.values())).thumb
    assert centre[False] < pic.w / 2 < centre[True]
    assert abs(centre[False] + centre[True] - pic.w) <= 3  # symmetric about the centre line
    assert np.array_equal(thumb[True], thumb[False][:, ::-1])
    assert result.faces[0].box == box_before
