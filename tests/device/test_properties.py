"""Property-based checks: arbitrary boxes, frame shapes and config values never crash."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_pi.app.config import SECTIONS, ConfigError, from_dict
from fer_pi.core.records import FaceBox
from fer_pi.vision.detect import to_gray
from fer_pi.vision.prepare import crop_face


@settings(max_examples=200, deadline=None)
@given(
    h=st.integers(1, 300), w=st.integers(1, 300),
    x=st.integers(-500, 800), y=st.integers(-500, 800),
    bw=st.integers(0, 900), bh=st.integers(0, 900),
    margin=st.floats(0, 1), channels=st.sampled_from([0, 1, 3, 4]),
)
def test_crop_always_returns_the_model_input(h, w, x, y, bw, bh, margin, channels):
    shape = (h, w) if channels == 0 else (h, w, channels)
    frame = np.random.default_rng(h * w).integers(0, 256, shape, dtype=np.uint8)
    crop = crop_face(to_gray(frame), FaceBox(x, y, bw, bh), (48, 48), margin)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8


_values = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.none())


@settings(max_examples=300, deadline=None)
@given(section=st.sampled_from(list(SECTIONS) + ["bogus"]),
       key=st.sampled_from(["camera", "threads", "scale_factor", "fullscreen", "path",
                            "max_frames", "min_size", "nope"]),
       value=_values)
def test_config_accepts_or_refuses_cleanly(section, key, value):
    try:
        cfg = from_dict({section: {key: value}})
    except ConfigError as exc:
        assert key in str(exc) or section in str(exc) or "source" in str(exc)
        return
    got = getattr(getattr(cfg, section), key)
    assert got == value or (isinstance(value, int) and got == float(value))
