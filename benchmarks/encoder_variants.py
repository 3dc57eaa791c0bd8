"""Which encoder settings let the CLS name the task from the agent's first steps? (issue #18,
item 7: the variants tried to make the CLS earn its place)

    python benchmarks/encoder_variants.py --run /work/study/runs/full/ctd/seed0 \\
        --out runs/encoder-variants

In the DAgger study `ctd` loses the reach / pick-place split (the two reset to identical
observations, only their rewards differ) that the raw `history` window gives after one step.
This screens encoder variants cheaply, before any of them gets a DAgger run of its own: each
variant (one or two settings changed from the DAgger encoder) is trained on a finished run's
final aggregate (every round: expert and collective-acted episodes, as the round-3 encoder
was) with the run's seed, so every variant has the same episode split. Its context — the CLS
of the window ending at each step, exactly what the collective is given — is then
linear-probed for the task, one probe per bucket of the episode's step, fit on the encoder's
training episodes and scored on its validation episodes (never trained on). Beside the variants:
the `history` context (the last 5 actions and rewards) and the observation alone.

Two accuracies per bucket: over all tasks, and among the three tasks that share a scene (reach,
push, pick-place), where the CLS has to use the rewards. Task labels are read for scoring
only (and by the `label-aware` variant, a reference the method cannot use).

Resumable: each variant's encoder is saved under ``--out`` (checkpoints every 100 updates).
Writes ``--results`` (JSON) and a markdown table beside it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from ctdkit.collective.history_context import HistoryContext
from ctdkit.dagger import DaggerConfig, round_aggregate
from ctdkit.encoder import TrajectoryEncoder
from ctdkit.encoder.metrics import linear_probe_accuracy
from ctdkit.encoder.persistence import latest_checkpoint
from ctdkit.encoder.windows import EpisodeTable, gather_windows
from ctdkit.envs.observation import apply_view
from ctdkit.files import read_json_object, write_json_atomic, write_text_atomic

#: name -> (settings changed from the DAgger encoder, updates); "dagger" is the study's own
VARIANTS: dict[str, tuple[dict, int]] = {
    "dagger": ({}, 300),
    "steps-3000": ({}, 3000),
    "embedding-32": ({"embedding_dim": 32}, 300),
    "reward-weight-10": ({"reward_weight": 10.0}, 300),
    "contrastive-1": ({"contrastive_weight": 1.0}, 300),
    "steps-3000+embedding-32+reward-weight-10": (
        {"embedding_dim": 32, "reward_weight": 10.0},
        3000,
    ),
    "label-aware": ({"mode": "label-aware"}, 300),
}
#: [first, last] step of the episode at which the context is probed
BUCKETS = ((0, 0), (1, 1), (2, 2), (3, 4), (5, 9), (10, 49), (50, 499))
SHARED_SCENE = ("reach-v3", "push-v3", "pick-place-v3")
#: rows per episode sampled from each of the two long buckets
LONG_BUCKET_ROWS = 8
HISTORY_STEPS = 5


@dataclass
class Args:
    run: Path
    """A finished DAgger run folder (its run.json, rounds.json and datasets/)."""
    variants: tuple[str, ...] = tuple(VARIANTS)
    """Which variants to train and probe (names of ``VARIANTS``)."""
    out: Path = Path("runs/encoder-variants")
    results: Path = Path("benchmarks/results/encoder_variants.json")


def final_aggregate(run: Path):
    rounds = read_json_object(run / "rounds.json", "rounds.json")["rounds"]
    return round_aggregate(run, rounds[-1]["round"])


def train_variant(name: str, seed: int, view: str, data, out: Path) -> TrajectoryEncoder:
    """The variant's encoder (resumed from its latest checkpoint, saved when done)."""
    settings, steps = VARIANTS[name]
    path = out / name / "encoder.pt"
    if path.is_file():
        return TrajectoryEncoder.load(path)
    checkpoints = path.parent / "checkpoints"
    latest = latest_checkpoint(checkpoints) if checkpoints.is_dir() else None
    config = DaggerConfig().encoder.replace(seed=seed, view=view, **settings)
    encoder = config.create() if latest is None else TrajectoryEncoder.load(latest)
    started = time.perf_counter()
    encoder.fit(
        data, steps - encoder.step, progress=False, checkpoint_dir=checkpoints, checkpoint_every=100
    )
    encoder.save(path)
    print(f"{name}: {steps} updates in {time.perf_counter() - started:.0f} s", flush=True)
    return encoder


def probe_rows(table: EpisodeTable, episodes: np.ndarray, rng: np.random.Generator):
    """Rows to probe and their step in the episode: every row of the short buckets, and
    ``LONG_BUCKET_ROWS`` random rows of each long one, per episode."""
    rows, steps = [], []
    for episode in episodes:
        start, length = table.starts[episode], table.lengths[episode]
        for first, last in BUCKETS:
            last = min(last, length - 1)
            if first > last:
                continue
            span = np.arange(first, last + 1)
            if len(span) > LONG_BUCKET_ROWS * 2:
                span = np.sort(rng.choice(span, LONG_BUCKET_ROWS, replace=False))
            rows.append(start + span)
            steps.append(span)
    return np.concatenate(rows), np.concatenate(steps)


