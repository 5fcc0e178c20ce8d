"""The one way the host tools turn an expected failure into a line and an exit code."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


class MissingExtra(Exception):
    """A host tool asked for something the device-only install (pip install ., as on a Pi)
    does not have; the message says which extra brings it."""


def need_module(name: str, what: str, extra: str = "train") -> None:
    """Import ``name`` or say in one line which extra to install for ``what``."""
    try:
        importlib.import_module(name)
    except ImportError:
        raise MissingExtra(f"{what} needs {name}, which this install lacks: pip install "
                           f"'fer-pi[{extra}]'") from None


def has_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def main_wrapper(prog: str, parse: Callable, run: Callable, errors: tuple[type, ...],
                 argv=None) -> int:
    args = parse(argv)
    try:
        return run(args)
    except (*errors, MissingExtra) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
