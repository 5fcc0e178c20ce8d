"""fer-pi: live facial-emotion board for the Raspberry Pi."""

__version__ = "0.1.0"
