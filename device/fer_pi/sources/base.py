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


class Wrapped:
    """A source that hands on another's frames, changed (turned, paced): its name, counts,
    opening and closing are the inner source's."""

    def __init__(self, inner: FrameSource):
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def corrupt_frames(self) -> int:
        return self.inner.corrupt_frames

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Frame | None:
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()
