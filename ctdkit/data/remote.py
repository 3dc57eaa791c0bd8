"""Publish and download datasets as a static folder tree, verified by sha256; every byte from a
remote is untrusted.

A remote is a plain directory tree, served over ``http://`` / ``https://`` or reached as
``file://``::

    <remote>/index.json                                datasets (with metadata) and namespaces
    <remote>/<dataset id>/manifest.json                sha256 + size of every file, content checksum
    <remote>/<dataset id>/data/...                     the Minari dataset files
    <remote>/<namespace>/namespace_metadata.json       group records (members, tasks, checksum)

``publish`` writes such a tree (``file://`` remotes; serve the folder with any static web
server). :class:`StaticRemote` is also registered as a Minari remote backend for these schemes.

``download`` treats the remote as hostile. Every name it sends (dataset ids, manifest entries,
group members, namespaces) is checked like a path before it becomes one, the whole manifest
before a single data byte is fetched. Files stream into a staging folder in blocks, capped at the
size the manifest declares, with a per-read timeout (:data:`TIMEOUT_S`) and a deadline for the
whole download (:data:`DEADLINE_S`); JSON files are capped at a few MiB. Each member is then
checked by sha256, by :func:`ctdkit.data.trust.check_dataset_metadata` (before Minari reads its
metadata) and by its content checksum, and only when every member passed do they move into the
datasets root, followed by the group record. A failure leaves the cache as it was.

Writers hold the OS lock of each id (:func:`ctdkit.data.store.writer_lock`, the one collect holds
too), so a second process stops with a one-line message. Members move into place through the
one group writer, :func:`ctdkit.data.store.publish_group`: a run killed half-way is undone (or,
once committed, completed) by the next command that writes or reads that id.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import minari
from minari.storage import remotes
from minari.storage.remotes.cloud_storage import CloudStorage

from ctdkit.data.checksum import content_checksum
from ctdkit.data.ids import parse_group_id, split_version
from ctdkit.data.store import (
    CTDKIT_METADATA_KEY,
    NAMESPACE_FILE,
    datasets_root,
    group_records,
    minari_root,
    publish_group,
    recover_group,
    staging_dir,
    writer_lock,
)
from ctdkit.data.trust import check_dataset_metadata, is_plain_int
from ctdkit.envs.tasks import ALL_TASKS
from ctdkit.errors import CtdkitError, unknown
from ctdkit.files import (
    MAX_JSON_BYTES,
    inside,
    parse_json_object,
    read_json_object,
    safe_relative_path,
    sha256_file,
    write_json_atomic,
)

MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.json"
SCHEMES = ("http", "https", "file")
#: seconds one read from a remote may wait for data (socket timeout)
TIMEOUT_S = 30.0
#: seconds one download (every file of every member) may take in all
DEADLINE_S = 6 * 3600.0
BLOCK_BYTES = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def build_manifest(dataset_dir: Path, checksum: str) -> dict[str, Any]:
    """sha256 and size of every file of a dataset folder, plus its content checksum."""
    files = {
        path.relative_to(dataset_dir).as_posix(): {
            "sha256": sha256_file(path),
            "size": path.stat().st_size,
        }
        for path in sorted(dataset_dir.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }
    return {"files": files, "content_checksum": checksum}


def check_manifest(manifest: dict[str, Any], what: str) -> dict[str, Any]:
    """Refuse (one line naming ``what``) a manifest with a file name that is not a relative path
    inside the dataset folder, a size that is not an integer, or a sha256 that is not hex."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise CtdkitError(f"{what} has no 'files' object: refused")
    for name, entry in files.items():
        safe_relative_path(name, f"{what}: file name")
        if name == MANIFEST_FILE:
            raise CtdkitError(f"{what}: names {MANIFEST_FILE} as a data file: refused")
        if not isinstance(entry, dict):
            raise CtdkitError(f"{what}: the entry of {name} is not an object")
        size = entry.get("size")
        if not is_plain_int(size) or size < 0:
            raise CtdkitError(f"{what}: {name} has size {size!r}, not a non-negative integer")
        if not isinstance(entry.get("sha256"), str) or not _HEX64.match(entry["sha256"]):
            raise CtdkitError(
                f"{what}: {name} has sha256 {entry.get('sha256')!r}, not 64 hex digits"
            )
        for parent in PurePosixPath(name).parents:
            if str(parent) in files:
                raise CtdkitError(f"{what}: {parent} is both a file and a folder")
    checksum = manifest.get("content_checksum")
    if not isinstance(checksum, str) or not _HEX64.match(checksum):
        raise CtdkitError(f"{what}: content_checksum {checksum!r} is not 64 hex digits")
    return manifest


