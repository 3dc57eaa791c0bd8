"""``benchmarks/dagger_steps.py`` pools runs that differ only in seed at their final point:
the pooled mean is over every episode of every seed's final evaluation, a conditioning run on
one seed gets no pooled row, and a row whose evaluation is gone is an error, not a skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts import load_script

STEPS = load_script("benchmarks/dagger_steps.py")
TASKS = ("reach-v3", "push-v3")


def _row(tmp_path: Path, conditioning: str, seed: int, successes: dict[str, list[int]]) -> dict:
    out = tmp_path / f"{conditioning}-{seed}"
    folder = out / "eval-50000"
    folder.mkdir(parents=True)
    episodes = [
        {"task": task, "success": s, "return": 0.0, "length": 500}
        for task, values in successes.items()
        for s in values
    ]
    result = {"protocol": "official", "seed": 100, "tasks": list(TASKS), "episodes": episodes}
    (folder / "official-seed100.json").write_text(json.dumps({"result": result}))
    per_task = {t: sum(v) / len(v) for t, v in successes.items()}
    point = {"actor_steps": 50_000, "episodes_per_task": 4, "mean": 0.0, "ci": [0, 1]}
    return {
        "run": f"/runs/{conditioning}/seed{seed}",
        "out": str(out),
        "conditioning": conditioning,
        "view": "full",
        "seed": seed,
        "dagger_final": 0.5 + seed / 10,
        "points": [{**point, "per_task": per_task}],
    }


def test_pooled_over_every_episode_of_every_seed(tmp_path):
    rows = [
        _row(tmp_path, "ctd", 0, {"reach-v3": [1, 1, 1, 1], "push-v3": [0, 0, 0, 0]}),
        _row(tmp_path, "ctd", 1, {"reach-v3": [1, 1, 0, 0], "push-v3": [1, 1, 1, 1]}),
        _row(tmp_path, "none", 0, {"reach-v3": [0, 0, 0, 0], "push-v3": [0, 0, 0, 0]}),
    ]
    text = STEPS.pooled_table(rows)
    pooled = [line for line in text.splitlines() if line.startswith("| ctd")]
    # reach 6/8, push 4/8: mean 0.625; the DAgger column is the runs' mean 0.55
    assert pooled == [pooled[0]] and "| 0, 1 | 0.550 | 50k | **0.625** [" in pooled[0]
    assert "| none" not in text  # one seed: nothing to pool


def test_missing_final_evaluation_is_an_error(tmp_path):
    rows = [
        _row(tmp_path, "ctd", 0, {"reach-v3": [1], "push-v3": [0]}),
        _row(tmp_path, "ctd", 1, {"reach-v3": [1], "push-v3": [1]}),
    ]
    for p in (Path(rows[1]["out"]) / "eval-50000").iterdir():
        p.unlink()
    with pytest.raises(FileNotFoundError, match="eval-50000"):
        STEPS.pooled_table(rows)
