"""The benchmark harness: the tiny suite end to end, records, resume, the rliable leaderboard
(checked against hand computations), the conditioning the d3rlpy baselines receive, bad input."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pickle
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import tyro

from ctdkit.bench import BenchRunConfig, LeaderboardConfig, build_leaderboard, run_bench
from ctdkit.bench.algos import ALGO_IDS, ConditionedAgent, parse_algo
from ctdkit.bench.data import (
    collect_config,
    conditioned_dataset,
    ensure_dataset,
    recipe_command,
    select,
    transitions_checksum,
)
from ctdkit.bench.leaderboard import (
    interval_estimates,
    iqm,
    probability_of_improvement,
    row_statistics,
)
from ctdkit.bench.records import RecordWarning, load_records
from ctdkit.bench.suites import SUITES, get_suite
from ctdkit.cli import quiet_d3rlpy
from ctdkit.dagger import DaggerConfig
from ctdkit.errors import CtdkitError
from ctdkit.experts import TrainExpertConfig

TINY = get_suite("tiny")
REPS = 300  # bootstrap resamples in tests (point estimates do not depend on it)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The tiny suite (ctd + bc-none, 2 seeds) run once, and its leaderboard."""
    base = tmp_path_factory.mktemp("bench")
    config = BenchRunConfig(
        suite="tiny", out=base / "runs", root=base / "minari", workers=1, progress=False
    )
    first = run_bench(config)
    throughput = base / "board" / "leaderboard" / "throughput"
    throughput.mkdir(parents=True)
    (throughput / "encoder.json").write_text(json.dumps(ENCODER_SPEED))
    (throughput / "learner.json").write_text(json.dumps(LEARNER_SPEED))
    board = build_leaderboard(
        LeaderboardConfig(records=(config.out / "records",), out=base / "board", reps=REPS)
    )
    return {"config": config, "first": first, "board": board, "base": base}


ENCODER_SPEED = {
    "device": "cpu",
    "hardware": "Test CPU (2 logical CPUs)",
    "torch": "2.13.0",
    "threads": 1,
    "config": {"window": 20, "d_model": 32, "n_layers": 3, "n_heads": 8},
    "windows_per_second": [{"batch": 256, "reference": 1000.0, "ours": 2300.0}],
}
LEARNER_SPEED = {
    "updates_per_s": {"ours actor distillation": 100.0, "d3rlpy BC fit()": 50.0},
    "ratios": {"actor distillation / BC fit": 2.0},
    "threads": 1,
    "hardware": "Test CPU (2 logical CPUs)",
    "batch_size": 512,
    "hidden": [300, 300],
}


def _records(bench) -> list[dict]:
    return load_records([bench["config"].out / "records"])


def _copy_records(bench, tmp_path) -> Path:
    target = tmp_path / "records"
    shutil.copytree(bench["config"].out / "records", target)
    return target


# ------------------------------------------------------------------------------ end to end
def _rows_sha256(data) -> str:
    """The subset checksum recomputed here with hashlib: the task list and view, then every
    array (name, dtype, shape, bytes) in name order."""
    h = hashlib.sha256(f"{'|'.join(data.tasks)}|{data.view}".encode())
    for name, array in sorted(data.arrays().items()):
        array = np.ascontiguousarray(array)
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode() + array.tobytes())
    return h.hexdigest()


def test_tiny_suite_writes_one_complete_record_per_run(bench, tiny_data):
    from ctdkit.data import load_datasets

    records = _records(bench)
    assert sorted((r["algo"], r["seed"]) for r in records) == [
        ("bc-none", 0),
        ("bc-none", 1),
        ("ctd", 0),
        ("ctd", 1),
    ]
    checksum = load_datasets(TINY.dataset_id, bench["config"].root).checksum
    subset = _rows_sha256(tiny_data)  # the tiny suite trains on every row
    for record in records:
        assert record["status"] == "ok", record.get("traceback")
        assert set(record["success_by_task"]) == {"reach-v3", "push-v3"}
        assert record["mean_success"] == pytest.approx(
            np.mean(list(record["success_by_task"].values()))
        )
        assert record["dataset"]["checksum"] == checksum
        assert record["dataset"]["subset_checksum"] == subset
        assert record["dataset"]["rows"] == len(tiny_data) == 2 * 4 * 60
        assert record["settings"]["n_steps"] == TINY.n_steps and record["steps"] == TINY.n_steps
        assert record["eval"]["seeds"] == [TINY.eval_seed_base + record["seed"]]
        assert record["versions"]["torch"] and record["versions"]["d3rlpy"] == "2.8.0"
        assert record["hardware"]["logical_cpus"] >= 1 and record["threads"]["torch"] == 1
        assert {"load", "train", "eval", "total"} <= set(record["seconds"])
    ctd = [r for r in records if r["algo"] == "ctd"]
    assert {Path(r["encoder"]["directory"]).name for r in ctd} == {
        p.name for p in (bench["config"].out / "encoders").iterdir()
    }  # one shared encoder per seed


def test_leaderboard_numbers_equal_a_hand_computation(bench):
    from rliable import library as rly
    from rliable import metrics

    records = _records(bench)
    tasks = ["reach-v3", "push-v3"]

    def matrix(algo):
        mine = sorted((r for r in records if r["algo"] == algo), key=lambda r: r["seed"])
        return np.array([[r["success_by_task"][t] for t in tasks] for r in mine])

    rows = {row["algo"]: row for row in bench["board"]["suites"]["tiny"]["rows"]}
    assert list(rows) == ["ctd", "bc-none"]
    for algo, row in rows.items():
        scores = matrix(algo)
        assert row["mean"][0] == pytest.approx(scores.mean())
        assert row["iqm"][0] == pytest.approx(scipy.stats.trim_mean(scores, 0.25, axis=None))
        np.random.seed(0)  # the leaderboard's bootstrap seed, through rliable itself
        _, reference = rly.get_interval_estimates(
            {algo: scores},
            lambda x: np.array([metrics.aggregate_mean(x)]),
            reps=REPS,
            random_state=np.random.RandomState(0),
        )
        assert row["mean"][1:] == pytest.approx(reference[algo][:, 0].tolist())
        assert row["success_by_task"] == pytest.approx(
            dict(zip(tasks, scores.mean(axis=0), strict=True))
        )
        assert row["runs"] == 2 and row["seeds"] == [0, 1]
    expected = metrics.probability_of_improvement(matrix("ctd"), matrix("bc-none"))
    assert rows["bc-none"]["p_reference_better"][0] == pytest.approx(expected)
    markdown = (bench["base"] / "board" / "LEADERBOARD.md").read_text()
    for row in rows.values():
        assert f"{row['iqm'][0]:.3f} [{row['iqm'][1]:.3f}, {row['iqm'][2]:.3f}]" in markdown
    assert "100 gradient steps, batch 64, hidden 32×32" in markdown
    for name in ("tiny-profile.png", "tiny-aggregates.png", "leaderboard.json"):
        assert (bench["base"] / "board" / "leaderboard" / name).stat().st_size > 0
    assert "## Encoder throughput" in markdown and "| 256 | 1000 | 2300 | 2.30× |" in markdown
    assert "## Learner update speed" in markdown and "**2.00×**" in markdown


