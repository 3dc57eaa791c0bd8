"""Success against actor steps on a DAgger run's final aggregate: is the final round's budget
(10k warm-started updates per round) what limits the collective, or its data?

    python benchmarks/dagger_steps.py --run /work/study/runs/full/history/seed0 \\
        --out runs/dagger-steps/history --results benchmarks/results/dagger_steps.json

A fresh collective with the run's settings (conditioning, view, sizes, seed) and, for ctd, the
run's last encoder is trained on every round of the finished run (the final aggregate) and
evaluated at each of ``--points`` actor steps: a screening evaluation (10 episodes per task)
at the intermediate points and the final evaluation (50 per task) at the last, on the run's
held-out evaluation seeds (>= 100). Resumable: the learner's full state is saved at every
point and every 1k updates; evaluations resume seed by seed. Each run becomes one row of
``--results`` (replaced when rerun), with a markdown table beside it; runs of the same
conditioning on several seeds (``--points 50000`` is enough for seeds 1 and 2) are also pooled
at their final point, with the stratified-bootstrap interval the DAgger study uses.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import tyro

from ctdkit.collective import CollectiveSAC, CollectiveSACConfig, make_context
from ctdkit.collective.config import ENCODER_CONDITIONINGS
from ctdkit.dagger import round_aggregate
from ctdkit.encoder import TrajectoryEncoder
from ctdkit.eval.protocols import EvalResult
from ctdkit.eval.run import EvaluateConfig, run_evaluation
from ctdkit.eval.stats import summarize
from ctdkit.files import read_json_object, write_json_atomic


@dataclass
class Args:
    run: Path
    """A finished DAgger run folder (its run.json, rounds.json and datasets/)."""
    points: tuple[int, ...] = (5_000, 10_000, 20_000, 30_000, 40_000, 50_000)
    screening_episodes: int = 10
    final_episodes: int = 50
    out: Path = Path("runs/dagger-steps")
    results: Path = Path("benchmarks/results/dagger_steps.json")
    encoder: Path | None = None
    """ctd: another encoder in place of the run's own (e.g. one of
    ``benchmarks/encoder_variants.py``, trained on the same aggregate)."""
    normalize_context: bool = False
    """Standardise the context inputs (``CollectiveSACConfig.normalize_context``)."""
    hidden: tuple[int, ...] | None = None
    """Hidden widths of actor and critics in place of the run's (e.g. ``512 512 512``): can a
    wider actor fit the aggregate the run's own could not?"""
    tasks: tuple[str, ...] | None = None
    """Evaluate on these tasks only (default: the run's)."""


def _learner(args: Args, collective: CollectiveSACConfig) -> CollectiveSAC:
    """The most advanced saved state (a point's weights or the mid-chunk checkpoint)."""
    saved = [args.out / f"steps-{p}.pt" for p in args.points]
    saved = [p for p in [*saved, args.out / "checkpoint.pt"] if p.is_file()]
    learners = [CollectiveSAC.load(p) for p in saved]
    return max(learners, key=lambda learner: learner.step, default=None) or collective.create()


def _aggregate(args: Args, settings: dict, collective: CollectiveSACConfig, last: int):
    """The run's final aggregate and the context of each of its rows (for ctd: the run's last
    encoder, or ``--encoder``)."""
    data = round_aggregate(args.run, last)
    encoder = None
    if collective.conditioning in ENCODER_CONDITIONINGS:
        trained = 0 if settings.get("encoder_schedule") == "frozen" else last
        own = args.run / f"round-{trained}" / "encoder" / "encoder.pt"
        encoder = TrajectoryEncoder.load(args.encoder or own)
    context = make_context(
        collective.conditioning, data, encoder, history_steps=collective.history_steps
    )
    return data, context


