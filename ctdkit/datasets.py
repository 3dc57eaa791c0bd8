"""``python -m ctdkit.datasets list|show|publish|download|verify|manifest``: datasets on disk
and remotes.

Remotes are static folders reached as ``file:///path`` or served over ``http(s)://`` (see
``ctdkit.data.remote``); downloads are verified before they become visible. ``manifest``
prints (or writes into a ``datasets/`` recipe) the sha256 manifest of a published dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ctdkit.collect.rebuild import rebuild_problems
from ctdkit.data.loader import load_datasets
from ctdkit.data.recipes import manifest_toml, recipe_manifests, write_recipe_manifest
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
    """Check local files against their manifest and the data against the content checksum."""

    rebuild: bool = False
    """Also re-run the recorded collect command and compare content checksums."""
    recipe: Path | None = None
    """Also check the files against the published manifest recorded in this recipe
    (datasets/*.toml): the local copy must be the published bytes."""


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
)


def main(command: List | Show | Publish | Download | Verify | Manifest) -> None:
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
    else:
        expected = (
            None if command.recipe is None else recipe_manifests(command.recipe, command.dataset_id)
        )
        problems = verify(command.dataset_id, root, expected)
        if command.rebuild and not problems:
            problems = rebuild_problems(command.dataset_id, root)
        if problems:
            raise CtdkitError(f"{command.dataset_id} fails verification: {'; '.join(problems)}")
        rebuilt = " and rebuilt to the same content checksum" if command.rebuild else ""
        published = f", files as published in {command.recipe}" if command.recipe else ""
        print(f"{command.dataset_id}: verified{published}{rebuilt}")


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