def manifest_problems(dataset_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """What differs between a dataset folder and its manifest (empty: it matches)."""
    problems = []
    for name, expected in manifest["files"].items():
        path = inside(dataset_dir, name, f"manifest of {dataset_dir}")
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != expected["size"]:
            problems.append(f"{name} has {path.stat().st_size} bytes, expected {expected['size']}")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name} fails its sha256 check")
    return problems


def check_group_entry(entry: object, namespace: str, what: str) -> dict[str, Any]:
    """A group record as ctdkit writes it: members are ids inside ``namespace``, one known task
    each, and a content checksum."""
    if not isinstance(entry, dict):
        raise CtdkitError(f"{what}: the group entry is not an object")
    members, tasks = entry.get("dataset_ids"), entry.get("tasks")
    if not isinstance(members, list) or not members or len(set(map(str, members))) != len(members):
        raise CtdkitError(f"{what}: dataset_ids is not a list of distinct ids")
    for member in members:
        split_version(member)
        if not member.startswith(f"{namespace}/"):
            raise CtdkitError(f"{what}: member {member!r} is not inside namespace {namespace}")
    if not isinstance(tasks, list) or len(tasks) != len(members):
        raise CtdkitError(f"{what}: tasks is not a list with one task per member")
    for task in tasks:
        if task not in ALL_TASKS:
            raise CtdkitError(f"{what}: task {task!r} is not a Meta-World task")
    if not isinstance(entry.get("content_checksum"), str):
        raise CtdkitError(f"{what}: content_checksum is not a string")
    return entry


