"""Every input from a remote or from a dataset's files is untrusted: one test per hostile class.

Each test checks the one-line refusal and that nothing outside the cache changed (and, for
downloads, nothing inside it either).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import typing
from pathlib import Path

import pytest

import ctdkit.data.remote as remote_module
from ctdkit.cli import run_cli
from ctdkit.collect import CollectConfig, collect
from ctdkit.data.remote import download, publish, sha256_file, verify
from ctdkit.data.trust import check_dataset_metadata
from ctdkit.datasets import Command, main
from ctdkit.errors import CtdkitError
from ctdkit.files import MAX_JSON_BYTES

#: smaller than conftest's TINY: these tests are about refusals, not data
SMALL = dict(
    tasks=("reach-v3", "push-v3"),
    episodes_per_task=1,
    max_episode_steps=30,
    ref_episodes=0,
    seed=5,
    workers=1,
    progress=False,
    noise=0.3,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 2-task group (hdf5), collected once for this module."""
    root = tmp_path_factory.mktemp("small")
    return collect(CollectConfig(**SMALL, root=root, dataset_id="hostile/small-v0"))


def _copy_member(small, tmp_path: Path) -> tuple[Path, str]:
    member = small.tasks[0].dataset_id
    folder = tmp_path / "copy" / member
    shutil.copytree(small.root / member, folder)
    return folder, member


def _edit_metadata(folder: Path, edit) -> None:
    path = folder / "data" / "metadata.json"
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))


def _edit_spec(field: str, edit):
    def apply(metadata):
        spec = json.loads(metadata[field])
        edit(spec)
        metadata[field] = json.dumps(spec)

    return apply


def _evil_entry_point(trace: Path):
    """A stdlib callable that leaves a trace when Gymnasium calls it with the spec's kwargs."""

    def edit(spec):
        spec["entry_point"] = "builtins:open"
        spec["kwargs"] = {"file": str(trace), "mode": "w"}

    return edit


def _drop_spaces(metadata):
    """Without stored spaces, ``MinariStorage.read`` calls ``gym.make(env_spec)``."""
    metadata.pop("observation_space")
    metadata.pop("action_space")


def test_genuine_metadata_passes(small):
    for task in small.tasks:
        folder = small.root / task.dataset_id
        check_dataset_metadata(folder, task.dataset_id)
        # what it passed is what ctdkit writes: its own id and its string entry point
        metadata = json.loads((folder / "data" / "metadata.json").read_text())
        assert metadata["dataset_id"] == task.dataset_id
        spec = json.loads(metadata["env_spec"])
        assert spec["entry_point"] == "ctdkit.envs.make:build_metaworld_env"
        assert spec["kwargs"]["task"] == task.task


def _set(key, value):
    def edit(spec):
        spec[key] = value

    return edit


def _set_kwarg(key, value):
    def edit(spec):
        spec["kwargs"][key] = value

    return edit


def _wrapper_entry_point(value):
    def edit(spec):
        spec["additional_wrappers"][0]["entry_point"] = value

    return edit


@pytest.mark.parametrize(
    "field, edit, expected",
    [
        ("env_spec", _set("entry_point", "os:system"), "entry point 'os:system'"),
        (
            "eval_env_spec",
            _set("entry_point", "ctdkit.envs.make:build_metaworld_env_and_more"),
            "is not ctdkit.envs.make:build_metaworld_env",
        ),
        ("env_spec", _set("vector_entry_point", "os:system"), "vector entry point"),
        ("env_spec", _wrapper_entry_point("os:system"), "wrapper entry point 'os:system'"),
        ("env_spec", _set_kwarg("task", "rm-rf-v3"), "task 'rm-rf-v3'"),
        ("env_spec", _set_kwarg("seed", "0"), "seed is not a int"),
        ("env_spec", _set_kwarg("terminate_on_success", 1), "terminate_on_success is not a bool"),
        ("env_spec", _set_kwarg("view", "x"), "view 'x'"),
        ("env_spec", _set_kwarg("shell", "sh"), "unknown env kwarg 'shell'"),
        ("env_spec", _set("max_episode_steps", 10**6), "max_episode_steps"),
        ("env_spec", _set("id", "other/env-v0"), "env id"),
    ],
)
def test_metadata_naming_foreign_code_is_refused(small, tmp_path, field, edit, expected):
    folder, member = _copy_member(small, tmp_path)
    _edit_metadata(folder, _edit_spec(field, edit))
    with pytest.raises(CtdkitError) as error:
        check_dataset_metadata(folder, member)
    message = str(error.value)
    assert "\n" not in message and member in message and field in message
    assert expected in message


