"""What a new user meets first: relative paths, groups that appear whole or not at all, and a
second writer of the same dataset stopped with one line.

These tests ``chdir`` into a temp folder and use relative paths, as the README's commands do:
a suite that only ever passed absolute temp paths once hid a crash of the first command.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ctdkit.collect import CollectConfig, collect
from ctdkit.data import load_datasets, load_transitions
from ctdkit.data.store import STAGING_DIRNAME, read_group_metadata
from ctdkit.errors import CtdkitError

SMALL = dict(
    tasks=("reach-v3", "push-v3"),
    episodes_per_task=1,
    max_episode_steps=30,
    ref_episodes=0,
    workers=1,
    progress=False,
)


def _visible(root: Path) -> list[str]:
    """Dataset folders a Minari listing would show (hidden folders skipped)."""
    return sorted(
        str(p.parent.relative_to(root))
        for p in root.rglob("data")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def test_collect_and_load_with_relative_roots(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    result = collect(CollectConfig(**SMALL, root=Path("runs/a"), dataset_id="rel/a-v0"))
    assert result.root == tmp_path / "runs" / "a"
    assert _visible(tmp_path / "runs" / "a") == ["rel/a/push-v0", "rel/a/reach-v0"]
    loaded = load_transitions("rel/a-v0", root=Path("runs/a"))
    assert loaded.num_episodes == 2

    monkeypatch.setenv("MINARI_DATASETS_PATH", "runs/b")  # a relative root from the env
    again = collect(CollectConfig(**SMALL, dataset_id="rel/a-v0"))
    assert again.root == tmp_path / "runs" / "b"
    assert again.checksum == result.checksum
    assert load_transitions("rel/a-v0").num_episodes == 2


_KILL_AT_RENAME = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if STAGING in str(src) + str(dst) and str(dst).endswith(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 right after this rename

    os.replace = replace
    from ctdkit.collect import CollectConfig, collect
    collect(CollectConfig(**SMALL, root=Path(sys.argv[1]), dataset_id="kill/g-v0",
                          overwrite=sys.argv[3] == "1"))
    """
)


