"""Files written safely and names checked before they become paths.

Three things every stage needs, in one place:

* :func:`write_atomic` / :func:`write_json_atomic` / :func:`write_text_atomic` — a temp file in
  the same folder, then ``os.replace``: a reader never sees a half-written file, and a crash
  leaves at most a hidden ``.name.PID.tmp`` behind.
* :func:`exclusive_lock` — an OS lock (``fcntl.flock``) on a lock file: a second ctdkit process
  that wants to write the same thing stops with a one-line message naming the holder's pid.
  The kernel releases the lock when the holder dies (even by ``kill -9``), so ``--resume``
  after a crash is never blocked by a stale lock file, and a finished holder removes it.
* :func:`safe_relative_path` — a name that comes from a remote, from metadata or from a user
  (dataset ids, manifest entries, namespaces) and will be joined onto a folder: it must be a
  relative POSIX path that stays inside that folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ctdkit.errors import CtdkitError

#: characters allowed in one part of a name from outside (Minari ids use these)
_SAFE_PART = re.compile(r"^[A-Za-z0-9_.\-:]+$")
#: the largest JSON record ctdkit reads (metadata, manifests, indexes, records are kB-sized)
MAX_JSON_BYTES = 4 << 20
#: the longest name accepted from outside (Linux paths allow 4096; nothing of ours comes close)
MAX_NAME_LENGTH = 512


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` on a temp file beside it, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, obj: Any, indent: int | None = 1) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent))


@contextlib.contextmanager
def exclusive_lock(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an exclusive OS lock on ``lock_file`` for the block, or stop at once.

    ``what`` names the thing being written, for the message a second writer sees:
    ``another ctdkit process (pid N) is writing <what>``. The lock is the kernel's, released
    when the holding process exits by any means (a stale file after ``kill -9`` blocks no one).
    The holder removes the file (and its folder, when empty) before releasing the lock, so
    nothing is left behind; a process that locked a file just removed sees that its inode is no
    longer the one at the path and tries again.
    """
    lock_file = Path(lock_file)
    for _attempt in range(100):
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder was removed by a finishing holder: try again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise CtdkitError(
                f"another ctdkit process (pid {holder}) is writing {what}: wait for it to "
                "finish, or stop it and run the command again"
            ) from None
        try:
            current = os.stat(lock_file).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:  # locked a file its holder had just removed
            os.close(fd)
            continue
        break
    else:  # pragma: no cover - a hundred removals in a row
        raise CtdkitError(f"could not lock {lock_file}: another process keeps replacing it")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        lock_file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: another lock lives there
            lock_file.parent.rmdir()
        os.close(fd)  # closing the descriptor releases the lock


def safe_relative_path(name: object, what: str) -> PurePosixPath:
    """``name`` as a relative POSIX path that cannot leave the folder it is joined onto.

    Refused: anything not a string, empty, absolute, with a backslash, NUL or other control
    character, with ``.`` / ``..`` / empty parts, or with characters outside ``[A-Za-z0-9_.-:]``
    in a part. ``what`` says where the name came from, for the one-line message.
    """
    if not isinstance(name, str) or not name:
        raise CtdkitError(f"{what}: {name!r} is not a file name")
    if len(name) > MAX_NAME_LENGTH:
        raise CtdkitError(f"{what}: a name of {len(name)} characters is too long")
    parts = name.split("/")
    bad = (
        name.startswith("/")
        or "\\" in name
        or any(part in ("", ".", "..") for part in parts)
        or not all(_SAFE_PART.match(part) for part in parts)
    )
    if bad:
        raise CtdkitError(
            f"{what}: {name!r} is not a safe relative path (no '..', no leading '/', no "
            "backslash; letters, digits and _.-: only)"
        )
    return PurePosixPath(name)


def inside(folder: Path, name: object, what: str) -> Path:
    """``folder / name`` after checking ``name`` with :func:`safe_relative_path` and that the
    resolved result (symlinks followed) is still inside ``folder``."""
    path = Path(folder) / safe_relative_path(name, what)
    base = Path(folder).resolve()
    if not path.resolve().is_relative_to(base):
        raise CtdkitError(f"{what}: {name!r} resolves outside {folder}")
    return path


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` as a JSON object, or a one-line error naming ``what`` and what is wrong.

    For JSON from outside (downloads, datasets, records): capped in size, and any decoding
    failure — bad syntax or encoding, nesting deep enough to exhaust the parser, an integer
    too long to convert — is the same one-line refusal.
    """
    if len(data) > MAX_JSON_BYTES:
        raise CtdkitError(f"{what} is larger than {MAX_JSON_BYTES} bytes: refused")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError too
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CtdkitError(f"{what} is not valid JSON ({reason})") from None
    if not isinstance(obj, dict):
        raise CtdkitError(f"{what} is not a JSON object (got {type(obj).__name__})")
    return obj


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A size-capped JSON object from a file (never reads more than the cap)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise CtdkitError(f"{what} is missing") from None
    return parse_json_object(data, what)


def sha256_file(path: Path, block_bytes: int = 1 << 20) -> str:
    """The sha256 of a file's bytes, read a block at a time (memory stays flat)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(block_bytes), b""):
            h.update(block)
    return h.hexdigest()
