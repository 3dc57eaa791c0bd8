"""``python -m ctdkit.pipeline`` runs every stage end to end and resumes by skipping stages."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from ctdkit.errors import CtdkitError
from ctdkit.pipeline import PipelineConfig, run_pipeline
from ctdkit.pipeline.__main__ import main


def test_pipeline_runs_all_stages_and_a_rerun_reuses_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as a user runs it
    config = PipelineConfig(
        tasks=("reach-v3", "drawer-close-v3"),
        episodes_per_task=2,
        encoder_steps=4,
        collective_steps=20,
        eval_episodes=1,
        workers=1,
        out=Path("runs/pipeline"),
        progress=False,
    )
    main(config)
    tmp_path = tmp_path / "runs" / "pipeline"
    out = capsys.readouterr().out
    assert "reach-v3" in out and "drawer-close-v3" in out and "mean" in out
    for path in (
        "datasets/pipeline/experts/reach-v0",
        "encoder/encoder.pt",
        "collective-ctd-full/collective.pt",
        "summary.json",
    ):
        assert (tmp_path / path).exists(), path
    first = json.loads((tmp_path / "summary.json").read_text())
    assert first["tasks"]["reach-v3"]["n"] == 1
    start = time.perf_counter()
    again = run_pipeline(config)
    assert again["tasks"] == first["tasks"]
    assert time.perf_counter() - start < 10  # every stage was reused, nothing retrained
    with pytest.raises(CtdkitError, match=r"different config \(episodes_per_task differ\)"):
        run_pipeline(dataclasses.replace(config, episodes_per_task=3))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": ("reachh-v3",)}, "unknown task 'reachh-v3'"),
        ({"episodes_per_task": 0}, "--episodes-per-task must be > 0"),
        ({"eval_seeds": ()}, "--eval-seeds is empty"),
        ({"eval_seeds": (0, 100)}, "contains the collection seed 0"),
        ({"noise": float("nan")}, "--noise must be a finite number"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(
    tmp_path, monkeypatch, change, message
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CtdkitError, match=message):  # the config refuses itself
        run_pipeline(
            dataclasses.replace(PipelineConfig(out=Path("runs/p"), progress=False), **change)
        )
    assert list(tmp_path.iterdir()) == []
