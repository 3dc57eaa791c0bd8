"""``python -m ctdkit.bench leaderboard``: aggregate run records with rliable.

Per suite, each row (algorithm × data variant) is a score matrix ``runs × tasks`` of success
rates. rliable gives the IQM and the mean with stratified-bootstrap 95% CIs, performance
profiles (fraction of run-task scores above τ) and the probability that the reference
algorithm (``ctd``) beats each other row. Bootstraps use a fixed seed, so the same records
always give the same leaderboard. Rows built from different data are refused: every record of
a suite must name the same dataset content checksum (and a row the same subset checksum) and
the same settings apart from algorithm, seed and data variant.

Suites with learning curves also get, per row, the IQM and mean [95% CI] at every evaluation
point of its runs' ``curve`` (same bootstrap), with the env steps the evaluations ran, so the
final rows can be compared across protocols by interval width per evaluated env step.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctdkit.bench.algos import ALGO_IDS
from ctdkit.bench.records import load_records
from ctdkit.bench.suites import SUITES
from ctdkit.errors import CtdkitError
from ctdkit.files import write_json_atomic, write_text_atomic

#: settings allowed to differ inside one suite (they define rows and runs)
PER_RUN_SETTINGS = ("algo", "seed", "episodes_per_task")
TAUS = np.linspace(0.0, 1.0, 51)


@dataclass
class LeaderboardConfig:
    """Aggregate benchmark records into LEADERBOARD.md, JSON and plots (rliable statistics)."""

    records: tuple[Path, ...] = (Path("runs/bench/records"),)
    """Record folders (searched recursively) or files. Invalid records are skipped with a
    warning naming them."""
    out: Path = Path("runs/bench")
    """Writes OUT/LEADERBOARD.md and OUT/leaderboard/ (leaderboard.json, PNG plots). The
    committed leaderboard is rebuilt only on purpose: `--records benchmarks/leaderboard/records
    --out benchmarks`."""
    suites: tuple[str, ...] = ()
    """Only these suites (default: every suite with records)."""
    reference: str | None = None
    """Algorithm compared with every other row by probability of improvement (default: each
    suite's own, `ctd` for the MT10 suites, `bc-none` for `reach-replay`)."""
    reps: int = 2000
    """Bootstrap resamples for every CI."""
    seed: int = 0
    """Seed of the bootstrap (same records + seed -> same numbers)."""
    throughput: tuple[Path, ...] = ()
    """JSON outputs of benchmarks/encoder_throughput.py and benchmarks/learner_speed.py
    (`--json-out`); default: every *.json in OUT/leaderboard/throughput/."""
    plots: bool = True
    """Draw the PNG plots (performance profiles, aggregates, data scaling)."""


@dataclass
class Row:
    """All runs of one algorithm on one data variant of a suite."""

    suite: str
    algo: str
    variant: str
    episodes_per_task: int | None
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.algo if self.episodes_per_task is None else f"{self.algo} @{self.variant}"

    @property
    def tasks(self) -> list[str]:
        return list(self.records[0]["dataset"]["tasks"])

    def scores(self) -> np.ndarray:
        """Success rates, ``runs × tasks`` (runs ordered by seed)."""
        return np.array([[r["success_by_task"][t] for t in self.tasks] for r in self.records])

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.records]


def _sort_key(row: Row) -> tuple:
    order = ALGO_IDS.index(row.algo) if row.algo in ALGO_IDS else len(ALGO_IDS)
    return (order, row.algo, row.episodes_per_task or 0)