def test_leaderboard_is_deterministic(bench, tmp_path):
    again = build_leaderboard(
        LeaderboardConfig(records=(bench["config"].out / "records",), out=tmp_path, reps=REPS)
    )
    assert again["suites"] == bench["board"]["suites"]


def test_rerun_skips_finished_runs(bench):
    records = sorted((bench["config"].out / "records").rglob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in records}
    second = run_bench(bench["config"])
    assert second.results == [] and len(second.finished) == 4
    assert {p: p.stat().st_mtime_ns for p in records} == before


def test_a_failing_run_leaves_an_error_record_and_the_others_go_on(bench, tmp_path, monkeypatch):
    import ctdkit.bench.run as bench_run
    from ctdkit.bench import learners

    out = tmp_path / "runs"
    shutil.copytree(bench["config"].out, out, ignore=shutil.ignore_patterns("models"))
    for algo in ("ctd", "bc-none"):
        (out / "records" / "tiny" / algo / "all" / "seed0.json").unlink()
    encoders = {p: p.stat().st_mtime_ns for p in (out / "encoders").rglob("meta.json")}

    def broken(*args, **kwargs):
        raise RuntimeError("d3rlpy exploded")

    monkeypatch.setattr(learners, "D3rlpyRunLearner", broken)
    config = BenchRunConfig(
        suite="tiny", out=out, root=bench["config"].root, workers=1, progress=False, seeds=(0,)
    )
    result = run_bench(config)
    status = {r["algo"]: r for r in result.results}
    assert (
        status["bc-none"]["status"] == "error" and "d3rlpy exploded" in status["bc-none"]["error"]
    )
    assert status["ctd"]["status"] == "ok"
    assert {p: p.stat().st_mtime_ns for p in encoders} == encoders  # shared encoder reused
    error = json.loads(Path(status["bc-none"]["path"]).read_text())
    assert error["status"] == "error" and "RuntimeError" in error["traceback"]
    rerun = json.loads((out / "records" / "tiny" / "ctd" / "all" / "seed0.json").read_text())
    original = next(r for r in _records(bench) if r["algo"] == "ctd" and r["seed"] == 0)
    assert rerun["success_by_task"] == original["success_by_task"]  # same seed, same result
    assert rerun["train_metrics"] == pytest.approx(original["train_metrics"])
    board = build_leaderboard(LeaderboardConfig(records=(out / "records",), out=tmp_path, reps=50))
    assert [e["path"] for e in board["errors"]] == [status["bc-none"]["path"]]
    assert "d3rlpy exploded" in (tmp_path / "LEADERBOARD.md").read_text()
    monkeypatch.undo()
    assert [r.algo.id for r in bench_run.plan(config)[0]] == ["bc-none"]  # errors are retried


def test_records_of_other_settings_are_refused_on_rerun(bench, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(bench["config"].out / "records", out / "records")
    path = out / "records" / "tiny" / "ctd" / "all" / "seed0.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "fingerprint": "0" * 16}))
    config = BenchRunConfig(
        suite="tiny", out=out, root=bench["config"].root, progress=False, dry_run=True
    )
    with pytest.raises(CtdkitError, match=r"different config \(fingerprint differ\).*--overwrite"):
        run_bench(config)
    config.overwrite = True
    assert len(run_bench(config).finished) == 3


def test_reproduce_reruns_a_row_and_says_identical_agrees_or_differs(bench, tmp_path, capsys):
    """`bench reproduce` reruns one committed row: identical on this machine; a record one
    episode away agrees within the 95% interval; one far outside differs (exit 1, naming the
    task); a record of other settings, a failed run or an unknown variant is one line, before
    anything runs."""
    from ctdkit.bench.__main__ import main
    from ctdkit.bench.reproduce import ReproduceConfig, reproduce

    source = bench["config"].out / "records" / "tiny" / "bc-none" / "all" / "seed0.json"
    options = dict(out=tmp_path / "re", root=bench["config"].root, progress=False)
    result = reproduce(ReproduceConfig(record=source, **options))
    assert result.verdict == "identical" and result.episodes_per_task == TINY.eval_episodes
    assert (tmp_path / "re" / "records" / "tiny" / "bc-none" / "all" / "seed0.json").is_file()
    committed = json.loads(source.read_text())
    n = TINY.eval_episodes
    older = tmp_path / "older.json"  # a record from before the data's provenance fields
    provenance = ("recipe_checksum", "data_equivalence", "relabelled")
    dataset = {k: v for k, v in committed["dataset"].items() if k not in provenance}
    older.write_text(json.dumps({**committed, "dataset": dataset}))
    assert reproduce(ReproduceConfig(record=older, **options)).verdict == "identical"
    other_data = tmp_path / "other-data.json"
    other_data.write_text(json.dumps({**committed, "dataset": {**dataset, "checksum": "0" * 64}}))
    assert reproduce(ReproduceConfig(record=other_data, **options)).verdict == "agrees"

    def edited(name: str, task: str, rate: float) -> Path:
        scores = {**committed["success_by_task"], task: rate}
        path = tmp_path / name
        mean = float(np.mean(list(scores.values())))
        path.write_text(json.dumps({**committed, "success_by_task": scores, "mean_success": mean}))
        return path

    task, rate = next(
        (t, r) for t, r in committed["success_by_task"].items() if r in (0.0, 1.0)
    )  # a task at 0 or 1: the far side is outside its interval with 3 episodes each
    near = edited("near.json", task, abs(rate - 1 / n))
    assert reproduce(ReproduceConfig(record=near, **options)).verdict == "agrees"
    far = edited("far.json", task, 1.0 - rate)
    with pytest.raises(SystemExit) as exit_code:
        main(ReproduceConfig(record=far, **options))
    assert exit_code.value.code == 1
    assert f"differs: {task} outside the 95% interval" in capsys.readouterr().out
    other = tmp_path / "other.json"
    settings = {**committed["settings"], "n_steps": 7}
    other.write_text(json.dumps({**committed, "settings": settings}))
    with pytest.raises(CtdkitError, match="other settings than this checkout's suite tiny "
                       r"\(n_steps differ\)"):  # fmt: skip
        reproduce(ReproduceConfig(record=other, **options))
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({**committed, "status": "error", "error": "boom"}))
    with pytest.raises(CtdkitError, match="records a failed run"):
        reproduce(ReproduceConfig(record=failed, **options))
    with pytest.raises(CtdkitError, match="unknown data variant of suite tiny 'ep9'"):
        BenchRunConfig(suite="tiny", variants=("ep9",))


