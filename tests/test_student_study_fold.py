"""``benchmarks/student_study.py results`` reads steps to 90% off each seed's curve, and a study
spread over machines keeps the seeds an earlier session folded: a run folder that is gone (or a
rerun still behind) leaves the committed curve in place, a run that got further replaces it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from scripts import load_script

STUDY = load_script("benchmarks/student_study.py")


def _run(out: Path, method: str, seed: int, successes: list[float], digest: str) -> None:
    folder = out / "push-v3" / method / f"seed{seed}"
    folder.mkdir(parents=True)
    evaluations = [{"env_steps": 5_000 * i, "success": s} for i, s in enumerate(successes, start=0)]
    (folder / "metrics.json").write_text(json.dumps({"evaluations": evaluations}))
    fingerprint = {"student": {"collective_sha256": digest}}  # a running run has no student.json
    (folder / "run.json").write_text(json.dumps({"fingerprint": fingerprint}))


def _args(tmp_path: Path, out: str) -> object:
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    return STUDY.Args(
        stage="results", tasks=("trained",), methods=("sac",), out=tmp_path / out, results=results
    )


def test_steps_to_90_is_the_first_of_two_consecutive_evaluations_at_it():
    curve = [{"env_steps": 5_000 * i, "success": s} for i, s in enumerate([0, 0.9, 0.5, 0.9, 1])]
    assert STUDY.steps_to(curve, 0.9) == 15_000
    assert STUDY.steps_to(curve[:4], 0.9) is None
    assert STUDY.steps_to(curve, 0.5) == 5_000


def test_a_later_session_keeps_committed_seeds_and_takes_runs_that_got_further(tmp_path):
    first = _args(tmp_path, "machine-1")
    _run(first.out, "sac", 0, [0.0, 0.2, 0.9, 0.95], "aaa")
    _run(first.out, "sac", 1, [0.0, 0.1, 0.3], "bbb")
    study = STUDY.results(first)
    (row,) = study["rows"]
    assert row["seeds"] == [0, 1] and row["steps_to_90"] == [10_000, None]
    assert row["collective_sha256"] == {"0": "aaa", "1": "bbb"}

    second = _args(tmp_path, "machine-2")  # seed 0's folder is gone; seed 1 went further
    _run(second.out, "sac", 1, [0.0, 0.1, 0.3, 0.9, 0.9], "bbb")
    _run(second.out, "sac", 2, [0.0], "ccc")  # a rerun of a seed nobody folded yet
    (row,) = STUDY.results(second)["rows"]
    assert row["seeds"] == [0, 1, 2]
    assert row["steps_to_90"] == [10_000, 15_000, None]
    assert row["curves"]["0"] == [[0, 0.0], [5_000, 0.2], [10_000, 0.9], [15_000, 0.95]]
    assert row["success_at_0"] == [0.0, 0.0, 0.0] and row["final_success"] == [0.95, 0.9, 0.0]

    third = _args(tmp_path, "machine-3")  # a rerun of seed 0 still behind the committed curve
    _run(third.out, "sac", 0, [0.0, 0.2], "aaa")
    (row,) = STUDY.results(third)["rows"]
    assert row["steps_to_90"][0] == 10_000 and len(row["curves"]["0"]) == 4
    table = (tmp_path / "results" / "student.md").read_text()
    assert table.count("| push-v3 | sac | 3 |") == 1
    assert "| 10k, 15k, (at 0k) | 10k, 15k, (at 0k) | running |" in table  # seed 2 still running


def test_run_trains_only_the_named_seeds_of_each_method(tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(
        STUDY, "run_one", lambda args, method, task, seed: made.append((method, seed))
    )
    args = STUDY.Args(
        stage="run",
        tasks=("trained",),
        methods=("sac", "finetune-none"),
        seeds=(1, 2),
        out=tmp_path / "runs",
        results=tmp_path,
    )
    STUDY.run(args)
    assert made == [("sac", 1), ("sac", 2)]  # finetune-none runs seed 0 only
    STUDY.run(dataclasses.replace(args, seeds=(0,)))
    assert made[2:] == [("sac", 0), ("finetune-none", 0)]


def test_a_run_with_another_collective_replaces_the_committed_seed_and_the_table_says_so(tmp_path):
    first = STUDY.Args(
        stage="results",
        tasks=("trained",),
        methods=("sac", "student"),
        out=tmp_path / "machine-1",
        results=tmp_path,
    )
    for seed in (0, 1):
        _run(first.out, "sac", seed, [0.0, 0.9, 0.9], "old")
        _run(first.out, "student", seed, [0.0, 0.9, 0.9], "old")
    STUDY.results(first)

    second = dataclasses.replace(first, out=tmp_path / "machine-2")  # the collective was rebuilt
    _run(second.out, "sac", 0, [0.0], "new")  # plain SAC never consults it: length decides
    _run(second.out, "student", 0, [0.0], "new")  # another teacher: this run, though shorter
    study = STUDY.results(second)
    sac, student = study["rows"]
    assert sac["curves"]["0"] == [[0, 0.0], [5_000, 0.9], [10_000, 0.9]]
    assert student["curves"]["0"] == [[0, 0.0]] and student["steps_to_90"] == [None, 5_000]
    assert student["collective_sha256"] == {"0": "new", "1": "old"}
    footer = STUDY.collectives(study)
    assert footer == [
        "- push-v3 student: collective `new` (seeds 0); `old` (seeds 1) — **mixed: its seeds had "
        "different collectives**"
    ]
    assert footer[0] in STUDY.table(study)
