"""Shared fixtures: pinned threads, an isolated Minari root, and one tiny collection per format.

Threads are pinned to 1 (2 shared cores; see docs/ecosystem.md) before torch is imported anywhere.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import warnings
from pathlib import Path

import pytest

from ctdkit.collect import CollectConfig, CollectResult, collect

warnings.filterwarnings("ignore", module="gymnasium")
warnings.filterwarnings("ignore", message=".*Constant\\(s\\) may be too high.*")

#: the tiny collection most tests share: 2 tasks x 2 episodes, 120-step episodes
TINY = dict(
    tasks=("reach-v3", "push-v3"),
    episodes_per_task=2,
    max_episode_steps=120,
    ref_episodes=1,
    seed=3,
    workers=1,
    progress=False,
)


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


@pytest.fixture
def minari_root(tmp_path, monkeypatch) -> Path:
    """A fresh, empty Minari root for one test (set as MINARI_DATASETS_PATH)."""
    root = tmp_path / "minari"
    root.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.fixture(scope="session", params=["hdf5", "arrow"])
def tiny(request, tmp_path_factory) -> CollectResult:
    """The TINY collection (noisy scripted expert), once per storage format, in its own root."""
    root = tmp_path_factory.mktemp(f"tiny-{request.param}")
    config = CollectConfig(
        **TINY, noise=0.3, data_format=request.param, root=root, dataset_id="test/tiny-v0"
    )
    return collect(config)


@pytest.fixture(scope="session")
def reach_push(tmp_path_factory):
    """Aligned transitions of reach and push (they share a scene): 6 noisy-expert episodes
    each, 150 steps — the learners' test data."""
    from ctdkit.data import load_transitions

    root = tmp_path_factory.mktemp("reach-push")
    result = collect(
        CollectConfig(
            tasks=("reach-v3", "push-v3"),
            episodes_per_task=6,
            max_episode_steps=150,
            noise=0.3,
            ref_episodes=0,
            root=root,
            dataset_id="test/reach-push-v0",
            progress=False,
        )
    )
    return load_transitions(result.group_id, root=result.root)
