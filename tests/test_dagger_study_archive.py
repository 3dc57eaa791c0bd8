"""``benchmarks/dagger_study.py`` folds seeds run on different machines as if run on one: each
run's evaluation records are archived beside the results, the fold reads a run from its folder
or else from the archive (pooling episode by episode), the teacher's evaluation is read back
rather than rerun, and a committed group with seeds not found here keeps its rows: a fold never
loses a seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts import load_script

import ctdkit.eval.run

TASKS = ("reach-v3", "push-v3")


STUDY = load_script("benchmarks/dagger_study.py")


def _result(successes: dict[str, list[int]]) -> dict:
    episodes = [
        {"task": task, "success": s, "return": 0.0, "length": 500}
        for task, values in successes.items()
        for s in values
    ]
    return {
        "result": {"protocol": "official", "seed": 100, "tasks": list(TASKS), "episodes": episodes}
    }


def _run(out: Path, name: str, seed: int, final: dict[str, list[int]]) -> None:
    """A finished one-round run: screening and final evaluation records, no weights."""
    folder = out / name / f"seed{seed}"
    for sub, successes in (
        ("round-0/screening", {t: [0] for t in TASKS}),
        ("final-round-0", final),
    ):
        (folder / sub).mkdir(parents=True)
        (folder / sub / "official-seed100.json").write_text(json.dumps(_result(successes)))
    (folder / "round-0" / "collective.pt").write_bytes(b"weights stay out of the archive")
    rounds = [
        {
            "round": 0,
            "labelled_transitions": 100,
            "actor_steps": 50,
            "collect_seed": seed,
            "seconds": {"collect": 1.0},
        }
    ]
    (folder / "rounds.json").write_text(json.dumps({"rounds": rounds}))


def _args(tmp_path: Path, machine: str, seeds: tuple[int, ...]):
    return STUDY.Args(
        tasks=TASKS,
        conditionings=("history",),
        seeds=seeds,
        frozen_encoder_seeds=(),
        rounds=0,
        final_episodes=2,
        out=tmp_path / machine,
        results=tmp_path / "results" / "dagger.json",
    )


def test_seeds_from_two_machines_pool_episode_by_episode_and_old_groups_stay(tmp_path, monkeypatch):
    first = _args(tmp_path, "machine-1", (0,))
    _run(first.out, "full/history", 0, {"reach-v3": [1, 1], "push-v3": [0, 0]})
    results = STUDY.fold(first)  # the teacher is evaluated for real (2 scripted episodes a task)
    final = next(r for r in results["rows"] if not r["screening"])
    assert final["seeds"] == [0] and final["per_task"] == {"reach-v3": 1.0, "push-v3": 0.0}
    kept = tmp_path / "results" / "dagger_runs"
    assert (kept / "full/history/seed0/final-round-0/official-seed100.json").is_file()
    assert not list(kept.rglob("*.pt"))
    assert (kept / "teacher" / "official-seed100.json").is_file()

    committed = json.loads(first.results.read_text())
    committed["rows"].append(dict(final, conditioning="oracle", mean=0.123))  # an older group
    older_none = dict(final, conditioning="none", seeds=[0, 1, 2], mean=0.456)  # 3 seeds before
    committed["rows"].append(older_none)
    first.results.write_text(json.dumps(committed))

    def no_evaluation(*args, **kwargs):
        raise AssertionError("the teacher's archived evaluation should be read back")

    monkeypatch.setattr(ctdkit.eval.run, "evaluate", no_evaluation)
    second = _args(tmp_path, "machine-2", (0, 1))  # seed 0's folder is not on this machine
    second.conditionings = ("history", "none")
    _run(second.out, "full/history", 1, {"reach-v3": [0, 1], "push-v3": [1, 1]})
    _run(second.out, "full/none", 1, {"reach-v3": [0, 0], "push-v3": [0, 0]})  # 1 of 3 seeds
    results = STUDY.fold(second)
    final = next(
        r for r in results["rows"] if not r["screening"] and r["conditioning"] == "history"
    )
    assert final["seeds"] == [0, 1]
    assert final["per_task"] == {"reach-v3": 0.75, "push-v3": 0.5}
    assert final["mean"] == pytest.approx(0.625)
    older = [r for r in results["rows"] if r["conditioning"] == "oracle"]
    assert [r["mean"] for r in older] == [0.123]
    none_rows = [r for r in results["rows"] if r["conditioning"] == "none"]
    assert [(r["seeds"], r["mean"]) for r in none_rows] == [([0, 1, 2], 0.456)]
    assert (tmp_path / "results" / "dagger_runs" / "full/none/seed1/rounds.json").is_file()
    assert results["teacher"] == committed["teacher"]

    third = _args(tmp_path, "machine-3", (2,))  # runs seed 2 only: seeds 0-1 come from the archive
    _run(third.out, "full/history", 2, {"reach-v3": [1, 1], "push-v3": [1, 1]})
    rows = STUDY.fold(third)["rows"]
    final = next(r for r in rows if not r["screening"] and r["conditioning"] == "history")
    assert final["seeds"] == [0, 1, 2]
    assert final["per_task"] == {"reach-v3": pytest.approx(5 / 6), "push-v3": pytest.approx(4 / 6)}
    none_rows = [r for r in rows if r["conditioning"] == "none"]
    assert [(r["seeds"], r["mean"]) for r in none_rows] == [([0, 1, 2], 0.456)]


def test_the_table_names_every_study_setting_a_variant_changed():
    settings = json.loads(json.dumps(STUDY.dataclasses.asdict(STUDY.Args()), default=str))
    results = {"teacher": 0.99, "teacher_ci": [0.98, 1.0], "rows": [], "settings": settings}
    assert "Variant" not in STUDY.markdown(results)
    results["settings"] = {**settings, "episodes_per_task": 40, "collective_steps": 100_000}
    assert STUDY.markdown(results).startswith(
        "**Variant:** episodes_per_task=40, collective_steps=100000 (otherwise"
    )


def test_the_readme_table_keeps_the_final_rows_and_drops_the_screening_rows():
    settings = json.loads(json.dumps(STUDY.dataclasses.asdict(STUDY.Args()), default=str))

    def row(round_: int, screening: bool, mean: float) -> dict:
        return {
            "conditioning": "history",
            "view": "full",
            "round": round_,
            "encoder": "retrained",
            "labelled_transitions": 1000 * (round_ + 1),
            "actor_steps": 10 * (round_ + 1),
            "seeds": [0],
            "episodes_per_task": 10 if screening else 50,
            "screening": screening,
            "mean": mean,
            "ci": [mean - 0.01, mean + 0.01],
            "per_task": {"reach-v3": mean},
        }

    results = {
        "teacher": 0.99,
        "teacher_ci": [0.98, 1.0],
        "settings": settings,
        "tasks": ["reach-v3"],
        "rows": [row(0, True, 0.111), row(1, True, 0.222), row(1, False, 0.333)],
    }
    full, finals = STUDY.markdown(results), STUDY.markdown(results, screening=False)
    assert "0.111" in full and "0.222" in full and "(screening)" in full
    assert "0.111" not in finals and "0.222" not in finals and "(screening)" not in finals
    assert "**0.333**" in finals and "| reach-v3 | 0.33 |" in finals


def test_encoder_schedules_are_planned_for_both_encoder_conditionings():
    args = STUDY.Args(
        conditionings=("ctd", "ctd+history", "history"),
        seeds=(0,),
        frozen_encoder_seeds=(0,),
        continued_encoder_seeds=(0,),
        plain=False,
    )
    assert [cell.name for cell in STUDY.cells(args)] == [
        "full/ctd-frozen/seed0",
        "full/ctd-continued/seed0",
        "full/ctd+history-continued/seed0",
    ]


def test_a_ctd_history_schedule_variant_is_its_own_row(tmp_path):
    args = _args(tmp_path, "machine", (0,))
    args.conditionings, args.continued_encoder_seeds = ("ctd+history",), (0,)
    _run(args.out, "full/ctd+history", 0, {"reach-v3": [1, 1], "push-v3": [1, 1]})
    _run(args.out, "full/ctd+history-continued", 0, {"reach-v3": [0, 0], "push-v3": [0, 0]})
    finals = {r["encoder"]: r["mean"] for r in STUDY.fold(args)["rows"] if not r["screening"]}
    assert finals == {"retrained": 1.0, "continued": 0.0}


def test_every_archived_cell_is_read_back_from_its_folder_name(tmp_path):
    args = _args(tmp_path, "machine-1", (0,))
    planned = [
        STUDY.Cell("full", "ctd-e2e", 0, encoder="frozen"),
        STUDY.Cell("full", "ctd+history", 2, encoder="continued"),
        STUDY.Cell("goal-hidden", "history", 1, control=True),
        STUDY.Cell("goal-hidden", "none", 0),
    ]
    for cell in planned:
        folder = STUDY.archive_folder(args) / cell.name
        folder.mkdir(parents=True)
        (folder / "rounds.json").write_text("{}")
    (STUDY.archive_folder(args) / "full/oracle/seed0").mkdir(parents=True)  # not finished
    assert sorted(STUDY.archived_cells(args), key=str) == sorted(planned, key=str)


def test_the_cls_swap_variant_reaches_the_ctd_history_cells_only_and_names_itself():
    args = STUDY.Args(conditionings=("ctd+history", "history"), seeds=(0,), cls_swap=0.5)
    configs = {cell.conditioning: STUDY.dagger_config(args, cell) for cell in STUDY.cells(args)}
    assert configs["ctd+history"].collective.cls_swap == 0.5
    assert configs["history"].collective.cls_swap == 0.0  # another conditioning: refused there
    settings = json.loads(json.dumps(STUDY.dataclasses.asdict(args), default=str))
    results = {"teacher": 0.99, "teacher_ci": [0.98, 1.0], "rows": [], "settings": settings}
    assert STUDY.markdown(results).startswith("**Variant:** cls_swap=0.5 (otherwise")


def test_the_hidden_width_variant_reaches_every_cell_and_names_itself():
    args = STUDY.Args(conditionings=("ctd+history", "oracle"), seeds=(0,), hidden=(64, 64, 64))
    for cell in STUDY.cells(args):
        assert STUDY.dagger_config(args, cell).collective.hidden == (64, 64, 64)
    settings = json.loads(json.dumps(STUDY.dataclasses.asdict(args), default=str))
    results = {"teacher": 0.99, "teacher_ci": [0.98, 1.0], "rows": [], "settings": settings}
    assert STUDY.markdown(results).startswith("**Variant:** hidden=[64, 64, 64] (otherwise")
    default = json.loads(json.dumps(STUDY.dataclasses.asdict(STUDY.Args()), default=str))
    assert "Variant" not in STUDY.markdown(results | {"settings": default})
