"""Publish and download datasets through Minari's own remote mechanism, verified by sha256.

Minari reaches remotes through backends registered by URL scheme (``hf://``, ``gcp://``). We
register one more backend, :class:`StaticRemote`, for a plain directory tree served over
``http://`` / ``https://`` or reached as ``file://``::

    <remote>/index.json                                datasets (with metadata) and namespaces
    <remote>/<dataset id>/manifest.json                sha256 + size of every file, content checksum
    <remote>/<dataset id>/data/...                     the Minari dataset files
    <remote>/<namespace>/namespace_metadata.json

``publish`` writes such a tree (``file://`` remotes; serve the folder with any static web
server). ``download`` goes through ``minari.download_dataset``, whose backend call fetches every
file into a temporary folder, checks sizes and sha256 against the manifest and the content
checksum of the data, and only then renames the dataset into place: a corrupt, truncated or
missing file is refused and the local cache is left as it was. A dataset already present and
verified locally is never downloaded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import minari
from minari.dataset.minari_dataset import parse_dataset_id
from minari.namespace import namespace_hierarchy
from minari.storage import remotes
from minari.storage.remotes.cloud_storage import CloudStorage

from ctdkit.data.checksum import content_checksum
from ctdkit.data.ids import parse_group_id
from ctdkit.data.store import (
    CTDKIT_METADATA_KEY,
    datasets_root,
    minari_root,
    read_group_metadata,
)
from ctdkit.errors import CtdkitError, unknown

MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.json"
NAMESPACE_FILE = "namespace_metadata.json"
SCHEMES = ("http", "https", "file")
TIMEOUT_S = 10


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def manifest_problems(dataset_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """What differs between a dataset folder and its manifest (empty: it matches)."""
    problems = []
    for name, expected in manifest["files"].items():
        path = dataset_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != expected["size"]:
            problems.append(f"{name} has {path.stat().st_size} bytes, expected {expected['size']}")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name} fails its sha256 check")
    return problems


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


class StaticRemote(CloudStorage):
    """A Minari remote backend for a static directory tree (``http(s)://host/path``,
    ``file:///path``). Reads work for every scheme; writes (publishing) need ``file://``."""

    scheme = "file"

    def __init__(self, name: str, token: str | None = None):
        self.name = name.rstrip("/")
        self.url = f"{self.scheme}://{self.name}"

    # ----- reading
    def _read(self, relative: str) -> bytes:
        try:
            if self.scheme == "file":
                return (Path(self.name) / relative).read_bytes()
            with urllib.request.urlopen(f"{self.url}/{relative}", timeout=TIMEOUT_S) as reply:
                return reply.read()
        except FileNotFoundError as error:
            raise CtdkitError(f"remote {self.url} has no {relative}") from error
        except urllib.error.HTTPError as error:
            raise CtdkitError(
                f"remote {self.url}: {relative} answered HTTP {error.code}"
            ) from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CtdkitError(f"remote {self.url} does not answer ({reason})") from error

    def _index(self) -> dict[str, Any]:
        return json.loads(self._read(INDEX_FILE))

    def list_datasets(self, prefix: str | None = None) -> Iterable[str]:
        return [i for i in self._index()["datasets"] if prefix is None or i.startswith(prefix)]

    def get_dataset_metadata(self, dataset_id: str) -> dict:
        return self._index()["datasets"][dataset_id]["metadata"]

    def list_namespaces(self) -> Iterable[str]:
        return self._index()["namespaces"]

    def download_namespace_metadata(self, namespace: str, path: Path) -> None:
        target = Path(path) / namespace / NAMESPACE_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self._read(f"{namespace}/{NAMESPACE_FILE}"))

    def download_dataset(self, dataset_id: str, path: Path) -> None:
        """Fetch into a temporary folder, verify every file and the content checksum, then
        rename into ``path``; on any failure nothing is left behind."""
        manifest = json.loads(self._read(f"{dataset_id}/{MANIFEST_FILE}"))
        with tempfile.TemporaryDirectory(dir=path, prefix=".ctdkit-download-") as tmp:
            staged = Path(tmp) / dataset_id
            for name, expected in manifest["files"].items():
                data = self._read(f"{dataset_id}/{name}")
                if len(data) != expected["size"]:
                    raise CtdkitError(
                        f"download of {dataset_id} refused: {name} has {len(data)} bytes, "
                        f"expected {expected['size']} (truncated?)"
                    )
                if hashlib.sha256(data).hexdigest() != expected["sha256"]:
                    raise CtdkitError(f"download of {dataset_id} refused: {name} fails its sha256")
                (staged / name).parent.mkdir(parents=True, exist_ok=True)
                (staged / name).write_bytes(data)
            _write_json_atomic(staged / MANIFEST_FILE, manifest)
            with minari_root(Path(tmp)):
                checksum = content_checksum(minari.load_dataset(dataset_id))
            if checksum != manifest["content_checksum"]:
                raise CtdkitError(f"download of {dataset_id} refused: content checksum differs")
            target = Path(path) / dataset_id
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)

    # ----- writing (file:// only)
    def _root(self) -> Path:
        if self.scheme != "file":
            raise CtdkitError(
                f"cannot publish to {self.url}: publish to a folder (file:///path) and serve it"
            )
        return Path(self.name)

    def _update_index(self, dataset_id: str | None = None, namespace: str | None = None) -> None:
        root = self._root()
        index_path = root / INDEX_FILE
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        index.setdefault("datasets", {})
        index.setdefault("namespaces", [])
        if dataset_id is not None:
            metadata_path = root / dataset_id / "data" / "metadata.json"
            index["datasets"][dataset_id] = {"metadata": json.loads(metadata_path.read_text())}
        if namespace is not None and namespace not in index["namespaces"]:
            index["namespaces"] = sorted([*index["namespaces"], namespace])
        _write_json_atomic(index_path, index)

    def upload_dataset(self, dataset_id: str) -> None:
        source = datasets_root() / dataset_id
        target = self._root() / dataset_id
        dataset = minari.load_dataset(dataset_id)
        checksum = dataset.storage.metadata.get(CTDKIT_METADATA_KEY, {}).get("content_checksum")
        if checksum != content_checksum(dataset):
            raise CtdkitError(
                f"local dataset {dataset_id} fails its content checksum: not published"
            )
        with tempfile.TemporaryDirectory(dir=self._root(), prefix=".ctdkit-publish-") as tmp:
            staged = Path(tmp) / "dataset"
            shutil.copytree(source, staged, ignore=shutil.ignore_patterns(MANIFEST_FILE))
            _write_json_atomic(staged / MANIFEST_FILE, build_manifest(staged, checksum))
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        self._update_index(dataset_id=dataset_id)

    def upload_namespace(self, namespace: str) -> None:
        source = datasets_root() / namespace / NAMESPACE_FILE
        target = self._root() / namespace / NAMESPACE_FILE
        metadata = json.loads(source.read_text()) if source.exists() else {}
        _write_json_atomic(target, metadata)
        self._update_index(namespace=namespace)


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


