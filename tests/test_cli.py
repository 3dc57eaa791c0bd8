"""The CLIs as a new user meets them: one-line errors for paths they can fix, their own program
name in ``--help``, help for every flag, no third-party chatter, held-out evaluation seeds, and
a leaderboard that treats run records as untrusted input."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import tyro

from ctdkit.bench import LeaderboardConfig, build_leaderboard
from ctdkit.bench.__main__ import Command as BenchCommand
from ctdkit.bench.__main__ import main as bench_main
from ctdkit.bench.records import RecordWarning
from ctdkit.bench.suites import get_suite
from ctdkit.cli import run_cli
from ctdkit.eval.run import EvaluateConfig
from ctdkit.evaluate import main as evaluate_main

REPO = Path(__file__).resolve().parents[1]
VERBS = ("evaluate", "train_encoder", "train_collective", "train_expert", "bench")
TASKS = ["reach-v3", "push-v3"]  # the tiny suite's


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctdkit: ") and "\n" not in err, err
    return err


@dataclass
class _Nothing:
    """A CLI without flags (for run_cli's own behaviour)."""


# ------------------------------------------------------------------------------ run_cli
@pytest.mark.parametrize(
    ("error", "words"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/in/data.json"), "no such"),
        (PermissionError(errno.EACCES, "Permission denied", "/x/y"), "permission denied"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/x/y"), "directory"),
        (FileExistsError(errno.EEXIST, "File exists", "/x/y"), "already exists"),
        (OSError(errno.ENOSPC, "No space left on device", "/x/y"), "no space"),
        (OSError(errno.EROFS, "Read-only file system", "/x/y"), "read-only"),
    ],
)
def test_os_errors_a_user_can_fix_are_one_line_naming_the_path(capsys, error, words):
    def main(_):
        raise error

    assert run_cli(_Nothing, main, args=[]) == 2
    message = _one_line_error(capsys)
    assert error.filename in message and words in message


def test_other_errors_keep_their_traceback_and_ctrl_c_says_how_to_go_on(capsys):
    def broken(_):
        raise OSError(errno.EIO, "Input/output error", "/dev/sdz")

    with pytest.raises(OSError, match="Input/output"):  # not a path problem: a bug or a fault
        run_cli(_Nothing, broken, args=[])

    def interrupted(_):
        raise KeyboardInterrupt

    assert run_cli(_Nothing, interrupted, args=[], interrupt_hint="rerun the same command") == 130
    assert _one_line_error(capsys) == "ctdkit: interrupted (rerun the same command)"


def test_unwritable_out_is_one_line_exit_2_for_evaluate_and_bench(tmp_path, capsys):
    blocker = tmp_path / "a-file"  # a path under a regular file: refused even for root
    blocker.write_text("")
    out = blocker / "sub"
    args = ["--tasks", "reach-v3", "--episodes", "1", "--out", str(out), "--no-progress"]
    assert run_cli(EvaluateConfig, evaluate_main, args=args) == 2
    assert str(out) in _one_line_error(capsys)

    records = _write_records(tmp_path / "records")
    args = ["leaderboard", "--records", str(records), "--out", str(out), "--no-plots"]
    assert run_cli(BenchCommand, bench_main, args=[*args, "--reps", "10"]) == 2
    assert str(out) in _one_line_error(capsys)


def test_reproducing_a_missing_or_broken_record_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "seed0.json"
    args = ["reproduce", "--record", str(missing), "--out", str(tmp_path / "re"), "--no-progress"]
    assert run_cli(BenchCommand, bench_main, args=args) == 2
    assert str(missing) in _one_line_error(capsys)
    missing.write_text('{"schema": 1, "status": "ok"}')
    assert run_cli(BenchCommand, bench_main, args=args) == 2
    assert "not a usable bench record: missing field" in _one_line_error(capsys)
    assert not (tmp_path / "re").exists()


@pytest.fixture(scope="module")
def reach_data(tmp_path_factory):
    """A two-episode reach dataset (what train_encoder needs to get as far as writing)."""
    from ctdkit.collect import CollectConfig, collect

    root = tmp_path_factory.mktemp("cli-minari")
    config = CollectConfig(
        tasks=("reach-v3",),
        episodes_per_task=2,
        max_episode_steps=30,
        ref_episodes=0,
        workers=1,
        progress=False,
        root=root,
        dataset_id="test/cli-v0",
    )
    collect(config)
    return root, "test/cli-v0"


def test_unwritable_out_dir_of_train_encoder_is_one_line(reach_data, tmp_path, capsys):
    from ctdkit.encoder.run import TrainEncoderConfig
    from ctdkit.train_encoder import main

    root, dataset_id = reach_data
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "encoder"
    args = ["--dataset-id", dataset_id, "--root", str(root), "--out-dir", str(out)]
    args += ["--n-steps", "1", "--no-metrics", "--no-progress", "--encoder.batch-size", "4"]
    assert run_cli(TrainEncoderConfig, main, args=args) == 2
    assert str(out) in _one_line_error(capsys)


def test_a_missing_or_wrong_input_path_is_one_line(tmp_path, capsys):
    for checkpoint, problem in ((tmp_path / "nope.pt", "does not exist"), (tmp_path, "directory")):
        args = ["--agent", "sac", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "e")]
        assert run_cli(EvaluateConfig, evaluate_main, args=args) == 2
        message = _one_line_error(capsys)
        assert f"--checkpoint {checkpoint} " in message and problem in message
    assert not (tmp_path / "e").exists()  # refused before any work


# ------------------------------------------------------------------------------ --help
_SCRIPT = textwrap.dedent(
    """
    import runpy, sys
    from dataclasses import dataclass
    for verb in sys.argv[1:]:
        sys.argv = [verb, "--help"]
        try:
            runpy.run_module("ctdkit." + verb, run_name="__main__")
        except SystemExit:
            pass
    from ctdkit.cli import run_cli

    @dataclass
    class Nothing:
        pass

    def main(_):
        import d3rlpy  # imports gym, whose banner goes to stderr

        d3rlpy.logging.LOG.info("d3rlpy-info-line")

    sys.exit(run_cli(Nothing, main, args=[]))
    """
)


def test_help_names_python_m_and_a_cli_run_prints_no_banner_or_d3rlpy_logs():
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *VERBS],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for verb in VERBS:
        assert f"usage: python -m ctdkit.{verb} " in done.stdout
    output = done.stdout + done.stderr
    assert "Gym has been unmaintained" not in output and "d3rlpy-info-line" not in output
    assert done.stderr == ""


