"""The FER2013 class order, the one fact every model in this project shares.

Models may carry their own label list in their metadata; this is the default
and the order the training data uses.
"""

from collections.abc import Iterator

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
UNCERTAIN = "uncertain"  # what the board shows when no label leads clearly (smooth.py)


def parse_pairs(text: str, sep: str, known, form: str, kind: str) -> Iterator[tuple[str, str]]:
    """'a=x<sep>b=y' → (a, x), (b, y): the board's word lists (label_names, words). Raises
    ValueError naming a part that is not ``form`` or a key that is not a known ``kind``."""
    for part in filter(str.strip, text.split(sep)):
        key, eq, value = (x.strip() for x in part.partition("="))
        if not eq or not value:
            raise ValueError(f"{part.strip()!r} is not {form}")
        if key not in known:
            raise ValueError(f"unknown {kind} {key!r}; known: {', '.join(known)}")
        yield key, value


def parse_names(text: str, known: tuple[str, ...] = (*LABELS, UNCERTAIN)) -> dict[str, str]:
    """'happy=fröhlich, sad=traurig' → {'happy': 'fröhlich', 'sad': 'traurig'}: the words a
    board shows for labels (in a museum's own language). Raises ValueError naming what is
    wrong; an empty text is no renaming."""
    return dict(parse_pairs(text, ",", known, "label=word", "label"))