class StaticRemote(CloudStorage):
    """A Minari remote backend for a static directory tree (``http(s)://host/path``,
    ``file:///path``). Reads work for every scheme; writes (publishing) need ``file://``.

    All reads of one instance share one deadline, :data:`DEADLINE_S` from its creation.
    """

    scheme = "file"

    def __init__(self, name: str, token: str | None = None):
        self.name = name.rstrip("/")
        self.url = f"{self.scheme}://{self.name}"
        self.deadline = time.monotonic() + DEADLINE_S

    # ----- reading
    @contextlib.contextmanager
    def _open(self, relative: str) -> Iterator[tuple[BinaryIO, int | None]]:
        """The remote file ``relative`` as a stream and its declared length (if any)."""
        try:
            if self.scheme == "file":
                with open(Path(self.name) / relative, "rb") as file:
                    yield file, None
                return
            url = f"{self.url}/{relative}"
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as reply:
                length = reply.headers.get("Content-Length")
                yield reply, int(length) if length and length.isdigit() else None
        except FileNotFoundError as error:
            raise CtdkitError(f"remote {self.url} has no {relative}") from error
        except urllib.error.HTTPError as error:
            raise CtdkitError(
                f"remote {self.url}: {relative} answered HTTP {error.code}"
            ) from error
        except TimeoutError as error:
            raise CtdkitError(
                f"remote {self.url}: {relative} sent nothing for {TIMEOUT_S:g} s: refused"
            ) from error
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error or type(error).__name__
            raise CtdkitError(f"remote {self.url} does not answer ({reason})") from error

    def _stream(self, relative: str, out: BinaryIO, limit: int, too_long: str) -> str:
        """Copy ``relative`` into ``out`` in blocks; returns its sha256. Refuses a body longer
        than ``limit`` at once, one shorter than its Content-Length, and the deadline passing."""
        h, total = hashlib.sha256(), 0
        with self._open(relative) as (reply, declared):
            if declared is not None and declared > limit:
                raise CtdkitError(f"remote {self.url}: {relative} {too_long} ({declared} bytes)")
            read = getattr(reply, "read1", reply.read)  # read1: one recv, so the deadline holds
            while block := read(BLOCK_BYTES):
                total += len(block)
                if total > limit:
                    raise CtdkitError(f"remote {self.url}: {relative} {too_long}")
                if time.monotonic() > self.deadline:
                    raise CtdkitError(
                        f"remote {self.url}: download did not finish within {DEADLINE_S:g} s "
                        f"(at {relative}): refused"
                    )
                h.update(block)
                try:
                    out.write(block)
                except OSError as error:  # the local disk, not the remote
                    raise CtdkitError(
                        f"cannot store {relative} while downloading ({error})"
                    ) from error
        if declared is not None and total < declared:
            raise CtdkitError(
                f"remote {self.url}: {relative} ended after {total} of its {declared} bytes "
                "(connection closed early): refused"
            )
        return h.hexdigest()

    def _read_json(self, relative: str) -> dict[str, Any]:
        buffer = io.BytesIO()
        self._stream(relative, buffer, MAX_JSON_BYTES, f"is larger than {MAX_JSON_BYTES} bytes")
        return parse_json_object(buffer.getvalue(), f"remote {self.url}: {relative}")

    def index(self) -> dict[str, Any]:
        """``index.json``, with every dataset id and namespace checked like a path."""
        index = self._read_json(INDEX_FILE)
        what = f"remote {self.url}: {INDEX_FILE}"
        datasets, namespaces = index.get("datasets", {}), index.get("namespaces", [])
        if not isinstance(datasets, dict) or not isinstance(namespaces, list):
            raise CtdkitError(f"{what}: datasets is not an object or namespaces not a list")
        for dataset_id, record in datasets.items():
            split_version(dataset_id)
            if not isinstance(record, dict) or not isinstance(record.get("metadata"), dict):
                raise CtdkitError(f"{what}: the entry of {dataset_id} has no metadata object")
        for namespace in namespaces:
            safe_relative_path(namespace, f"{what}: namespace")
        return {"datasets": datasets, "namespaces": namespaces}

    def manifest(self, dataset_id: str) -> dict[str, Any]:
        split_version(dataset_id)
        relative = f"{dataset_id}/{MANIFEST_FILE}"
        return check_manifest(self._read_json(relative), f"remote {self.url}: {relative}")

    def namespace_metadata(self, namespace: str) -> dict[str, Any]:
        safe_relative_path(namespace, f"remote {self.url}: namespace")
        relative = f"{namespace}/{NAMESPACE_FILE}"
        metadata = self._read_json(relative)
        if not isinstance(metadata.get("groups", {}), dict):
            raise CtdkitError(f"remote {self.url}: {relative}: groups is not an object")
        return metadata

    def list_datasets(self, prefix: str | None = None) -> Iterable[str]:
        return [i for i in self.index()["datasets"] if prefix is None or i.startswith(prefix)]

    def get_dataset_metadata(self, dataset_id: str) -> dict:
        return self.index()["datasets"][dataset_id]["metadata"]

    def list_namespaces(self) -> Iterable[str]:
        return self.index()["namespaces"]

    def download_namespace_metadata(self, namespace: str, path: Path) -> None:
        target = inside(Path(path), namespace, "namespace") / NAMESPACE_FILE
        write_json_atomic(target, self.namespace_metadata(namespace))

    def fetch_dataset(self, dataset_id: str, staging_root: Path) -> None:
        """Fetch ``dataset_id`` into ``staging_root/<id>`` and verify it: the whole manifest,
        then each file's size and sha256 while it streams, then the metadata (trust check), then
        Minari's reading of it and its content checksum. The caller deletes the staging root."""
        manifest = self.manifest(dataset_id)
        staged = inside(staging_root, dataset_id, "dataset id")
        for name, expected in manifest["files"].items():
            path = staged / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as out:
                digest = self._stream(
                    f"{dataset_id}/{name}",
                    out,
                    expected["size"],
                    f"has more bytes than its manifest declares ({expected['size']})",
                )
            size = path.stat().st_size
            if size != expected["size"]:
                raise CtdkitError(
                    f"download of {dataset_id} refused: {name} has {size} bytes, "
                    f"expected {expected['size']} (truncated?)"
                )
            if digest != expected["sha256"]:
                raise CtdkitError(f"download of {dataset_id} refused: {name} fails its sha256")
        write_json_atomic(staged / MANIFEST_FILE, manifest)
        check_dataset_metadata(staged, dataset_id)
        with minari_root(staging_root):
            try:
                dataset = minari.load_dataset(dataset_id)
                checksum = content_checksum(dataset)
            except Exception as error:  # damaged files raise many types
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise CtdkitError(
                    f"download of {dataset_id} refused: unreadable ({reason})"
                ) from error
        stored = dataset.storage.metadata.get(CTDKIT_METADATA_KEY, {}).get("content_checksum")
        if not checksum == manifest["content_checksum"] == stored:
            raise CtdkitError(f"download of {dataset_id} refused: content checksum differs")

    def download_dataset(self, dataset_id: str, path: Path) -> None:
        """Minari's backend call: fetch and verify in staging, then rename into ``path``."""
        download(dataset_id, self.url, Path(path))

    # ----- writing (file:// only)
    def _root(self) -> Path:
        if self.scheme != "file":
            raise CtdkitError(
                f"cannot publish to {self.url}: publish to a folder (file:///path) and serve it"
            )
        return Path(self.name).resolve()

    def upload_dataset(self, dataset_id: str) -> None:
        publish(dataset_id, self.url, datasets_root())

    def upload_namespace(self, namespace: str) -> None:
        """Minari's backend call; ``publish`` writes namespace records with the datasets."""