def group_rows(records: list[dict[str, Any]]) -> tuple[dict[str, list[Row]], list[dict]]:
    """Finished records grouped into suites and rows (checked for mixed data and settings),
    and the error records left out."""
    errors = [r for r in records if r["status"] != "ok"]
    rows: dict[tuple, Row] = {}
    seen: dict[tuple, str] = {}
    for record in (r for r in records if r["status"] == "ok"):
        key = (record["suite"], record["algo"], record["variant"])
        run = (*key, record["seed"])
        if run in seen:
            raise CtdkitError(
                f"two records of {'/'.join(map(str, run))}: {seen[run]} and {record['path']}"
            )
        seen[run] = record["path"]
        row = rows.setdefault(key, Row(*key, record.get("episodes_per_task")))
        row.records.append(record)
    suites: dict[str, list[Row]] = defaultdict(list)
    for row in rows.values():
        row.records.sort(key=lambda r: r["seed"])
        _check_same(row.records, _data_key, f"row {row.suite}/{row.label} mixes datasets")
        suites[row.suite].append(row)
    for name, members in suites.items():
        every = [r for row in members for r in row.records]
        _check_same(every, lambda r: r["dataset"]["checksum"], f"suite {name} mixes datasets")
        _check_same(every, _shared_settings, f"suite {name} mixes settings")
        members.sort(key=_sort_key)
    return dict(suites), errors


def _data_key(record: dict) -> tuple:
    dataset = record["dataset"]
    return (dataset["checksum"], dataset.get("subset_checksum"), tuple(dataset["tasks"]))


def _shared_settings(record: dict) -> str:
    settings = {k: v for k, v in record["settings"].items() if k not in PER_RUN_SETTINGS}
    return json.dumps(settings, sort_keys=True)


def _check_same(records: list[dict], key, message: str) -> None:
    first = records[0]
    for record in records[1:]:
        if key(record) != key(first):
            detail = _difference(first, record)
            raise CtdkitError(
                f"{message} ({detail}): {first['path']} vs {record['path']}; refusing to mix "
                "them (rerun one side, or aggregate their folders separately)"
            )


def _difference(a: dict, b: dict) -> str:
    if a["dataset"]["checksum"] != b["dataset"]["checksum"]:
        ours, theirs = a["dataset"]["checksum"], b["dataset"]["checksum"]
        return f"dataset checksum {ours[:12]} vs {theirs[:12]}"
    if a["dataset"].get("subset_checksum") != b["dataset"].get("subset_checksum"):
        return "subset checksum differs"
    if a["dataset"]["tasks"] != b["dataset"]["tasks"]:
        return "tasks differ"
    for k in sorted(set(a["settings"]) | set(b["settings"])):
        if k not in PER_RUN_SETTINGS and a["settings"].get(k) != b["settings"].get(k):
            return f"{k} {a['settings'].get(k)!r} vs {b['settings'].get(k)!r}"
    return "records differ"


# ------------------------------------------------------------------------------ statistics
def interval_estimates(
    scores: dict[str, Any], function, reps: int, seed: int
) -> dict[str, dict[str, Any]]:
    """rliable point estimates and stratified-bootstrap 95% CIs (``scores`` values are
    matrices, or tuples of matrices for comparisons).

    rliable 1.2 draws its resampling indices from NumPy's *global* generator (its
    ``random_state`` argument does not reach them), so each entry is bootstrapped with the
    global generator seeded to ``seed`` — and restored afterwards: an entry's CI depends only
    on its own scores and the seed.
    """
    from rliable import library as rly

    out = {}
    state = np.random.get_state()
    try:
        for key, value in scores.items():
            np.random.seed(seed)
            with warnings.catch_warnings():  # arch deprecates RandomState; rliable passes it
                warnings.simplefilter("ignore", FutureWarning)
                points, intervals = rly.get_interval_estimates(
                    {key: value}, function, reps=reps, random_state=np.random.RandomState(seed)
                )
            out[key] = {
                "point": np.asarray(points[key]),
                "low": intervals[key][0],
                "high": intervals[key][1],
            }
    finally:
        np.random.set_state(state)
    return out


# The three statistics below equal rliable's ``metrics.aggregate_iqm``,
# ``metrics.aggregate_mean``, ``library.score_distributions`` and
# ``metrics.probability_of_improvement`` (tested against them); they are written in plain numpy
# because rliable's go through scipy per call (trim_mean, mannwhitneyu: 0.5-2 ms each), which
# at 2000 resamples x rows x suites turned a leaderboard into tens of minutes.
def iqm(scores: np.ndarray) -> float:
    """Interquartile mean over all runs and tasks (``scipy.stats.trim_mean(x, 0.25)``)."""
    flat = np.sort(scores, axis=None)
    cut = int(0.25 * flat.size)
    return float(flat[cut : flat.size - cut].mean())