def test_reproduce_compares_like_with_like():
    """Records of other tasks or other episode counts than their rerun are refused, not
    compared; equal scores with other training metrics agree but are not identical."""
    from ctdkit.bench.reproduce import compare

    def record(scores, episodes=10, losses=1.0):
        return {"path": "r.json", "eval": {"episodes": episodes, "seeds": [100]},
                "dataset": {"checksum": "abc"},
                "success_by_task": scores, "train_metrics": {"loss": losses}}  # fmt: skip

    with pytest.raises(CtdkitError, match="scores other tasks than its rerun"):
        compare(record({"reach-v3": 1.0}), record({"push-v3": 1.0}))
    with pytest.raises(CtdkitError, match="another number of episodes"):
        compare(record({"reach-v3": 1.0}), record({"reach-v3": 1.0}, episodes=5))
    assert compare(record({"reach-v3": 0.5}), record({"reach-v3": 0.5})).verdict == "identical"
    assert compare(record({"reach-v3": 0.5}), record({"reach-v3": 0.5}, losses=2.0)).verdict == (
        "agrees"
    )


def test_data_scaling_rows_get_a_table_and_a_plot(bench, tmp_path):
    records = _copy_records(bench, tmp_path)
    for path in list(records.rglob("seed*.json")):
        record = json.loads(path.read_text())
        for n in (2, 4):
            variant = {**record, "variant": f"ep{n}", "episodes_per_task": n}
            variant["dataset"] = {**record["dataset"], "subset_checksum": str(n) * 64}
            variant["success_by_task"] = {
                t: v * n / 4 for t, v in record["success_by_task"].items()
            }
            target = path.parent.parent / f"ep{n}" / path.name
            target.parent.mkdir(exist_ok=True)
            target.write_text(json.dumps(variant))
        path.unlink()
    board = build_leaderboard(LeaderboardConfig(records=(records,), out=tmp_path, reps=50))
    rows = {row["label"]: row for row in board["suites"]["tiny"]["rows"]}
    assert set(rows) == {"ctd @ep2", "ctd @ep4", "bc-none @ep2", "bc-none @ep4"}
    assert rows["bc-none @ep2"]["mean"][0] == pytest.approx(rows["bc-none @ep4"]["mean"][0] / 2)
    assert "p_reference_better" in rows["bc-none @ep2"]  # compared within its own variant
    markdown = (tmp_path / "LEADERBOARD.md").read_text()
    assert "| algorithm | 2 | 4 |" in markdown
    assert board["plots"]["tiny"]["scaling"] == "leaderboard/tiny-scaling.png"
    assert (tmp_path / "leaderboard" / "tiny-scaling.png").stat().st_size > 0


# ------------------------------------------------------------------------------ curves + resume
#: the tiny suite with one curve point (step 40, 2 goals per task) and both protocols for the
#: final weights (step 100, 3 goals or episodes per task)
CURVE = dataclasses.replace(
    TINY, curve_steps=(40,), curve_episodes=2, final_protocols=("all-goals", "official")
)


def _scripted_evaluate(calls: list, observations: np.ndarray):
    """Stands in for ``ctdkit.eval.evaluate`` in the curve runs (a real evaluation of the tiny
    suite costs seconds; the end-to-end test above runs it): the agent acts once on fixed
    observations and episode i of task k succeeds when its action component i mod 4 is
    positive, so the scores follow the weights. Each call notes the agent, the learner's step,
    the protocol and the episodes asked for."""
    from ctdkit.eval.protocols import EvalResult
    from ctdkit.policies.history import EpisodeHistory

    def evaluate(agent, tasks, protocol, seed, **options):
        learner = getattr(agent, "learner", None)
        step = learner.step if learner is not None else agent.algo.grad_step
        episodes = options["num_episodes"] if protocol == "official" else len(options["goals"])
        calls.append((agent.name, step, protocol, episodes))
        n = len(tasks)
        history = EpisodeHistory(n, 39, 4, 10)
        history.start(np.arange(n), observations[:n])
        agent.bind(list(tasks))
        actions = agent.act(observations[:n], history)
        result = EvalResult(protocol, seed, tuple(tasks))
        result.episodes = [
            {"task": task, "success": bool(actions[k, i % 4] > 0), "return": 0.0, "length": 9 + i}
            for k, task in enumerate(tasks)
            for i in range(episodes)
        ]
        return result

    return evaluate


def _stopped_after(steps: int, train):
    """A learner's ``train`` that raises once the learner has ``steps`` behind it."""

    def stopped(self, n_steps):
        if self.step >= steps:
            raise RuntimeError(f"killed at step {self.step}")
        return train(self, n_steps)

    return stopped


@pytest.fixture(scope="module")
def curve(bench, tiny_data):
    """CURVE (ctd + bc-none, seed 0) run once (A), and run again (B) stopped by an exception in
    its training after the first point, then rerun; the shared encoders are the bench's."""
    import ctdkit.bench.run as bench_run
    import ctdkit.eval
    from ctdkit.bench import learners

    base = bench["base"] / "curve"
    calls: dict[str, list] = {"A": [], "B stopped": [], "B rerun": []}
    result = {"base": base}

    def config(name: str, **options) -> BenchRunConfig:
        root = bench["config"].root
        return BenchRunConfig(
            suite="tiny",
            out=base / name,
            root=root,
            workers=1,
            progress=False,
            seeds=(0,),
            **options,
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SUITES, "tiny", CURVE)
        for name in ("A", "B"):
            shutil.copytree(bench["config"].out / "encoders", base / name / "encoders")
        for name, run in (("A", "A"), ("B stopped", "B"), ("B rerun", "B")):
            patch.setattr(
                ctdkit.eval, "evaluate", _scripted_evaluate(calls[name], tiny_data.observations[:2])
            )
            with pytest.MonkeyPatch.context() as stop:
                if name == "B stopped":
                    for learner in (learners.CollectiveRunLearner, learners.D3rlpyRunLearner):
                        stop.setattr(learner, "train", _stopped_after(40, learner.train))
                result[name] = run_bench(config(run))
            if name == "B stopped":  # what the rerun finds
                checkpoints = base / "B" / "checkpoints" / "tiny"
                result["progress"] = {
                    algo: bench_run.read_progress(checkpoints / algo / "all" / "seed0")
                    for algo in ("ctd", "bc-none")
                }
                result["stopped"] = {r["algo"]: json.loads(Path(r["path"]).read_text())
                                     for r in result[name].results}  # fmt: skip
                result["dry run"] = config("B", dry_run=True)
    result["calls"] = calls
    result["records"] = {
        name: {r["algo"]: r for r in load_records([base / name / "records"])} for name in "AB"
    }
    return result


