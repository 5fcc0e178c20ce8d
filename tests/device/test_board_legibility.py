"""The board read across a room: at each screen size and number of faces, what the board
drew (Board.drawn: every text, its height, colour and background) is checked against the
rules of docs/board.md: the shown label is the largest text, nothing meant for the room is
small, every text has WCAG AA contrast, each face tells one story, cards fill from the top."""

from __future__ import annotations

import math

import pytest

from fer_pi.board.layout import contrast
from fer_pi.core.labels import UNCERTAIN
from fer_pi.devtools.screenshots import FACE_COUNTS, SIZES, render, scene


def _labels(board):
    return {t.face: t for t in board.drawn if t.role == "label"}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("n", FACE_COUNTS)
def test_sizes_and_contrast_at_every_screen_and_face_count(size, n):
    _, board = render(size, scene(n))
    h = size[1]
    room = [t for t in board.drawn if t.room]
    assert room, "nothing drawn"
    small = [t for t in room if t.height < math.floor(0.03 * h) or t.height < 14]
    assert not small, [(t.role, t.text, t.height) for t in small]
    low = [t for t in room if contrast(t.fg, t.bg) < 4.5]
    assert not low, [(t.role, t.text, round(contrast(t.fg, t.bg), 2)) for t in low]
    labels = _labels(board)
    assert sorted(labels) == list(range(1, n + 1))  # every face has its label on the panel
    floor = 0.08 if n <= 2 else 0.05
    for t in labels.values():
        assert t.height >= floor * h, (t.text, t.height, h)
        # the largest thing on the board: no other text of the room is higher
        assert t.height >= max(o.height for o in room if o.role not in ("label", "empty"))
    if n == 0:
        (empty,) = [t for t in room if t.role == "empty"][:1] or [None]
        assert empty is not None and empty.height >= 0.05 * h


@pytest.mark.parametrize("size", [(800, 480), (1920, 1080), (480, 800)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_tag_card_and_bars_tell_one_story(size):
    """Each face's tag on the picture and its card say the same label; an uncertain face
    says it is uncertain, what it leans to, and shows no figure anywhere."""
    _, board = render(size, scene(2, uncertain=True))
    labels = _labels(board)
    tags = {t.face: t.text for t in board.drawn if t.role == "tag"}
    details = {t.face: t.text for t in board.drawn if t.role == "detail"}
    for fid, lab in labels.items():
        assert lab.text in tags[fid] or tags[fid].startswith(f"#{fid} {lab.text}")
    assert labels[1].text == UNCERTAIN and tags[1] == f"#1 {UNCERTAIN}"
    mine = [t.text for t in board.drawn if t.face == 1]
    assert not any("%" in x for x in mine), mine
    if 1 in details:
        assert "maybe happy" in details[1]
    assert "%" in tags[2] and labels[2].text in tags[2]


def test_cards_fill_from_the_top_and_a_leaving_face_closes_its_slot():
    """Three faces, the first leaves: its card fades, then its slot closes and the others
    move up one, keeping their order; a new face comes in after the last."""
    import dataclasses

    from fer_pi.board.cards import CardDeck

    deck = CardDeck(fade_s=1.0)
    three = scene(4)
    res = dataclasses.replace(three, faces=three.faces[:3])
    deck.update(res)
    assert {c.face.track_id: c.slot for c in deck.cards.values()} == {1: 0, 2: 1, 3: 2}
    t0 = res.frame.timestamp

    def at(t, faces):
        frame = dataclasses.replace(res.frame, timestamp=t)
        return dataclasses.replace(res, frame=frame, faces=faces)

    deck.update(at(t0 + 0.5, res.faces[1:]))  # face 1 left: still fading, slots kept
    assert {c.face.track_id: c.slot for c in deck.cards.values()} == {1: 0, 2: 1, 3: 2}
    deck.update(at(t0 + 1.6, res.faces[1:]))  # faded out: the slot closes
    assert {c.face.track_id: c.slot for c in deck.cards.values()} == {2: 0, 3: 1}
    deck.update(at(t0 + 1.7, res.faces[1:] + (three.faces[3],)))
    assert {c.face.track_id: c.slot for c in deck.cards.values()} == {2: 0, 3: 1, 4: 2}


def test_an_empty_room_says_so_large_and_says_what_will_happen():
    _, board = render((800, 480), scene(0))
    roles = {t.role for t in board.drawn}
    assert {"empty", "hint"} <= roles
    empty = [t for t in board.drawn if t.role == "empty"]
    assert " ".join(t.text for t in empty) == "no faces in view"
    assert min(t.height for t in empty) >= 0.06 * 480
