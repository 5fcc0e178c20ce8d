"""fer-pi: live facial-emotion board for the Raspberry Pi."""

import os

__version__ = "0.1.0"

# pygame prints a banner to stdout on import; it would corrupt --json output
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