def _undocumented_flags(config_type, args: list[str]) -> list[str]:
    """Flags of ``--help`` whose text is only a default (no docstring under the field)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        tyro.cli(config_type, args=[*args, "--help"])
    flags: dict[str, str] = {}
    current = None
    for raw in out.getvalue().splitlines():
        line = raw.replace("│", " ").rstrip()
        text = line.lstrip()
        indent = len(line) - len(text)
        if re.match(r"-{1,2}[a-zA-Z]", text) and indent <= 3:  # "--flag META  help" or alone
            current, inline = [*re.split(r"\s{2,}", text, maxsplit=1), ""][:2]
            flags[current] = inline
        elif current is not None and text and indent >= 5:  # help on the following lines
            flags[current] += " " + text
        else:
            current = None
    assert len(flags) > 3, out.getvalue()  # the parse found the flags
    only_default = re.compile(r"\((default|required|fixed to)[^)]*\)")
    return [
        f
        for f, help in flags.items()
        if "--help" not in f and not only_default.sub("", help).strip()
    ]


def _cli(verb: str):
    if verb == "train_encoder":
        from ctdkit.encoder.run import TrainEncoderConfig as config_type
    elif verb == "train_collective":
        from ctdkit.collective.run import TrainCollectiveConfig as config_type
    elif verb == "train_expert":
        from ctdkit.experts import TrainExpertConfig as config_type
    elif verb == "pipeline":
        from ctdkit.pipeline import PipelineConfig as config_type
    elif verb == "collect":
        from ctdkit.collect import CollectConfig as config_type
    elif verb == "dagger":
        from ctdkit.dagger import DaggerConfig as config_type
    elif verb == "train_student":
        from ctdkit.student import TrainStudentConfig as config_type
    else:
        config_type = EvaluateConfig if verb == "evaluate" else BenchCommand
    return config_type


@pytest.mark.parametrize(
    ("verb", "args"),
    [
        ("evaluate", []),
        ("train_encoder", []),
        ("train_expert", []),
        ("bench", ["run"]),
        ("bench", ["leaderboard"]),
        ("bench", ["reproduce"]),
        ("train_collective", []),
        ("pipeline", []),
        ("collect", []),
        ("dagger", []),
        ("train_student", []),
    ],
)
def test_every_flag_has_help_text(monkeypatch, verb, args):
    monkeypatch.setenv("COLUMNS", "200")
    assert _undocumented_flags(_cli(verb), args) == []


# ------------------------------------------------------------------------------ evaluate
def test_evaluation_seeds_default_to_held_out_goals_and_may_not_be_empty(tmp_path, capsys):
    assert EvaluateConfig().seeds and min(EvaluateConfig().seeds) >= 100
    args = ["--tasks", "reach-v3", "--seeds", "--out", str(tmp_path / "e"), "--no-progress"]
    assert run_cli(EvaluateConfig, evaluate_main, args=args) == 2
    assert "--seeds" in _one_line_error(capsys)


def test_hints_carry_the_runs_own_tasks_and_seeds(monkeypatch, tmp_path, capsys):
    import ctdkit.train_collective as cli
    from ctdkit.collective.run import TrainCollectiveConfig, TrainCollectiveResult
    from ctdkit.eval.run import evaluate_command

    weights = tmp_path / "my run" / "collective.pt"
    monkeypatch.setattr(
        cli, "train_collective", lambda config: TrainCollectiveResult(weights, 5, 1.0, [])
    )
    monkeypatch.setattr(cli, "load_datasets", lambda *a: type("G", (), {"tasks": tuple(TASKS)}))
    cli.main(TrainCollectiveConfig(dataset_id="test/x-v0"))
    hint = capsys.readouterr().out.strip().splitlines()[-1]
    assert hint == (
        f"evaluate with: python -m ctdkit.evaluate --agent collective --checkpoint '{weights}' "
        "--tasks reach-v3 push-v3 --seeds 100"
    )
    import ctdkit.train_encoder as encoder_cli
    from ctdkit.encoder.run import TrainEncoderConfig, TrainEncoderResult

    weights = tmp_path / "encoder.pt"
    monkeypatch.setattr(encoder_cli, "train_encoder", lambda c: TrainEncoderResult(weights, 1, 1.0))
    encoder_cli.main(TrainEncoderConfig(dataset_id="test/x-v0", root=tmp_path))
    assert (
        capsys.readouterr()
        .out.strip()
        .splitlines()[-1]
        .endswith(
            f"python -m ctdkit.train_collective --dataset-id test/x-v0 --encoder {weights} "
            f"--root {tmp_path}"
        )
    )
    from ctdkit.envs.tasks import MT10

    line = evaluate_command("sac", Path("e.pt"), MT10, (1000,))
    assert line.endswith("--checkpoint e.pt --tasks MT10 --seeds 1000")


# ------------------------------------------------------------------------------ leaderboard
def _record(algo: str, seed: int, success: dict) -> dict:
    """A record as ``bench run`` writes it for the tiny suite (fields the leaderboard reads)."""
    suite = get_suite("tiny")
    learner, conditioning = ("collective", algo) if "-" not in algo else algo.split("-")
    settings = {**suite.settings(), "tasks": TASKS, "algo": algo, "seed": seed}
    settings |= {"episodes_per_task": None, "dataset_checksum": "c" * 64}
    return {
        "schema": 1,
        "status": "ok",
        "suite": "tiny",
        "algo": algo,
        "learner": learner,
        "conditioning": conditioning,
        "variant": "all",
        "episodes_per_task": None,
        "seed": seed,
        "fingerprint": "f" * 16,
        "settings": settings,
        "success_by_task": success,
        "mean_success": sum(success.values()) / len(success),
        "dataset": {
            "id": suite.dataset_id,
            "checksum": "c" * 64,
            "subset_checksum": "s" * 64,
            "tasks": TASKS,
        },
        "steps": suite.n_steps,
        "seconds": {"load": 1.0, "train": 2.0, "eval": 3.0},
        "hardware": {},
        "threads": {},
    }


def _write_records(folder: Path) -> Path:
    """Three valid records per algorithm of the tiny suite."""
    for algo in ("ctd", "bc-none"):
        for seed in range(3):
            path = folder / "tiny" / algo / "all" / f"seed{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            success = {"reach-v3": 0.2 * seed, "push-v3": 0.5}
            path.write_text(json.dumps(_record(algo, seed, success)))
    return folder


def _bad_records(folder: Path) -> dict[str, str]:
    """Invalid records next to the valid ones: file name -> words the warning must contain."""
    bad = folder / "tiny" / "ctd" / "all"
    nan = _record("ctd", 3, {"reach-v3": math.nan, "push-v3": 0.5})
    (bad / "seed3.json").write_text(json.dumps(nan))  # json writes NaN, and reads it back
    (bad / "seed4.json").write_text(json.dumps(_record("ctd", 4, {"reach-v3": 1.5, "push-v3": 0})))
    (bad / "seed5.json").write_text(json.dumps(_record("ctd", 5, {"reach-v3": 1.0})))
    (bad / "seed6.json").write_text('{"schema": 1, "status": "ok", ')
    (bad / "seed7.json").write_text("[" * 100_000 + "]" * 100_000)
    untyped = _record("ctd", 8, {"reach-v3": 1.0, "push-v3": 1.0}) | {"seed": "8"}
    (bad / "seed8.json").write_text(json.dumps(untyped))
    (bad / "seed9.json").write_text(" " * (5 << 20) + "{}")
    return {
        "seed3.json": "nan",
        "seed4.json": "1.5",
        "seed5.json": "push-v3",
        "seed6.json": "JSON",
        "seed7.json": "skipping",
        "seed8.json": "'seed'",
        "seed9.json": "larger",
    }


def test_invalid_records_are_skipped_with_a_warning_naming_them(tmp_path):
    records = _write_records(tmp_path / "records")
    expected = _bad_records(records)
    config = LeaderboardConfig(records=(records,), out=tmp_path / "board", reps=20, plots=False)
    with pytest.warns(RecordWarning) as caught:
        board = build_leaderboard(config)
    messages = [str(w.message) for w in caught]
    for name, words in expected.items():
        (message,) = [m for m in messages if f"{name}:" in m]
        assert words in message and message.startswith(f"skipping record {records}")
    assert len(messages) == len(expected)
    rows = {row["algo"]: row for row in board["suites"]["tiny"]["rows"]}
    assert rows["ctd"]["seeds"] == [0, 1, 2] and rows["bc-none"]["seeds"] == [0, 1, 2]
    assert rows["ctd"]["success_by_task"] == pytest.approx({"reach-v3": 0.2, "push-v3": 0.5})


def test_leaderboard_cli_defaults_under_runs_and_warns_in_one_line(tmp_path):
    assert LeaderboardConfig().out.parts[0] == "runs"
    records = _write_records(tmp_path / "runs" / "bench" / "records")
    (records / "tiny" / "ctd" / "all" / "seed3.json").write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "ctdkit.bench", "leaderboard", "--reps", "10", "--no-plots"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "runs" / "bench" / "LEADERBOARD.md").is_file()
    assert not (tmp_path / "benchmarks").exists()  # the committed leaderboard is never the default
    (warning,) = done.stderr.strip().splitlines()
    assert warning.startswith("ctdkit: warning: skipping record runs/bench/records/tiny/ctd/all/")
    assert "seed3.json: not valid JSON" in warning


def test_records_with_forged_fields_are_skipped_before_they_reach_the_tables(tmp_path):
    records = _write_records(tmp_path / "records")
    folder = records / "tiny" / "bc-none" / "all"
    forged = {
        "seed0.json": ({"algo": "bc-none | <b>pwned</b>"}, "unknown algorithm"),
        "seed1.json": ({"steps": 0}, "'steps'"),
        "seed2.json": ({"success_by_task": [1.0, 1.0]}, "'success_by_task'"),
        "seed3.json": ({"suite": "../../evil", "seed": 3}, "not a plain name"),  # names plots
    }
    for name, (change, _) in forged.items():
        record = json.loads((folder / "seed0.json").read_text())
        (folder / name).write_text(json.dumps(record | change))
    config = LeaderboardConfig(records=(records,), out=tmp_path / "b", reps=10, plots=False)
    with pytest.warns(RecordWarning) as caught:
        board = build_leaderboard(config)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 4
    for message, (name, (_, words)) in zip(messages, sorted(forged.items()), strict=True):
        assert f"{name}:" in message and words in message
    assert [row["algo"] for row in board["suites"]["tiny"]["rows"]] == ["ctd"]
    assert "pwned" not in (tmp_path / "b" / "LEADERBOARD.md").read_text()
