"""Reading ``datasets/`` recipes (TOML) and writing their two generated sections.

A recipe records how to rebuild a dataset (its command and content checksum), then two
sections that commands write, in this order:

* the **fingerprint** (from the line :data:`~ctdkit.data.fingerprint.FINGERPRINT_MARKER` to
  the manifest marker, or the end): per member, each episode's length, success flag and
  return, the platform it was made on and the tolerances (``ctdkit.data.fingerprint``); a
  copy rebuilt on another CPU is compared with it. Written by :func:`write_recipe_fingerprint`.
* below the marker line :data:`MARKER`, the manifest of the **published form**: per member
  dataset, the sha256 and size of every file ``download`` verifies. Rebuilding reproduces the
  content checksum (on the same platform), not necessarily the file bytes (hdf5 layout and the
  creation time in metadata.json may differ), so the manifest identifies the published files.
  Written by :func:`write_recipe_manifest`, which replaces everything below the marker.

Each writer keeps everything else byte for byte (checked by parsing the result before it is
written, atomically). Recipes are untrusted input: size-capped, and every generated section
is type- and size-checked before use.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ctdkit.data.fingerprint import FINGERPRINT_MARKER, check_fingerprint, fingerprint_toml
from ctdkit.errors import CtdkitError
from ctdkit.files import write_text_atomic

MARKER = "# --- published manifest"
#: the largest recipe read (ours are a few kB; an MT50 fingerprint of 100k episodes ~2 MB)
MAX_RECIPE_BYTES = 4 << 20
_HEX = set("0123456789abcdef")


def manifest_toml(manifests: dict[str, dict[str, Any]], remote: str) -> str:
    """TOML ``[manifest."<member id>"]`` tables; they parse back to ``manifests``."""
    lines = [
        f"{MARKER} (`python -m ctdkit.datasets manifest ID REMOTE --recipe FILE`):",
        f"# sha256 + size of every file as published to {remote}; `download` checks them",
    ]
    for member, manifest in manifests.items():
        lines += ["", f'[manifest."{member}"]']
        lines.append(f'content_checksum = "{manifest["content_checksum"]}"')
        for name, entry in manifest["files"].items():
            lines.append(
                f'files."{name}" = {{ sha256 = "{entry["sha256"]}", size = {entry["size"]} }}'
            )
    return "\n".join(lines) + "\n"


#: the repository's dataset recipes (absent in an installed wheel)
RECIPES_DIR = Path(__file__).resolve().parents[2] / "datasets"


def parse_recipe(recipe: Path) -> tuple[str, dict[str, Any]]:
    """The text and parsed TOML of ``recipe``; an unreadable file is one line."""
    try:
        size = Path(recipe).stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise CtdkitError(f"recipe {recipe} has {size} bytes, more than {MAX_RECIPE_BYTES}")
        text = Path(recipe).read_text()
        return text, tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CtdkitError(f"cannot read recipe {recipe}: {error}") from error


def read_recipe(recipe: Path, dataset_id: str) -> tuple[str, dict[str, Any]]:
    """The text and parsed TOML of ``recipe``, which must be the recipe of ``dataset_id``."""
    text, parsed = parse_recipe(recipe)
    if parsed.get("id") != dataset_id:
        raise CtdkitError(f"recipe {recipe} is not the recipe of {dataset_id} (its id differs)")
    return text, parsed


def find_recipe(dataset_id: str, directory: Path = RECIPES_DIR) -> dict[str, Any] | None:
    """The parsed recipe of ``dataset_id`` among ``directory``'s ``*.toml``, None if none is."""
    path = find_recipe_file(dataset_id, directory)
    return None if path is None else parse_recipe(path)[1]


def find_recipe_file(dataset_id: str, directory: Path = RECIPES_DIR) -> Path | None:
    """The recipe file of ``dataset_id`` among ``directory``'s ``*.toml``, None if none is."""
    for path in sorted(Path(directory).glob("*.toml")):
        if parse_recipe(path)[1].get("id") == dataset_id:
            return path
    return None


