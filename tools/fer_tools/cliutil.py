"""The one way the host tools turn an expected failure into a line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable


def main_wrapper(prog: str, parse: Callable, run: Callable, errors: tuple[type, ...],
                 argv=None) -> int:
    args = parse(argv)
    try:
        return run(args)
    except errors as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