def _backend(scheme: str) -> type[StaticRemote]:
    return type(f"StaticRemote_{scheme}", (StaticRemote,), {"scheme": scheme})


def register_remotes() -> None:
    """Register :class:`StaticRemote` with Minari for ``http``, ``https`` and ``file`` URLs."""
    for scheme in SCHEMES:
        remotes._registry.setdefault(scheme, lambda scheme=scheme: _backend(scheme))


def open_remote(url: str) -> StaticRemote:
    """The backend for a remote URL (``file:///path``, ``http(s)://host/path``)."""
    scheme, _, name = url.partition("://")
    if scheme not in SCHEMES or not name:
        raise unknown("remote URL scheme", scheme or url, [f"{s}://" for s in SCHEMES])
    return _backend(scheme)(name)


# ----- locks and staging (the moves themselves are ctdkit.data.store.publish_group's)
@contextlib.contextmanager
def _locked(root: Path, names: Iterable[str]) -> Iterator[None]:
    """Hold the writer lock (:func:`ctdkit.data.store.writer_lock`, the one collect holds too) of
    every name in ``root``, in sorted order."""
    with contextlib.ExitStack() as stack:
        for name in sorted(set(names)):
            stack.enter_context(writer_lock(root, name))
        yield


@contextlib.contextmanager
def _staging(root: Path, dataset_id: str) -> Iterator[Path]:
    """``staging_dir(root, dataset_id)``, with a killed earlier publish of the id recovered first
    and an empty ``new/`` folder for the fetched or copied members; ``new/`` is gone when the
    block ends (a collect's interrupted episodes in the same folder are left alone)."""
    staging = staging_dir(root, dataset_id)
    recover_group(staging, root)
    new = staging / "new"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    try:
        yield staging
    finally:
        shutil.rmtree(new, ignore_errors=True)
        for folder in (staging, staging.parent):  # remove them when nothing else is there
            with contextlib.suppress(OSError):
                folder.rmdir()


# ----- local datasets
def _members(dataset_id: str, entry: dict | None) -> list[str]:
    return list(entry["dataset_ids"]) if entry else [dataset_id]


def _group_entry(dataset_id: str, root: Path) -> dict | None:
    """The local record of group ``dataset_id`` (None: a single dataset, or not here)."""
    split_version(dataset_id)
    if (root / dataset_id / "data").is_dir():
        return None
    group = parse_group_id(dataset_id)
    path = inside(root, group.namespace, "namespace") / NAMESPACE_FILE
    if not path.exists():
        return None
    what = f"local {group.namespace}/{NAMESPACE_FILE}"
    groups = read_json_object(path, what).get("groups", {})
    entry = groups.get(f"v{group.version}") if isinstance(groups, dict) else None
    return None if entry is None else check_group_entry(entry, group.namespace, what)


def local_problems(dataset_id: str, root: Path) -> list[str]:
    """Problems of one local dataset: missing, metadata that names foreign code, manifest
    mismatch, or content checksum mismatch."""
    root = datasets_root(root)
    folder = inside(root, dataset_id, "dataset id")
    if not (folder / "data").is_dir():
        return [f"{dataset_id} is not in {root}"]
    try:
        check_dataset_metadata(folder, dataset_id)
        if (folder / MANIFEST_FILE).exists():
            what = f"local {dataset_id}/{MANIFEST_FILE}"
            manifest = check_manifest(read_json_object(folder / MANIFEST_FILE, what), what)
            problems = manifest_problems(folder, manifest)
            if problems:
                return [f"{dataset_id}: {p}" for p in problems]
    except CtdkitError as error:
        return [str(error)]
    with minari_root(root):
        try:
            dataset = minari.load_dataset(dataset_id)
            actual = content_checksum(dataset)
        except Exception as error:  # damaged files raise many types
            return [f"{dataset_id} is unreadable ({str(error).splitlines()[0]})"]
        expected = dataset.storage.metadata.get(CTDKIT_METADATA_KEY, {}).get("content_checksum")
    return [] if actual == expected else [f"{dataset_id}: content checksum differs"]


