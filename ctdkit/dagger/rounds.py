"""DAgger rounds (the method's online distillation): round 0 distils the expert's own data;
round ``i`` lets the collective of round ``i - 1`` act (the expert with probability βᵢ per
step), labels every visited state with the scripted expert, and retrains on the aggregate.

A run folder holds, per round ``i``::

    datasets/dagger/round-<i>/<task>-v0   the round's Minari datasets (a group, published whole)
    round-<i>/encoder/                    ctd: the encoder trained on rounds 0..i (checkpoints;
                                          `continued`: from round i-1's weights)
                                          (ctd-e2e: where its collective's finetuning starts)
    round-<i>/collective.pt               the collective after round i (checkpoint.pt mid-way)
    round-<i>/screening/                  the screening evaluation (held-out seeds)
    round-<i>/round.json                  the round's record, written last: a round is done
                                          exactly when it exists

and ``final-round-<i>/`` (the last round's evaluation with more episodes) and ``rounds.json`` (every
record). Each stage resumes by its own rules (collection from its staged episodes, training
from its checkpoint with its RNG states), so a run killed at any point and started again with
the same command gives the same data, weights and numbers as one that never stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctdkit.collect import CollectConfig, collect
from ctdkit.collective import CollectiveSAC, make_context
from ctdkit.collective.config import ENCODER_CONDITIONINGS, END_TO_END
from ctdkit.dagger.acting import DaggerActing
from ctdkit.dagger.config import DaggerConfig, allocate_episodes, beta_schedule, collect_seed
from ctdkit.dagger.tier import export_tier
from ctdkit.data import Transitions, concat_transitions, load_transitions
from ctdkit.data.ids import parse_group_id
from ctdkit.data.store import read_group_metadata
from ctdkit.encoder import TrajectoryEncoder
from ctdkit.encoder.persistence import latest_checkpoint
from ctdkit.eval.run import EvaluateConfig, run_evaluation
from ctdkit.files import read_json_object, sha256_file, write_json_atomic
from ctdkit.policies.checkpoint import COLLECTIVE, ENCODER, content_digest, read_checkpoint
from ctdkit.runs import open_run

ROUND_FILE = "round.json"
ROUNDS_FILE = "rounds.json"
FINAL_FILE = "final.json"
WEIGHTS_FILE = "collective.pt"
CHECKPOINT_FILE = "checkpoint.pt"
ENCODER_FILE = "encoder.pt"


def round_dataset_id(round_index: int) -> str:
    return f"dagger/round-{round_index}-v0"


def run_dagger(config: DaggerConfig) -> dict[str, Any]:
    """Run every round not yet done under ``config.out``, then the final evaluation; returns
    ``{"rounds": [record, ...], "final": summary | None}`` (also written as ``rounds.json``)."""
    torch.set_num_threads(config.torch_threads)
    with open_run(
        config.out, config.settings(), resume=None, overwrite=None, what="a DAgger run"
    ) as run:
        records: list[dict] = []
        for index in range(config.rounds + 1):
            records.append(_round(config, index))
        final = None
        if config.final_episodes:
            out = config.out / f"final-round-{records[-1]['round']}"
            started = time.perf_counter()
            final = _evaluate(config, records[-1], config.final_episodes, out)
            final["seconds"] = time.perf_counter() - started  # of the call that finished it
            run.write_json(FINAL_FILE, {"round": records[-1]["round"], **final}, indent=1)
        result = {"rounds": records, "final": final}
        if config.export_dataset_id is not None:
            result["export"] = {
                "dataset_id": config.export_dataset_id,
                "content_checksum": export_tier(
                    config.out / "datasets",
                    records,
                    config.export_dataset_id,
                    config.root,
                    config.settings(),
                    config.command(),
                ),
            }
        run.write_json(ROUNDS_FILE, result, indent=1)
    return result


def _round(config: DaggerConfig, index: int) -> dict:
    directory = config.out / f"round-{index}"
    record_path = directory / ROUND_FILE
    if record_path.is_file():  # done: its record is the last thing a round writes
        return read_json_object(record_path, str(record_path))
    directory.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    previous = config.out / f"round-{index - 1}" / WEIGHTS_FILE if index else None
    acting_sha = sha256_file(previous) if previous is not None else None

    task_episodes = round_task_episodes(config, index)
    started = time.perf_counter()
    _collect_round(config, index, previous, acting_sha, task_episodes)
    seconds["collect"] = time.perf_counter() - started
    data = round_aggregate(config.out, index)

    started = time.perf_counter()
    encoder = _encoder(config, index, data)
    seconds["encoder"] = time.perf_counter() - started

    started = time.perf_counter()
    learner = _train_collective(config, index, data, encoder, previous)
    weights = directory / WEIGHTS_FILE
    seconds["collective"] = time.perf_counter() - started

    record = {
        "round": index,
        "beta": beta_schedule(config.beta, index),
        "collect_seed": collect_seed(config.seed, index),
        "eval_seeds": list(config.eval_seeds),
        "dataset_id": round_dataset_id(index),
        "labelled_transitions": len(data),
        "episodes": data.num_episodes,
        **(
            {"task_episodes": dict(zip(config.resolved_tasks(), task_episodes, strict=True))}
            if task_episodes
            else {}
        ),
        "actor_steps": learner.step,
        "acting_checkpoint_sha256": acting_sha,
        # content digests: the same command gives the same ones (file bytes differ per save)
        "encoder_digest": _encoder_digest(config, index, encoder, weights),
        "collective_digest": _digest(weights),
        "data_checksum": data.checksum,
        "screening": None,
    }
    if config.screening_episodes:
        started = time.perf_counter()
        summary = _evaluate(config, record, config.screening_episodes, directory / "screening")
        seconds["screening"] = time.perf_counter() - started
        record["screening"] = summary
    record["seconds"] = seconds  # of the call that finished the round (a resumed stage: its part)
    write_json_atomic(record_path, record, indent=1)
    return record


def _digest(path: Path) -> str:
    return content_digest(read_checkpoint(path, (COLLECTIVE, ENCODER)))


def _encoder_digest(
    config: DaggerConfig, index: int, encoder: TrajectoryEncoder | None, weights: Path
) -> str | None:
    """The content digest of the encoder the round's collective acts with: the round's encoder
    file, or for ctd-e2e the finetuned encoder inside the collective's checkpoint (its config
    and weights: what it computes, not the self-supervised training log it carries along)."""
    if encoder is None:
        return None
    if config.collective.conditioning == END_TO_END:
        finetuned = read_checkpoint(weights, COLLECTIVE)["context"]["encoder"]
        return content_digest({key: finetuned[key] for key in ("config", "weights")})
    return _digest(_encoder_path(config, index))


def round_task_episodes(config: DaggerConfig, index: int) -> tuple[int, ...]:
    """Episodes per task of round ``index`` under ``--allocation failures`` (``()``: every task
    gets ``episodes_per_task``): shared by each task's success in round ``index - 1``'s own
    collection — collection seeds only, so no evaluation seed ever steers the data."""
    if config.allocation == "equal" or index == 0:
        return ()
    previous = load_transitions(round_dataset_id(index - 1), root=config.out / "datasets")
    success = episode_success_by_task(previous)
    tasks = config.resolved_tasks()
    return allocate_episodes(
        [success[task] for task in tasks],
        len(tasks) * config.episodes_per_task,
        config.allocation_floor,
    )


def episode_success_by_task(data: Transitions) -> dict[str, float]:
    """The share of each task's episodes in ``data`` with a success at some step."""
    succeeded = np.zeros(data.num_episodes, dtype=bool)
    np.logical_or.at(succeeded, data.episode_index, data.success)
    task_of = np.zeros(data.num_episodes, dtype=np.int64)
    task_of[data.episode_index] = data.task_index
    return {task: float(succeeded[task_of == i].mean()) for i, task in enumerate(data.tasks)}


