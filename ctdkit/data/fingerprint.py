"""Per-episode fingerprints: what a rebuild on another machine must reproduce within tolerance.

The content checksum (``ctdkit.data.checksum``) hashes the raw float bytes, and the same collect
command, seed and pinned packages on another CPU (e.g. one with AVX-512) gives other bytes for
every dataset: MuJoCo and numpy round differently there (docs/ecosystem.md, "Floating point
across machines"). What does hold across machines is the shape of the data: per member dataset,
in stored order, each episode's length, its any-step success flag and its undiscounted return.
A fingerprint records those, the content checksum of the data it was computed from and the
platform it was made on; a recipe (``datasets/*.toml``) carries it as its ``[fingerprint]``
section (``python -m ctdkit.datasets fingerprint ID --recipe FILE``).

Two copies are **equivalent within tolerance** when every member has the same episodes, each
of the same length and success flag, and each episode's return agrees to
:data:`RETURN_REL_TOL` (see :func:`returns_close`). The tolerances are fixed here, in the
format, before any rerun: a recipe states them, and one that states others is refused rather
than obeyed (a recipe is untrusted input and must not be able to loosen the check).
"""

from __future__ import annotations

import json
import math
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ctdkit.data.loader import load_datasets, load_transitions
from ctdkit.errors import CtdkitError

#: each episode's return must agree to this relative tolerance (0.1%)
RETURN_REL_TOL = 1e-3
#: ... or to this absolute one, for returns near 0 (see :func:`returns_close`)
RETURN_ABS_TOL = 1e-6
#: significant digits a return is stored with: rounding moves it by at most 5e-7 relative,
#: 2000 times inside :data:`RETURN_REL_TOL`
RETURN_DIGITS = 7
#: the first line of a recipe's fingerprint section (it runs to the manifest marker or the end)
FINGERPRINT_MARKER = "# --- fingerprint"
#: sizes a recipe's fingerprint may have (recipes are untrusted input): MT50 has 50 members
MAX_MEMBERS = 256
MAX_EPISODES = 100_000
MAX_EPISODE_LENGTH = 10_000_000
MAX_PLATFORM_ENTRIES = 16
MAX_TEXT = 200
#: packages whose versions decide the numbers (and the platform line names)
PLATFORM_PACKAGES = ("numpy", "mujoco", "metaworld", "minari")
_KEYS = ("content_checksum", "return_rel_tol", "return_abs_tol", "made_on", "members")
_MEMBER_KEYS = ("lengths", "success", "returns")


def returns_close(a: float, b: float) -> bool:
    """Whether two episode returns agree within tolerance: ``math.isclose(a, b,
    rel_tol=RETURN_REL_TOL, abs_tol=RETURN_ABS_TOL)``.

    Relative, because returns range over four orders of magnitude (a random episode's few
    units, an expert's thousands) and rounding differences accumulate in proportion to the
    return. The absolute floor is there because a failed episode's return can be ~0, where a
    purely relative test would refuse two returns of 1e-9 and 2e-9 that differ by nothing
    that matters; 1e-6 is far below any reward a Meta-World step gives.
    """
    return math.isclose(a, b, rel_tol=RETURN_REL_TOL, abs_tol=RETURN_ABS_TOL)


def return_difference(a: float, b: float) -> float:
    """The relative difference :func:`returns_close` bounds: ``|a - b|`` over the larger
    magnitude, floored at ``RETURN_ABS_TOL / RETURN_REL_TOL`` (so it is at most
    ``RETURN_REL_TOL`` exactly when the returns are close)."""
    scale = max(abs(a), abs(b), RETURN_ABS_TOL / RETURN_REL_TOL)
    return abs(a - b) / scale


def stored_return(value: float) -> float:
    """A return rounded to :data:`RETURN_DIGITS` significant digits, as a fingerprint keeps it."""
    return float(f"{float(value):.{RETURN_DIGITS}g}")


