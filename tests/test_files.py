"""``ctdkit.files``: the one atomic write, the one writer lock, the one check of outside names."""

from __future__ import annotations

import os

import pytest

from ctdkit.errors import CtdkitError
from ctdkit.files import (
    MAX_JSON_BYTES,
    exclusive_lock,
    inside,
    read_json_object,
    safe_relative_path,
    write_atomic,
)


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        write_atomic(path, fail)
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["record.json"]


def test_a_second_holder_is_refused_naming_the_first_and_the_lock_file_goes(tmp_path):
    lock = tmp_path / "locks" / "x.lock"
    refused = pytest.raises(CtdkitError, match=rf"another ctdkit process \(pid {os.getpid()}\)")
    with exclusive_lock(lock, "x"), refused, exclusive_lock(lock, "x"):
        pass
    assert not (tmp_path / "locks").exists()
    with exclusive_lock(lock, "x"):  # free again
        assert lock.read_text() == str(os.getpid())


@pytest.mark.parametrize(
    "name",
    ["../x", "a/../../x", "/etc/passwd", "a\\..\\x", "a//b", "./a", "a/", "", "a\x00b", 3, None],
)
def test_names_that_could_leave_their_folder_are_refused(tmp_path, name):
    with pytest.raises(CtdkitError, match="manifest"):
        safe_relative_path(name, "manifest")


def test_a_safe_name_through_a_symlink_out_is_refused(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "link").symlink_to(tmp_path / "outside")
    assert inside(tmp_path / "folder", "data/metadata.json", "x") == (
        tmp_path / "folder" / "data" / "metadata.json"
    )
    with pytest.raises(CtdkitError, match="resolves outside"):
        inside(tmp_path / "folder", "link/file", "x")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),  # deep enough to exhaust the parser
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),  # too long to convert
        (b" " * (MAX_JSON_BYTES + 1), "larger than"),
    ],
)
def test_json_from_outside_is_refused_in_one_line(tmp_path, data, reason):
    path = tmp_path / "record.json"
    path.write_bytes(data)
    with pytest.raises(CtdkitError, match=reason) as refused:
        read_json_object(path, "record.json")
    assert "\n" not in str(refused.value) and "record.json" in str(refused.value)
