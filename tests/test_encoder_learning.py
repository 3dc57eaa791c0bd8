"""The encoder on real Meta-World data: label-free training learns a task embedding in the
goal-hidden view, and the ``train_encoder`` CLI trains, writes its outputs and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ctdkit.cli import run_cli
from ctdkit.collect import CollectConfig, CollectResult, collect
from ctdkit.data import load_transitions
from ctdkit.encoder import EncoderConfig, TrajectoryEncoder
from ctdkit.encoder.metrics import RAW_BASELINE, evaluate_encoders, to_json
from ctdkit.encoder.run import TrainEncoderConfig
from ctdkit.train_encoder import main

#: three tasks in one scene: with the goal hidden, behaviour (gripper, object motion, actions,
#: rewards) is what tells them apart
TASKS = ("reach-v3", "push-v3", "pick-place-v3")
#: a CPU-sized learning budget: K=10 instead of 20 and no attention dropout (SDPA's fused
#: kernel) keep 300 updates at ~20 s on one thread
LEARN = dict(view="goal-hidden", window=10, batch_size=32, lr=1e-3, attention_dropout=0.0, seed=0)
LEARN_STEPS = 300


@pytest.fixture(scope="module")
def three_tasks(tmp_path_factory) -> CollectResult:
    """10 noisy scripted episodes of 150 steps per task (6 are held out by the split)."""
    config = CollectConfig(
        tasks=TASKS,
        episodes_per_task=10,
        max_episode_steps=150,
        ref_episodes=0,
        noise=0.3,
        seed=0,
        root=tmp_path_factory.mktemp("encoder-data"),
        dataset_id="test/encoder-three-v0",
        progress=False,
    )
    return collect(config)


def test_label_free_training_learns_a_task_embedding_goal_hidden(three_tasks):
    transitions = load_transitions(three_tasks.group_id, root=three_tasks.root)
    config = EncoderConfig(**LEARN)
    trained = config.create()
    log = trained.fit(transitions, LEARN_STEPS, progress=False, log_every=LEARN_STEPS // 3)
    assert log[-1]["loss"] < log[0]["loss"]
    untrained = config.create()
    untrained.fit(transitions, 0, progress=False)  # same split and normalisation, no update
    result = to_json(
        evaluate_encoders({"label-free": trained, "untrained": untrained}, transitions)
    )
    assert result["validation_episodes"] == 6 and result["chance"] == pytest.approx(1 / 3)
    mean_probe = {}
    for method, scores in result["methods"].items():
        mean_probe[method] = float(np.mean(list(scores["linear_probe"].values())))
        probe = " ".join(f"L{k}={v:.2f}" for k, v in scores["linear_probe"].items())
        knn = " ".join(f"L{k}={v:.2f}" for k, v in scores["knn"].items())
        print(  # shown with -s: the report, including the (not asserted) raw baseline
            f"{method:12s} probe {probe} | knn {knn} | purity@K "
            f"{scores['purity'][str(config.window)]:.2f}"
        )
    assert RAW_BASELINE in mean_probe
    # held-out probe accuracy averaged over window lengths 1, 2, 5, 10
    assert mean_probe["label-free"] >= 0.8, mean_probe
    assert mean_probe["label-free"] >= mean_probe["untrained"] + 0.15, mean_probe


def test_cli_trains_writes_outputs_and_resumes(three_tasks, tmp_path, capsys):
    def cli(out, *extra):
        args = [
            "--dataset-id", three_tasks.group_id, "--root", str(three_tasks.root),
            "--out-dir", str(out), "--no-progress", "--checkpoint-every", "2",
            "--windows-per-episode", "4", "--encoder.window", "5", "--encoder.batch-size", "8",
            "--encoder.d-model", "16", "--encoder.n-heads", "4", "--encoder.ffn", "32",
            "--encoder.view", "goal-hidden", *extra,
        ]  # fmt: skip
        return run_cli(TrainEncoderConfig, main, args=args)

    out = tmp_path / "run"
    assert cli(out, "--n-steps", "4") == 0
    for name in ("encoder.pt", "metrics.json", "quality.png", "checkpoints/step_00000004.pt"):
        assert (out / name).is_file(), name
    assert (out / "quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["methods"]) == {"label-free", "untrained", RAW_BASELINE}
    assert metrics["window_lengths"] == [1, 2, 5] and metrics["run"]["steps"] == 4
    assert set(metrics["methods"]["label-free"]) == {"linear_probe", "knn", "purity"}

    capsys.readouterr()
    assert cli(out, "--n-steps", "6") == 2  # an existing run is not silently replaced
    error = capsys.readouterr().err.strip()
    assert error.startswith("ctdkit: ") and "--resume" in error and "\n" not in error
    assert cli(out, "--n-steps", "6", "--encoder.lr", "0.1", "--resume") == 2
    assert "encoder.lr" in capsys.readouterr().err

    assert cli(out, "--n-steps", "6", "--resume", "--no-metrics") == 0
    resumed = TrajectoryEncoder.load(out / "encoder.pt")
    assert resumed.step == 6
    straight = tmp_path / "straight"
    assert cli(straight, "--n-steps", "6", "--no-metrics") == 0
    reference = TrajectoryEncoder.load(straight / "encoder.pt").network.state_dict()
    for key, value in resumed.network.state_dict().items():
        assert torch.equal(value, reference[key]), key  # resume continued the same run