def trusted_members(dataset_id: str, root: Path | None = None) -> list[str]:
    """The members of a local dataset or group, each checked by
    :func:`~ctdkit.data.trust.check_dataset_metadata` (call before Minari opens them)."""
    root = datasets_root(root)
    members = _members(dataset_id, _group_entry(dataset_id, root))
    for member in members:
        folder = inside(root, member, "dataset id")
        if (folder / "data").is_dir():
            check_dataset_metadata(folder, member)
    return members


# ----- publish
def _refuse_symlinks(folder: Path, dataset_id: str) -> None:
    for path in [folder, *sorted(folder.rglob("*"))]:
        if path.is_symlink():
            raise CtdkitError(
                f"publish of {dataset_id} refused: {path} is a symbolic link (copy the file "
                "into the dataset folder instead)"
            )


def _namespace_ops(root: Path, namespaces: list[str], group: tuple[str, str, dict] | None) -> list:
    """Record ops for the namespace records on a remote: each starts from the local record
    without its groups; a group adds its own entry, never another version's."""
    ops = []
    for namespace in namespaces:
        local = inside(root, namespace, "namespace") / NAMESPACE_FILE
        what = f"local {namespace}/{NAMESPACE_FILE}"
        base = read_json_object(local, what) if local.exists() else {}
        base.pop("groups", None)
        op: dict[str, Any] = {"path": f"{namespace}/{NAMESPACE_FILE}", "base": base}
        if group is not None and group[0] == namespace:
            op["update"] = {"groups": {group[1]: group[2]}}
        ops.append(op)
    return ops


def publish(dataset_id: str, remote: str, root: Path | None = None) -> list[str]:
    """Publish a dataset or group (and its namespace records) to a ``file://`` remote, all or
    nothing: members are staged and checked, swapped in (old copy aside, new copy in, old copy
    deleted last), then the namespace records and last the index."""
    root = datasets_root(root)
    storage = open_remote(remote)
    remote_root = storage._root()
    entry = _group_entry(dataset_id, root)
    members = _members(dataset_id, entry)
    for member in members:
        if not (inside(root, member, "dataset id") / "data").is_dir():
            raise CtdkitError(f"dataset {member} is not in {root}")
        _refuse_symlinks(root / member, member)
    group = None
    if entry is not None:
        parsed = parse_group_id(dataset_id)
        group = (parsed.namespace, f"v{parsed.version}", entry)
    namespaces = sorted({str(p) for m in members for p in PurePosixPath(m).parents} - {"."})
    with _locked(remote_root, [INDEX_FILE]), _staging(remote_root, dataset_id) as staging:
        published = {m: {"metadata": _stage_for_publish(root, m, staging / "new")} for m in members}
        index_op = {
            "path": INDEX_FILE,
            "base": {"datasets": {}, "namespaces": []},
            "update": {"datasets": published},
            "add": {"namespaces": namespaces},
        }
        records = [*_namespace_ops(root, namespaces, group), index_op]
        _commit("publish", dataset_id, staging, remote_root, members, records)
    return members


def _commit(
    verb: str, dataset_id: str, staging: Path, root: Path, members: list[str], records: list
) -> None:
    """Move the staged members in through the one group writer; a failed move is undone there
    and reported here in one line."""
    try:
        publish_group(staging, members, root, records=records, overwrite=True, source="new")
    except OSError as error:
        raise CtdkitError(
            f"{verb} of {dataset_id} failed while moving it into {root} ({error}); "
            f"{root} is as it was"
        ) from error


def _stage_for_publish(root: Path, member: str, staging_root: Path) -> dict[str, Any]:
    """Copy one checked member into staging with its manifest; returns its metadata."""
    source = root / member
    check_dataset_metadata(source, member)
    with minari_root(root):
        dataset = minari.load_dataset(member)
        checksum = dataset.storage.metadata.get(CTDKIT_METADATA_KEY, {}).get("content_checksum")
        if checksum != content_checksum(dataset):
            raise CtdkitError(f"local dataset {member} fails its content checksum: not published")
    staged = staging_root / member
    shutil.copytree(source, staged, symlinks=True, ignore=shutil.ignore_patterns(MANIFEST_FILE))
    _refuse_symlinks(staged, member)  # one that appeared while copying
    write_json_atomic(staged / MANIFEST_FILE, build_manifest(staged, checksum))
    return read_json_object(staged / "data" / "metadata.json", f"{member} metadata")


