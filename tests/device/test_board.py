"""The board drawn off-screen under SDL_VIDEODRIVER=dummy, saved to PNG, checked for its parts."""

from __future__ import annotations

import platform

import numpy as np
import pygame
import pytest

from fer_pi.board.layout import BACKGROUND, CARD, PANEL, TEXT, colour_for, layout
from fer_pi.board.paint import Board, BoardStats, frame_to_array
from fer_pi.core.labels import LABELS
from fer_pi.core.records import Face, FaceBox, Frame, FrameResult, Prediction
from fer_pi.sources.demo import Placement, compose


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
    assert _count(panel, PANEL) + _count(panel, CARD) > 0.3 * panel.shape[0] * panel.shape[1]
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
    board.draw(surface, FrameResult(base.frame, faces), BoardStats())
    assert len(board.cards) == 12
    # every face gets a line (compact cards) in its label's colour, inside the panel: count
    # the runs of rows below the summary line that hold either label's colour
    panel = frame_to_array(surface)[:, layout((800, 480)).panel.x:]
    rows = np.zeros(panel.shape[0], bool)
    for label in ("happy", "surprise"):
        rows |= np.all(np.abs(panel.astype(int) - colour_for(label)) <= 8, axis=2).any(axis=1)
    edges = np.flatnonzero(np.diff(rows.astype(int)) == 1)
    assert len(edges) >= 12 + 1, len(edges)  # the summary's chips, then twelve lines
    assert not rows[-2:].any(), "nothing runs off the bottom of the panel"


def test_display_keys(face, monkeypatch):
    """Keys as pygame events: d toggles the overlay, m the mirror, q quits (the loop polls
    them, handle_events, after each show)."""
    from fer_pi.board.display import PygameDisplay
    from fer_pi.core.stats import RunStats

    d = PygameDisplay(LABELS, fullscreen=False, window_size=(800, 480))
    d.open()
    try:
        stats = RunStats()
        assert d.show(_result(face), stats)
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_d))
        assert d.handle_events() and d.show(_result(face), stats) and d.overlay is False
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_m))
        assert d.handle_events() and d.show(_result(face), stats) and d.board.mirror is True
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q))
        assert d.handle_events() is False
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


def _picture_geometry(size, frame_shape):
    """Where the board puts the camera picture: fitted to the picture area, centred across
    it and at its top (a spare band goes below, under the overlay)."""
    pic = layout(size).picture
    ih, iw = frame_shape[:2]
    scale = min(pic.w / iw, pic.h / ih)
    tw, th = int(iw * scale), int(ih * scale)
    return scale, pic.x + (pic.w - tw) // 2, pic.y, tw, th


def test_privacy_pixelates_faces_or_drops_the_picture(face):
    result = _result(face, n_faces=2)
    size = (800, 480)
    scale, ox, oy, tw, th = _picture_geometry(size, result.frame.image.shape)
    drawn, boards = {}, {}
    for privacy in ("off", "pixelate", "no_picture"):
        board = Board(LABELS, privacy=privacy)
        surface = pygame.Surface(size)
        board.draw(surface, result, BoardStats(), overlay=False)
        drawn[privacy] = frame_to_array(surface)[oy:oy + th, ox:ox + tw].astype(int)
        boards[privacy] = board
    inside = np.zeros((th, tw), bool)
    for f in result.faces:  # the inner half of each face box, clear of box lines and tags
        b = f.box
        inside[int((b.y + b.h / 4) * scale):int((b.y + 3 * b.h / 4) * scale),
               int((b.x + b.w / 4) * scale):int((b.x + 3 * b.w / 4) * scale)] = True

    def colours(arr, mask):
        return len({tuple(p) for p in arr[mask]})

    assert colours(drawn["off"], inside) > 1000  # a photo
    assert colours(drawn["pixelate"], inside) <= 2 * 6 * 6  # flat blocks, two faces
    changed = np.any(drawn["off"] != drawn["pixelate"], axis=2)
    assert changed[inside].mean() > 0.9
    far = np.ones_like(inside)  # away from the faces (each box grown by a face width)
    for f in result.faces:
        b = f.box
        far[max(0, int((b.y - b.h) * scale)):int((b.y + 2 * b.h) * scale),
            max(0, int((b.x - b.w) * scale)):int((b.x + 2 * b.w) * scale)] = False
    assert far.any() and not changed[far].any()
    # no picture: the photo's pixels are nowhere (away from the faces' tags, whose letters
    # are smoothed), and the cards keep no face
    untagged = np.ones_like(inside)
    for t in boards["no_picture"].drawn:
        if t.role == "tag":
            r = t.rect.inflate(t.height, t.height)
            untagged[max(0, r.y - oy):max(0, r.bottom - oy), max(0, r.x - ox):max(0, r.right - ox)] = False
    assert untagged.mean() > 0.8 and colours(drawn["no_picture"], untagged) < 100
    assert all(c.thumb is None for c in boards["no_picture"].cards.values())
    assert all(len({tuple(p) for p in c.thumb.reshape(-1, 3)}) <= 36
               for c in boards["pixelate"].cards.values())


