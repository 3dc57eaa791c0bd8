"""Shared plumbing of the ``python -m ctdkit.<verb>`` entry points.

Each CLI is a tyro dataclass plus one library call; this runs it so that user errors print as
one line (``ctdkit: ...``) with exit code 2 and no traceback — ctdkit's own errors and the OS
errors a user fixes by choosing another path (missing, unwritable, a file where a folder
should be, a full or read-only disk) — and Ctrl-C exits with 130 and says how to pick the work
up again. Anything else keeps its traceback: a bug should look like a bug.
"""

from __future__ import annotations

import errno
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import tyro

from ctdkit.errors import CtdkitError

ConfigT = TypeVar("ConfigT")

#: errno -> (what went wrong, what to do) for OS errors a user fixes by changing a path
_PATH_PROBLEMS: dict[int, tuple[str, str]] = {
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EACCES: ("permission denied", "choose a path you may write, or fix its permissions"),
    errno.EPERM: ("operation not permitted", "choose another path, or fix its permissions"),
    errno.EISDIR: ("is a directory, a file was expected", "pass a file path"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
    errno.EEXIST: ("already exists", "remove it or choose another path"),
    errno.ENOSPC: ("no space left on the device", "free some space or write elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write elsewhere"),
    errno.EROFS: ("read-only file system", "write somewhere writable"),
    errno.ENAMETOOLONG: ("name too long", "choose a shorter path"),
}


def path_problem(error: OSError) -> str | None:
    """One line for an OS error the user can fix (it names the path and what to do), or None
    when ``error`` is not one of those."""
    if error.errno not in _PATH_PROBLEMS:
        return None
    problem, advice = _PATH_PROBLEMS[error.errno]
    if error.filename is None:
        return f"{error.strerror or problem} ({advice})"
    path = str(error.filename)
    if error.filename2 is not None:
        path = f"{path} -> {error.filename2}"
    return f"cannot use {path}: {problem} ({advice})"


def quiet_d3rlpy() -> None:
    """d3rlpy logs every build and epoch at info level through structlog; keep warnings only.

    d3rlpy's own ``structlog.configure`` at import sets only processors, so this holds whether
    it runs before or after ``import d3rlpy``.
    """
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def quiet_libraries() -> None:
    """Keep third-party chatter out of CLI output (library users keep it).

    gym (imported by d3rlpy) prints a deprecation banner from ``gym_notices`` at import, inside
    a ``try`` that swallows any error: marking that module absent skips the banner.
    """
    if "gym" not in sys.modules:
        sys.modules.setdefault("gym_notices", None)  # type: ignore[arg-type]
    for module in ("gym", "gymnasium"):
        warnings.filterwarnings("ignore", module=module)
    quiet_d3rlpy()
    warnings.formatwarning = _format_warning


_format_other_warning = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """ctdkit's own warnings are meant for users: one line, no source location."""
    if category.__module__.startswith("ctdkit"):
        return f"ctdkit: warning: {message}\n"
    return _format_other_warning(message, category, filename, lineno, line)


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
    quiet_libraries()
    try:  # parsing too: a config that validates itself raises CtdkitError while being built
        main(tyro.cli(config_type, args=args, description=description, prog=prog))
    except CtdkitError as error:
        print(f"ctdkit: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        message = path_problem(error)
        if message is None:
            raise
        print(f"ctdkit: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ctdkit: interrupted ({interrupt_hint})", file=sys.stderr)
        return 130
    return 0


def run_module(
    config_type: type[ConfigT], main: Callable[[ConfigT], object], interrupt_hint: str
) -> NoReturn:
    """The ``if __name__ == "__main__":`` block of a CLI module: :func:`run_cli` on the command
    line, then exit with its code. The module that defines ``main`` describes the command (its
    docstring) and names it in ``--help`` (``python -m ctdkit.<verb>``)."""
    module = main.__globals__  # type: ignore[attr-defined]  # main is a function
    spec = module.get("__spec__")  # None when run as a script path
    prog = None if spec is None else "python -m " + spec.name.removesuffix(".__main__")
    description = module.get("__doc__")
    sys.exit(
        run_cli(
            config_type, main, description=description, prog=prog, interrupt_hint=interrupt_hint
        )
    )