def main(args: Args) -> None:
    settings = read_json_object(args.run / "run.json", "run.json")["fingerprint"]
    rounds = read_json_object(args.run / "rounds.json", "rounds.json")["rounds"]
    last = rounds[-1]["round"]
    fields = {f.name for f in dataclasses.fields(CollectiveSACConfig)}
    options = {k: v for k, v in settings["collective"].items() if k in fields}
    options["hidden"] = tuple(args.hidden or options["hidden"])
    collective = CollectiveSACConfig(
        **{**options, "seed": settings["seed"], "normalize_context": args.normalize_context}
    )
    args.out.mkdir(parents=True, exist_ok=True)
    learner = None  # built with the aggregate and its contexts only when a point is untrained
    points = []
    for point in args.points:
        weights = args.out / f"steps-{point}.pt"
        if not weights.is_file():
            if learner is None:
                data, context = _aggregate(args, settings, collective, last)
                learner = _learner(args, collective)
            learner.fit(
                data,
                point - learner.step,
                context=context,
                checkpoint=args.out / "checkpoint.pt",
                checkpoint_every=1_000,
            )
            learner.save(weights)
        episodes = args.final_episodes if point == args.points[-1] else args.screening_episodes
        summary = run_evaluation(
            EvaluateConfig(
                agent="collective",
                checkpoint=weights,
                tasks=args.tasks or tuple(settings["tasks"]),
                seeds=tuple(settings["eval_seeds"]),
                episodes=episodes,
                out=args.out / f"eval-{point}",
                progress=False,
            )
        )
        points.append(
            {
                "actor_steps": point,
                "episodes_per_task": episodes,
                "mean": summary["mean_success"],
                "ci": summary["ci95"],
                "per_task": {t: v["success"] for t, v in summary["tasks"].items()},
            }
        )
        print(f"{point} actor steps: {summary['mean_success']:.3f} ({episodes} ep/task)")
    row = {
        "run": str(args.run),
        "out": str(args.out),
        "conditioning": collective.conditioning,
        "view": collective.view,
        "seed": settings["seed"],
        "rounds": last + 1,
        "labelled_transitions": rounds[-1]["labelled_transitions"],
        "eval_seeds": settings["eval_seeds"],
        "dagger_final": read_json_object(args.run / "final.json", "final.json")["mean"],
        "encoder": None if args.encoder is None else str(args.encoder),
        "normalize_context": args.normalize_context,
        "hidden": None if args.hidden is None else list(args.hidden),
        "tasks": None if args.tasks is None else list(args.tasks),
        "points": points,
    }
    study = read_json_object(args.results, str(args.results)) if args.results.is_file() else {}
    rows = [r for r in study.get("rows", []) if _variant(r) != _variant(row)] + [row]
    write_json_atomic(args.results, {"rows": rows}, indent=1)
    args.results.with_suffix(".md").write_text(table(rows))


def _variant(row: dict) -> tuple:
    """What makes a row its own (a rerun of the same replaces it)."""
    keys = ("encoder", "normalize_context", "hidden", "tasks")
    return (row["run"], *(json.dumps(row.get(k) or None) for k in keys))


def _name(row: dict) -> str:
    extras = []
    if row.get("encoder"):
        extras.append(f"encoder {Path(row['encoder']).parent.name}")
    if row.get("normalize_context"):
        extras.append("context standardised")
    if row.get("hidden"):
        extras.append("hidden " + "×".join(str(w) for w in row["hidden"]))
    if row.get("tasks"):
        extras.append("on " + ", ".join(t.removesuffix("-v3") for t in row["tasks"]))
    return row["conditioning"] + (f" ({'; '.join(extras)})" if extras else "")


def table(rows: list[dict]) -> str:
    steps = sorted({p["actor_steps"] for r in rows for p in r["points"]})
    lines = [
        "A fresh collective trained on a DAgger run's final aggregate (every round), success on "
        "held-out goals against actor steps (screening episodes per task at the intermediate "
        "points, the final evaluation's at the last: "
        + ", ".join(sorted({str(r["points"][-1]["episodes_per_task"]) for r in rows}))
        + " per task); "
        "`DAgger` is the run's own final round (warm-started from round to round).",
        "",
        "| conditioning | view | seed | DAgger | "
        + " | ".join(f"{s / 1000:g}k" for s in steps)
        + " |",
        "|---|---|---|---|" + "---|" * len(steps),
    ]
    for r in sorted(rows, key=lambda r: (r["view"], r["conditioning"], r["seed"])):
        by_step = {p["actor_steps"]: p["mean"] for p in r["points"]}
        cells = [f"{by_step[s]:.3f}" if s in by_step else "—" for s in steps]
        lines.append(
            f"| {_name(r)} | {r['view']} | {r['seed']} | {r['dagger_final']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n" + pooled_table(rows)


def _final_results(row: dict) -> list[EvalResult]:
    """The episodes of a row's final evaluation (read back from its ``--out`` folder)."""
    folder = Path(row["out"]) / f"eval-{row['points'][-1]['actor_steps']}"
    found = sorted(folder.glob("official-seed*.json"))
    if not found:
        raise FileNotFoundError(f"{folder}: no final evaluation to pool; rerun this row")
    return [EvalResult(**read_json_object(p, str(p))["result"]) for p in found]


def pooled_table(rows: list[dict]) -> str:
    """Rows that differ only in seed, pooled at their common final point (two seeds or more)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (_name(r), r["view"], r["points"][-1]["actor_steps"])
        groups.setdefault(key, []).append(r)
    lines = []
    for (name, view, steps), members in sorted(groups.items()):
        members.sort(key=lambda r: r["seed"])
        if len({r["seed"] for r in members}) < 2:
            continue
        summary = summarize([e for r in members for e in _final_results(r)])
        runs = [r["dagger_final"] for r in members]
        low, high = summary["ci95"]
        lines.append(
            f"| {name} | {view} | {', '.join(str(r['seed']) for r in members)} | "
            f"{sum(runs) / len(runs):.3f} | {steps / 1000:g}k | "
            f"**{summary['mean_success']:.3f}** [{low:.3f}, {high:.3f}] |"
        )
    if not lines:
        return ""
    header = [
        "",
        "Pooled over seeds at the final point (the runs' final evaluations' episodes together; "
        "`DAgger` is the mean of the runs' own final rounds):",
        "",
        "| conditioning | view | seeds | DAgger | actor steps | mean [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + lines) + "\n"


if __name__ == "__main__":
    main(tyro.cli(Args))