def _collect_killed_at(root: Path, rename_suffix: str, overwrite: bool) -> int:
    script = f"STAGING = {STAGING_DIRNAME!r}\nSMALL = {SMALL!r}\n" + _KILL_AT_RENAME
    process = subprocess.run(
        [sys.executable, "-c", script, str(root), rename_suffix, "1" if overwrite else "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return process.returncode


def test_a_kill_between_member_renames_never_leaves_half_a_group(tmp_path):
    reference = collect(CollectConfig(**SMALL, root=tmp_path / "straight", dataset_id="kill/g-v0"))
    root = tmp_path / "killed"
    # killed after the first member (reach) is in place, before the second and the group record
    assert _collect_killed_at(root, "/kill/g/reach-v0", overwrite=False) == -signal.SIGKILL
    assert (root / "kill/g/reach-v0").exists() and not (root / "kill/g/push-v0").exists()
    resumed_root = tmp_path / "resumed"
    shutil.copytree(root, resumed_root)

    # any reader of the group undoes the uncommitted publish first: none of the group is there
    with pytest.raises(CtdkitError, match="kill/g-v0"):
        load_datasets("kill/g-v0", root=root)
    assert _visible(root) == []

    # --resume of the killed command publishes the whole group, as an uninterrupted run did
    resumed = collect(
        CollectConfig(**SMALL, root=resumed_root, dataset_id="kill/g-v0", resume=True)
    )
    assert resumed.checksum == reference.checksum
    assert [(t.task, t.episodes, t.success_rate) for t in resumed.tasks] == [
        (t.task, t.episodes, t.success_rate) for t in reference.tasks
    ]
    assert _visible(resumed_root) == ["kill/g/push-v0", "kill/g/reach-v0"]
    assert read_group_metadata(resumed_root, "kill/g", 0)["content_checksum"] == reference.checksum
    assert not any((resumed_root / STAGING_DIRNAME).iterdir())


def test_an_overwrite_killed_mid_swap_keeps_the_old_group_whole(tmp_path):
    root = tmp_path / "root"
    old = collect(CollectConfig(**SMALL, root=root, dataset_id="kill/g-v0", seed=1))
    # killed after the new reach copy is in and the old one aside, before push is swapped
    assert _collect_killed_at(root, "/kill/g/reach-v0", overwrite=True) == -signal.SIGKILL
    assert (root / STAGING_DIRNAME / "kill__g-v0" / "old" / "kill/g/reach-v0").exists()
    again = load_datasets("kill/g-v0", root=root)  # the swap is undone: the old group, whole
    assert again.checksum == old.checksum
    assert _visible(root) == ["kill/g/push-v0", "kill/g/reach-v0"]
    new = collect(CollectConfig(**SMALL, root=root, dataset_id="kill/g-v0", overwrite=True))
    assert load_datasets("kill/g-v0", root=root).checksum == new.checksum != old.checksum


def test_a_second_writer_of_the_same_id_is_stopped_and_resume_works_after_kill(tmp_path):
    root = tmp_path / "root"
    args = ["--tasks", "reach-v3", "push-v3", "--episodes-per-task", "30"]
    args += ["--max-episode-steps", "200", "--ref-episodes", "0", "--workers", "1"]
    args += ["--dataset-id", "busy/g-v0", "--root", str(root), "--no-progress"]
    first = subprocess.Popen(
        [sys.executable, "-m", "ctdkit.collect", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while not list(root.glob(f"{STAGING_DIRNAME}/*/episodes/*/*.npz")):
            assert first.poll() is None and time.time() < deadline, "collection did not start"
            time.sleep(0.05)
        for flag in ("overwrite", "resume"):
            with pytest.raises(CtdkitError) as refused:
                collect(
                    CollectConfig(
                        **{**SMALL, "episodes_per_task": 30, "max_episode_steps": 200},
                        root=root,
                        dataset_id="busy/g-v0",
                        **{flag: True},
                    )
                )
            message = str(refused.value)
            assert f"another ctdkit process (pid {first.pid}) is writing busy/g-v0" in message
            assert "\n" not in message
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert _visible(root) == []
    resumed = collect(
        CollectConfig(
            **{**SMALL, "episodes_per_task": 30, "max_episode_steps": 200},
            root=root,
            dataset_id="busy/g-v0",
            resume=True,
        )
    )
    assert [t.episodes for t in resumed.tasks] == [30, 30]
    assert _visible(root) == ["busy/g/push-v0", "busy/g/reach-v0"]


def test_no_half_written_files_after_a_collection(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    collect(CollectConfig(**SMALL, root=Path("runs/x"), dataset_id="clean/g-v0"))
    leftovers = [p for p in Path("runs/x").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not any((Path("runs/x") / STAGING_DIRNAME).iterdir())
    assert not Path("runs/x/.ctdkit-locks").exists()  # the finished writer removed its lock


def _readme_commands() -> list[str]:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_commands_verbatim():
    install_and_run, test_command = _readme_commands()
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text().splitlines()
    assert test_command in ci and install_and_run in ci
    assert ci.index(test_command) < ci.index(install_and_run)
    assert install_and_run.endswith("python -m ctdkit.pipeline")


@pytest.mark.parametrize(
    "args",
    [
        ["--tasks", "reachh-v3"],
        ["--agent", "collective", "--checkpoint", "not-a-checkpoint.txt", "--tasks", "reach-v3"],
        ["--seeds"],
    ],
)
def test_evaluate_refuses_bad_input_before_creating_its_output(tmp_path, monkeypatch, capsys, args):
    from ctdkit.cli import run_cli
    from ctdkit.eval.run import EvaluateConfig, run_evaluation

    monkeypatch.chdir(tmp_path)
    Path("not-a-checkpoint.txt").write_text("hello")
    code = run_cli(EvaluateConfig, run_evaluation, args=[*args, "--out", "runs/eval"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ctdkit: ") and err.count("\n") == 1
    assert not Path("runs").exists()
