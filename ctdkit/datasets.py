"""``python -m ctdkit.datasets list|show|publish|download|verify|manifest|fingerprint``:
datasets on disk and remotes.

Remotes are static folders reached as ``file:///path`` or served over ``http(s)://`` (see
``ctdkit.data.remote``); downloads are verified before they become visible. ``manifest``
prints (or writes into a ``datasets/`` recipe) the sha256 manifest of a published dataset;
``fingerprint`` the per-episode fingerprint of a local one (``ctdkit.data.fingerprint``), which
``verify --recipe`` and ``verify --rebuild`` compare a copy with when its content checksum
differs (a rebuild on another CPU).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ctdkit.collect.rebuild import rebuild_check
from ctdkit.data.fingerprint import dataset_fingerprint, equivalence, fingerprint_toml
from ctdkit.data.loader import load_datasets
from ctdkit.data.recipes import (
    manifest_toml,
    read_recipe,
    recipe_checksum,
    recipe_fingerprint,
    recipe_manifests,
    write_recipe_fingerprint,
    write_recipe_manifest,
)
from ctdkit.data.remote import (
    download,
    local_ids,
    local_problems,
    open_remote,
    publish,
    published_manifests,
    trusted_members,
    verify,
)
from ctdkit.data.store import CTDKIT_METADATA_KEY, datasets_root
from ctdkit.data.trust import check_dataset_metadata
from ctdkit.errors import CtdkitError

DatasetId = Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="DATASET_ID")]
RemoteUrl = Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="REMOTE")]


# The subcommands take their shared fields from these bases. A dataclass puts the fields of its
# last base first: ``class Show(_Local, _Named)`` has dataset_id, then root, as --help lists them.
@dataclass
class _Named:
    dataset_id: DatasetId
    """Dataset id (ctdkit/mt10-scripted/reach-v0) or group id (ctdkit/mt10-scripted-v0)."""


@dataclass
class _Remote(_Named):
    remote: RemoteUrl
    """Remote URL: file:///path (a folder), http://host/path or https://host/path."""


@dataclass
class _AnyRemote:
    remote: str | None = None
    """Remote URL (file:///path, http://host/path); default: the local root."""


@dataclass
class _Local:
    root: Path | None = None
    """Datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets); a relative path is
    taken from the current folder."""


@dataclass
class List(_Local, _AnyRemote):
    """List local datasets, or those of a remote."""


@dataclass
class Show(_Local, _Named):
    """Show a local dataset's or group's metadata and checksum."""


@dataclass
class Publish(_Local, _Remote):
    """Publish a local dataset or group (with sha256 manifests) to a file:// remote."""

    remote: RemoteUrl  # its own help; the field keeps its place after dataset_id
    """Remote folder as file:///path (serve it with any static web server)."""


@dataclass
class Download(_Local, _Remote):
    """Download a dataset or group (verified; skipped when present and verified locally)."""


@dataclass
class Verify(_Local, _Named):
    """Check local files against their manifest and the data against the content checksum;
    with --recipe against a recipe, with --rebuild against a rebuild.

    --recipe FILE: local files that are the bytes the recipe's [manifest] records (a download)
    verify as "files as published". Any other copy (a local build: its files differ from the
    published bytes) is compared by content: the recipe's content checksum gives "identical";
    another one is compared with the recipe's [fingerprint]: "equivalent within tolerance"
    (same episode lengths and success flags, every return within 0.1%; exit 0) or "different",
    naming the first differing episode (exit 2). --rebuild: the rebuilt data's content checksum
    equal to the local copy's gives "identical", else the two copies' fingerprints are
    compared the same way."""

    rebuild: bool = False
    """Also re-run the recorded collect command and compare the data: the content checksums,
    else the per-episode fingerprints (within tolerance)."""
    recipe: Path | None = None
    """Also check the copy against this recipe (datasets/*.toml): its published files, else
    its content checksum, else its fingerprint within tolerance."""


@dataclass
class Fingerprint(_Local, _Named):
    """Compute a local dataset's per-episode fingerprint (lengths, success flags, returns,
    the platform) and write it into its recipe, or print it."""

    recipe: Path | None = None
    """Recipe (datasets/*.toml) to write the [fingerprint] section into, above its published
    manifest; the local copy's content checksum must be the recipe's. Without it: printed."""


@dataclass
class Manifest(_Remote):
    """Print a published dataset's sha256 manifest as TOML, or write it into its recipe."""

    recipe: Path | None = None
    """Recipe (datasets/*.toml) whose manifest section to replace, instead of printing."""


Command = (
    Annotated[List, tyro.conf.subcommand("list")]
    | Annotated[Show, tyro.conf.subcommand("show")]
    | Annotated[Publish, tyro.conf.subcommand("publish")]
    | Annotated[Download, tyro.conf.subcommand("download")]
    | Annotated[Verify, tyro.conf.subcommand("verify")]
    | Annotated[Manifest, tyro.conf.subcommand("manifest")]
    | Annotated[Fingerprint, tyro.conf.subcommand("fingerprint")]
)