def test_bad_privacy_is_refused():
    with pytest.raises(ValueError, match="privacy"):
        Board(LABELS, privacy="blur")


def test_saved_frames_follow_privacy(clips, tmp_path):
    """fer-pi --save-frames with --privacy no_picture writes no camera pixel to disk."""
    from conftest import run_cli

    counts = {}
    for privacy in ("off", "no_picture"):
        folder = tmp_path / privacy
        proc = run_cli("--video", str(clips["two"]), "--headless", "--max-frames", "2",
                       "--save-frames", str(folder), "--privacy", privacy)
        assert proc.returncode == 0, proc.stderr
        saved = sorted(folder.glob("*.png"))
        assert len(saved) == 2
        arr = pygame.surfarray.array3d(pygame.image.load(str(saved[-1]))).swapaxes(0, 1)
        pic = layout(arr.shape[1::-1]).picture
        counts[privacy] = len(np.unique(arr[pic.y:pic.bottom, pic.x:pic.right].reshape(-1, 3),
                                        axis=0))
    assert counts["off"] > 5000 and counts["no_picture"] < 400, counts


def test_portrait_screen_puts_the_panel_below_the_picture(face):
    size = (720, 1280)  # the Pi Touch Display 2 as the console sees it
    surface = pygame.Surface(size)
    Board(LABELS).draw(surface, _result(face), BoardStats())
    arr, lay = frame_to_array(surface), layout(size)
    assert lay.picture.w == lay.panel.w == 720 and lay.panel.y == lay.picture.bottom
    picture, panel = arr[: lay.panel.y], arr[lay.panel.y:]
    happy, surprise = colour_for("happy"), colour_for("surprise")
    assert _count(picture, happy) > 50 and _count(picture, surprise) > 50  # boxes
    assert _count(panel, happy) > 200 and _count(panel, surprise) > 200  # full cards with bars
    assert _count(panel, PANEL) + _count(panel, CARD) > 0.3 * panel.shape[0] * panel.shape[1]
    # the title is at the top of the panel, not over the top of the picture
    title_rows = slice(lay.panel.y, lay.panel.y + 2 * lay.unit)
    assert _count(arr[title_rows, : 4 * lay.unit], TEXT, tol=0) > 20
    assert _count(arr[: 2 * lay.unit, : 4 * lay.unit], TEXT, tol=0) < 5


@pytest.mark.parametrize("rotate, k", [(90, -1), (180, 2), (270, 1)])
def test_rotate_turns_the_whole_board_clockwise(face, rotate, k):
    """The display draws the board upright on a canvas and turns it: the screen holds
    exactly the upright board turned by `rotate` degrees clockwise."""
    from fer_pi.board.display import PygameDisplay
    from fer_pi.core.stats import RunStats

    screen = (800, 480)
    d = PygameDisplay(LABELS, fullscreen=False, window_size=screen, overlay=False, rotate=rotate)
    d.open()
    try:
        assert d.show(_result(face), RunStats())
        shown = frame_to_array(d.surface)
    finally:
        d.close()
    upright_size = screen[::-1] if rotate in (90, 270) else screen
    upright = pygame.Surface(upright_size)
    Board(LABELS).draw(upright, _result(face), BoardStats(), overlay=False)
    assert np.array_equal(shown, np.rot90(frame_to_array(upright), k=k))


def test_no_picture_leaves_no_card_of_the_faces_last_seen(face):
    """While the camera is lost or closed for the night the board draws no picture; the
    cards (thumbnails) of whoever stood there last must go with it."""
    pygame.display.init()
    size = (800, 480)
    waiting = BoardStats(status="camera lost, retrying in 2 s")
    fresh = pygame.Surface(size)
    Board(LABELS).draw(fresh, None, waiting)
    board, after = Board(LABELS), pygame.Surface(size)
    board.draw(after, _result(face), BoardStats())
    assert board.cards
    board.draw(after, None, waiting)
    assert not board.cards
    assert np.array_equal(frame_to_array(after), frame_to_array(fresh))