# ------------------------------------------------------------------------------ platform
def installed_version(package: str) -> str | None:
    """``package``'s installed version, None if it is not installed."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_avx512() -> bool | None:
    """Whether the CPU has AVX-512 (``avx512f``), None where ``/proc/cpuinfo`` is absent: the
    instruction set that made checksums differ (a virtual CPU's model name often hides it)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return "avx512f" in line.split(":", 1)[1].split()
    except OSError:
        pass
    return None


def platform_summary() -> dict[str, str | bool]:
    """Machine, CPU model (and AVX-512), Python and :data:`PLATFORM_PACKAGES` versions."""
    summary: dict[str, str | bool | None] = {
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "avx512": cpu_has_avx512(),
        "python": sys.version.split()[0],
        **{package: installed_version(package) for package in PLATFORM_PACKAGES},
    }
    return {key: value for key, value in summary.items() if value is not None}


def describe_platform(made_on: dict[str, Any]) -> str:
    """One phrase: ``x86_64, Intel Xeon (AVX-512), numpy 2.2.6, mujoco 3.3.2, ...``."""
    cpu = str(made_on.get("cpu", "unknown CPU"))
    if made_on.get("avx512") is not None:
        cpu += " (AVX-512)" if made_on["avx512"] else " (no AVX-512)"
    parts = [str(made_on.get("machine", "?")), cpu]
    parts += [f"{p} {made_on[p]}" for p in PLATFORM_PACKAGES if p in made_on]
    return ", ".join(parts)


# --------------------------------------------------------------------------- computing
def dataset_fingerprint(dataset_id: str, root: Path | None = None) -> dict[str, Any]:
    """The fingerprint of a local dataset or group (its data verified against its stored
    content checksum on the way): ``{"content_checksum", "return_rel_tol", "return_abs_tol",
    "made_on", "members": {member id: {"lengths", "success", "returns"}}}``, episodes in stored
    order. Success is the loader's per-step flag (``Transitions.success``), true at any step;
    returns are the sums of the loaded rewards, rounded by :func:`stored_return`."""
    members = [dataset.spec.dataset_id for dataset in load_datasets(dataset_id, root).datasets]
    data = load_transitions(dataset_id, root=root, verify=True)
    starts = np.flatnonzero(np.diff(data.episode_index, prepend=-1) != 0)
    lengths = np.diff(np.append(starts, len(data)))
    success = np.logical_or.reduceat(data.success, starts)
    returns = np.add.reduceat(data.rewards.astype(np.float64), starts)
    owner = data.task_index[starts]
    table = {
        member: {
            "lengths": [int(n) for n in lengths[owner == index]],
            "success": [bool(s) for s in success[owner == index]],
            "returns": [stored_return(r) for r in returns[owner == index]],
        }
        for index, member in enumerate(members)
    }
    return {
        "content_checksum": data.checksum,
        "return_rel_tol": RETURN_REL_TOL,
        "return_abs_tol": RETURN_ABS_TOL,
        "made_on": platform_summary(),
        "members": table,
    }


# ------------------------------------------------------------------------ TOML and checks
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest text that parses back to the same float
    return json.dumps(str(value))  # JSON's escapes are valid TOML basic-string escapes


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_list(values: list[Any], per_line: int = 10) -> str:
    if len(values) <= per_line:
        return "[" + ", ".join(_toml_value(v) for v in values) + "]"
    rows = [values[i : i + per_line] for i in range(0, len(values), per_line)]
    body = "\n".join("  " + ", ".join(_toml_value(v) for v in row) + "," for row in rows)
    return "[\n" + body + "\n]"


def fingerprint_toml(fingerprint: dict[str, Any]) -> str:
    """The recipe section of ``fingerprint`` (checked first); it parses back to it."""
    fingerprint = check_fingerprint(fingerprint, "fingerprint")
    made_on = ", ".join(
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in fingerprint["made_on"].items()
    )
    lines = [
        f"{FINGERPRINT_MARKER} (`python -m ctdkit.datasets fingerprint ID --recipe FILE`):",
        "# per member, in stored order: each episode's length, any-step success and return.",
        "# A copy whose content checksum differs (another CPU) is equivalent within tolerance",
        "# when lengths and success flags are equal and every return agrees to return_rel_tol.",
        "[fingerprint]",
        f"content_checksum = {_toml_value(fingerprint['content_checksum'])}",
        f"return_rel_tol = {_toml_value(fingerprint['return_rel_tol'])}",
        f"return_abs_tol = {_toml_value(fingerprint['return_abs_tol'])}",
        f"made_on = {{ {made_on} }}",
    ]
    for member, episodes in fingerprint["members"].items():
        lines += ["", f"[fingerprint.members.{_toml_value(member)}]"]
        lines += [f"{key} = {_toml_list(episodes[key])}" for key in _MEMBER_KEYS]
    return "\n".join(lines) + "\n"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list_of(value: object, check: Callable[[object], bool], expected: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise CtdkitError(f"{what} is not a list")
    if len(value) > MAX_EPISODES:
        raise CtdkitError(f"{what} lists {len(value)} episodes, more than {MAX_EPISODES}")
    for index, item in enumerate(value):
        if not check(item):
            raise CtdkitError(f"{what}[{index}] is {_shown(item)}, not {expected}")
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_fingerprint(fingerprint: object, what: str) -> dict[str, Any]:
    """``fingerprint`` if it is a well-formed fingerprint, else one line naming ``what`` and
    the first problem: types, sizes (:data:`MAX_MEMBERS`, :data:`MAX_EPISODES`), finite
    returns, equal list lengths per member, and the tolerances ctdkit fixes (a recipe may not
    state looser ones)."""
    if not isinstance(fingerprint, dict):
        raise CtdkitError(f"{what} is not a table")
    for key in fingerprint:
        if key not in _KEYS:
            raise CtdkitError(f"{what} has an unknown key {_shown(key)}")
    for key in _KEYS:
        if key not in fingerprint:
            raise CtdkitError(f"{what} lacks {key!r}")
    checksum = fingerprint["content_checksum"]
    if not (isinstance(checksum, str) and len(checksum) == 64 and _hex(checksum)):
        raise CtdkitError(f"{what}: content_checksum {_shown(checksum)} is not 64 hex digits")
    for key, fixed in (("return_rel_tol", RETURN_REL_TOL), ("return_abs_tol", RETURN_ABS_TOL)):
        if fingerprint[key] != fixed or isinstance(fingerprint[key], bool):
            raise CtdkitError(
                f"{what}: {key} is {_shown(fingerprint[key])}; the fingerprint format fixes it "
                f"at {fixed!r} (ctdkit.data.fingerprint)"
            )
    made_on = fingerprint["made_on"]
    if not isinstance(made_on, dict) or len(made_on) > MAX_PLATFORM_ENTRIES:
        raise CtdkitError(f"{what}: made_on is not a table of at most {MAX_PLATFORM_ENTRIES} keys")
    for key, value in made_on.items():
        if (
            not isinstance(key, str)
            or len(key) > MAX_TEXT
            or not (isinstance(value, bool) or (isinstance(value, str) and len(value) <= MAX_TEXT))
        ):
            raise CtdkitError(
                f"{what}: made_on.{str(key)[:40]} is {_shown(value)}, not a short text"
            )
    members = fingerprint["members"]
    if not isinstance(members, dict) or not members:
        raise CtdkitError(f"{what}: members is not a non-empty table")
    if len(members) > MAX_MEMBERS:
        raise CtdkitError(f"{what} names {len(members)} members, more than {MAX_MEMBERS}")
    for member, episodes in members.items():
        where = f"{what}: member {str(member)[:80]}"
        if not isinstance(member, str) or len(member) > 512 or not isinstance(episodes, dict):
            raise CtdkitError(f"{where} is not a table with a short name")
        if sorted(episodes) != sorted(_MEMBER_KEYS):
            raise CtdkitError(f"{where} has keys {sorted(episodes)}, not {list(_MEMBER_KEYS)}")
        lengths = _list_of(
            episodes["lengths"],
            lambda v: _is_int(v) and 0 < v <= MAX_EPISODE_LENGTH,
            "a positive episode length",
            f"{where}: lengths",
        )
        _list_of(
            episodes["success"], lambda v: isinstance(v, bool), "true or false", f"{where}: success"
        )
        _list_of(
            episodes["returns"],
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
            "a finite number",
            f"{where}: returns",
        )
        if not len(lengths) == len(episodes["success"]) == len(episodes["returns"]):
            raise CtdkitError(f"{where}: lengths, success and returns differ in length")
    return fingerprint


def _hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


# ---------------------------------------------------------------------------- comparing
@dataclass(frozen=True)
class Comparison:
    """How one fingerprint's episodes compare with another's."""

    #: ``<member id> episode <i>: <what> (<this> vs <reference>)``; None when equivalent
    difference: str | None
    #: the largest :func:`return_difference` over the episodes compared
    largest_return_difference: float = 0.0

    @property
    def equivalent(self) -> bool:
        return self.difference is None


def compare_fingerprints(actual: dict[str, Any], reference: dict[str, Any]) -> Comparison:
    """Compare ``actual`` (this copy) with ``reference`` (a recipe's, or the local copy a
    rebuild is compared with), members in the reference's order, episodes in stored order;
    the first difference found is the one reported. Both are checked first."""
    actual = check_fingerprint(actual, "this copy's fingerprint")["members"]
    reference = check_fingerprint(reference, "the reference fingerprint")["members"]
    for member in actual:
        if member not in reference:
            return Comparison(f"{member}: in this copy, not in the reference fingerprint")
    largest = 0.0
    for member, expected in reference.items():
        if member not in actual:
            return Comparison(f"{member}: in the reference fingerprint, not in this copy")
        mine = actual[member]
        for index, (length, success, value) in enumerate(
            zip(expected["lengths"], expected["success"], expected["returns"], strict=True)
        ):
            where = f"{member} episode {index}"
            if index >= len(mine["lengths"]):
                count = len(mine["lengths"])
                return Comparison(f"{where}: episodes ({count} vs {len(expected['lengths'])})")
            if mine["lengths"][index] != length:
                return Comparison(f"{where}: length ({mine['lengths'][index]} vs {length})")
            if mine["success"][index] != success:
                shown = [str(s).lower() for s in (mine["success"][index], success)]
                return Comparison(f"{where}: success ({shown[0]} vs {shown[1]})")
            this = mine["returns"][index]
            difference = return_difference(this, value)
            if not returns_close(this, value):
                return Comparison(
                    f"{where}: return, {percent(difference)} apart, beyond "
                    f"{percent(RETURN_REL_TOL)} ({this!r} vs {value!r})"
                )
            largest = max(largest, difference)
        if len(mine["lengths"]) > len(expected["lengths"]):
            index = len(expected["lengths"])
            return Comparison(
                f"{member} episode {index}: episodes ({len(mine['lengths'])} vs {index})"
            )
    return Comparison(None, largest)


def percent(fraction: float) -> str:
    """``0.00042%``: a fraction as a percentage with two significant digits, no exponent."""
    text = np.format_float_positional(fraction * 100, precision=2, fractional=False, trim="-")
    return f"{text}%"


@dataclass(frozen=True)
class Equivalence:
    """A copy found identical to, or equivalent within tolerance with, a reference."""

    kind: str  # "identical" | "equivalent"
    checksum: str  # this copy's content checksum
    reference_checksum: str
    reference: str = "recipe"  # what it was compared with, for the message
    largest_return_difference: float = 0.0
    made_on: str = ""  # "made on <platform>" / "rebuilt on <platform>"

    def message(self, dataset_id: str) -> str:
        if self.kind == "identical":
            return (
                f"{dataset_id}: identical to the {self.reference}'s data (content checksum "
                f"{self.checksum[:12]})"
            )
        return (
            f"{dataset_id}: equivalent within tolerance (largest return difference "
            f"{percent(self.largest_return_difference)} of {percent(RETURN_REL_TOL)}; content "
            f"checksum {self.checksum[:12]} vs {self.reference} {self.reference_checksum[:12]}, "
            f"{self.made_on})"
        )


def equivalence(
    dataset_id: str,
    checksum: str,
    reference_checksum: str,
    actual: Callable[[], dict[str, Any]],
    reference_fingerprint: dict[str, Any] | None,
    reference: str = "recipe",
) -> Equivalence:
    """Identical when the content checksums are equal; else equivalent when ``actual()`` (the
    copy's fingerprint, computed only then) matches ``reference_fingerprint`` within
    tolerance; else one line: ``<id> fails verification against its <reference>: different:
    <member> episode <i>: <what> (<this> vs <reference>) (...)`` — the first differing episode
    — or, without a reference fingerprint, that nothing can be compared."""
    if checksum == reference_checksum:
        return Equivalence("identical", checksum, reference_checksum, reference)
    versus = f"content checksum {checksum[:12]} vs {reference} {reference_checksum[:12]}"
    if reference_fingerprint is None:
        raise CtdkitError(
            f"{dataset_id}: {versus}, and the {reference} records no fingerprint to compare "
            "within tolerance (run `python -m ctdkit.datasets fingerprint` where its data were "
            "made)"
        )
    made_on = "made on " + describe_platform(reference_fingerprint["made_on"])
    comparison = compare_fingerprints(actual(), reference_fingerprint)
    if not comparison.equivalent:
        raise CtdkitError(
            f"{dataset_id} fails verification against its {reference}: different: "
            f"{comparison.difference} ({versus}, {made_on})"
        )
    return Equivalence(
        "equivalent",
        checksum,
        reference_checksum,
        reference,
        comparison.largest_return_difference,
        made_on,
    )
