"""The one exception type users see.

Anything a user can fix (a typo in a task name, a dataset id without a version, NaN in data)
raises :class:`CtdkitError` with a one-line message; the CLIs print it without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CtdkitError(Exception):
    """A problem the user can fix; the message is one line naming the bad thing."""


def unknown(kind: str, value: str, valid: Iterable[str]) -> CtdkitError:
    """Build the standard 'unknown X' error, suggesting close matches when there are any."""
    valid = list(valid)
    close = difflib.get_close_matches(value, valid, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(valid) if len(valid) <= 60 else ", ".join(valid[:60]) + ", ..."
    return CtdkitError(f"unknown {kind} {value!r}{hint} (valid: {shown})")