def _same_apart_from_timings(record: dict) -> dict:
    """A record without what differs between two runs of the same work: timings, creation
    time, where it resumed and its out folder (in the shared encoder's directory)."""
    kept = {
        k: v for k, v in record.items() if k not in ("seconds", "created", "resumed_at", "path")
    }
    kept["curve"] = [{k: v for k, v in e.items() if k != "eval_seconds"} for e in record["curve"]]
    if kept["encoder"]:
        kept["encoder"] = {k: v for k, v in kept["encoder"].items() if k != "directory"}
    return kept


def _weights(path: Path) -> dict:
    """The networks and optimiser states of a saved model (collective checkpoint or .d3)."""
    import torch

    if path.suffix == ".pt":
        state = torch.load(path, weights_only=True)
        return {k: state[k] for k in ("actor", "critic", "actor_optim", "critic_optim", "step")}
    with open(path, "rb") as file:
        return torch.load(io.BytesIO(pickle.load(file)["torch"]), weights_only=True)


def _assert_same(a, b, where: str = "") -> None:
    import torch

    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


MODELS = {"ctd": "collective.pt", "bc-none": "bc.d3"}


def _model(out: Path, algo: str) -> Path:
    return out / "models" / "tiny" / algo / "all" / "seed0" / MODELS[algo]


def test_curve_points_are_evaluated_at_their_steps_with_their_episodes(curve, bench):
    names = {"ctd": "collective-ctd", "bc-none": "bc-none"}
    for algo, record in curve["records"]["A"].items():
        made = [call[1:] for call in curve["calls"]["A"] if call[0] == names[algo]]
        assert made == [(40, "all-goals", 2), (100, "all-goals", 3), (100, "official", 3)]
        assert [
            (e["steps"], e["protocol"], e["episodes_per_task"]) for e in record["curve"]
        ] == made
        for entry in record["curve"]:  # the scripted episodes: 9 + i env steps each
            episodes = entry["episodes_per_task"]
            assert entry["env_steps"] == 2 * sum(9 + i for i in range(episodes))
        final = record["curve"][1]  # the suite's protocol at the last step: the record's own
        assert (final["per_task"], final["mean_success"]) == (
            record["success_by_task"],
            record["mean_success"],
        )
        assert record["settings"]["curve_steps"] == [40] and record["steps"] == 100
        assert {"train", "eval", "curve_eval", "checkpoint"} <= set(record["seconds"])
        assert "resumed_at" not in record
        # pausing to evaluate changes nothing in training: the final weights and optimiser
        # states are those of the bench's run without curve points (same seed)
        _assert_same(
            _weights(_model(curve["base"] / "A", algo)),
            _weights(_model(bench["config"].out, algo)),
            algo,
        )
    assert not (curve["base"] / "A" / "checkpoints" / "tiny").exists()  # removed when done


def test_suites_without_curve_points_keep_their_records_and_fingerprints(bench):
    from ctdkit.bench.records import fingerprint
    from ctdkit.bench.run import RunSpec

    for record in _records(bench):  # the tiny suite: final weights only
        assert "curve" not in record and "resumed_at" not in record
        assert not {"curve_steps", "curve_episodes", "final_protocols"} & set(record["settings"])
        assert set(record["seconds"]) == {"load", "train", "eval", "total"}
    assert not (bench["config"].out / "checkpoints").exists()
    root = Path(__file__).resolve().parent.parent / "benchmarks" / "leaderboard" / "records"
    for suite in ("mt10-expert", "reach-replay"):  # committed records: the same fingerprints
        path = next((root / suite).rglob("seed0.json"))
        record = json.loads(path.read_text())
        spec = RunSpec(
            suite=SUITES[suite],
            algo=parse_algo(record["algo"]),
            seed=record["seed"],
            episodes_per_task=record["episodes_per_task"],
            tasks=tuple(record["settings"]["tasks"]),
            dataset_checksum=record["settings"]["dataset_checksum"],
            record=path,
            model_dir=None,
            encoder_dir=None,
            root=None,
        )
        assert spec.settings() == record["settings"]
        assert fingerprint(spec.settings()) == record["fingerprint"]


def test_a_curve_run_stopped_after_its_first_point_continues_from_it(curve, tmp_path):
    from ctdkit.bench.run import read_progress

    for algo, stopped in curve["stopped"].items():
        assert stopped["status"] == "error" and "killed at step 40" in stopped["error"]
        assert stopped["checkpoint"]["steps"] == 40
        progress = curve["progress"][algo]
        assert progress["steps"] == 40 and [e["steps"] for e in progress["curve"]] == [40]
    assert {c[1:] for c in curve["calls"]["B stopped"]} == {(40, "all-goals", 2)}
    # the rerun continues at step 40: that point is not evaluated again, training is not redone
    assert {c[1:] for c in curve["calls"]["B rerun"]} == {(100, "all-goals", 3),
                                                          (100, "official", 3)}  # fmt: skip
    for algo, resumed in curve["records"]["B"].items():
        uninterrupted = curve["records"]["A"][algo]
        assert resumed["status"] == "ok" and resumed["resumed_at"] == [40]
        assert _same_apart_from_timings(resumed) == _same_apart_from_timings(uninterrupted)
        _assert_same(
            _weights(_model(curve["base"] / "B", algo)),
            _weights(_model(curve["base"] / "A", algo)),
            algo,
        )
    assert not (curve["base"] / "B" / "checkpoints" / "tiny").exists()
    # a checkpoint of other settings is refused, like a record (--overwrite starts it over)
    out = tmp_path / "runs"
    folder = out / "checkpoints" / "tiny" / "ctd" / "all" / "seed0"
    folder.mkdir(parents=True)
    progress = {**curve["progress"]["ctd"]}
    progress["settings"] = {**progress["settings"], "curve_episodes": 5}
    (folder / "progress.json").write_text(json.dumps(progress))
    config = dataclasses.replace(curve["dry run"], out=out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SUITES, "tiny", CURVE)
        with pytest.raises(CtdkitError, match=r"seed0 used a different config \(curve_episodes"):
            run_bench(config)
        assert len(run_bench(dataclasses.replace(config, overwrite=True)).finished) == 0
    assert read_progress(folder) is not None  # a dry run deletes nothing