@contextlib.contextmanager
def _minari_remote(url: str) -> Iterator[None]:
    register_remotes()
    previous = os.environ.get("MINARI_REMOTE")
    os.environ["MINARI_REMOTE"] = url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_REMOTE", None)
        else:
            os.environ["MINARI_REMOTE"] = previous


def _members(dataset_id: str, root: Path, group_entry: dict | None) -> list[str]:
    return list(group_entry["dataset_ids"]) if group_entry else [dataset_id]


def local_problems(dataset_id: str, root: Path) -> list[str]:
    """Problems of one local dataset: missing, manifest mismatch, or content checksum mismatch."""
    folder = root / dataset_id
    if not (folder / "data").is_dir():
        return [f"{dataset_id} is not in {root}"]
    manifest_path = folder / MANIFEST_FILE
    if manifest_path.exists():
        problems = manifest_problems(folder, json.loads(manifest_path.read_text()))
        if problems:
            return [f"{dataset_id}: {p}" for p in problems]
    with minari_root(root):
        try:
            dataset = minari.load_dataset(dataset_id)
            actual = content_checksum(dataset)
        except Exception as error:  # damaged files raise many types
            return [f"{dataset_id} is unreadable ({str(error).splitlines()[0]})"]
        expected = dataset.storage.metadata.get(CTDKIT_METADATA_KEY, {}).get("content_checksum")
    return [] if actual == expected else [f"{dataset_id}: content checksum differs"]


