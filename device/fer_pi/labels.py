"""The FER2013 class order, the one fact every model in this project shares.

Models may carry their own label list in their metadata; this is the default
and the order the training data uses.
"""

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
UNCERTAIN = "uncertain"  # what the board shows when no label leads clearly (smooth.py)


def parse_names(text: str, known: tuple[str, ...] = (*LABELS, UNCERTAIN)) -> dict[str, str]:
    """'happy=fröhlich, sad=traurig' → {'happy': 'fröhlich', 'sad': 'traurig'}: the words a
    board shows for labels (in a museum's own language). Raises ValueError naming what is
    wrong; an empty text is no renaming."""
    names: dict[str, str] = {}
    for part in filter(str.strip, text.split(",")):
        label, sep, word = (x.strip() for x in part.partition("="))
        if not sep or not word:
            raise ValueError(f"{part.strip()!r} is not label=word")
        if label not in known:
            raise ValueError(f"unknown label {label!r}; known: {', '.join(known)}")
        names[label] = word
    return names