def test_the_leaderboard_shows_the_curve_and_the_protocols_side_by_side(curve, tmp_path):
    board = build_leaderboard(
        LeaderboardConfig(records=(curve["base"] / "A" / "records",), out=tmp_path, reps=50)
    )
    rows = {row["algo"]: row for row in board["suites"]["tiny"]["rows"]}
    for algo, row in rows.items():
        record = curve["records"]["A"][algo]
        points = [(p["steps"], p["protocol"], p["episodes_per_task"]) for p in row["curve"]]
        assert sorted(points) == [(40, "all-goals", 2), (100, "all-goals", 3),
                                  (100, "official", 3)]  # fmt: skip
        entries = sorted(record["curve"], key=lambda e: (e["steps"], e["protocol"]))
        for point, entry in zip(row["curve"], entries, strict=True):
            scores = np.array([[entry["per_task"][t] for t in ("reach-v3", "push-v3")]])
            assert point["iqm"][0] == pytest.approx(iqm(scores))
            assert point["env_steps"] == entry["env_steps"] and point["runs"] == 1
            width = point["iqm"][2] - point["iqm"][1]
            assert point["iqm_width_per_env_step"] == pytest.approx(width / entry["env_steps"])
        final = next(p for p in row["curve"] if p["steps"] == 100 and p["protocol"] == "all-goals")
        assert final["iqm"] == row["iqm"]  # the headline row is the final point
    markdown = (tmp_path / "LEADERBOARD.md").read_text()
    assert "evaluated on the way at steps 40 (2 episodes per task" in markdown
    assert "| algorithm | 40 (2 ep) | 100 (3 ep) |" in markdown
    assert (
        "| algorithm | official IQM [95% CI] | width | env steps | width / env step "
        "| all-goals IQM [95% CI] |" in markdown
    )
    assert board["plots"]["tiny"]["curve"] == "leaderboard/tiny-curve.png"
    assert (tmp_path / "leaderboard" / "tiny-curve.png").stat().st_size > 0
    assert "![tiny IQM against gradient steps](leaderboard/tiny-curve.png)" in markdown


def test_records_with_a_malformed_curve_are_refused_in_one_line(curve, tmp_path):
    from ctdkit.bench.records import read_record

    record = json.loads(Path(curve["records"]["A"]["bc-none"]["path"]).read_text())
    first, final, official = record["curve"]

    def changed(i: int, **change) -> list:
        entries = [dict(e) for e in record["curve"]]
        entries[i] |= change
        return entries

    scores = first["per_task"]
    no_scores = {k: v for k, v in first.items() if k != "per_task"}
    cases = [
        ({"curve": {"steps": 40}}, "field 'curve' is not a non-empty list"),
        ({"curve": [first, "x"]}, "curve[1] is not an object"),
        ({"curve": [no_scores]}, "curve[0] lacks 'per_task'"),
        ({"curve": changed(0, steps=0)}, "curve[0].steps is not a positive integer (got 0)"),
        ({"curve": changed(0, steps=50)}, "curve[0].steps 50 is not among the run's points"),
        ({"curve": changed(2, protocol="mt50")}, 'curve[2].protocol "mt50" is not one of'),
        ({"curve": changed(0, mean_success=1.5)}, "curve[0].mean_success is not a number in"),
        ({"curve": changed(0, per_task={"reach-v3": 0.5})}, "has no success for task 'push-v3'"),
        ({"curve": changed(0, per_task={**scores, "push-v3": 2})}, "scores push-v3 2, not a"),
        ({"curve": changed(0, per_task={**scores, "pick-v3": 0})}, "scores 'pick-v3', which"),
        ({"curve": changed(0, env_steps=-1)}, "curve[0].env_steps is not a non-negative integer"),
        ({"curve": [first, final, official, final]}, "curve[3] repeats step 100 under all-goals"),
        ({"curve": [first, official]}, "curve has no final point (step 100 under all-goals)"),
        ({"curve": changed(1, per_task=dict.fromkeys(scores, 0.5))}, "disagrees with success_by"),
        ({"resumed_at": [0]}, "field 'resumed_at' is [0], not a list of positive integers"),
    ]
    path = tmp_path / "bad.json"
    for change, problem in cases:
        path.write_text(json.dumps({**record, **change}))
        with pytest.warns(RecordWarning) as caught:
            assert read_record(path) is None, problem
        (message,) = [str(w.message) for w in caught]
        assert problem in message and "\n" not in message, (problem, message)
    path.write_text(json.dumps({k: v for k, v in record.items() if k != "curve"}))
    assert read_record(path) is not None  # records of suites without curves have none


def test_records_with_malformed_setting_changes_are_refused_in_one_line(curve, tmp_path):
    """The leaderboard prints a record's option changes: their shapes are checked first."""
    from ctdkit.bench.records import read_record

    record = json.loads(Path(curve["records"]["A"]["bc-none"]["path"]).read_text())
    settings = record["settings"]
    cases = [
        ({"collective_options": ["log_std_weight", 0]}, "settings.collective_options is"),
        ({"collective_options": {"lr": [1]}}, "settings.collective_options is"),
        ({"d3rlpy_options": [["cql", "alpha_learning_rate"]]}, "settings.d3rlpy_options is"),
        ({"d3rlpy_options": [["cql", 3, 0.0]]}, "settings.d3rlpy_options is"),
        ({"d3rlpy_options": {"cql": 1}}, "settings.d3rlpy_options is"),
        ({"reward_scale": "10"}, 'settings.reward_scale is "10", not a number'),
    ]
    path = tmp_path / "bad.json"
    for change, problem in cases:
        path.write_text(json.dumps({**record, "settings": {**settings, **change}}))
        with pytest.warns(RecordWarning) as caught:
            assert read_record(path) is None, problem
        (message,) = [str(w.message) for w in caught]
        assert problem in message and "\n" not in message, (problem, message)
    fine = {"d3rlpy_options": [["cql", "alpha_learning_rate", 0.0]], "reward_scale": 0.1}
    path.write_text(json.dumps({**record, "settings": {**settings, **fine}}))
    assert read_record(path) is not None


