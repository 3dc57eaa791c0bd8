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
    *,
    prog: str | None = None,
    interrupt_hint: str = "rerun with --resume to continue",
) -> int:
    """Parse ``args`` into ``config_type`` and run ``main``; return the process exit code.

    ``prog`` is what ``--help`` shows as the command (``python -m ctdkit.<verb>``);
    ``interrupt_hint`` is printed after Ctrl-C to say how to pick the work up again.
    """
    config = tyro.cli(config_type, args=args, description=description, prog=prog)
    warnings.filterwarnings("ignore", module="gymnasium")
    try:
        main(config)
    except CtdkitError as error:
        print(f"ctdkit: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ctdkit: interrupted ({interrupt_hint})", file=sys.stderr)
        return 130
    return 0
