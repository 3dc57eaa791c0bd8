"""The published-manifest section of a ``datasets/`` recipe (TOML), written from a remote.

A recipe records how to rebuild a dataset (its command and content checksum) and, below a
marker line, the manifest of its published form: per member dataset, the sha256 and size of
every file ``download`` verifies. Rebuilding reproduces the content checksum, not necessarily
the file bytes (hdf5 layout and the creation time in metadata.json may differ), so the manifest
identifies the published files and ``verify --rebuild`` compares content checksums.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from ctdkit.errors import CtdkitError

MARKER = "# --- published manifest"


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
    for path in sorted(Path(directory).glob("*.toml")):
        parsed = parse_recipe(path)[1]
        if parsed.get("id") == dataset_id:
            return parsed
    return None


def recipe_manifests(recipe: Path, dataset_id: str) -> dict[str, dict[str, Any]]:
    """The published manifests recorded in ``recipe`` (per member id), for ``verify --recipe``."""
    parsed = read_recipe(recipe, dataset_id)[1]
    if not parsed.get("manifest"):
        raise CtdkitError(f"recipe {recipe} records no published manifest")
    return parsed["manifest"]


def write_recipe_manifest(
    recipe: Path, dataset_id: str, manifests: dict[str, dict[str, Any]], remote: str
) -> None:
    """Replace the manifest section of ``recipe`` (everything below the marker line)."""
    text = read_recipe(recipe, dataset_id)[0]
    head = text.split(f"\n{MARKER}")[0].rstrip("\n")
    updated = f"{head}\n\n{manifest_toml(manifests, remote)}"
    assert tomllib.loads(updated)["manifest"] == manifests  # the TOML round-trips
    tmp = Path(recipe).with_name(f".{Path(recipe).name}.{os.getpid()}.tmp")
    tmp.write_text(updated)
    os.replace(tmp, recipe)