def _drawn_text(board: Board, monkeypatch, result, stats, overlay: bool = True) -> str:
    """Every string the board drew for one frame, in order (Board.drawn)."""
    pygame.display.init()
    board.draw(pygame.Surface((800, 480)), result, stats, overlay=overlay)
    return " ".join(t.text for t in board.drawn)


def test_label_names_are_the_words_the_board_shows(face, monkeypatch):
    """board.label_names: a museum's own words on tags, chips, cards and bars; nothing
    English is left for a renamed label, and the default font has the letters."""
    from fer_pi.core.labels import parse_names

    names = parse_names("happy=fröhlich, surprise=überrascht, angry=wütend, sad=traurig, "
                        "fear=ängstlich, disgust=angewidert, neutral=neutral")
    pygame.display.init()
    board = Board(LABELS, names=names)
    text = _drawn_text(board, monkeypatch, _result(face), BoardStats())
    assert "fröhlich" in text and "überrascht" in text and "ängstlich" in text
    assert not any(w in text.split() for w in ("happy", "surprise", "fear", "angry"))
    font = pygame.font.Font(None, 24)
    assert all(m is not None for m in font.metrics("äöüßéèàçñ"))


@pytest.mark.parametrize("bad, needle", [("happy", "not label=word"), ("joy=froh", "unknown"),
                                         ("happy=", "not label=word")])
def test_bad_label_names_are_refused_naming_the_key(bad, needle):
    from fer_pi.app.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match=f"board.label_names: .*{needle}"):
        from_dict({"board": {"label_names": bad}})


GERMAN = ("no_faces=keine Gesichter im Bild | one_face=1 Gesicht | faces={n} Gesichter | "
          "held=seit {s} s | closed=geschlossen bis {time} | "
          "camera_lost=Kamera getrennt, neuer Versuch in {s} s | "
          "empty_hint=Hier erscheint jedes Gesicht mit seinem Ausdruck | leans=eher {label}")


def test_the_board_says_its_other_words_in_the_room_language(face, monkeypatch):
    """board.words: the room count, the held time, the overlay, an empty panel and the
    camera banners in the room's language; no English phrase is left."""
    import dataclasses

    from fer_pi.core.words import parse_words

    pygame.display.init()
    board = Board(LABELS, words=parse_words(GERMAN))
    res = _result(face)
    held = dataclasses.replace(res, faces=tuple(dataclasses.replace(f, shown="happy", held_s=2.0)
                                                for f in res.faces))
    text = _drawn_text(board, monkeypatch, held, BoardStats(fps=9.0))
    assert text.count("2 Gesichter") == 2 and "seit 2.0 s" in text  # room count and overlay
    one = dataclasses.replace(held, faces=held.faces[:1])
    assert "1 Gesicht" in _drawn_text(Board(LABELS, words=parse_words(GERMAN)), monkeypatch,
                                      one, BoardStats())
    empty = _drawn_text(Board(LABELS, words=parse_words(GERMAN)), monkeypatch, None,
                        BoardStats(status=board.say("closed", time="08:00")))
    assert "keine Gesichter im Bild" in empty and "geschlossen bis 08:00" in empty
    shown = f"{text} {empty}"
    assert not {"face", "faces", "for", "closed", "until"} & set(shown.split())
    assert "no faces in view" not in shown


@pytest.mark.parametrize("bad, needle", [
    ("nofaces=nichts", "unknown phrase 'nofaces'"),
    ("faces={count} Gesichter", r"uses count; it may use \{n\}"),
    ("held=seit {s s", "not a phrase"),
    ("one_face", "not key=phrase"),
    ("days=Mo Di Mi Do Fr Sa", "seven names"),
])
def test_bad_words_are_refused_naming_the_key(bad, needle):
    from fer_pi.app.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match=f"board.words: .*{needle}"):
        from_dict({"board": {"words": bad}})


