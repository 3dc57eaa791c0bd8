"""``ctdkit.runs``: the one run-folder helper (lock, ``run.json``, ``--resume`` / ``--overwrite``)
and every stage that opens its folder through it."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ctdkit.errors import CtdkitError
from ctdkit.runs import LOCK_FILE, RUN_FILE, open_run

SETTINGS = {"task": "reach-v3", "seed": 0, "encoder": {"lr": 0.001, "hidden": (64, 64)}}


def _open(path: Path, settings: dict = SETTINGS, **flags):
    flags = {"resume": False, "overwrite": False, **flags}
    return open_run(path, settings, what="a test run", **flags)


def _refusal(path: Path, settings: dict = SETTINGS, **flags) -> str:
    """The one-line message of a run that does not open."""
    with pytest.raises(CtdkitError) as error, _open(path, settings, **flags):
        pass
    message = str(error.value)
    assert "\n" not in message
    return message


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def _start_run(path: Path) -> Path:
    with _open(path) as run:
        run.write_text("weights.txt", "old")
    return path


def test_a_fresh_run_records_its_settings_and_its_writes_leave_no_temp_files(tmp_path):
    path = tmp_path / "run"
    with _open(path, resume=True) as run:  # --resume of nothing starts a run
        assert not run.resumed and (path / LOCK_FILE).exists()
        run.write_json("metrics.json", {"a": 1})
        run.write_bytes("blob.bin", b"\x00\x01")
        run.save_torch("state.pt", {"step": 3})
        with pytest.raises((pickle.PicklingError, AttributeError)):  # fails midway
            run.save_torch("state.pt", {"step": lambda: 4})
    assert json.loads((path / RUN_FILE).read_text()) == {
        "fingerprint": {"task": "reach-v3", "seed": 0, "encoder": {"lr": 0.001, "hidden": [64, 64]}}
    }
    assert sorted(p.name for p in path.iterdir()) == [
        "blob.bin",
        "metrics.json",
        "run.json",
        "state.pt",
    ]  # no temp file, and the lock file is gone once the run is closed
    import torch

    assert torch.load(path / "state.pt") == {"step": 3}  # the failed write left the old one


def test_an_existing_run_needs_resume_or_overwrite(tmp_path):
    path = _start_run(tmp_path / "run")
    message = _refusal(path)
    assert message == (
        f"{path} already holds a test run: pass --resume to continue it or --overwrite to "
        "discard it"
    )
    with _open(path, resume=True) as run:
        assert run.resumed and (path / "weights.txt").read_text() == "old"
    with _open(path, overwrite=True) as run:
        assert not run.resumed and not (path / "weights.txt").exists()


def test_resume_with_other_settings_names_the_keys_that_differ_in_one_line(tmp_path):
    path = _start_run(tmp_path / "run")
    before = _files(path)
    other = {**SETTINGS, "encoder": {"lr": 0.1, "hidden": (64, 64)}, "added": 3}
    message = _refusal(path, other, resume=True)
    assert message == (
        f"--resume: the run in {path} used a different config (added, encoder.lr differ); "
        "rerun it unchanged or pass --overwrite (without --resume) to discard it"
    )
    # a setting added since the run was recorded took its default then
    assert re.search(
        r"\(encoder\.lr differ\)", _refusal(path, other, resume=True, defaults={"added": 3})
    )
    with _open(path, {**SETTINGS, "added": 3}, resume=True, defaults={"added": 3}) as run:
        assert run.resumed
    assert re.search(
        r"\(added differ\)",
        _refusal(path, {**SETTINGS, "added": 4}, resume=True, defaults={"added": 3}),
    )  # not the default then
    # both flags: --resume decides, a different run is refused (never discarded silently)
    assert re.search("different config", _refusal(path, other, resume=True, overwrite=True))
    assert _files(path) == before
    # a stage that always continues (no --resume, no --overwrite) says what it can offer
    message = _refusal(path, other, resume=None, overwrite=None)
    assert message.startswith(f"the run in {path} used a different config (added,")
    assert message.endswith("rerun it unchanged or choose another --out")


def test_resume_without_run_json(tmp_path):
    # a run killed before it recorded anything: only its stale lock and temp file remain
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / LOCK_FILE).write_text("12345")
    (killed / f".{RUN_FILE}.12345.tmp").write_text("{")
    with _open(killed, resume=True) as run:
        assert not run.resumed
    assert json.loads((killed / RUN_FILE).read_text())["fingerprint"]["seed"] == 0
    # files that are no run: never resumed into, never discarded
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for flags in ({"resume": True}, {"overwrite": True}, {}):
        assert re.search(f"{other} holds files but no run.json", _refusal(other, **flags))
    assert _files(other) == {"notes.txt": b"mine"}
    # a run written before run.json: its own record is read, compared, then kept as run.json
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "plan.json").write_text(json.dumps({**SETTINGS, "seed": 1}))

    def recorded(path):
        plan = path / "plan.json"
        return json.loads(plan.read_text()) if plan.exists() else None

    assert re.search(r"\(seed differ\)", _refusal(legacy, resume=True, legacy=recorded))
    assert not (legacy / RUN_FILE).exists()
    with _open(legacy, {**SETTINGS, "seed": 1}, resume=True, legacy=recorded) as run:
        assert run.resumed
    assert json.loads((legacy / RUN_FILE).read_text())["fingerprint"]["seed"] == 1


def test_a_damaged_record_or_a_file_is_one_line(tmp_path):
    path = _start_run(tmp_path / "run")
    (path / RUN_FILE).write_text("{not json")
    assert re.search(
        r"run\.json is not valid JSON .*: pass --overwrite", _refusal(path, resume=True)
    )
    with _open(path, overwrite=True) as run:  # a damaged run can still be discarded
        assert not run.resumed
    (tmp_path / "file").write_text("x")
    assert re.search("is a file: choose a folder for a test run", _refusal(tmp_path / "file"))


def test_overwrite_removes_the_old_run_only_after_validation(tmp_path):
    path = _start_run(tmp_path / "run")
    before = _files(path)
    with pytest.raises(TypeError), _open(path, {"out": Path("x")}, overwrite=True):
        pass  # settings that cannot be recorded: a bug, caught first
    assert _files(path) == before
    # a stage validates its inputs before opening the run: a bad dataset id costs nothing
    from ctdkit.encoder.run import TrainEncoderConfig, train_encoder

    config = TrainEncoderConfig(
        dataset_id="test/missing-v0", root=tmp_path / "empty", out_dir=path, overwrite=True
    )
    with pytest.raises(CtdkitError, match="missing"):
        train_encoder(config)
    assert _files(path) == before


def test_remaining_steps_refuses_a_run_past_its_target(tmp_path):
    with _open(tmp_path / "run") as run:
        assert run.remaining_steps(20, 30) == 10
        with pytest.raises(CtdkitError, match=r"already at step 31, past --n-steps 30"):
            run.remaining_steps(31, 30)


HOLDER = """
import sys, time
from pathlib import Path
from ctdkit.runs import open_run
with open_run(Path(sys.argv[1]), {"seed": 0}, resume=False, overwrite=False, what="a test run"):
    print("ready", flush=True)
    time.sleep(120)