def _collect_round(
    config: DaggerConfig,
    index: int,
    previous: Path | None,
    acting_sha: str | None,
    task_episodes: tuple[int, ...],
) -> None:
    """Round ``index``'s datasets: the expert acts alone in round 0, the mixture afterwards."""
    root = config.out / "datasets"
    group = parse_group_id(round_dataset_id(index))
    if read_group_metadata(root, group.namespace, group.version) is not None:
        return
    acting = None
    if previous is not None:
        acting = DaggerActing(
            str(previous), acting_sha, beta_schedule(config.beta, index), config.noise
        )
    collect(
        CollectConfig(
            tasks=config.resolved_tasks(),
            episodes_per_task=config.episodes_per_task,
            task_episodes=task_episodes,
            policy="scripted",
            noise=config.noise,
            labeller="scripted",
            seed=collect_seed(config.seed, index),
            workers=config.workers,
            max_episode_steps=config.max_episode_steps,
            ref_episodes=0,
            dataset_id=round_dataset_id(index),
            root=root,
            resume=True,
            progress=config.progress,
        ),
        acting=acting,
    )


def round_aggregate(run: Path, index: int) -> Transitions:
    """Rounds 0..index of the DAgger run in folder ``run`` as one set of transitions (labels:
    the expert's at every state): what round ``index``'s encoder and collective train on."""
    root = Path(run) / "datasets"
    parts = [load_transitions(round_dataset_id(i), root=root) for i in range(index + 1)]
    return concat_transitions(parts, f"dagger/rounds-0-{index}")


