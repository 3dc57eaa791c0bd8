"""``python -m ctdkit.train_student``: train a student online on one Meta-World task, SAC whose
critic is shaped by a frozen collective (``--init collective``: the collective finetuned);
checkpoints, ``--resume`` continues exactly."""

from __future__ import annotations

from ctdkit.eval.run import evaluate_command
from ctdkit.student import StudentResult, TrainStudentConfig, train_student
from ctdkit.train_expert import print_eval


def print_result(result: StudentResult) -> None:
    print(
        f"{result.task} ({result.init}): {result.env_steps} env steps, {result.updates} updates, "
        f"{result.episodes} episodes, {result.seconds:.0f} s ({result.cpu_seconds:.0f} s CPU) "
        f"-> {result.weights}"
    )
    if result.collective_ms_per_step is not None:
        print(
            f"collective: {result.collective_ms_per_step:.2f} ms per env step "
            f"(a whole training step: {result.step_ms:.2f} ms)"
        )
    for level in (0.5, 0.9):
        first = result.first_reaching(level)
        reached = (
            f"{first['env_steps']} env steps, {first['seconds']:.0f} s" if first else "not yet"
        )
        print(f"success >= {level:.0%}: {reached}")


def main(config: TrainStudentConfig) -> None:
    result = train_student(config, on_eval=print_eval)
    print_result(result)
    agent = "collective" if config.init == "collective" else "sac"
    command = evaluate_command(agent, result.weights, (result.task,), (config.eval_seed,))
    print(f"evaluate with: {command}")


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(TrainStudentConfig, main, "rerun the same command with --resume")