def main(command: List | Show | Publish | Download | Verify | Manifest | Fingerprint) -> None:
    if isinstance(command, Manifest):
        manifests = published_manifests(command.dataset_id, command.remote)
        if command.recipe is None:
            print(manifest_toml(manifests, command.remote), end="")
        else:
            write_recipe_manifest(command.recipe, command.dataset_id, manifests, command.remote)
            print(f"wrote the manifest of {len(manifests)} datasets into {command.recipe}")
        return
    root = datasets_root(command.root)
    if isinstance(command, List):
        if command.remote is not None:
            ids = sorted(open_remote(command.remote).list_datasets())
        else:
            ids = [_listed(dataset_id, root) for dataset_id in local_ids(root)]
        print("\n".join(ids) if ids else "(no datasets)")
    elif isinstance(command, Show):
        trusted_members(command.dataset_id, root)  # before Minari reads any metadata
        try:
            group = load_datasets(command.dataset_id, root)
            for _, dataset in group:
                dataset[0]  # read one episode: damaged data files fail here, in one line
        except CtdkitError:
            raise
        except Exception as error:  # a damaged dataset fails in many ways
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CtdkitError(
                f"{command.dataset_id} does not load ({reason}): run "
                f"`python -m ctdkit.datasets verify {command.dataset_id}`"
            ) from error
        for task, dataset in group:
            meta = dataset.storage.metadata
            extra = meta.get(CTDKIT_METADATA_KEY, {})
            print(
                f"{dataset.spec.dataset_id}: task {task}, {dataset.total_episodes} episodes, "
                f"{dataset.total_steps} steps, checksum {extra.get('content_checksum', '?')}"
            )
        print(f"group checksum {group.checksum}")
        print(json.dumps(group.datasets[0].storage.metadata.get(CTDKIT_METADATA_KEY, {}), indent=1))
    elif isinstance(command, Publish):
        for member in publish(command.dataset_id, command.remote, root):
            print(f"published {member} to {command.remote}")
    elif isinstance(command, Download):
        for member, status in download(command.dataset_id, command.remote, root).items():
            print(f"{member}: {status}")
    elif isinstance(command, Fingerprint):
        _fingerprint(command, root)
    else:
        problems = verify(command.dataset_id, root)
        if problems:
            raise CtdkitError(f"{command.dataset_id} fails verification: {'; '.join(problems)}")
        lines = [f"{command.dataset_id}: verified"]
        if command.recipe is not None:
            lines = [_against_recipe(command.dataset_id, command.recipe, root)]
        if command.rebuild:
            rebuilt = rebuild_check(command.dataset_id, root)
            if rebuilt.problems:
                problems = "; ".join(rebuilt.problems)
                raise CtdkitError(f"{command.dataset_id} fails verification: {problems}")
            if rebuilt.equivalence.kind == "identical":
                lines[0] += " and rebuilt to the same content checksum"
            else:
                lines.append(rebuilt.equivalence.message(command.dataset_id))
        print("\n".join(lines))


def _fingerprint(command: Fingerprint, root: Path) -> None:
    """Print the local copy's fingerprint, or write it into its recipe (the recipe's data)."""
    if command.recipe is None:
        print(fingerprint_toml(dataset_fingerprint(command.dataset_id, root)), end="")
        return
    parsed = read_recipe(command.recipe, command.dataset_id)[1]
    expected = recipe_checksum(parsed, command.recipe)
    local = load_datasets(command.dataset_id, root).checksum
    if local != expected:
        raise CtdkitError(
            f"{command.dataset_id}: the local copy's content checksum {local[:12]} is not "
            f"{command.recipe}'s {expected[:12]}, and a fingerprint must describe the recipe's "
            "data: fingerprint a copy that reproduces it (a build on the recipe's platform, or "
            "the published files)"
        )
    fingerprint = dataset_fingerprint(command.dataset_id, root)
    write_recipe_fingerprint(command.recipe, command.dataset_id, fingerprint)
    episodes = sum(len(m["lengths"]) for m in fingerprint["members"].values())
    print(
        f"wrote the fingerprint of {len(fingerprint['members'])} datasets ({episodes} "
        f"episodes) into {command.recipe}"
    )


def _against_recipe(dataset_id: str, recipe: Path, root: Path) -> str:
    """The verdict on a self-consistent local copy against ``recipe``: its published files,
    else its content checksum, else its fingerprint (see :class:`Verify`)."""
    parsed = read_recipe(recipe, dataset_id)[1]
    file_problems: list[str] = []
    if parsed.get("manifest"):
        file_problems = verify(dataset_id, root, recipe_manifests(recipe, dataset_id))
        if not file_problems:
            return f"{dataset_id}: verified, files as published in {recipe}"
    if "content_checksum" not in parsed and file_problems:
        raise CtdkitError(f"{dataset_id} fails verification: {'; '.join(file_problems)}")
    found = equivalence(
        dataset_id,
        load_datasets(dataset_id, root).checksum,
        recipe_checksum(parsed, recipe),
        lambda: dataset_fingerprint(dataset_id, root),
        recipe_fingerprint(parsed, recipe),
    )
    if found.kind == "identical":
        files = "its files are not the published bytes: a local build"
        if not parsed.get("manifest"):
            files = "the recipe records no published manifest"
        return f"{found.message(dataset_id)[:-1]}; {files})"
    return found.message(dataset_id)


def _listed(dataset_id: str, root: Path) -> str:
    """A local id, or the id with the reason ctdkit refuses to open it."""
    try:
        check_dataset_metadata(root / dataset_id, dataset_id)
    except CtdkitError as error:
        return f"{dataset_id}  (refused: {error})"
    return dataset_id


__all__ = ["Command", "local_problems", "main"]

if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(Command, main, "rerun the same command: nothing half-written was kept")
