"""fer-pi: live facial-emotion board for the Raspberry Pi."""

import os

__version__ = "0.1.0"

# pygame prints a banner to stdout on import; it would corrupt --json output
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

# the library's front door (app/api.py), loaded on first use: `import fer_pi` stays light
# (no OpenCV, no model) for the device's own modules that only want __version__
_API = ("analyze", "Analyzer", "AnalyzeError", "FaceAnalysis")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from fer_pi.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'fer_pi' has no attribute {name!r}")
