"""How well embeddings name the task, measured on held-out episodes.

Protocol: windows of exactly ``L`` steps (``L`` in 1, 2, 5, 10, K) end at the same rows for
every ``L`` (drawn once per episode from steps ``>= K - 1``, so only the length changes). Probes
are fit on windows of the encoder's *training* episodes and scored on its *validation*
episodes (never trained on):

- linear probe: multinomial logistic regression on standardised features;
- k-NN: majority vote of the ``k`` nearest training windows by cosine similarity;
- cluster purity: k-means (k = number of tasks) on the validation windows, the share of
  windows whose cluster's majority task is their task.

Compared methods share windows and split: any number of encoders (e.g. label-free,
label-aware, untrained) and the raw-window baseline (mean state, mean action, mean reward of
the window, through the same view and state slices). Task labels are read here, for scoring
only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ctdkit.data import Transitions
from ctdkit.encoder.encoder import TrajectoryEncoder
from ctdkit.encoder.windows import EpisodeSplit, EpisodeTable, gather_windows
from ctdkit.envs.observation import apply_view, select_slices
from ctdkit.errors import CtdkitError
from ctdkit.policies.history import Windows

#: window lengths at which task accuracy is measured (capped at K; K is always included)
WINDOW_LENGTHS = (1, 2, 5, 10)
RAW_BASELINE = "raw-window"
PROBE_STEPS = 300
PROBE_LR = 0.05
PROBE_WEIGHT_DECAY = 1e-4
KNN_K = 10
KMEANS_RESTARTS = 8
KMEANS_ITERATIONS = 50


@dataclass
class ProbeWindows:
    """The evaluation windows of one split side: end rows and the task of each."""

    end_rows: np.ndarray
    tasks: np.ndarray


def window_lengths(window: int, lengths: tuple[int, ...] = WINDOW_LENGTHS) -> list[int]:
    return sorted({length for length in lengths if length <= window} | {window})


def probe_windows(
    table: EpisodeTable,
    episodes: np.ndarray,
    task_index: np.ndarray,
    window: int,
    per_episode: int,
    rng: np.random.Generator,
) -> ProbeWindows:
    """``per_episode`` end rows per episode, uniform over steps ``>= window - 1`` (so windows of
    every measured length are complete), vectorised over episodes."""
    starts, lengths = table.starts[episodes], table.lengths[episodes]
    first = np.minimum(window - 1, lengths - 1)
    offsets = first[:, None] + (
        rng.random((len(episodes), per_episode)) * (lengths - first)[:, None]
    ).astype(np.int64)
    end_rows = (starts[:, None] + offsets).reshape(-1)
    return ProbeWindows(end_rows, np.asarray(task_index)[end_rows])


def raw_window_features(windows: Windows, state_slices: tuple[str, ...], view: str) -> np.ndarray:
    """The baseline: mean state (same slices and view as the encoder), mean action and mean
    reward over the window's steps (the last step's action/reward excluded, as for the
    encoder: zeros for a 1-step window)."""
    observations = apply_view(np.asarray(windows.observations), view)
    states = select_slices(observations, state_slices)
    steps = np.arange(windows.padded_length)
    lengths = np.asarray(windows.lengths)
    state_valid = (steps < lengths[:, None])[..., None]
    transition_valid = (steps < (lengths - 1)[:, None])[..., None]
    mean_state = (states * state_valid).sum(1) / state_valid.sum(1)
    count = np.maximum(transition_valid.sum(1), 1)
    mean_action = (np.asarray(windows.actions) * transition_valid).sum(1) / count
    rewards = np.asarray(windows.rewards)[..., None]
    mean_reward = (rewards * transition_valid).sum(1) / count
    return np.concatenate([mean_state, mean_action, mean_reward], axis=1).astype(np.float32)


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0)
    std = np.where(std < 1e-6, 1.0, std)
    return (
        torch.from_numpy((train - mean) / std).float(),
        torch.from_numpy((test - mean) / std).float(),
    )


def linear_probe_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> float:
    """Held-out accuracy of a multinomial logistic regression (full-batch Adam from zero
    weights, so deterministic) on standardised features."""
    x, x_test = _standardise(train_x, test_x)
    y = torch.from_numpy(train_y).long()
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    weight = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=PROBE_LR, weight_decay=PROBE_WEIGHT_DECAY)
    for _ in range(PROBE_STEPS):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(x @ weight + bias, y).backward()
        optimizer.step()
    with torch.no_grad():
        predicted = (x_test @ weight + bias).argmax(1).numpy()
    return float((predicted == test_y).mean())


def knn_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    k: int = KNN_K,
) -> float:
    """Held-out accuracy of a cosine-similarity k-NN majority vote (standardised features)."""
    x, x_test = _standardise(train_x, test_x)
    x = torch.nn.functional.normalize(x, dim=1)
    x_test = torch.nn.functional.normalize(x_test, dim=1)
    k = min(k, len(x))
    nearest = (x_test @ x.T).topk(k, dim=1).indices.numpy()
    votes = train_y[nearest]
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    counts = np.stack([(votes == c).sum(1) for c in range(n_classes)], axis=1)
    return float((counts.argmax(1) == test_y).mean())


def cluster_purity(x: np.ndarray, y: np.ndarray, n_clusters: int, seed: int = 0) -> float:
    """Purity of k-means clusters (k-means++ init, best of a few restarts by inertia) on
    standardised features: Σ_clusters max_task |cluster ∩ task| / N."""
    x = (x - x.mean(0)) / np.where(x.std(0) < 1e-6, 1.0, x.std(0))
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(KMEANS_RESTARTS):
        centres = [x[rng.integers(len(x))]]
        for _ in range(n_clusters - 1):
            d2 = np.min(((x[:, None] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1 / len(x))
            centres.append(x[rng.choice(len(x), p=p)])
        centres = np.array(centres)
        for _ in range(KMEANS_ITERATIONS):
            assign = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
            for c in range(n_clusters):
                if (assign == c).any():
                    centres[c] = x[assign == c].mean(0)
        inertia = ((x - centres[assign]) ** 2).sum()
        if inertia < best_inertia:
            best, best_inertia = assign, inertia
    majority = sum(np.bincount(y[best == c]).max() for c in np.unique(best))
    return float(majority / len(y))


def _pca_2d(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T if vt.shape[0] >= 2 else np.pad(centred @ vt.T, ((0, 0), (0, 1)))


def evaluate_encoders(
    encoders: Mapping[str, TrajectoryEncoder],
    transitions: Transitions,
    *,
    lengths: tuple[int, ...] = WINDOW_LENGTHS,
    windows_per_episode: int = 32,
    raw_baseline: bool = True,
    seed: int = 0,
) -> dict:
    """Task accuracy of each encoder's embeddings (and the raw-window baseline) by window
    length, on the held-out episodes of the encoders' common split. Returns a JSON-ready dict;
    ``result["embeddings"]`` (removed by :func:`to_json`) holds the validation embeddings at
    the longest length for plotting."""
    if not encoders:
        raise CtdkitError("no encoders to evaluate")
    if transitions.task_index is None:
        raise CtdkitError("evaluating task accuracy needs task_index in the transitions")
    names = list(encoders)
    reference = encoders[names[0]]
    for name in names:
        encoder = encoders[name]
        if encoder.split is None:
            raise CtdkitError(f"encoder {name!r} has no episode split: fit it (0 steps suffice)")
        if encoder.data.get("num_episodes") != reference.data.get("num_episodes") or not (
            np.array_equal(encoder.split.validation, reference.split.validation)
        ):
            raise CtdkitError(f"encoder {name!r} was split differently from {names[0]!r}")
    config = reference.config
    split: EpisodeSplit = reference.split
    table = EpisodeTable.from_episode_index(transitions.episode_index)
    if table.num_episodes != reference.data.get("num_episodes"):
        raise CtdkitError("transitions are not the data the encoders were trained on")
    measured = window_lengths(config.window, lengths)
    rng = np.random.default_rng(seed)
    sides = {
        side: probe_windows(
            table, episodes, transitions.task_index, config.window, windows_per_episode, rng
        )
        for side, episodes in (("train", split.train), ("validation", split.validation))
    }
    n_tasks = len(transitions.tasks) or int(transitions.task_index.max()) + 1
    methods = [*names, RAW_BASELINE] if raw_baseline else names
    result: dict = {
        "tasks": list(transitions.tasks),
        "dataset_id": transitions.dataset_id,
        "view": config.view,
        "window_lengths": measured,
        "chance": 1.0 / n_tasks,
        "train_episodes": len(split.train),
        "validation_episodes": len(split.validation),
        "windows": {side: len(w.end_rows) for side, w in sides.items()},
        "methods": {m: {"linear_probe": {}, "knn": {}, "purity": {}} for m in methods},
        "embeddings": {},
    }
    for length in measured:
        windows = {
            side: gather_windows(
                transitions.observations,
                transitions.actions,
                transitions.rewards,
                table,
                w.end_rows,
                np.full(len(w.end_rows), length),
            )
            for side, w in sides.items()
        }
        for method in methods:
            if method == RAW_BASELINE:
                features = {
                    side: raw_window_features(w, config.state_slices, config.view)
                    for side, w in windows.items()
                }
            else:
                features = {side: encoders[method].embed(w) for side, w in windows.items()}
            train_y, test_y = sides["train"].tasks, sides["validation"].tasks
            scores = result["methods"][method]
            scores["linear_probe"][length] = linear_probe_accuracy(
                features["train"], train_y, features["validation"], test_y
            )
            scores["knn"][length] = knn_accuracy(
                features["train"], train_y, features["validation"], test_y
            )
            scores["purity"][length] = cluster_purity(features["validation"], test_y, n_tasks, seed)
            if length == measured[-1]:
                result["embeddings"][method] = (features["validation"], test_y)
    return result


def to_json(result: dict) -> dict:
    """The result without the raw embeddings, with string keys (JSON-ready)."""
    out = {k: v for k, v in result.items() if k != "embeddings"}
    out["methods"] = {
        method: {metric: {str(k): v for k, v in values.items()} for metric, values in m.items()}
        for method, m in result["methods"].items()
    }
    return out


def plot_quality(result: dict, path: Path) -> Path:
    """PNG: one PCA panel per method (validation windows of the longest length, coloured by
    task) and held-out linear-probe accuracy against window length. No global matplotlib
    state is touched (Agg canvas on a bare Figure)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = list(result["embeddings"])
    tasks = result["tasks"]
    rows_of_legend = (len(tasks) + 4) // 5
    figure = Figure(
        figsize=(3.2 * (len(methods) + 1), 3.4 + 0.2 * rows_of_legend), layout="constrained"
    )
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(methods) + 1, squeeze=False)[0]
    for ax, method in zip(axes, methods, strict=False):
        x, y = result["embeddings"][method]
        xy = _pca_2d(np.asarray(x, dtype=np.float64))
        for task in np.unique(y):
            name = tasks[task] if task < len(tasks) else str(task)
            ax.scatter(*xy[y == task].T, s=6, alpha=0.7, label=name)
        probe = result["methods"][method]["linear_probe"][result["window_lengths"][-1]]
        ax.set_title(f"{method}\nprobe acc {probe:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 5),
        fontsize=7,
        markerscale=2,
    )
    ax = axes[-1]
    method_colours = matplotlib.colormaps["Dark2"].colors  # distinct from the task colours
    for i, (method, scores) in enumerate(result["methods"].items()):
        lengths = list(scores["linear_probe"])
        accuracy = [scores["linear_probe"][k] for k in lengths]
        colour = method_colours[i % len(method_colours)]
        ax.plot(lengths, accuracy, marker="s", color=colour, label=method)
    ax.axhline(result["chance"], color="grey", linestyle=":", label="chance")
    ax.set_xlabel("window length (steps)")
    ax.set_ylabel("held-out linear-probe accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    figure.suptitle(f"{result['dataset_id']} ({result['view']} view)", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