def test_curve_suites_check_their_points_and_protocols():
    from ctdkit.bench.suites import PROTOCOLS, Suite
    from ctdkit.eval.protocols import PROTOCOLS as EVAL_PROTOCOLS

    assert PROTOCOLS == EVAL_PROTOCOLS
    for changes, problem in [
        ({"curve_steps": (40, 40)}, "must increase strictly between 0 and n_steps 100"),
        ({"curve_steps": (100,)}, "must increase strictly"),
        ({"curve_steps": (0, 50)}, "must increase strictly"),
        ({"curve_episodes": 0}, "curve_episodes must be > 0"),
        ({"final_protocols": ("official",)}, "its protocol 'all-goals' among them"),
        ({"final_protocols": ("all-goals", "all-goals")}, "each protocol once"),
        ({"final_protocols": ("all-goals", "mt10")}, "unknown evaluation protocol 'mt10'"),
    ]:
        with pytest.raises(CtdkitError, match=problem):
            dataclasses.replace(CURVE, **changes)
    assert CURVE.points() == (40, 100) and CURVE.protocols() == ("all-goals", "official")
    assert CURVE.eval_options("official", 2) == {"num_episodes": 2}
    assert TINY.eval_options() == {"goals": range(3), "max_episode_steps": 60}
    only = Suite(name="x", description="x", dataset_id="x", final_protocols=("official",))
    assert only.has_curve and only.settings()["final_protocols"] == ["official"]


def test_the_50k_suites_train_every_row_to_50k_with_a_curve_on_every_seed():
    from ctdkit.bench.suites import LONG_ALGOS

    expected = {
        "mt10-expert-50k": "ctdkit/mt10-scripted-v0",
        "mt10-mixed-labelled-50k": "ctdkit/mt10-scripted-random0p5-v1",
    }
    for name, dataset in expected.items():
        suite = SUITES[name]
        assert suite.dataset_id == dataset and suite.algos == LONG_ALGOS
        assert set(LONG_ALGOS) == {"ctd", "history", "oracle", "none", "bc-oracle", "bc-none",
                                   "iql-oracle", "td3bc-oracle", "cql-oracle"}  # fmt: skip
        assert (suite.n_steps, suite.curve_steps, suite.curve_episodes) == (
            50_000,
            (5000, 10_000, 25_000),
            10,
        )
        assert (suite.protocol, suite.eval_episodes) == ("official", 50)
        assert suite.protocols() == ("official", "all-goals")
        assert suite.seeds_for("cql", suite.seeds) == (0, 1, 2)  # CQL on every seed
        base = {**SUITES["mt10-expert"].settings(), "dataset_id": dataset}
        changed = {k for k in suite.settings() if suite.settings()[k] != base.get(k)}
        assert changed == {"n_steps", "eval_episodes", "curve_steps", "curve_episodes",
                           "final_protocols"}  # fmt: skip


# ------------------------------------------------------------------------------ bad input
def test_corrupt_record_is_skipped_with_a_warning_naming_it(bench, tmp_path):
    records = _copy_records(bench, tmp_path)
    (records / "tiny" / "broken.json").write_text('{"schema": 1, "status": "ok"')
    (records / "tiny" / "partial.json").write_text('{"schema": 1, "status": "ok"}')
    with pytest.warns(RecordWarning) as caught:
        board = build_leaderboard(LeaderboardConfig(records=(records,), out=tmp_path, reps=50))
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.json" in messages and "partial.json" in messages
    assert sum(row["runs"] for row in board["suites"]["tiny"]["rows"]) == 4


def test_records_of_different_dataset_checksums_are_refused(bench, tmp_path):
    records = _copy_records(bench, tmp_path)
    path = records / "tiny" / "bc-none" / "all" / "seed1.json"
    record = json.loads(path.read_text())
    record["dataset"]["checksum"] = "f" * 64
    path.write_text(json.dumps(record))
    with pytest.raises(CtdkitError, match=r"mixes datasets.*seed1\.json") as error:
        build_leaderboard(LeaderboardConfig(records=(records,), out=tmp_path, reps=50))
    assert "\n" not in str(error.value)


def test_unknown_suite_and_algorithm_list_the_valid_ones(capsys):
    from ctdkit.bench.__main__ import Command, main
    from ctdkit.cli import run_cli

    with pytest.raises(CtdkitError, match=r"unknown suite 'mt10-expret'.*mt10-expert"):
        get_suite("mt10-expret")
    with pytest.raises(CtdkitError, match=r"unknown algorithm 'iql-cdt'.*iql-ctd.*td3bc-none"):
        parse_algo("iql-cdt")
    assert run_cli(Command, main, args=["run", "--suite", "nope", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctdkit: unknown suite 'nope'") and "\n" not in err
    assert run_cli(Command, main, args=["run", "--suite", "tiny", "--algos", "sac-none"]) == 2
    assert "valid: ctd, oracle, none, history, ctd+history, bc-ctd" in capsys.readouterr().err


# ------------------------------------------------------------------------------ statistics
def test_rliable_aggregates_of_known_scores():
    from rliable import library as rly
    from rliable import metrics

    known = np.array([[0.0, 0.1, 0.2, 0.3], [0.4, 0.5, 0.6, 0.7], [0.8, 0.9, 1.0, 1.0]])
    assert iqm(known) == pytest.approx(0.55)  # mean of the middle six: 0.3 ... 0.8
    stats = row_statistics(known)
    assert stats[:2] == pytest.approx([0.55, 6.5 / 12])
    assert stats[2 + 25] == pytest.approx(np.mean(known > 0.5))  # profile at τ = 0.5
    rng = np.random.default_rng(0)
    for _ in range(20):  # equal to rliable's own metrics
        x, y = rng.integers(0, 11, (3, 5)) / 10, rng.integers(0, 11, (2, 5)) / 10
        assert iqm(x) == pytest.approx(metrics.aggregate_iqm(x))
        assert row_statistics(x)[2:] == pytest.approx(
            rly.score_distributions(x, np.linspace(0, 1, 51))
        )
        assert probability_of_improvement(x, y)[0] == pytest.approx(
            metrics.probability_of_improvement(x, y)
        )
    ones, zeros = np.ones((3, 4)), np.zeros((3, 4))
    assert probability_of_improvement(ones, zeros)[0] == 1.0
    assert probability_of_improvement(known, known)[0] == pytest.approx(0.5)
    first = interval_estimates({"a": known}, row_statistics, 500, seed=0)["a"]
    np.random.seed(123)  # the global generator (which rliable draws from) does not matter
    again = interval_estimates({"b": known * 0, "a": known}, row_statistics, 500, seed=0)["a"]
    other = interval_estimates({"a": known}, row_statistics, 500, seed=1)["a"]
    assert np.array_equal(first["low"], again["low"]) and not np.array_equal(
        first["low"], other["low"]
    )
    # rliable's own bootstrap of its own IQM and mean, on the same seed: the same interval
    np.random.seed(0)
    _, reference = rly.get_interval_estimates(
        {"a": known},
        lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)]),
        reps=500,
        random_state=np.random.RandomState(0),
    )
    np.testing.assert_allclose([first["low"][:2], first["high"][:2]], reference["a"], rtol=1e-12)
    # and a stratified percentile bootstrap by hand (runs redrawn within each task) agrees
    draws = np.random.default_rng(0).integers(0, 3, size=(4000, 3, 4))
    by_hand = [iqm(known[d, np.arange(4)]) for d in draws]
    low, high = np.percentile(by_hand, [2.5, 97.5])
    assert (first["low"][0], first["high"][0]) == pytest.approx((low, high), abs=0.02)
    constant = interval_estimates({"c": np.full((3, 4), 0.7)}, row_statistics, 100, seed=0)["c"]
    assert constant["low"][0] == pytest.approx(0.7) and constant["high"][0] == pytest.approx(0.7)


