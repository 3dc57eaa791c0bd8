"""The Ray backend: same results and same data as the local backend, one-line errors."""

from __future__ import annotations

import sys

import pytest
from conftest import TINY

from ctdkit.cli import run_cli
from ctdkit.collect import CollectConfig, collect
from ctdkit.envs.tasks import MT50, stable_task_id
from ctdkit.errors import CtdkitError
from ctdkit.parallel import parallel_map

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the module (starting one takes seconds)."""
    from ctdkit.ray_backend import connect

    connect(None, num_cpus=2)
    yield ray
    ray.shutdown()


def test_parallel_map_ray_matches_local_in_order(local_ray):
    items = list(MT50)  # a ctdkit function: both backends import it by name in their workers
    expected = parallel_map(stable_task_id, items, 2, "local", enabled=False)
    got = parallel_map(stable_task_id, items, 2, "ray", enabled=False, backend="ray")
    assert got == expected == [stable_task_id(task) for task in items]
    assert len(set(got)) == len(items)


def test_worker_error_is_raised_as_itself(local_ray):
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise CtdkitError(f"item {x} is bad")
        return x

    with pytest.raises(CtdkitError, match=r"^item 3 is bad$"):
        parallel_map(fail_on_three, list(range(5)), 2, "fail", enabled=False, backend="ray")


def test_collect_with_ray_gives_the_local_data(local_ray, tmp_path):
    config = CollectConfig(**TINY, noise=0.3, dataset_id="test/ray-v0")
    local = collect(config.replace(root=tmp_path / "local", workers=2))
    remote = collect(config.replace(root=tmp_path / "ray", workers=2, backend="ray"))
    assert remote.checksum == local.checksum
    assert [t.checksum for t in remote.tasks] == [t.checksum for t in local.tasks]
    assert [t.steps for t in remote.tasks] == [t.steps for t in local.tasks]
    assert not (tmp_path / "ray" / ".ctdkit-staging" / "test__ray-v0").exists()


@pytest.mark.timeout(30)
def test_unreachable_ray_address_is_one_line_and_leaves_nothing(tmp_path, capsys):
    from ctdkit.collect.__main__ import main

    args = ["--tasks", "reach-v3", "--root", str(tmp_path), "--backend", "ray"]
    code = run_cli(CollectConfig, main, [*args, "--ray-address", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ctdkit: no Ray cluster answers at 127.0.0.1:1")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing staged


def test_bad_backend_and_address_are_one_line(tmp_path):
    with pytest.raises(CtdkitError, match="unknown backend 'rya'; did you mean 'ray'"):
        collect(CollectConfig(**{**TINY, "root": tmp_path}, backend="rya"))
    with pytest.raises(CtdkitError, match="unknown backend 'rya'"):
        parallel_map(abs, [1, 2], 2, "x", backend="rya")
    with pytest.raises(CtdkitError, match="must be HOST:PORT"):
        parallel_map(abs, [1, 2], 2, "x", backend="ray", ray_address="headnode")


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(CtdkitError, match=r'pip install "ctdkit\[ray\]"'):
        parallel_map(abs, [1, 2], 2, "x", backend="ray")


def test_shards_the_driver_cannot_see_are_one_line(tmp_path, monkeypatch):
    """What a multi-machine cluster without a shared --root looks like from the driver."""
    import ctdkit.collect.runner as runner

    monkeypatch.setattr(runner, "run_job", lambda job: 0)  # "written" on another machine
    with pytest.raises(CtdkitError, match="filesystem shared by every node"):
        collect(CollectConfig(**{**TINY, "root": tmp_path}))
