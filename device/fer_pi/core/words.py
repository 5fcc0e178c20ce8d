"""The board's own words besides the labels, in the room's language (board.words).

A museum in Munich that shows "fröhlich" for happy (board.label_names) should not show
"no faces in view" beside it. Each phrase may use only the fields its English one has.
"""

from __future__ import annotations

from string import Formatter

from fer_pi.core.labels import parse_pairs

WORDS: dict[str, str] = {
    "no_faces": "no faces in view",
    # the empty room: what the board will do
    "empty_hint": "each face gets its emotion here when someone faces the camera",
    # an uncertain face: what the model leans to, with no number beside it
    "leans": "maybe {label}",
    "one_face": "1 face",
    "faces": "{n} faces",
    "held": "for {s} s",
    "closed": "closed until {time}",
    "camera_lost": "camera lost, retrying in {s} s",
    "days": "Mon Tue Wed Thu Fri Sat Sun",  # "closed until Mon 08:00" over a weekend
}
_SAMPLE = {"n": 2, "s": "2.0", "time": "08:00", "label": "happy"}


def _fields(phrase: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(phrase) if name is not None}


def parse_words(text: str) -> dict[str, str]:
    """'no_faces=keine Gesichter | faces={n} Gesichter' → every phrase, the given ones
    replacing the English. Phrases are separated by | (they may contain commas). Raises
    ValueError naming the phrase that is wrong."""
    words = dict(WORDS)
    for key, phrase in parse_pairs(text, "|", WORDS, "key=phrase", "phrase"):
        try:
            extra = _fields(phrase) - _fields(WORDS[key])
            if not extra:
                phrase.format(**_SAMPLE)
        except (ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"{key}: {phrase!r} is not a phrase ({exc})") from None
        if extra:
            allowed = ", ".join("{" + f + "}" for f in sorted(_fields(WORDS[key]))) or "none"
            raise ValueError(f"{key}: {phrase!r} uses {', '.join(sorted(extra))}; it may use "
                             f"{allowed}")
        if key == "days" and len(phrase.split()) != 7:
            raise ValueError(f"days: {phrase!r} must be seven names, Monday first, spaces "
                             "between them")
        words[key] = phrase
    return words