def recipe_manifests(recipe: Path, dataset_id: str) -> dict[str, dict[str, Any]]:
    """The published manifests recorded in ``recipe`` (per member id), for ``verify --recipe``."""
    parsed = read_recipe(recipe, dataset_id)[1]
    if not parsed.get("manifest"):
        raise CtdkitError(f"recipe {recipe} records no published manifest")
    if not isinstance(parsed["manifest"], dict):
        raise CtdkitError(f"recipe {recipe}: 'manifest' is not a table of member manifests")
    return parsed["manifest"]


def write_recipe_manifest(
    recipe: Path, dataset_id: str, manifests: dict[str, dict[str, Any]], remote: str
) -> None:
    """Replace the manifest section of ``recipe`` (everything below the marker line)."""
    text, parsed = read_recipe(recipe, dataset_id)
    head = text.split(f"\n{MARKER}")[0].rstrip("\n")
    updated = f"{head}\n\n{manifest_toml(manifests, remote)}"
    _write_checked(recipe, parsed, updated, "manifest", manifests)


def recipe_checksum(parsed: dict[str, Any], recipe: Path | str) -> str:
    """The recipe's ``content_checksum`` (64 hex digits), or one line saying it has none."""
    checksum = parsed.get("content_checksum")
    if not (isinstance(checksum, str) and len(checksum) == 64 and set(checksum) <= _HEX):
        raise CtdkitError(f"recipe {recipe} records no content_checksum (64 hex digits)")
    return checksum


def recipe_fingerprint(parsed: dict[str, Any], recipe: Path | str) -> dict[str, Any] | None:
    """The recipe's ``[fingerprint]``, checked (types, sizes, tolerances) and describing the
    recipe's own ``content_checksum``; None if it records none."""
    if "fingerprint" not in parsed:
        return None
    fingerprint = check_fingerprint(parsed["fingerprint"], f"recipe {recipe}: [fingerprint]")
    if fingerprint["content_checksum"] != recipe_checksum(parsed, recipe):
        raise CtdkitError(
            f"recipe {recipe}: its fingerprint describes content checksum "
            f"{fingerprint['content_checksum'][:12]}, not the recipe's "
            f"{parsed['content_checksum'][:12]}: write it again with "
            "`python -m ctdkit.datasets fingerprint`"
        )
    return fingerprint


def write_recipe_fingerprint(recipe: Path, dataset_id: str, fingerprint: dict[str, Any]) -> None:
    """Put ``fingerprint`` into ``recipe`` (replacing its fingerprint section, if any), above
    the published manifest, which stays as it was."""
    text, parsed = read_recipe(recipe, dataset_id)
    top, marker, manifest = text.partition(f"\n{MARKER}")
    head = top.split(f"\n{FINGERPRINT_MARKER}")[0].rstrip("\n")
    updated = f"{head}\n\n{fingerprint_toml(fingerprint)}"
    if marker:
        updated += f"{marker}{manifest}"
    _write_checked(recipe, parsed, updated, "fingerprint", fingerprint)


def _write_checked(
    recipe: Path, parsed: dict[str, Any], updated: str, section: str, value: Any
) -> None:
    """Write ``updated`` over ``recipe`` (atomically) if it parses to ``parsed`` with
    ``section`` replaced by ``value``: nothing else of the recipe may change."""
    try:
        result = tomllib.loads(updated)
    except tomllib.TOMLDecodeError as error:
        raise CtdkitError(
            f"recipe {recipe}: the new {section} section does not parse ({error}); "
            "is a hand-written one above its marker?"
        ) from error
    if result != {**parsed, section: value}:
        raise CtdkitError(
            f"recipe {recipe}: writing the {section} section would change other lines; "
            f"move hand-written lines above the {section} section's marker"
        )
    write_text_atomic(Path(recipe), updated)