# ------------------------------------------------------------------------------ conditioning
@pytest.fixture(scope="module")
def tiny_data(bench):
    from ctdkit.data import load_transitions

    return load_transitions(TINY.dataset_id, root=bench["config"].root)


def test_d3rlpy_options_change_one_field_and_fix_cqls_conservative_weight(tiny_data):
    import d3rlpy
    from d3rlpy.models.torch import get_parameter

    from ctdkit.bench.algos import d3rlpy_config, fit_quietly
    from ctdkit.bench.suites import Suite
    from ctdkit.collective import make_context

    context = make_context("none", tiny_data)
    rows, next_rows = context.for_transitions(tiny_data)
    dataset = conditioned_dataset(tiny_data, rows, next_rows, "full")
    mean, std = tiny_data.observations.mean(0), tiny_data.observations.std(0)
    quiet_d3rlpy()

    def alpha_after_updates(options):
        d3rlpy.seed(0)
        config = d3rlpy_config("cql", (32, 32), 32, mean, std, options=options)
        algo = config.create()
        fit_quietly(algo, dataset, 20)
        log_alpha = get_parameter(algo.impl.modules.log_alpha)
        return config, float(log_alpha.exp().detach().reshape(-1)[0])

    config, fixed = alpha_after_updates({"alpha_learning_rate": 0.0})
    assert config.alpha_learning_rate == 0.0 and config.conservative_weight == 5.0
    assert fixed == 1.0  # initial_alpha, never updated: the weight stays 5
    _, tuned = alpha_after_updates(None)
    assert tuned != 1.0  # d3rlpy's default: the Lagrangian moves it
    for bad in ("alpha_lr", "batch_size"):  # a typo; a field the suite sets itself
        with pytest.raises(CtdkitError, match=f"unknown CQLConfig option '{bad}'"):
            d3rlpy_config("cql", (32, 32), 32, mean, std, options={bad: 0.0})
    with pytest.raises(CtdkitError, match="unknown d3rlpy learner 'sac'"):
        Suite("x", "x", "d", d3rlpy_options=(("sac", "alpha_learning_rate", 0.0),))
    assert "d3rlpy_options" not in SUITES["reach-replay"].settings()  # fingerprints kept
    check = SUITES["reach-replay-cql-fixed-alpha"]
    assert check.settings()["d3rlpy_options"] == [["cql", "alpha_learning_rate", 0.0]]
    assert {**check.settings(), "d3rlpy_options": None} == {
        **SUITES["reach-replay"].settings(),
        "d3rlpy_options": None,
    }


def test_oracle_conditioned_bc_sees_and_uses_the_one_hot(tiny_data):
    import d3rlpy

    from ctdkit.bench.algos import d3rlpy_config, fit_quietly
    from ctdkit.collective import make_context
    from ctdkit.policies.history import EpisodeHistory

    data = tiny_data
    context = make_context("oracle", data)
    rows, next_rows = context.for_transitions(data)
    dataset = conditioned_dataset(data, rows, next_rows, "full")
    first = dataset.episodes[0]  # truncated: its final observation is appended
    n = int((data.episode_index == 0).sum())
    np.testing.assert_array_equal(first.observations[:n, :2], rows[:n])
    np.testing.assert_array_equal(first.observations[:n, 2:], data.observations[:n])
    np.testing.assert_array_equal(first.observations[n, 2:], data.next_observations[n - 1])
    quiet_d3rlpy()
    d3rlpy.seed(0)
    inputs = np.concatenate([rows, data.observations], axis=1)
    algo = d3rlpy_config("bc", (64, 64), 64, inputs.mean(0), inputs.std(0)).create()
    fit_quietly(algo, dataset, 300)
    assert algo.observation_shape == (39 + 2,)
    agent = ConditionedAgent(algo, context, "full", "bc-oracle")
    observation = data.observations[:1].repeat(2, axis=0)
    history = EpisodeHistory(2, 39, 4, 10)
    history.start(np.arange(2), observation)
    agent.bind(["reach-v3", "push-v3"])
    actions = agent.act(observation, history)
    assert np.abs(actions[0] - actions[1]).max() > 1e-3  # only the one-hot differs
    agent.bind(["push-v3", "reach-v3"])
    np.testing.assert_allclose(agent.act(observation, history), actions[::-1], atol=1e-6)


def test_ctd_conditioned_baseline_acts_on_the_encoder_context(bench, tiny_data):
    from ctdkit.bench.conditioning import run_context
    from ctdkit.policies.history import EpisodeHistory

    data = tiny_data
    encoder_dir = next((bench["config"].out / "encoders").iterdir())
    context, info = run_context("ctd", data, transitions_checksum(data), encoder_dir)
    assert context.dim == 6 and info["steps"] == TINY.encoder_steps
    rows, next_rows = context.for_transitions(data)
    dataset = conditioned_dataset(data, rows, next_rows, "full")
    assert dataset.episodes[0].observations.shape[1] == 6 + 39

    class Recorder:  # stands in for a d3rlpy algorithm: keeps what predict was given
        def predict(self, x):
            self.x = x
            return np.zeros((len(x), 4), np.float32)

    recorder = Recorder()
    agent = ConditionedAgent(recorder, context, "goal-hidden", "bc-ctd")
    episode = np.flatnonzero(data.episode_index == 0)
    history = EpisodeHistory(1, 39, 4, len(episode))
    history.start(0, data.observations[episode[0]])
    for row in episode[:3]:
        history.record(np.array([0]), data.actions[row][None], data.rewards[row][None],
                       data.next_observations[row][None])  # fmt: skip
    agent.bind(["reach-v3"])
    agent.act(data.observations[episode[3]][None], history)
    np.testing.assert_allclose(recorder.x[0, :6], rows[episode[3]], atol=1e-5)
    assert np.all(recorder.x[0, 6 + 36 :] == 0)  # the agent's view: goal hidden


