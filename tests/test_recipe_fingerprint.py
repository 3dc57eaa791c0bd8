"""Recipe fingerprints: data rebuilt on another machine is "equivalent within tolerance" (same
episode lengths and success flags, returns within 0.1%), never a bare checksum mismatch.

One tiny collection (2 tasks x 2 episodes x 60 steps) is fingerprinted; copies of it and of its
recipe are then edited to play the other machine: a recipe with another content checksum and
returns moved within or beyond the tolerance, a flipped success flag, a shorter episode, and a
self-consistent copy whose observations are nudged (another CPU's rounding) for ``--rebuild``.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tomllib
import warnings
from pathlib import Path

import h5py
import minari
import pytest
import tyro

from ctdkit.collect import CollectConfig, collect
from ctdkit.data.checksum import combine_checksums, content_checksum
from ctdkit.data.fingerprint import (
    RETURN_REL_TOL,
    check_fingerprint,
    compare_fingerprints,
    dataset_fingerprint,
    fingerprint_toml,
    return_difference,
    returns_close,
)
from ctdkit.data.recipes import (
    MARKER,
    recipe_fingerprint,
    write_recipe_fingerprint,
    write_recipe_manifest,
)
from ctdkit.data.store import minari_root
from ctdkit.datasets import Command, main
from ctdkit.errors import CtdkitError

GROUP = "test/fp-v0"
MEMBERS = ("test/fp/reach-v0", "test/fp/push-v0")
OTHER = "ab" * 32  # "another machine's" content checksum


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp")
    config = CollectConfig(
        tasks=("reach-v3", "push-v3"),
        episodes_per_task=2,
        max_episode_steps=60,
        noise=0.3,
        seed=5,
        ref_episodes=0,
        workers=1,
        progress=False,
        root=root,
        dataset_id=GROUP,
    )
    result = collect(config)
    return {"root": root, "checksum": result.checksum, "fp": dataset_fingerprint(GROUP, root)}


def _run(*args: str) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(tyro.cli(Command, args=list(args)))
    return out.getvalue()


def _recipe(path: Path, checksum: str, fingerprint: dict | None = None) -> Path:
    text = f'# a recipe\nid = "{GROUP}"\ncommand = "python -m ctdkit.collect"\n'
    text += f'content_checksum = "{checksum}"\n\n[success]\n"reach-v3" = 0.5\n'
    path.write_text(text)
    if fingerprint is not None:
        write_recipe_fingerprint(path, GROUP, fingerprint)
    return path


def _elsewhere(fp: dict, scale: dict[tuple[str, int], float] | None = None) -> dict:
    """``fp`` as another machine would have recorded it: another checksum, returns scaled."""
    other = copy.deepcopy(fp)
    other["content_checksum"] = OTHER
    other["made_on"] = {"machine": "x86_64", "cpu": "Other CPU", "avx512": False}
    for (member, episode), factor in (scale or {}).items():
        other["members"][member]["returns"][episode] *= factor
    return other


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------ the format
def test_fingerprint_holds_lengths_success_and_returns_and_round_trips(data):
    fp = data["fp"]
    assert fp["content_checksum"] == data["checksum"]
    assert list(fp["members"]) == list(MEMBERS)
    with minari_root(data["root"]):
        for member in MEMBERS:
            dataset = minari.load_dataset(member)
            meta = list(dataset.storage.get_episode_metadata(list(dataset.episode_indices)))
            got = fp["members"][member]
            assert got["lengths"] == [int(m["length"]) for m in meta] == [60, 60]
            assert got["success"] == [bool(m["success"]) for m in meta]
            assert got["returns"] == pytest.approx([float(m["return"]) for m in meta], rel=1e-6)
    assert tomllib.loads(fingerprint_toml(fp))["fingerprint"] == fp
    assert fp["made_on"]["numpy"] and fp["made_on"]["metaworld"] and fp["made_on"]["cpu"]


def test_returns_tolerance_is_relative_with_a_floor_near_zero():
    assert RETURN_REL_TOL == 1e-3
    assert returns_close(1000.0, 1000.9) and not returns_close(1000.0, 1001.1)
    assert returns_close(1e-9, 2e-9) and returns_close(0.0, 0.0)  # failed episodes: ~0
    assert return_difference(1000.0, 1000.5) == pytest.approx(0.5 / 1000.5)


def test_fingerprint_and_manifest_writers_keep_each_other(data, tmp_path):
    recipe = _recipe(tmp_path / "r.toml", data["checksum"])
    head = recipe.read_text()
    manifests = {
        m: {
            "content_checksum": "0" * 64,
            "files": {"data/main_data.hdf5": {"sha256": "1" * 64, "size": 3}},
        }
        for m in MEMBERS
    }
    write_recipe_manifest(recipe, GROUP, manifests, "file:///store")
    write_recipe_fingerprint(recipe, GROUP, data["fp"])
    write_recipe_manifest(recipe, GROUP, manifests, "file:///store")  # replaces, keeps the fp
    write_recipe_fingerprint(recipe, GROUP, data["fp"])  # replaces, keeps the manifest
    text = recipe.read_text()
    assert text.startswith(head.rstrip("\n")) and text.count("[fingerprint]") == 1
    assert text.index("[fingerprint]") < text.index(MARKER) and text.count(MARKER) == 1
    parsed = tomllib.loads(text)
    assert parsed["manifest"] == manifests and parsed["success"] == {"reach-v3": 0.5}
    assert recipe_fingerprint(parsed, recipe) == data["fp"]


# ---------------------------------------------------------------------------- the commands
def test_fingerprint_command_writes_the_recipe_only_for_the_recipes_data(data, tmp_path):
    root = str(data["root"])
    recipe = _recipe(tmp_path / "r.toml", data["checksum"])
    assert "2 datasets (4 episodes)" in _run(
        "fingerprint", GROUP, "--root", root, "--recipe", str(recipe)
    )
    assert tomllib.loads(recipe.read_text())["fingerprint"]["members"] == data["fp"]["members"]
    other = _recipe(tmp_path / "o.toml", OTHER)
    before = other.read_text()
    with pytest.raises(CtdkitError, match="must describe the recipe's data") as error:
        _run("fingerprint", GROUP, "--root", root, "--recipe", str(other))
    assert _one_line(error) and other.read_text() == before
    assert tomllib.loads(_run("fingerprint", GROUP, "--root", root))["fingerprint"]


def test_verify_recipe_identical_equivalent_or_different(data, tmp_path):
    root = str(data["root"])
    args = ["verify", GROUP, "--root", root, "--recipe"]
    same = _recipe(tmp_path / "same.toml", data["checksum"], data["fp"])
    assert "identical to the recipe's data" in _run(*args, str(same))
    # another machine's recipe: every return 0.05% higher, another checksum -> equivalent
    within = {(m, i): 1 + 5e-4 for m in MEMBERS for i in range(2)}
    recipe = _recipe(tmp_path / "within.toml", OTHER, _elsewhere(data["fp"], within))
    out = _run(*args, str(recipe))
    assert out.startswith(f"{GROUP}: equivalent within tolerance (largest return difference 0.05")
    assert f"content checksum {data['checksum'][:12]} vs recipe {OTHER[:12]}" in out
    assert "of 0.1%" in out and "made on x86_64, Other CPU (no AVX-512)" in out
    # beyond the tolerance in push's second episode: different, naming it
    beyond = _recipe(
        tmp_path / "beyond.toml", OTHER, _elsewhere(data["fp"], {(MEMBERS[1], 1): 1.002})
    )
    with pytest.raises(CtdkitError, match=f"different: {MEMBERS[1]} episode 1: return") as error:
        _run(*args, str(beyond))
    assert "beyond 0.1%" in _one_line(error)
    # no fingerprint to compare with: a one-line failure, not a bare mismatch
    bare = _recipe(tmp_path / "bare.toml", OTHER)
    with pytest.raises(CtdkitError, match="records no fingerprint to compare within tolerance"):
        _run(*args, str(bare))


def test_first_differing_episode_is_named(data):
    fp = data["fp"]
    reach, push = MEMBERS

    def first(edit) -> str | None:
        other = _elsewhere(fp)
        edit(other["members"])
        return compare_fingerprints(fp, other).difference

    assert first(lambda m: None) is None
    flipped = not fp["members"][push]["success"][1]
    assert first(lambda m: m[push]["success"].__setitem__(1, flipped)) == (
        f"{push} episode 1: success ({str(not flipped).lower()} vs {str(flipped).lower()})"
    )
    assert first(lambda m: m[reach]["lengths"].__setitem__(0, 59)) == (
        f"{reach} episode 0: length (60 vs 59)"
    )

    def drop_last(m):
        for key in ("lengths", "success", "returns"):
            m[push][key].pop()

    assert first(drop_last) == f"{push} episode 1: episodes (2 vs 1)"
    # a later episode's larger difference does not hide an earlier one
    both = {(reach, 1): 1.01, (push, 0): 1.5}
    other = _elsewhere(fp, both)
    assert compare_fingerprints(fp, other).difference.startswith(f"{reach} episode 1: return")
    assert first(lambda m: m.pop(push)) == f"{push}: in this copy, not in the reference fingerprint"


def _nudged_copy(data, tmp_path: Path) -> Path:
    """A self-consistent copy whose observations differ in the last bits, as another CPU's
    rounding would make them: other content checksums, the same fingerprint."""
    root = tmp_path / "elsewhere"
    shutil.copytree(data["root"], root)
    checksums = []
    for member in MEMBERS:
        with h5py.File(root / member / "data" / "main_data.hdf5", "r+") as f:
            obs = f["episode_0/observations"]
            obs[...] = obs[...] * (1 + 1e-12)
        with minari_root(root):
            checksum = content_checksum(minari.load_dataset(member))
        path = root / member / "data" / "metadata.json"
        meta = json.loads(path.read_text())
        meta["ctdkit"]["content_checksum"] = checksum
        path.write_text(json.dumps(meta))
        checksums.append(checksum)
    path = root / "test" / "fp" / "namespace_metadata.json"
    namespace = json.loads(path.read_text())
    namespace["groups"]["v0"]["content_checksum"] = combine_checksums(
        zip(("reach-v3", "push-v3"), checksums, strict=True)
    )
    path.write_text(json.dumps(namespace))
    return root


def test_verify_rebuild_reports_an_equivalent_rebuild(data, tmp_path, monkeypatch):
    import ctdkit.collect.rebuild as rebuild

    def inline(config):  # the recorded --workers 2 would start a process pool: seconds
        return collect(config.replace(workers=1))

    monkeypatch.setattr(rebuild, "collect", inline)
    root = _nudged_copy(data, tmp_path)
    out = _run("verify", GROUP, "--root", str(root), "--rebuild")
    assert f"{GROUP}: equivalent within tolerance (largest return difference 0% of 0.1%" in out
    assert f"content checksum {data['checksum'][:12]} vs local" in out and "rebuilt on " in out


# ------------------------------------------------------------------------ hostile recipes
def _hostile(fp: dict, edit) -> dict:
    bad = copy.deepcopy(fp)
    edit(bad)
    return bad


HOSTILE = {
    "lengths are text": (
        lambda f: f["members"][MEMBERS[0]].__setitem__("lengths", "60"),
        "lengths is not a list",
    ),
    "a return is nan": (
        lambda f: f["members"][MEMBERS[0]]["returns"].__setitem__(0, math.nan),
        r"returns\[0\] is nan, not a finite number",
    ),
    "a return is inf": (
        lambda f: f["members"][MEMBERS[1]]["returns"].__setitem__(1, math.inf),
        r"returns\[1\] is inf",
    ),
    "a success flag is 1": (
        lambda f: f["members"][MEMBERS[0]]["success"].__setitem__(0, 1),
        "not true or false",
    ),
    "a huge list": (
        lambda f: f["members"][MEMBERS[0]].__setitem__("lengths", [60] * 100_001),
        "lists 100001 episodes, more than 100000",
    ),
    "lists of unequal length": (
        lambda f: f["members"][MEMBERS[0]]["returns"].append(1.0),
        "differ in length",
    ),
    "a looser tolerance": (
        lambda f: f.__setitem__("return_rel_tol", 0.5),
        "fixes it at 0.001",
    ),
    "an unknown key": (lambda f: f.__setitem__("exec", "rm -rf /"), "unknown key 'exec'"),
    "members not a table": (lambda f: f.__setitem__("members", [1, 2]), "members is not"),
    "made_on holds a list": (
        lambda f: f["made_on"].__setitem__("cpu", [1]),
        "made_on.cpu is",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_fingerprint_sections_are_refused_in_one_line(data, case):
    edit, match = HOSTILE[case]
    with pytest.raises(CtdkitError, match=match) as error:
        check_fingerprint(_hostile(data["fp"], edit), "recipe x.toml: [fingerprint]")
    assert _one_line(error)


def test_hostile_recipe_files_fail_verify_in_one_line(data, tmp_path):
    args = ["verify", GROUP, "--root", str(data["root"]), "--recipe"]
    recipe = _recipe(tmp_path / "r.toml", OTHER, _elsewhere(data["fp"]))
    text = recipe.read_text()
    cases = {
        "non-finite": (text.replace("returns = [", "returns = [nan, ", 1), "not a finite number"),
        "wrong type": (text.replace("lengths = [", 'lengths = ["60", ', 1), "lengths"),
        "other members": (text.replace(MEMBERS[1], "test/fp/evil-v0"), "different: test/fp/"),
        "other checksum": (
            text.replace(f'content_checksum = "{OTHER}"', f'content_checksum = "{"cd" * 32}"', 1),
            "describes content checksum",
        ),
        "not TOML": (text + "\n[fingerprint\n", "cannot read recipe"),
    }
    for name, (hostile, match) in cases.items():
        recipe.write_text(hostile)
        with pytest.raises(CtdkitError, match=match) as error:
            _run(*args, str(recipe))
        assert _one_line(error), name
    recipe.write_text("x = '" + "a" * (4 << 20) + "'\n")
    with pytest.raises(CtdkitError, match="more than"):
        _run(*args, str(recipe))


# ----------------------------------------------------------------------------- the bench
def test_bench_accepts_an_equivalent_dataset_and_records_both_checksums(
    data, tmp_path, monkeypatch
):
    """The tiny suite (cut to one task, one learner, 20 steps, one evaluation goal) on this
    module's data against a recipe "from another machine": no recipe, no recipe fields;
    without a fingerprint unverified (a warning); equivalent within tolerance, recorded with
    both checksums, the same records twice apart from times and hardware; different beyond
    the tolerance, one line naming the episode."""
    import dataclasses

    import ctdkit.bench.data as bench_data
    import ctdkit.bench.suites as suites
    from ctdkit.bench import BenchRunConfig, run_bench
    from ctdkit.bench.records import load_records

    suite = dataclasses.replace(
        suites.get_suite("tiny"),
        dataset_id=GROUP,
        recipe=None,
        tasks=("reach-v3",),
        algos=("none",),
        seeds=(0,),
        n_steps=20,
        eval_episodes=1,
    )
    monkeypatch.setitem(suites.SUITES, "tiny", suite)
    monkeypatch.setattr(bench_data, "RECIPES_DIR", tmp_path / "recipes")
    (tmp_path / "recipes").mkdir()
    root = data["root"]
    assert bench_data.check_dataset(GROUP, root).record_fields() == {}
    recipe = _recipe(tmp_path / "recipes" / "fp-v0.toml", OTHER)
    with pytest.warns(UserWarning, match="no fingerprint to compare within tolerance"):
        assert bench_data.check_dataset(GROUP, root).equivalence == "unverified"
    write_recipe_fingerprint(recipe, GROUP, _elsewhere(data["fp"], {(MEMBERS[0], 0): 1 + 2e-4}))
    runs = []
    for out in ("a", "b"):
        config = BenchRunConfig(
            suite="tiny", out=tmp_path / out, root=root, workers=1, progress=False
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # an equivalent copy: no warning
            run_bench(config)
        (record,) = load_records([config.out / "records"])
        runs.append(record)
    first, second = runs
    assert first["status"] == "ok", first.get("traceback")
    assert first["dataset"]["checksum"] == data["checksum"]
    assert first["dataset"]["recipe_checksum"] == OTHER
    assert first["dataset"]["data_equivalence"] == "equivalent"
    varying = {"created", "seconds", "hardware", "threads", "path"}
    assert {k: v for k, v in first.items() if k not in varying} == {
        k: v for k, v in second.items() if k not in varying
    }
    beyond = _elsewhere(data["fp"], {(MEMBERS[1], 1): 0.99})
    write_recipe_fingerprint(recipe, GROUP, beyond)
    with pytest.raises(CtdkitError, match=f"different: {MEMBERS[1]} episode 1: return") as error:
        bench_data.check_dataset(GROUP, root)
    assert _one_line(error)