# ----- download
def download(dataset_id: str, remote: str, root: Path | None = None) -> dict[str, str]:
    """Fetch a dataset or group unless it is already here and verified; returns, per dataset,
    ``"downloaded"`` or ``"cached"``. All or nothing (see the module docstring)."""
    root = datasets_root(root)
    storage = open_remote(remote)
    entry = _group_entry(dataset_id, root)
    group_metadata = None
    if entry is None and not (root / dataset_id / "data").is_dir():
        entry, group_metadata = _remote_group(storage, dataset_id)
    members = _members(dataset_id, entry)
    locks = [dataset_id, *members]
    if group_metadata is not None:
        locks.append(f"{parse_group_id(dataset_id).namespace}/{NAMESPACE_FILE}")
    status: dict[str, str] = {}
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root, locks), _staging(root, dataset_id) as staging:
        for member in members:
            if (root / member / "data").is_dir() and not local_problems(member, root):
                status[member] = "cached"
            elif (root / member).exists():
                raise CtdkitError(
                    f"local {member} fails verification: run `python -m ctdkit.datasets verify "
                    f"{member}` and delete it before downloading again"
                )
            else:
                storage.fetch_dataset(member, staging / "new")
                status[member] = "downloaded"
        fetched = [m for m, s in status.items() if s == "downloaded"]
        records = []
        if group_metadata is not None:  # the remote's description; of its groups only this one
            group = parse_group_id(dataset_id)
            base = {k: v for k, v in group_metadata.items() if k != "groups"}
            records = group_records(group.namespace, group.version, entry, base=base)
        _commit("download", dataset_id, staging, root, fetched, records)
    return status


def _remote_group(storage: StaticRemote, dataset_id: str) -> tuple[dict | None, dict | None]:
    """The remote's record of group ``dataset_id`` and its namespace metadata (None, None: it is
    a single published dataset)."""
    split_version(dataset_id)
    index = storage.index()
    available = sorted(index["datasets"])
    if dataset_id in index["datasets"]:
        return None, None
    group = parse_group_id(dataset_id)  # a group: its members are known from the namespace
    if group.namespace not in index["namespaces"]:
        raise unknown("dataset id", dataset_id, available)
    metadata = storage.namespace_metadata(group.namespace)
    entry = metadata.get("groups", {}).get(f"v{group.version}")
    if entry is None:
        raise unknown("dataset id", dataset_id, available)
    what = f"remote {storage.url}: {group.namespace}/{NAMESPACE_FILE}"
    return check_group_entry(entry, group.namespace, what), metadata


def published_manifests(dataset_id: str, remote: str) -> dict[str, dict[str, Any]]:
    """Each published member's manifest, as the remote serves it (what ``download`` checks)."""
    storage = open_remote(remote)
    entry, _ = _remote_group(storage, dataset_id)
    return {m: storage.manifest(m) for m in _members(dataset_id, entry)}


def verify(
    dataset_id: str,
    root: Path | None = None,
    expected: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Problems of a local dataset or group against its manifest and content checksum, and,
    given ``expected`` (per member: a recipe's recorded manifest), against those files too:
    a local copy must be the very files that were published, not just self-consistent."""
    root = datasets_root(root)
    entry = _group_entry(dataset_id, root)
    if entry is None and not (root / dataset_id / "data").is_dir():
        raise unknown("dataset id", dataset_id, sorted(local_ids(root)))
    members = _members(dataset_id, entry)
    problems = [p for member in members for p in local_problems(member, root)]
    if expected is None or problems:
        return problems
    for member, manifest in expected.items():
        if not isinstance(manifest, dict):
            raise CtdkitError(f"the recipe's manifest of {member} is not a table: refused")
        check_manifest(manifest, f"the recipe's manifest of {member}")
    for member in sorted(set(expected) - set(members)):
        problems.append(f"{member} is in the recipe's manifest but not in the local {dataset_id}")
    for member in members:
        if member not in expected:
            problems.append(f"{member} is not in the recipe's manifest")
            continue
        problems += [
            f"{member}: {p} (recipe)" for p in manifest_problems(root / member, expected[member])
        ]
    return problems


def local_ids(root: Path) -> list[str]:
    """The ids of the datasets under ``root`` (Minari reads only their metadata.json)."""
    with minari_root(root):
        return sorted(minari.list_local_datasets())
