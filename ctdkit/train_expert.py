"""``python -m ctdkit.train_expert``: train one SAC expert online on a Meta-World task
(checkpoints, ``--resume`` continues exactly); ``--dataset-id`` publishes its training replay as
an online Minari dataset."""

from __future__ import annotations

from ctdkit.eval.run import evaluate_command
from ctdkit.experts import ExpertResult, TrainExpertConfig, train_expert


def print_eval(record: dict) -> None:
    print(
        f"step {record['env_steps']:>7}  updates {record['updates']:>7}  "
        f"success {record['success']:.2f} ({record['episodes']} ep)  "
        f"return {record['mean_return']:8.1f}  {record['seconds']:7.0f} s "
        f"({record['cpu_seconds']:.0f} s CPU)",
        flush=True,
    )


def print_result(result: ExpertResult) -> None:
    print(
        f"{result.task}: {result.env_steps} env steps, {result.updates} updates, "
        f"{result.episodes} episodes, {result.seconds:.0f} s ({result.cpu_seconds:.0f} s CPU) "
        f"-> {result.out_dir / 'expert.pt'}"
    )
    if result.demo_success is not None:
        print(f"demonstrations: scripted, success {result.demo_success:.2f}")
    for level in (0.5, 0.9):
        first = result.first_reaching(level)
        reached = (
            f"{first['env_steps']} env steps, {first['seconds']:.0f} s" if first else "not yet"
        )
        print(f"success >= {level:.0%}: {reached}")
    if result.dataset_id is not None:
        print(f"online dataset {result.dataset_id}, content checksum {result.checksum}")


def main(config: TrainExpertConfig) -> None:
    result = train_expert(config, on_eval=print_eval)
    print_result(result)
    weights = result.out_dir / "expert.pt"
    print(f"evaluate with: {evaluate_command('sac', weights, (result.task,), (config.eval_seed,))}")


if __name__ == "__main__":
    from ctdkit.cli import run_module

    run_module(TrainExpertConfig, main, "rerun the same command with --resume")