def publish(dataset_id: str, remote: str, root: Path | None = None) -> list[str]:
    """Publish a dataset or group (and its namespace metadata) to a ``file://`` remote."""
    root = Path(root) if root is not None else datasets_root()
    storage = open_remote(remote)
    storage._root().mkdir(parents=True, exist_ok=True)
    entry = _group_entry(dataset_id, root)
    members = _members(dataset_id, root, entry)
    with minari_root(root), _minari_remote(remote):
        for member in members:
            if not (root / member / "data").is_dir():
                raise CtdkitError(f"dataset {member} is not in {root}")
            storage.upload_dataset(member)
            namespace = parse_dataset_id(member)[0]
            for name in namespace_hierarchy(namespace) if namespace else ():
                storage.upload_namespace(name)  # Minari fetches every level on download
    return members


def _group_entry(dataset_id: str, root: Path) -> dict | None:
    if (root / dataset_id / "data").is_dir():
        return None
    group = parse_group_id(dataset_id)
    return read_group_metadata(root, group.namespace, group.version)


def download(dataset_id: str, remote: str, root: Path | None = None) -> dict[str, str]:
    """Fetch a dataset or group unless it is already here and verified; returns, per dataset,
    ``"downloaded"`` or ``"cached"``."""
    root = Path(root) if root is not None else datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    storage = open_remote(remote)
    status: dict[str, str] = {}
    entry = _group_entry(dataset_id, root)
    if entry is None and not (root / dataset_id / "data").is_dir():
        entry = _remote_group_entry(storage, dataset_id)
    members = _members(dataset_id, root, entry)
    with minari_root(root), _minari_remote(remote):
        for member in members:
            if (root / member / "data").is_dir() and not local_problems(member, root):
                status[member] = "cached"
                continue
            if (root / member).exists():
                raise CtdkitError(
                    f"local {member} fails verification: run `python -m ctdkit.datasets verify "
                    f"{member}` and delete it before downloading again"
                )
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
                minari.download_dataset(member)  # (Minari prints its own progress lines)
            if not (root / member / "data").is_dir():
                raise CtdkitError(f"download of {member} did not complete")
            status[member] = "downloaded"
        group_known = _group_entry(dataset_id, root) is not None
        if entry is not None and ("downloaded" in status.values() or not group_known):
            namespace = parse_group_id(dataset_id).namespace
            storage.download_namespace_metadata(namespace, root)
    return status


def _remote_group_entry(storage: StaticRemote, dataset_id: str) -> dict | None:
    """The remote's record of group ``dataset_id`` (None: it is a single published dataset)."""
    available = list(storage.list_datasets())
    if dataset_id in available:
        return None
    group = parse_group_id(dataset_id)  # a group: its members are known from the namespace
    if group.namespace not in storage.list_namespaces():
        raise unknown("dataset id", dataset_id, sorted(available))
    staged = json.loads(storage._read(f"{group.namespace}/{NAMESPACE_FILE}"))
    entry = staged.get("groups", {}).get(f"v{group.version}")
    if entry is None:
        raise unknown("dataset id", dataset_id, sorted(available))
    return entry


def published_manifests(dataset_id: str, remote: str) -> dict[str, dict[str, Any]]:
    """Each published member's manifest, as the remote serves it (what ``download`` checks)."""
    storage = open_remote(remote)
    entry = _remote_group_entry(storage, dataset_id)
    members = list(entry["dataset_ids"]) if entry else [dataset_id]
    return {m: json.loads(storage._read(f"{m}/{MANIFEST_FILE}")) for m in members}


def verify(
    dataset_id: str,
    root: Path | None = None,
    expected: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Problems of a local dataset or group against its manifest and content checksum, and,
    given ``expected`` (per member: a recipe's recorded manifest), against those files too:
    a local copy must be the very files that were published, not just self-consistent."""
    root = Path(root) if root is not None else datasets_root()
    entry = _group_entry(dataset_id, root)
    if entry is None and not (root / dataset_id / "data").is_dir():
        raise unknown("dataset id", dataset_id, sorted(_local_ids(root)))
    members = _members(dataset_id, root, entry)
    problems = [p for member in members for p in local_problems(member, root)]
    if expected is None or problems:
        return problems
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


def _local_ids(root: Path) -> list[str]:
    with minari_root(root):
        return list(minari.list_local_datasets())