def bucket_label(first: int, last: int) -> str:
    return f"{first}" if first == last else f"{first}-{last}"


def bucket_accuracies(features: dict, tasks: dict, steps: dict, names: list[str]) -> dict:
    """Per bucket: probe accuracy over all tasks and among the shared-scene tasks."""
    shared = [names.index(t) for t in SHARED_SCENE if t in names]
    out = {}
    for first, last in BUCKETS:
        label = bucket_label(first, last)
        pick = {s: (steps[s] >= first) & (steps[s] <= last) for s in steps}
        scores = {}
        for scope, keep in (("all", None), ("shared-scene", shared)):
            mask = dict(pick)
            if keep is not None:
                mask = {s: pick[s] & np.isin(tasks[s], keep) for s in steps}
            train, test = mask["train"], mask["validation"]
            if train.sum() == 0 or test.sum() == 0:
                continue
            scores[scope] = linear_probe_accuracy(
                features["train"][train],
                tasks["train"][train],
                features["validation"][test],
                tasks["validation"][test],
            )
        out[label] = scores
    return out


def bucket_counts(tasks: np.ndarray, steps: np.ndarray, names: list[str]) -> dict:
    """Validation windows per bucket (all tasks / shared scene): the probes' sample sizes."""
    shared = [names.index(t) for t in SHARED_SCENE if t in names]
    counts = {}
    for first, last in BUCKETS:
        pick = (steps >= first) & (steps <= last)
        label = bucket_label(first, last)
        counts[label] = [int(pick.sum()), int((pick & np.isin(tasks, shared)).sum())]
    return counts


def main(args: Args) -> dict:
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(1)
    settings = read_json_object(args.run / "run.json", "run.json")["fingerprint"]
    seed, view = settings["seed"], settings["collective"].get("view", "full")
    data = final_aggregate(args.run)
    table = EpisodeTable.from_episode_index(data.episode_index)
    encoders = {name: train_variant(name, seed, view, data, args.out) for name in args.variants}
    split = next(iter(encoders.values())).split
    rng = np.random.default_rng(seed)
    rows, steps = {}, {}
    for side in ("train", "validation"):
        rows[side], steps[side] = probe_rows(table, getattr(split, side), rng)
    tasks = {side: np.asarray(data.task_index)[r] for side, r in rows.items()}
    names = list(data.tasks)

    history = HistoryContext(HISTORY_STEPS, data.actions.shape[1]).for_transitions(data)[0]
    observations = apply_view(np.asarray(data.observations), view)
    references = {
        "history (last 5 actions, rewards)": {s: history[r] for s, r in rows.items()},
        "observation alone": {s: observations[r] for s, r in rows.items()},
    }
    methods = {}
    for name, encoder in encoders.items():
        window = encoder.config.window
        features = {}
        for side, r in rows.items():
            lengths = np.minimum(steps[side] + 1, window)
            windows = gather_windows(
                data.observations, data.actions, data.rewards, table, r, lengths, window
            )
            features[side] = encoder.embed(windows)
        methods[name] = {
            "settings": VARIANTS[name][0],
            "updates": VARIANTS[name][1],
            "accuracy": bucket_accuracies(features, tasks, steps, names),
        }
    for name, features in references.items():
        methods[name] = {"accuracy": bucket_accuracies(features, tasks, steps, names)}
    result = {
        "run": str(args.run),
        "seed": seed,
        "view": view,
        "tasks": names,
        "labelled_transitions": len(data),
        "train_episodes": len(split.train),
        "validation_episodes": len(split.validation),
        "buckets": [bucket_label(*bucket) for bucket in BUCKETS],
        "validation_windows": bucket_counts(tasks["validation"], steps["validation"], names),
        "methods": methods,
    }
    write_json_atomic(args.results, result, indent=1)
    write_text_atomic(args.results.with_suffix(".md"), table_markdown(result))
    print(table_markdown(result))
    return result


def table_markdown(result: dict) -> str:
    buckets = result["buckets"]
    lines = [
        f"Linear-probe task accuracy of the context by step of the episode, on the validation "
        f"episodes of `{result['run']}`'s final aggregate ({result['labelled_transitions']} "
        f"labelled transitions, {result['view']} view). Each cell: all "
        f"{len(result['tasks'])} tasks / the shared-scene three (reach, push, pick-place; "
        f"chance 0.33).",
        "",
        "| context | updates | " + " | ".join(f"step {b}" for b in buckets) + " |",
        "|---|---|" + "---|" * len(buckets),
        "| *validation windows* | | "
        + " | ".join(" / ".join(map(str, result["validation_windows"][b])) for b in buckets)
        + " |",
    ]
    for name, method in result["methods"].items():
        cells = []
        for b in buckets:
            scores = method["accuracy"].get(b, {})
            cells.append(
                f"{scores['all']:.2f} / {scores['shared-scene']:.2f}"
                if "all" in scores and "shared-scene" in scores
                else "—"
            )
        lines.append(f"| {name} | {method.get('updates', '—')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(tyro.cli(Args))
