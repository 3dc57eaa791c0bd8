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


def test_a_refold_of_trained_points_neither_loads_the_aggregate_nor_trains(tmp_path, monkeypatch):
    """Every point's weights saved: the row is rebuilt from them and their evaluations, without
    the minutes of building a 1M-row aggregate and its contexts; a `--hidden` row is its own."""
    run = tmp_path / "run"
    run.mkdir()
    collective = {"conditioning": "ctd+history", "view": "full", "hidden": [300, 300]}
    fingerprint = {"collective": collective, "seed": 0, "tasks": list(TASKS), "eval_seeds": [100]}
    (run / "run.json").write_text(json.dumps({"fingerprint": fingerprint}))
    rounds = [{"round": r, "labelled_transitions": 1000 * (r + 1)} for r in range(4)]
    (run / "rounds.json").write_text(json.dumps({"rounds": rounds}))
    (run / "final.json").write_text(json.dumps({"mean": 0.8}))
    out = tmp_path / "out"
    out.mkdir()
    (out / "steps-30000.pt").write_bytes(b"")

    def refuse(*_):
        raise AssertionError("the aggregate was built for a refold")

    evaluated = []

    def evaluation(config):
        evaluated.append(config.checkpoint)
        return {
            "mean_success": 0.7,
            "ci95": [0.6, 0.8],
            "tasks": {t: {"success": 0.7} for t in TASKS},
        }

    monkeypatch.setattr(STEPS, "_aggregate", refuse)
    monkeypatch.setattr(STEPS, "run_evaluation", evaluation)
    results = tmp_path / "steps.json"
    for hidden in (None, (512, 512, 512)):
        STEPS.main(STEPS.Args(run=run, points=(30_000,), out=out, results=results, hidden=hidden))
    rows = json.loads(results.read_text())["rows"]
    assert evaluated == [out / "steps-30000.pt"] * 2
    assert [r["hidden"] for r in rows] == [None, [512, 512, 512]]
    assert {r["labelled_transitions"] for r in rows} == {4000}  # the last round's aggregate
    assert "hidden 512×512×512" in results.with_suffix(".md").read_text()