def test_closed_for_the_night_is_a_dark_screen_whose_text_moves(face):
    """Outside source.hours the board is black with the status in dim text, which moves
    once a minute (a bright layout all night burns into a panel); no card, no picture."""
    pygame.display.init()
    board, size = Board(LABELS), (800, 480)
    board.draw(pygame.Surface(size), _result(face), BoardStats())
    assert board.cards

    def night(t: float) -> np.ndarray:
        surface = pygame.Surface(size)
        board.draw(surface, None, BoardStats(status="closed until 08:00", night_t=t))
        return frame_to_array(surface)

    first, same_minute, next_minute = night(3600.0), night(3659.0), night(3660.0)
    assert not board.cards
    lit = first.max(axis=2) > 0
    assert 0 < lit.mean() < 0.02 and first.max() <= 80  # a little dim text on black
    # no layout: not one panel-coloured pixel, the background's colour only at text edges
    assert _count(first, PANEL, tol=2) == 0 and _count(first, BACKGROUND, tol=2) < 100
    assert np.array_equal(first, same_minute)
    ys, xs = np.nonzero(lit)
    ys2, xs2 = np.nonzero(next_minute.max(axis=2) > 0)
    assert (xs.min(), ys.min()) != (xs2.min(), ys2.min())  # a minute later, elsewhere
    spots = set()
    for minute in range(60):  # an hour of minutes: many places, the text always on screen
        img = night(minute * 60.0)
        ys, xs = np.nonzero(img.max(axis=2) > 0)
        assert len(xs) > 0
        spots.add((xs.min() // 50, ys.min() // 50))
    assert len(spots) > 20


def test_a_card_picture_is_cut_five_times_a_second_not_every_frame(face):
    """The pure card model: at 30 frames a second a face's card picture is cut from the
    frame again every 0.2 s (a new card, or privacy switched, at once)."""
    from fer_pi.board.cards import CardDeck

    deck = CardDeck()
    pictures = []
    base = _result(face, n_faces=1)
    for i in range(31):
        f = Face(base.faces[0].box, base.faces[0].prediction, 7)
        deck.update(FrameResult(Frame(i, i / 30, base.frame.image, monotonic=i / 30), (f,)))
        pictures.append(deck.cards[7].thumb)
    cuts = 1 + sum(a is not b for a, b in zip(pictures, pictures[1:], strict=False))
    assert cuts == 6  # at 0, 0.2, 0.4, 0.6, 0.8 and 1.0 s
    deck.update(FrameResult(Frame(31, 31 / 30, base.frame.image, monotonic=31 / 30),
                            (Face(base.faces[0].box, base.faces[0].prediction, 7),)),
                privacy="no_picture")
    assert deck.cards[7].thumb is None  # no face pixels kept, at once


@pytest.mark.parametrize("privacy", ["off", "pixelate"])
@pytest.mark.parametrize("mirror", [False, True])
def test_the_picture_scaled_into_the_screen_is_the_blitted_one(face, privacy, mirror,
                                                                monkeypatch):
    """A 32-bit screen gets the picture scaled straight into its pixels (board/pixels.py);
    other screens, as before, a scaled copy blitted: the same board, every privacy and
    mirror (pixelate's blocks where the faces are, before the mirror), to the pixel on
    x86_64 and within two grey levels of the picture on aarch64."""
    from fer_pi.board import paint, pixels

    result = _result(face, n_faces=2)
    assert pixels.takes_bgra(pygame.Surface((8, 8)))
    assert not pixels.takes_bgra(pygame.Surface((8, 8), depth=24))
    boards = {}
    for direct in (True, False):
        monkeypatch.setattr(paint, "takes_bgra", lambda _s, d=direct: d)
        surface = pygame.Surface((1280, 720))
        Board(LABELS, mirror=mirror, privacy=privacy).draw(surface, result, BoardStats(),
                                                          overlay=False)
        boards[direct] = frame_to_array(surface)
        # the surface is not left locked: the next blit onto it works
        assert not surface.get_locked()
        surface.blit(pygame.Surface((4, 4)), (0, 0))
    pic = layout((1280, 720)).picture
    assert boards[True][:, :pic.w].std() > 10  # a picture, not an empty area
    diff = np.abs(boards[True].astype(int) - boards[False])
    assert not diff[:, pic.w:].any()  # beside the picture: the same board
    # the picture: OpenCV's bilinear kernels for 4 and 3 channels give the same pixels on
    # x86_64; aarch64's (NEON) round a sixth of them one grey level apart, a few two
    assert diff.max() <= 2
    if platform.machine() in ("x86_64", "AMD64"):
        assert not diff.any()
