"""Shared plumbing of the ``python -m ctdkit.<verb>`` entry points.

Each CLI is a tyro dataclass plus one library call; this runs it so that user errors print as
one line (``ctdkit: ...``) with exit code 2 and no traceback, and Ctrl-C exits with 130.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

import tyro

from ctdkit.errors import CtdkitError

ConfigT = TypeVar("ConfigT")


def run_cli(
    config_type: type[ConfigT],
    main: Callable[[ConfigT], object],
    args: Sequence[str] | None = None,
    description: str | None = None,
) -> int:
    config = tyro.cli(config_type, args=args, description=description)
    warnings.filterwarnings("ignore", module="gymnasium")
    try:
        main(config)
    except CtdkitError as error:
        print(f"ctdkit: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctdkit: interrupted (rerun with --resume to continue)", file=sys.stderr)
        return 130
    return 0