def _encoder_path(config: DaggerConfig, index: int) -> Path:
    trained = 0 if config.encoder_schedule == "frozen" else index
    return config.out / f"round-{trained}" / "encoder" / ENCODER_FILE


def _encoder(config: DaggerConfig, index: int, data: Transitions) -> TrajectoryEncoder | None:
    """ctd only: the encoder of this round — trained on rounds 0..index from new weights
    (``retrained``) or from round ``index - 1``'s (``continued``), or round 0's (``frozen``)."""
    if config.collective.conditioning not in ENCODER_CONDITIONINGS:
        return None
    path = _encoder_path(config, index)
    if path.is_file():
        return TrajectoryEncoder.load(path)
    checkpoints = path.parent / "checkpoints"
    latest = latest_checkpoint(checkpoints) if checkpoints.is_dir() else None
    if latest is not None:
        encoder = TrajectoryEncoder.load(latest)
    else:
        encoder = config.encoder_config().create()
        if config.encoder_schedule == "continued" and index > 0:
            previous = TrajectoryEncoder.load(_encoder_path(config, index - 1))
            # weights only: the split and normalisation are fixed anew on this aggregate
            encoder.network.load_state_dict(previous.network.state_dict())
    encoder.fit(
        data,
        config.encoder_steps - encoder.step,
        progress=config.progress,
        checkpoint_dir=checkpoints,
        checkpoint_every=100,
    )
    encoder.save(path)
    return encoder


def _train_collective(
    config: DaggerConfig,
    index: int,
    data: Transitions,
    encoder: TrajectoryEncoder | None,
    previous: Path | None,
) -> CollectiveSAC:
    """The collective after round ``index``: ``collective_steps`` more updates on the aggregate,
    warm-started from round ``index - 1``'s (a ctd agent gets this round's encoder; a ctd-e2e
    agent finetunes it, or with ``--encoder-schedule frozen`` keeps finetuning its own)."""
    directory = config.out / f"round-{index}"
    weights, checkpoint = directory / WEIGHTS_FILE, directory / CHECKPOINT_FILE
    if weights.is_file():
        return CollectiveSAC.load(weights)
    collective = config.collective_config()
    context = make_context(
        collective.conditioning, data, encoder, history_steps=collective.history_steps
    )
    if checkpoint.is_file():  # killed mid-round: its own state, encoder included
        learner = CollectiveSAC.load(checkpoint)
    elif previous is None:
        learner = collective.create()
    else:
        learner = CollectiveSAC.load(previous)
        keeps_own = collective.conditioning == END_TO_END and config.encoder_schedule == "frozen"
        if not keeps_own:  # a retrained encoder's embeddings (the same for the others)
            learner.replace_context(context)
    target = (index + 1) * config.collective_steps
    learner.fit(
        data,
        target - learner.step,
        context=context,
        progress=config.progress,
        checkpoint=checkpoint,
        checkpoint_every=config.checkpoint_every,
    )
    learner.save(weights)
    checkpoint.unlink(missing_ok=True)
    return learner


def _evaluate(config: DaggerConfig, record: dict, episodes: int, out: Path) -> dict:
    """The round's collective on the held-out evaluation seeds."""
    summary = run_evaluation(
        EvaluateConfig(
            agent="collective",
            checkpoint=config.out / f"round-{record['round']}" / WEIGHTS_FILE,
            tasks=config.resolved_tasks(),
            seeds=config.eval_seeds,
            episodes=episodes,
            out=out,
            progress=config.progress,
        )
    )
    return {
        "episodes_per_task": episodes,
        "mean": summary["mean_success"],
        "ci": summary["ci95"],
        "per_task": {task: v["success"] for task, v in summary["tasks"].items()},
        "eval_seeds": summary["seeds"],
    }