def row_statistics(scores: np.ndarray) -> np.ndarray:
    """``[IQM, mean, profile(τ) for τ in TAUS]`` of one ``runs × tasks`` score matrix; the
    profile is the fraction of run-task scores above τ (rliable's score distribution)."""
    profile = (scores.reshape(-1, 1) > TAUS[None, :]).mean(axis=0)
    return np.concatenate([[iqm(scores), scores.mean()], profile])


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over tasks, ties counting one half (the Mann-Whitney U statistic
    over ``runs_x × runs_y``, as rliable)."""
    greater = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return np.array([np.mean(greater + 0.5 * ties)])


def iqm_and_mean(scores: np.ndarray) -> np.ndarray:
    """``[IQM, mean]`` of one ``runs × tasks`` score matrix (the curve points' statistics)."""
    return np.array([iqm(scores), scores.mean()])


def curve_statistics(rows: list[Row], reps: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Per row label, one entry per evaluation point ``(steps, protocol)`` of its records'
    curves: IQM and mean [95% CI] over the runs that have it, the runs, episodes per task, the
    scored env steps summed over those runs and the IQM interval's width per env step."""
    scores, points = {}, {}
    for row in rows:
        found: dict[tuple[int, str], list[dict]] = defaultdict(list)
        for record in row.records:
            for entry in record.get("curve", []):
                found[entry["steps"], entry["protocol"]].append(entry)
        for (steps, protocol), entries in sorted(found.items()):
            key = f"{row.label}|{steps}|{protocol}"
            scores[key] = np.array([[e["per_task"][t] for t in row.tasks] for e in entries])
            env_steps = int(sum(e["env_steps"] for e in entries))
            points[key] = (
                row.label,
                {
                    "steps": steps,
                    "protocol": protocol,
                    "episodes_per_task": entries[0]["episodes_per_task"],
                    "runs": len(entries),
                    "env_steps": env_steps,
                    "eval_seconds": float(np.mean([e["eval_seconds"] for e in entries])),
                },
            )
    statistics = interval_estimates(scores, iqm_and_mean, reps, seed)
    curves: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, (label, point) in points.items():
        point["iqm"], point["mean"] = _ci(statistics[key], 0), _ci(statistics[key], 1)
        width = point["iqm"][2] - point["iqm"][1]
        point["iqm_width"] = width
        point["iqm_width_per_env_step"] = width / point["env_steps"] if point["env_steps"] else None
        curves[label].append(point)
    return dict(curves)


def aggregate_suite(rows: list[Row], reference: str, reps: int, seed: int) -> dict[str, Any]:
    """IQM/mean with CIs per row, P(reference > row) per row, performance profiles, and for
    runs with curves the statistics at every evaluation point."""
    scores = {row.label: row.scores() for row in rows}
    statistics = interval_estimates(scores, row_statistics, reps, seed)
    curves = curve_statistics(rows, reps, seed)
    references = {row.variant: row for row in rows if row.algo == reference}
    pairs = {
        row.label: (references[row.variant].scores(), row.scores())
        for row in rows
        if row.algo != reference and row.variant in references
    }
    improvement = interval_estimates(pairs, probability_of_improvement, reps, seed)
    out_rows = []
    for row in rows:
        stats, records = statistics[row.label], row.records
        seconds = [r.get("seconds", {}) for r in records]
        steps = records[0]["steps"]
        entry = {
            "label": row.label,
            "algo": row.algo,
            "learner": records[0]["learner"],
            "conditioning": records[0]["conditioning"],
            "variant": row.variant,
            "episodes_per_task": row.episodes_per_task,
            "runs": len(records),
            "seeds": row.seeds,
            "iqm": _ci(stats, 0),
            "mean": _ci(stats, 1),
            "success_by_task": dict(
                zip(row.tasks, row.scores().mean(axis=0).tolist(), strict=True)
            ),
            "train_seconds": float(np.mean([s.get("train", np.nan) for s in seconds])),
            "eval_seconds": float(np.mean([s.get("eval", np.nan) for s in seconds])),
            "load_seconds": float(np.mean([s.get("load", np.nan) for s in seconds])),
            "encoder_seconds": _encoder_seconds(records),
            "steps": steps,
            "records": [r["path"] for r in records],
        }
        entry["train_seconds_per_1k_steps"] = 1000.0 * entry["train_seconds"] / steps
        if row.label in improvement:
            entry["p_reference_better"] = _ci(improvement[row.label], 0)
        if row.label in curves:
            entry["curve"] = curves[row.label]
        out_rows.append(entry)
    first = rows[0].records[0]
    return {
        "settings": {k: v for k, v in first["settings"].items() if k not in PER_RUN_SETTINGS},
        "dataset": {k: first["dataset"][k] for k in ("id", "checksum", "tasks")},
        "reference": reference,
        "environments": _environments([r for row in rows for r in row.records]),
        "rows": out_rows,
        "profiles": {
            label: {k: np.asarray(v)[2:].tolist() for k, v in stats.items()}
            for label, stats in statistics.items()
        },
        "taus": TAUS.tolist(),
    }


def _reference(config: LeaderboardConfig, suite: str) -> str:
    if config.reference is not None:
        return config.reference
    return SUITES[suite].reference if suite in SUITES else "ctd"


def _ci(stats: dict[str, Any], index: int) -> list[float]:
    return [float(np.ravel(stats[k])[index]) for k in ("point", "low", "high")]


def _encoder_seconds(records: list[dict]) -> float | None:
    values = [(r.get("encoder") or {}).get("train_seconds") for r in records]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _environments(records: list[dict]) -> list[dict]:
    """Distinct (hardware, threads) settings the records ran with."""
    seen = {}
    for record in records:
        hardware, threads = record.get("hardware", {}), record.get("threads", {})
        key = json.dumps([hardware, threads], sort_keys=True)
        seen.setdefault(key, {"hardware": hardware, "threads": threads, "runs": 0})
        seen[key]["runs"] += 1
    return list(seen.values())


# ------------------------------------------------------------------------------ entry point
def build_leaderboard(config: LeaderboardConfig) -> dict[str, Any]:
    """Aggregate, then write OUT/LEADERBOARD.md and OUT/leaderboard/{leaderboard.json, *.png}."""
    from ctdkit.bench.render import load_throughput, render_markdown, write_plots

    if config.reps < 1:
        raise CtdkitError(f"--reps must be at least 1, got {config.reps}")
    missing = [str(p) for p in config.records if not Path(p).exists()]
    if missing:
        raise CtdkitError(f"no records at {missing[0]} (run: python -m ctdkit.bench run ...)")
    suites, errors = group_rows(load_records(config.records))
    if config.suites:
        unknown_suites = [s for s in config.suites if s not in suites]
        if unknown_suites:
            from ctdkit.errors import unknown

            raise unknown("suite with records", unknown_suites[0], sorted(suites))
        suites = {name: suites[name] for name in config.suites}
    if not suites:
        raise CtdkitError(f"no finished records under {', '.join(map(str, config.records))}")
    from importlib.metadata import version

    result: dict[str, Any] = {
        "statistics": {
            "rliable": version("rliable"),
            "reps": config.reps,
            "seed": config.seed,
            "confidence": 0.95,
            "method": "stratified bootstrap (percentile)",
        },
        "suites": {
            name: aggregate_suite(rows, _reference(config, name), config.reps, config.seed)
            for name, rows in sorted(suites.items())
        },
        "errors": [{"path": r["path"], "error": r.get("error")} for r in errors],
    }
    folder = config.out / "leaderboard"
    folder.mkdir(parents=True, exist_ok=True)
    throughput_files = config.throughput or tuple(sorted((folder / "throughput").glob("*.json")))
    result["throughput"] = load_throughput(throughput_files)
    if config.plots:  # paths relative to OUT, as LEADERBOARD.md links them
        written = write_plots(result, folder)
        result["plots"] = {
            suite: {kind: os.path.relpath(path, config.out) for kind, path in files.items()}
            for suite, files in written.items()
        }
    write_json_atomic(folder / "leaderboard.json", result)
    write_text_atomic(config.out / "LEADERBOARD.md", render_markdown(result))
    return result