def test_ctd_with_history_uses_the_shared_encoder_and_the_raw_window(bench, tiny_data):
    from ctdkit.bench.conditioning import run_context
    from ctdkit.policies.history import EpisodeHistory

    data = tiny_data
    encoder_dir = next((bench["config"].out / "encoders").iterdir())
    cls, _ = run_context("ctd", data, transitions_checksum(data), encoder_dir)
    both, info = run_context("ctd+history", data, transitions_checksum(data), encoder_dir)
    assert both.dim == 6 + 5 * (4 + 2) and info["steps"] == TINY.encoder_steps
    rows, _ = both.for_transitions(data)
    np.testing.assert_array_equal(rows[:, :6], cls.for_transitions(data)[0])
    episode = np.flatnonzero(data.episode_index == 1)
    history = EpisodeHistory(1, 39, 4, len(episode))
    history.start(0, data.observations[episode[0]])
    for row in episode[:3]:
        history.record(np.array([0]), data.actions[row][None], data.rewards[row][None],
                       data.next_observations[row][None])  # fmt: skip
    np.testing.assert_allclose(both.for_history(history, ["reach-v3"])[0], rows[episode[3]],
                               atol=1e-5)  # fmt: skip


# ------------------------------------------------------------------------------ data + suites
def test_select_takes_the_first_episodes_of_each_task(tiny_data):
    data = tiny_data
    two = select(data, episodes_per_task=2)
    assert two.num_episodes == 4 and two.tasks == data.tasks
    kept = np.isin(data.episode_index, [0, 1, 4, 5])  # 4 episodes per task, tasks in order
    np.testing.assert_array_equal(two.observations, data.observations[kept])
    np.testing.assert_array_equal(np.unique(two.episode_index), np.arange(4))
    assert transitions_checksum(two) == transitions_checksum(select(data, episodes_per_task=2))
    assert transitions_checksum(two) != transitions_checksum(data)
    push = select(data, ("push-v3",), episodes_per_task=1)
    assert push.tasks == ("push-v3",) and set(push.task_index) == {0}
    np.testing.assert_array_equal(push.observations, data.observations[data.episode_index == 4])
    with pytest.raises(CtdkitError, match="fewer than the 5"):
        select(data, episodes_per_task=5)


def test_every_suite_names_valid_algorithms_and_a_buildable_dataset(tmp_path):
    for suite in SUITES.values():
        assert all(parse_algo(a) for a in suite.algos)
        command = recipe_command(suite.dataset_id, suite.recipe)
        if "ctdkit.train_expert" in command:  # a replay tier: built by training, not by run
            expert = tyro.cli(TrainExpertConfig, args=shlex.split(command)[3:])
            assert expert.dataset_id == suite.dataset_id
            with pytest.raises(
                CtdkitError, match=r"training replay .* run `python -m ctdkit\.train"
            ):
                ensure_dataset(suite.dataset_id, tmp_path / "empty-root", progress=False)
            assert not (tmp_path / "empty-root" / "ctdkit").exists()
            continue
        if "ctdkit.dagger" in command:  # the DAgger tier: built by training, not by run
            dagger = tyro.cli(DaggerConfig, args=shlex.split(command)[3:])
            assert dagger.export_dataset_id == suite.dataset_id
            with pytest.raises(CtdkitError, match=r"DAgger tier .* run `python -m ctdkit\.dagger"):
                ensure_dataset(suite.dataset_id, tmp_path / "empty-root", progress=False)
            assert not (tmp_path / "empty-root" / "ctdkit").exists()
            continue
        config = collect_config(command)
        assert config.resolved_dataset_id() == suite.dataset_id
    mixed = collect_config(recipe_command("ctdkit/mt10-scripted-random0p5-v0"))
    assert mixed.random_fraction == 0.5 and mixed.episodes_per_task == 20
    assert len(ALGO_IDS) == 5 + 4 * 5  # 5 conditionings x (collective + 4 d3rlpy learners)
    budgets = {
        (s.n_steps, s.batch_size, s.hidden, s.curve_steps) for n, s in SUITES.items() if n != "tiny"
    }
    assert budgets == {
        (5000, 256, (256, 256), ()),  # every suite but the -50k ones: final weights only
        (50_000, 256, (256, 256), (5000, 10_000, 25_000)),
    }


def test_each_suite_has_its_own_leaderboard_reference_unless_overridden():
    from ctdkit.bench.leaderboard import _reference

    assert _reference(LeaderboardConfig(), "mt10-mixed") == "ctd"
    assert _reference(LeaderboardConfig(), "reach-replay") == "bc-none"  # no ctd row there
    assert _reference(LeaderboardConfig(reference="iql-none"), "reach-replay") == "iql-none"
    for suite in SUITES.values():
        assert suite.reference in suite.algos


def test_collective_ablation_suites_change_one_learner_setting_and_refuse_unknown_fields():
    import dataclasses

    from ctdkit.bench.learners import collective_config
    from ctdkit.bench.run import RunSpec
    from ctdkit.bench.suites import Suite

    def config_of(suite_name: str):
        spec = RunSpec(
            suite=SUITES[suite_name],
            algo=parse_algo("oracle"),
            seed=1,
            episodes_per_task=None,
            tasks=(),
            dataset_checksum="x",
            record=Path("r.json"),
            model_dir=None,
            encoder_dir=None,
            root=None,
        )
        return collective_config(spec)

    base = config_of("mt10-expert-e50")
    assert (base.log_std_weight, base.actor_lr, base.seed) == (0.2, 1e-3, 1)
    changed = {
        name: {
            f.name: getattr(config_of(name), f.name)
            for f in dataclasses.fields(base)
            if getattr(config_of(name), f.name) != getattr(base, f.name)
        }
        for name in (
            "mt10-expert-e50-no-log-std",
            "mt10-expert-e50-std-floor",
            "mt10-expert-e50-lr3e-4",
            "mt10-expert-e50-context-std",
        )
    }
    assert changed == {
        "mt10-expert-e50-no-log-std": {"log_std_weight": 0.0},
        "mt10-expert-e50-std-floor": {"obs_std_floor": 1e-3},
        "mt10-expert-e50-lr3e-4": {"actor_lr": 3e-4},
        "mt10-expert-e50-context-std": {"normalize_context": True},
    }
    # suites without ablations keep the settings (and record fingerprints) they had
    assert "collective_options" not in SUITES["mt10-expert"].settings()
    assert SUITES["mt10-expert-e50-no-log-std"].settings()["collective_options"] == {
        "log_std_weight": 0.0
    }
    with pytest.raises(CtdkitError, match="log_std_wieght"):
        Suite(
            name="x", description="x", dataset_id="x", collective_options=(("log_std_wieght", 0.0),)
        )
