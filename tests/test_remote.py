"""Publish / download / verify against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from ctdkit.data import load_transitions
from ctdkit.data.remote import download, publish, verify
from ctdkit.errors import CtdkitError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def store(tiny, tmp_path):
    """The tiny group published to a folder (what a static server serves)."""
    folder = tmp_path / "store"
    members = publish(tiny.group_id, f"file://{folder}", root=tiny.root)
    assert members == [t.dataset_id for t in tiny.tasks]
    return folder


def _visible(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_dir() and p.name.startswith("."))


def test_round_trip_over_http_then_offline_reuse(tiny, store, tmp_path):
    cache = tmp_path / "cache"
    with serve(store) as url:
        status = download(tiny.group_id, url, root=cache)
    assert set(status.values()) == {"downloaded"}
    data = load_transitions(tiny.group_id, root=cache)
    assert data.checksum == tiny.checksum and len(data) > 0
    assert verify(tiny.group_id, root=cache) == []
    # the server is gone: a verified local copy is reused, nothing is fetched
    again = download(tiny.group_id, "http://127.0.0.1:9/nowhere", root=cache)
    assert set(again.values()) == {"cached"}


@pytest.mark.parametrize("damage", ["corrupt", "truncate", "delete"])
def test_damaged_remote_files_are_refused_and_the_cache_is_untouched(tiny, store, tmp_path, damage):
    member = tiny.tasks[1].dataset_id
    victim = max((store / member / "data").rglob("*"), key=lambda p: p.stat().st_size)
    raw = bytearray(victim.read_bytes())
    if damage == "corrupt":
        raw[len(raw) // 2] ^= 0xFF
        victim.write_bytes(bytes(raw))
    elif damage == "truncate":
        victim.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        victim.unlink()
    cache = tmp_path / "cache"
    with serve(store) as url, pytest.raises(CtdkitError) as error:
        download(tiny.group_id, url, root=cache)
    message = str(error.value)
    assert "\n" not in message and member in message
    expected = {"corrupt": "sha256", "truncate": "truncated", "delete": "HTTP 404"}[damage]
    assert expected in message
    assert not (cache / member).exists() and _visible(cache) == []  # no partial download


def test_bad_inputs_are_one_line_errors(tiny, store, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(CtdkitError, match="does not answer"):
        download(tiny.group_id, "http://127.0.0.1:9", root=cache)
    with (
        serve(store) as url,
        pytest.raises(CtdkitError, match=r"unknown dataset id 'test/tinny-v0'.*test/tiny"),
    ):
        download("test/tinny-v0", url, root=cache)
    with pytest.raises(CtdkitError, match="unknown remote URL scheme 'ftp'"):
        download(tiny.group_id, "ftp://example", root=cache)
    with pytest.raises(CtdkitError, match="cannot publish to http"):
        publish(tiny.group_id, "http://127.0.0.1:9", root=tiny.root)


def test_verify_finds_local_damage(tiny, store, tmp_path):
    cache = tmp_path / "cache"
    with serve(store) as url:
        download(tiny.group_id, url, root=cache)
    member = tiny.tasks[0].dataset_id
    victim = max((cache / member / "data").rglob("*"), key=lambda p: p.stat().st_size)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    problems = verify(tiny.group_id, root=cache)
    assert len(problems) == 1 and member in problems[0] and "sha256" in problems[0]
    with serve(store) as url, pytest.raises(CtdkitError, match="fails verification"):
        download(tiny.group_id, url, root=cache)
    shutil.rmtree(cache / member)
    with serve(store) as url:
        assert download(tiny.group_id, url, root=cache)[member] == "downloaded"
    assert verify(tiny.group_id, root=cache) == []


def test_datasets_cli_lists_downloads_and_verifies(tiny, store, tmp_path, capsys):
    import tyro

    from ctdkit.datasets import Command, main

    def run(*args):
        main(tyro.cli(Command, args=list(args)))
        return capsys.readouterr().out

    cache = str(tmp_path / "cache")
    assert tiny.tasks[0].dataset_id in run("list", "--remote", f"file://{store}")
    with serve(store) as url:
        assert "downloaded" in run("download", tiny.group_id, url, "--root", cache)
    assert "verified" in run("verify", tiny.group_id, "--root", cache)
    assert "rebuilt to the same content checksum" in run(
        "verify", tiny.group_id, "--root", cache, "--rebuild"
    )
    shown = run("show", tiny.group_id, "--root", cache)
    assert tiny.checksum in shown and "task reach-v3" in shown


def test_manifest_is_written_into_a_recipe_and_matches_the_remote(tiny, store, tmp_path, capsys):
    import json
    import tomllib

    import tyro

    from ctdkit.datasets import Command, main

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(f'id = "{tiny.group_id}"\ncontent_checksum = "{tiny.checksum}"\n')
    args = ["manifest", tiny.group_id, f"file://{store}", "--recipe", str(recipe)]
    for _ in range(2):  # a second write replaces the section, it does not append one
        main(tyro.cli(Command, args=args))
    assert "wrote the manifest of 2 datasets" in capsys.readouterr().out
    recorded = tomllib.loads(recipe.read_text())
    assert recorded["content_checksum"] == tiny.checksum  # the recipe's own lines are kept
    assert recipe.read_text().count("[manifest.") == len(tiny.tasks)
    for task in tiny.tasks:
        served = json.loads((store / task.dataset_id / "manifest.json").read_text())
        assert recorded["manifest"][task.dataset_id] == served
        assert served["content_checksum"] == task.checksum
    main(tyro.cli(Command, args=args[:3]))  # without --recipe: the same TOML on stdout
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed["manifest"] == recorded["manifest"]
    other = tmp_path / "other.toml"
    other.write_text('id = "test/other-v0"\n')
    with pytest.raises(CtdkitError, match="is not the recipe of test/tiny-v0"):
        main(tyro.cli(Command, args=[*args[:3], "--recipe", str(other)]))
    assert other.read_text() == 'id = "test/other-v0"\n'


ZEROS = "0" * 64
CHECKSUM = f'content_checksum = "{ZEROS}"\n'


def test_verify_against_a_recipe_manifest(tiny, store, tmp_path, capsys):
    """A downloaded copy passes `verify --recipe`; a recipe whose manifest names a file the copy
    lacks, or a member the local group does not have, fails it in one line per problem."""
    import tyro

    from ctdkit.data.recipes import recipe_manifests
    from ctdkit.datasets import Command, main

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(f'id = "{tiny.group_id}"\n')
    with pytest.raises(CtdkitError, match="records no published manifest"):
        recipe_manifests(recipe, tiny.group_id)
    main(
        tyro.cli(
            Command, args=["manifest", tiny.group_id, f"file://{store}", "--recipe", str(recipe)]
        )
    )
    cache = tmp_path / "cache"
    with serve(store) as url:
        download(tiny.group_id, url, root=cache)
    args = ["verify", tiny.group_id, "--root", str(cache), "--recipe", str(recipe)]
    main(tyro.cli(Command, args=args))
    assert "files as published in" in capsys.readouterr().out
    # the recipe names a file the local copy lacks, and one member the group does not have
    text = recipe.read_text()
    member = tiny.tasks[0].dataset_id
    recipe.write_text(
        text.replace(
            f'[manifest."{member}"]\n',
            f'[manifest."{member}"]\nfiles."data/extra.bin" = {{ sha256 = "{ZEROS}", size = 1 }}\n',
        )
        + f'\n[manifest."test/absent/x-v0"]\n{CHECKSUM}'
        + f'files."data/main_data.hdf5" = {{ sha256 = "{ZEROS}", size = 1 }}\n'
    )
    problems = verify(tiny.group_id, cache, recipe_manifests(recipe, tiny.group_id))
    assert problems == [
        f"test/absent/x-v0 is in the recipe's manifest but not in the local {tiny.group_id}",
        f"{member}: data/extra.bin is missing (recipe)",
    ]
    with pytest.raises(CtdkitError, match=r"fails verification: .*extra\.bin is missing"):
        main(tyro.cli(Command, args=args))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (CHECKSUM, "has no 'files' object"),
        (CHECKSUM + f'files."../../escape" = {{ sha256 = "{ZEROS}", size = 1 }}\n', "escape"),
        (f'files."data/x" = {{ sha256 = "{ZEROS}", size = 1 }}\n', "content_checksum"),
        (CHECKSUM + 'files."data/x" = { sha256 = "zz", size = 1 }\n', "not 64 hex digits"),
    ],
)
def test_verify_refuses_a_malformed_recipe_manifest(tiny, store, tmp_path, table, message):
    """A recipe's manifest table is untrusted input: a member without files, a file name outside
    the dataset folder, a missing checksum or a non-hex digest is one line, not a KeyError."""
    import tyro

    from ctdkit.datasets import Command, main

    cache = tmp_path / "cache"
    with serve(store) as url:
        download(tiny.group_id, url, root=cache)
    recipe = tmp_path / "tiny.toml"
    member = tiny.tasks[0].dataset_id
    recipe.write_text(f'id = "{tiny.group_id}"\n\n[manifest."{member}"]\n{table}')
    args = ["verify", tiny.group_id, "--root", str(cache), "--recipe", str(recipe)]
    with pytest.raises(CtdkitError, match=message) as refused:
        main(tyro.cli(Command, args=args))
    assert "\n" not in str(refused.value)
