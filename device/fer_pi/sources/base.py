"""What every frame source is: the interface, and the error a source that cannot be
opened raises."""

from __future__ import annotations

from typing import Protocol

from fer_pi.core.records import Frame


class SourceError(Exception):
    """A source that cannot be opened; the message names the device or file."""


class FrameSource(Protocol):
    name: str
    corrupt_frames: int

    def open(self) -> None: ...
    def read(self) -> Frame | None:
        """The next frame; None at the end of a finite source. Raises SourceError on loss."""
    def close(self) -> None: ...