"""


def test_a_second_process_is_refused_with_the_holders_pid_and_resume_works_after_kill_9(tmp_path):
    path = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        message = _refusal(path, {"seed": 0}, resume=True)
        assert message.startswith(
            f"another ctdkit process (pid {holder.pid}) is writing a test run in {path}:"
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    assert (path / LOCK_FILE).exists()  # stale after kill -9, and it blocks no one
    with _open(path, {"seed": 0}, resume=True) as run:
        assert run.resumed
    assert not (path / LOCK_FILE).exists()


# ----- every stage opens its folder through ctdkit.runs ------------------------------------
def _stage(name: str, tmp_path: Path, monkeypatch):
    """(recorded settings, run folder, config, the stage's function, a change of one setting
    with the key it shows as). Encoder and collective get no data: they stop before using it."""
    if name == "collect":
        from ctdkit.collect import CollectConfig, collect
        from ctdkit.data.store import staging_dir

        config = CollectConfig(
            tasks=("reach-v3",),
            episodes_per_task=1,
            root=tmp_path / "root",
            dataset_id="test/runs-v0",
            progress=False,
        )
        folder = staging_dir(tmp_path / "root", "test/runs-v0")
        return config.fingerprint(), folder, config, collect, ({"noise": 0.5}, "noise")
    if name == "encoder":
        from ctdkit.encoder import EncoderConfig
        from ctdkit.encoder import run as stage

        monkeypatch.setattr(stage, "load_transitions", lambda *a, **k: None)
        config = stage.TrainEncoderConfig(dataset_id="test/x-v0", out_dir=tmp_path / "run")
        change = {"encoder": dataclasses.replace(EncoderConfig(), lr=0.5)}, "encoder.lr"
        return stage.settings(config), config.out_dir, config, stage.train_encoder, change
    if name == "collective":
        from ctdkit.collective import CollectiveSACConfig
        from ctdkit.collective import run as stage

        monkeypatch.setattr(stage, "load_transitions", lambda *a, **k: None)
        monkeypatch.setattr(stage, "_context", lambda *a: None)
        config = stage.TrainCollectiveConfig(dataset_id="test/x-v0", out_dir=tmp_path / "run")
        learner = dataclasses.replace(CollectiveSACConfig(), actor_lr=0.5)
        change = {"collective": learner}, "collective.actor_lr"
        return stage.settings(config), config.out_dir, config, stage.train_collective, change
    from ctdkit.experts import TrainExpertConfig, train_expert

    config = TrainExpertConfig(task="reach-v3", out_dir=tmp_path / "run", progress=False)
    return config.fingerprint(), config.out_dir, config, train_expert, ({"env_seed": 7}, "env_seed")


STAGES = {
    "collect": "an interrupted collection of test/runs-v0",
    "encoder": "an encoder run",
    "collective": "a collective run",
    "expert": "an expert run",
}


@pytest.mark.parametrize("name", list(STAGES))
def test_each_stage_refuses_an_existing_run_and_a_changed_resume(name, tmp_path, monkeypatch):
    settings, folder, config, stage, (change, key) = _stage(name, tmp_path, monkeypatch)
    folder.mkdir(parents=True)
    (folder / RUN_FILE).write_text(json.dumps({"fingerprint": settings}))
    (folder / "partial.bin").write_bytes(b"work")
    before = _files(folder)
    with pytest.raises(CtdkitError) as error:
        stage(config)
    assert str(error.value) == (
        f"{folder} already holds {STAGES[name]}: pass --resume to continue it or --overwrite "
        "to discard it"
    )
    with pytest.raises(CtdkitError) as error:
        stage(dataclasses.replace(config, resume=True, **change))
    message = str(error.value)
    assert message.startswith(f"--resume: the run in {folder} used a different config")
    assert f"({key} differ)" in message
    assert _files(folder) == before


def test_evaluate_and_pipeline_refuse_a_folder_of_other_settings(tmp_path):
    from ctdkit.eval.run import EvaluateConfig, run_evaluation
    from ctdkit.pipeline import PipelineConfig, run_pipeline
    from ctdkit.pipeline.run import settings

    out = tmp_path / "eval"
    out.mkdir()
    config = EvaluateConfig(tasks=("reach-v3",), episodes=2, out=out, progress=False)
    recorded = {"fingerprint": {"agent": "random", "tasks": ["reach-v3"], "episodes": 3}}
    (out / RUN_FILE).write_text(json.dumps(recorded))
    with pytest.raises(CtdkitError, match=r"different config \(agent, checkpoint, episodes, "):
        run_evaluation(config)
    pipeline = PipelineConfig(out=tmp_path / "pipeline", progress=False)
    pipeline.out.mkdir()
    (pipeline.out / "pipeline.json").write_text(json.dumps({**settings(pipeline), "seed": 5}))
    with pytest.raises(CtdkitError) as error:  # a run recorded before run.json is compared
        run_pipeline(pipeline)
    assert str(error.value) == (
        f"the run in {pipeline.out} used a different config (seed differ); rerun it unchanged "
        "or choose another --out"
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("TrainEncoderConfig(dataset_id='x/y-v0', n_steps=0)", "--n-steps must be > 0, got 0"),
        ("TrainEncoderConfig(dataset_id='x/y-v0', checkpoint_every=-1)", "--checkpoint-every"),
        ("TrainCollectiveConfig(dataset_id='x/y-v0', n_steps=-5)", "--n-steps must be > 0"),
        ("EvaluateConfig(seeds=())", "--seeds is empty"),
        ("EvaluateConfig(episodes=0)", "--episodes must be > 0"),
        ("EvaluateConfig(tasks=('reachh-v3',))", "unknown task 'reachh-v3'"),
        ("EvaluateConfig(agent='sac')", "--agent sac needs --checkpoint PATH"),
        ("PipelineConfig(workers=0)", "--workers must be > 0, got 0"),
        ("BenchRunConfig(suite='tinyy')", "unknown suite 'tinyy'"),
        ("BenchRunConfig(suite='tiny', threads=0)", "--threads must be > 0"),
        ("BenchRunConfig(suite='tiny', algos=('ctdd',))", "unknown algorithm 'ctdd'"),
    ],
)
def test_run_configs_refuse_bad_settings_as_they_are_built(make, message):
    from ctdkit.bench.run import BenchRunConfig  # noqa: F401
    from ctdkit.collective.run import TrainCollectiveConfig  # noqa: F401
    from ctdkit.encoder.run import TrainEncoderConfig  # noqa: F401
    from ctdkit.eval.run import EvaluateConfig  # noqa: F401
    from ctdkit.pipeline import PipelineConfig  # noqa: F401

    with pytest.raises(CtdkitError, match=message) as error:
        eval(make)
    assert "\n" not in str(error.value)