def test_metadata_id_size_and_json_are_checked(small, tmp_path):
    folder, member = _copy_member(small, tmp_path)
    with pytest.raises(CtdkitError, match=r"dataset_id: .* is not the folder's id"):
        check_dataset_metadata(folder, "hostile/small/other-v0")
    metadata = folder / "data" / "metadata.json"
    metadata.write_text("{not json")
    with pytest.raises(CtdkitError, match=r"metadata\.json is not valid JSON"):
        check_dataset_metadata(folder, member)
    metadata.write_text("[1, 2]")
    with pytest.raises(CtdkitError, match=r"metadata\.json is not a JSON object"):
        check_dataset_metadata(folder, member)
    metadata.write_text(" " * (MAX_JSON_BYTES + 1))
    with pytest.raises(CtdkitError, match="larger than"):
        check_dataset_metadata(folder, member)


def test_spaceless_metadata_with_an_evil_entry_point_runs_nothing(small, tmp_path):
    folder, member = _copy_member(small, tmp_path)
    trace = tmp_path / "pwned"
    _edit_metadata(
        folder, lambda m: (_drop_spaces(m), _edit_spec("env_spec", _evil_entry_point(trace))(m))
    )
    with pytest.raises(CtdkitError, match="entry point 'builtins:open'"):
        check_dataset_metadata(folder, member)
    assert not trace.exists()


# ----- a hostile remote: the published group, tampered with, served on 127.0.0.1


@pytest.fixture(scope="module")
def published(small, tmp_path_factory):
    """The small group as published (a pristine copy; tests tamper with their own copy)."""
    folder = tmp_path_factory.mktemp("published") / "store"
    publish(small.group_id, f"file://{folder}", root=small.root)
    return folder


@pytest.fixture
def store(published, tmp_path):
    folder = tmp_path / "store"
    shutil.copytree(published, folder)
    return folder


@pytest.fixture
def cache(tmp_path):
    """A datasets root that already holds something of the user's (it must stay as it was)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "mine.txt").write_text("the user's own file")
    return folder


class _Hostile(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, except: any path ending in a ``payloads`` key gets those bytes, and a
    path ending in a ``behaviours`` key misbehaves (stall, drip, short, endless)."""

    payloads: typing.ClassVar[dict[str, bytes]] = {}
    behaviours: typing.ClassVar[dict[str, str]] = {}
    requests: typing.ClassVar[list[str]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        for suffix, payload in self.payloads.items():
            if self.path.endswith(suffix):
                return self._send(payload, len(payload))
        for suffix, behaviour in self.behaviours.items():
            if self.path.endswith(suffix):
                return self._misbehave(behaviour, (Path(self.directory) / self.path[1:]))
        return super().do_GET()

    def _send(self, body: bytes, length: int | None) -> None:
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def _misbehave(self, behaviour: str, path: Path) -> None:
        body = path.read_bytes()
        with contextlib.suppress(OSError):
            if behaviour == "short":
                return self._send(body[: len(body) // 2], len(body))
            if behaviour == "endless":  # no Content-Length, and more bytes than declared
                self._send(b"", None)
                for _ in range(200):
                    self.wfile.write(body + bytes(1 << 16))
                return None
            self._send(b"", len(body))
            if behaviour == "stall":
                time.sleep(10)
            elif behaviour == "drip":
                for byte in body[:100]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.1)
        return None


@contextlib.contextmanager
def serve(directory: Path, payloads=None, behaviours=None):
    handler = type(
        "Handler",
        (_Hostile,),
        {"payloads": payloads or {}, "behaviours": behaviours or {}, "requests": []},
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with the sha256 of each file (what must not change)."""
    return {
        str(p.relative_to(folder)): (
            "link" if p.is_symlink() else "dir" if p.is_dir() else sha256_file(p)
        )
        for p in sorted(folder.rglob("*"))
    }


def _refused(call, *expected: str) -> str:
    """Run ``call``; it must raise CtdkitError with a one-line message containing ``expected``."""
    with pytest.raises(CtdkitError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message, message
    for part in expected:
        assert part in message, message
    return message


def _rewrite_manifest(store: Path, member: str, edit) -> None:
    path = store / member / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _largest(folder: Path) -> Path:
    return max((folder / "data").rglob("*"), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize(
    "name",
    [
        "../../../../../x.txt",  # from the old staging folder: lands in the cache's parent
        "data/../../../../../../x.txt",
        "ABSOLUTE",  # replaced by an absolute path inside tmp_path
        "..\\..\\..\\..\\..\\x.txt",
        "data\\x.txt",
    ],
)
def test_manifest_names_outside_the_folder_are_refused_before_any_fetch(
    small, store, cache, tmp_path, name
):
    if name == "ABSOLUTE":
        name = str(tmp_path / "x.txt")
    member = small.tasks[0].dataset_id
    payload = b"written outside the dataset folder"
    entry = {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    _rewrite_manifest(store, member, lambda m: m["files"].__setitem__(name, entry))
    before = _snapshot(tmp_path)
    with serve(store, payloads={"x.txt": payload}) as (url, requests):
        _refused(lambda: download(small.group_id, url, root=cache), repr(name), "manifest.json")
    assert _snapshot(tmp_path) == before
    assert not [r for r in requests if "/data/" in r or r.endswith("x.txt")]  # nothing fetched


def _edit_json(store: Path, relative: str, edit) -> None:
    path = store / relative
    path.write_text(edit(json.loads(path.read_text())))


@pytest.mark.parametrize(
    "relative, edit, expected",
    [
        ("index.json", lambda j: "{not json", "index.json is not valid JSON"),
        ("index.json", lambda j: "[]", "index.json is not a JSON object"),
        ("index.json", lambda j: " " * (MAX_JSON_BYTES + 1), "index.json is larger than"),
        (
            "index.json",
            lambda j: json.dumps({**j, "datasets": {"../../evil-v0": {"metadata": {}}}}),
            "'../../evil-v0' is not a safe relative path",
        ),
        ("MEMBER/manifest.json", lambda j: "{", "manifest.json is not valid JSON"),
        ("MEMBER/manifest.json", lambda j: json.dumps({"x": 1}), "has no 'files' object"),
        (
            "MEMBER/manifest.json",
            lambda j: json.dumps(
                {**j, "files": {k: {**v, "size": str(v["size"])} for k, v in j["files"].items()}}
            ),
            "not a non-negative integer",
        ),
        (
            "MEMBER/manifest.json",
            lambda j: json.dumps(
                {**j, "files": {k: {**v, "sha256": "z" * 64} for k, v in j["files"].items()}}
            ),
            "not 64 hex digits",
        ),
        ("hostile/small/namespace_metadata.json", lambda j: "\xff", "is not valid JSON"),
        ("hostile/small/namespace_metadata.json", lambda j: "1", "is not a JSON object"),
        (
            "hostile/small/namespace_metadata.json",
            lambda j: json.dumps(
                {"groups": {"v0": {**j["groups"]["v0"], "dataset_ids": ["../../../x/a-v0"] * 2}}}
            ),
            "not a list of distinct ids",
        ),
        (
            "hostile/small/namespace_metadata.json",
            lambda j: json.dumps(
                {"groups": {"v0": {**j["groups"]["v0"], "dataset_ids": ["../x/a-v0", "b-v0"]}}}
            ),
            "'../x/a-v0' is not a safe relative path",
        ),
    ],
)
def test_malformed_remote_json_is_refused_naming_the_file(
    small, store, cache, tmp_path, relative, edit, expected
):
    relative = relative.replace("MEMBER", small.tasks[1].dataset_id)
    _edit_json(store, relative, edit)
    before = _snapshot(tmp_path)
    with serve(store) as (url, _):
        _refused(lambda: download(small.group_id, url, root=cache), expected)
    assert _snapshot(tmp_path) == before


def test_a_symlink_in_a_dataset_folder_is_not_published(small, tmp_path):
    local = tmp_path / "local"
    shutil.copytree(small.root, local)
    member = small.tasks[1].dataset_id
    (tmp_path / "secret.txt").write_text("not for publishing")
    (local / member / "data" / "notes.txt").symlink_to(tmp_path / "secret.txt")
    remote = tmp_path / "remote"
    before = _snapshot(tmp_path)
    _refused(
        lambda: publish(small.group_id, f"file://{remote}", root=local),
        "notes.txt is a symbolic link",
        member,
    )
    assert _snapshot(tmp_path) == before and not remote.exists()


@pytest.mark.parametrize("behaviour", ["longer file", "endless"])
def test_more_bytes_than_the_manifest_declares_are_refused(
    small, store, cache, tmp_path, behaviour
):
    victim = _largest(store / small.tasks[1].dataset_id)
    behaviours = {}
    if behaviour == "longer file":  # Content-Length says so: refused before reading
        victim.write_bytes(victim.read_bytes() + bytes(1 << 20))
    else:
        behaviours = {victim.name: "endless"}
    before = _snapshot(tmp_path)
    with serve(store, behaviours=behaviours) as (url, _):
        _refused(
            lambda: download(small.group_id, url, root=cache),
            victim.name,
            "more bytes than its manifest declares",
        )
    assert _snapshot(tmp_path) == before


def test_a_body_shorter_than_its_content_length_is_refused(small, store, cache, tmp_path):
    victim = _largest(store / small.tasks[0].dataset_id)
    before = _snapshot(tmp_path)
    with serve(store, behaviours={victim.name: "short"}) as (url, _):
        _refused(
            lambda: download(small.group_id, url, root=cache),
            victim.name,
            f"ended after {victim.stat().st_size // 2} of its {victim.stat().st_size} bytes",
        )
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "behaviour, timeout_s, deadline_s, expected",
    [("stall", 0.5, 60.0, "sent nothing for 0.5 s"), ("drip", 60.0, 1.0, "within 1 s")],
)
def test_a_slow_server_is_cut_off(
    small, store, cache, tmp_path, monkeypatch, behaviour, timeout_s, deadline_s, expected
):
    """A server that stops sending (per-read timeout), or sends a byte every 0.1 s for 10 s
    (each read is quick: only the deadline for the whole download stops it)."""
    monkeypatch.setattr(remote_module, "TIMEOUT_S", timeout_s)
    monkeypatch.setattr(remote_module, "DEADLINE_S", deadline_s)
    victim = _largest(store / small.tasks[0].dataset_id)
    before = _snapshot(tmp_path)
    started = time.monotonic()
    with serve(store, behaviours={victim.name: behaviour}) as (url, _):
        _refused(lambda: download(small.group_id, url, root=cache), expected)
    assert time.monotonic() - started < 6  # the server would go on for 10 s
    assert _snapshot(tmp_path) == before


def _poison(folder: Path, trace: Path) -> None:
    """Make ``folder``'s metadata name ``builtins:open`` (it would create ``trace``) and drop the
    spaces, so that Minari's own ``load_dataset`` calls ``gym.make`` on it."""
    _edit_metadata(
        folder, lambda m: (_drop_spaces(m), _edit_spec("env_spec", _evil_entry_point(trace))(m))
    )


def test_foreign_entry_point_is_refused_on_download(small, store, cache, tmp_path):
    member = small.tasks[1].dataset_id
    trace = tmp_path / "pwned"
    _poison(store / member, trace)
    metadata = store / member / "data" / "metadata.json"
    entry = {"sha256": sha256_file(metadata), "size": metadata.stat().st_size}
    _rewrite_manifest(store, member, lambda m: m["files"].__setitem__("data/metadata.json", entry))
    before = _snapshot(tmp_path)
    with serve(store) as (url, _):
        _refused(
            lambda: download(small.group_id, url, root=cache), member, "entry point 'builtins:open'"
        )
    assert not trace.exists()
    assert _snapshot(tmp_path) == before


def test_foreign_entry_point_is_refused_by_verify_show_and_list(small, tmp_path, capsys):
    local = tmp_path / "local"
    shutil.copytree(small.root, local)
    member = small.tasks[0].dataset_id
    trace = tmp_path / "pwned"
    _poison(local / member, trace)
    problems = verify(small.group_id, root=local)
    assert len(problems) == 1 and "entry point 'builtins:open'" in problems[0]
    for verb in ("verify", "show"):
        for dataset_id in (small.group_id, member):
            assert run_cli(Command, main, [verb, dataset_id, "--root", str(local)]) == 2
            err = capsys.readouterr().err.strip()
            assert "\n" not in err and "entry point 'builtins:open'" in err, err
    assert run_cli(Command, main, ["list", "--root", str(local)]) == 0
    listed = capsys.readouterr().out
    assert f"{member}  (refused: " in listed and small.tasks[1].dataset_id in listed
    assert not trace.exists()


def test_show_reports_a_dataset_that_does_not_load_in_one_line(small, tmp_path, capsys):
    local = tmp_path / "local"
    shutil.copytree(small.root, local)
    member = small.tasks[0].dataset_id
    victim = _largest(local / member)
    victim.write_bytes(victim.read_bytes()[:100])
    assert run_cli(Command, main, ["show", small.group_id, "--root", str(local)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and small.group_id in err and "does not load" in err, err
    shutil.rmtree(local / member)
    record = local / "hostile" / "small" / "namespace_metadata.json"
    metadata = json.loads(record.read_text())
    del metadata["groups"]["v0"]["tasks"]
    record.write_text(json.dumps(metadata))
    assert run_cli(Command, main, ["show", small.group_id, "--root", str(local)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "tasks is not a list" in err, err


# ----- all or nothing


def test_a_failure_on_the_second_member_keeps_nothing(small, store, cache, tmp_path, monkeypatch):
    second = small.tasks[1].dataset_id
    real = os.replace

    def flaky(source, target):
        if str(target).endswith(second) and "old" not in Path(target).parts:
            raise OSError("simulated failure")
        return real(source, target)

    before = _snapshot(tmp_path)
    with serve(store) as (url, _):
        monkeypatch.setattr(os, "replace", flaky)
        _refused(lambda: download(small.group_id, url, root=cache), "simulated failure")
        monkeypatch.setattr(os, "replace", real)
    assert _snapshot(tmp_path) == before  # no member, no namespace record, no staging


def test_a_failed_republish_leaves_the_remote_as_it_was(small, store, tmp_path, monkeypatch):
    local = tmp_path / "local"
    shutil.copytree(small.root, local)
    for task in small.tasks:  # a new copy that differs from the published one
        _edit_metadata(local / task.dataset_id, lambda m: m.__setitem__("description", "new"))
    second = small.tasks[1].dataset_id
    real = os.replace

    def flaky(source, target):
        if str(target) == str(store / second) and "new" in Path(source).parts:
            raise OSError("simulated failure")
        return real(source, target)

    before = _snapshot(store)
    monkeypatch.setattr(os, "replace", flaky)
    _refused(lambda: publish(small.group_id, f"file://{store}", root=local), "simulated failure")
    monkeypatch.setattr(os, "replace", real)
    assert _snapshot(store) == before
    publish(small.group_id, f"file://{store}", root=local)
    for task in small.tasks:
        metadata = json.loads((store / task.dataset_id / "data" / "metadata.json").read_text())
        assert metadata["description"] == "new"
    assert sorted(p.name for p in store.iterdir()) == ["hostile", "index.json"]
    cache = tmp_path / "cache"
    assert set(download(small.group_id, f"file://{store}", root=cache).values()) == {"downloaded"}


def test_downloading_one_version_keeps_the_record_of_another(small, store, cache):
    record = cache / "hostile" / "small" / "namespace_metadata.json"
    other = {
        "dataset_ids": ["hostile/small/reach-v1"],
        "tasks": ["reach-v3"],
        "content_checksum": "0" * 64,
    }
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"description": "mine", "groups": {"v1": other}}))
    with serve(store) as (url, _):
        download(small.group_id, url, root=cache)
    groups = json.loads(record.read_text())["groups"]
    assert groups["v1"] == other and groups["v0"]["dataset_ids"] == [
        t.dataset_id for t in small.tasks
    ]
    assert json.loads(record.read_text())["description"] == "mine"
    assert verify(small.group_id, root=cache) == []


def test_a_relative_root_works_from_the_cli(small, store, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    remote = f"file://{store}"
    assert run_cli(Command, main, ["download", small.group_id, remote, "--root", "runs/x"]) == 0
    assert run_cli(Command, main, ["verify", small.group_id, "--root", "runs/x"]) == 0
    assert "verified" in capsys.readouterr().out
    assert (tmp_path / "runs" / "x" / small.tasks[0].dataset_id / "data").is_dir()


def test_every_datasets_flag_has_help():
    from tyro._docstrings import get_field_docstring

    for command in typing.get_args(Command):
        cls = typing.get_args(command)[0]
        for field in dataclasses.fields(cls):
            assert get_field_docstring(cls, field.name, ()), f"{cls.__name__}.{field.name}"


# ----- other processes: a second downloader, and kill -9


def _python(script: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env)


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    for _ in range(600):
        if path.exists() or process.poll() is not None:
            return
        time.sleep(0.05)


def test_a_second_downloader_is_told_who_holds_the_lock_and_kill_9_frees_it(
    small, store, cache, tmp_path
):
    ready = tmp_path / "ready"
    holder = _python(
        f"""
        import time
        from pathlib import Path
        import ctdkit.data.remote as remote
        def stuck(dataset):
            Path({str(ready)!r}).touch()
            time.sleep(120)
        remote.content_checksum = stuck
        remote.download({small.group_id!r}, "file://{store}", root=Path({str(cache)!r}))
        """
    )
    try:
        _wait_for(ready, holder)
        assert holder.poll() is None, "the holder did not start"
        _refused(
            lambda: download(small.group_id, f"file://{store}", root=cache),
            f"another ctdkit process (pid {holder.pid}) is writing",
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    status = download(small.group_id, f"file://{store}", root=cache)
    assert set(status.values()) == {"downloaded"}
    assert verify(small.group_id, root=cache) == []
    assert sorted(p.name for p in cache.iterdir()) == ["hostile", "mine.txt"]  # no leftovers


def test_kill_9_between_member_renames_is_undone_by_the_next_download(small, store, cache):
    second = small.tasks[1].dataset_id
    killed = _python(
        f"""
        import os, signal
        from pathlib import Path
        import ctdkit.data.remote as remote
        real = os.replace
        def replace(source, target):
            if str(target).endswith({second!r}):
                os.kill(os.getpid(), signal.SIGKILL)
            return real(source, target)
        os.replace = replace
        remote.download({small.group_id!r}, "file://{store}", root=Path({str(cache)!r}))
        """
    )
    assert killed.wait() == -signal.SIGKILL
    assert not (cache / "hostile" / "small" / "namespace_metadata.json").exists()
    with pytest.raises(CtdkitError, match="unknown dataset id"):
        verify(small.group_id, root=cache)  # the group is not there
    status = download(small.group_id, f"file://{store}", root=cache)
    assert set(status.values()) == {"downloaded"}  # the half-moved member was undone first
    assert verify(small.group_id, root=cache) == []
    assert sorted(p.name for p in cache.iterdir()) == ["hostile", "mine.txt"]
