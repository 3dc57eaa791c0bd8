"""The DAgger study: does the collective reach its teacher, and does the CLS context earn its place?

    python benchmarks/dagger_study.py --conditionings history ctd oracle none --seeds 0 \
        --out runs/dagger-study

One ``python -m ctdkit.dagger`` run (:func:`ctdkit.dagger.run_dagger`) per (view, conditioning,
seed[, frozen encoder]), each in its own folder under ``--out`` and resumable at any point;
``--controls`` adds, per conditioning and seed, the data-matched control: the same rounds with
β = 1 throughout (the expert acts alone), so its final round distils as many expert-only
transitions as DAgger's, with the same updates (reported as round -1). Every finished run is
folded into ``--results`` (``benchmarks/results/dagger_mt10.json``) and its markdown table and
plot as soon as it finishes, so a study spread over sessions commits what it has.

Each run's evaluation records (``rounds.json`` and every episode of its screening and final
evaluations, some 100 kB; not its datasets or weights) are copied beside the results into
``<results stem>_runs/`` (e.g. ``benchmarks/results/dagger_mt10_runs/full/ctd/seed0``), and so
are the teacher's. The fold reads a run from ``--out`` when it is there and from that archive
when it is not, and it folds every archived run whichever cells this invocation names (``--seeds``
with no value runs nothing new and refolds them all), so seeds run on different machines pool
episode by episode, exactly as if run on one. A group of rows (view, conditioning, encoder,
control) whose committed seeds are not all here or in the archive (runs from before the
archive) keeps its committed rows, and the fold says so: a fold never loses a seed.

Rows are read at the last round and the final actor step of every seed run — never the best
round or seed; screening rows (``episodes_per_task`` = ``--screening-episodes``) are labelled
as such. Evaluation seeds (>= 100) never collect data.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from ctdkit.dagger import DaggerConfig, run_dagger
from ctdkit.encoder import EncoderConfig
from ctdkit.envs.tasks import resolve_tasks
from ctdkit.eval.protocols import EvalResult
from ctdkit.eval.run import EvaluateConfig, run_evaluation
from ctdkit.eval.stats import summarize
from ctdkit.files import read_json_object, write_atomic, write_json_atomic, write_text_atomic


@dataclass
class Args:
    tasks: tuple[str, ...] = ("MT10",)
    views: tuple[str, ...] = ("full",)
    conditionings: tuple[str, ...] = ("ctd", "history", "oracle", "none")
    seeds: tuple[int, ...] = (0, 1, 2)
    frozen_encoder_seeds: tuple[int, ...] = (0,)
    """Seeds whose ctd runs are repeated with round 0's encoder kept frozen."""
    continued_encoder_seeds: tuple[int, ...] = ()
    """Seeds whose ctd and ctd+history runs are repeated with each round's encoder trained on
    from the last's."""
    controls: tuple[str, ...] = ()
    """Conditionings that get the data-matched control (β = 1 every round)."""
    plain: bool = True
    """Run the DAgger cells themselves (`--no-plain`: only the controls and frozen variants)."""
    rounds: int = 3
    episodes_per_task: int = 10
    allocation: Literal["equal", "failures"] = "equal"
    """How a round's episodes are shared among tasks (`failures`: more where the collective
    fails; see ``DaggerConfig.allocation``)."""
    allocation_floor: float = 0.1
    """``DaggerConfig.allocation_floor``: a solved task's weight under `failures`."""
    beta: float = 0.5
    noise: float = 0.3
    collective_steps: int = 10_000
    encoder_steps: int = 300
    encoder: EncoderConfig = dataclasses.field(default_factory=lambda: DaggerConfig().encoder)
    """The ctd encoder (`--encoder.embedding-dim 32`, `--encoder.reward-weight 10`, ...): a
    variant runs into its own `--out` and `--results`, beside the study's."""
    normalize_context: bool = False
    """Standardise the collective's context inputs (a variant: the CLS is a unit vector, small
    beside the standardised observation)."""
    actor_average: float = 0.0
    """Act with a Polyak-averaged copy of the collective's actor at this rate (a variant: see
    ``CollectiveSACConfig.actor_average``)."""
    cls_swap: float = 0.0
    """ctd+history cells: swap the CLS part of this share of each actor batch with another
    row's (a variant: see ``CollectiveSACConfig.cls_swap``; other conditionings ignore it)."""
    hidden: tuple[int, ...] = DaggerConfig().collective.hidden
    """Hidden widths of the collective's actor and critics (a variant: on MT50's aggregate a
    fresh ``512 512 512`` collective fits far better than the default; see docs/dagger.md)."""
    screening_episodes: int = 10
    final_episodes: int = 50
    eval_seeds: tuple[int, ...] = (100,)
    workers: int = 2
    out: Path = Path("runs/dagger-study")
    results: Path = Path("benchmarks/results/dagger_mt10.json")
    only_results: bool = False
    """Rebuild the results from finished runs without running anything."""


@dataclass(frozen=True)
class Cell:
    view: str
    conditioning: str
    seed: int
    encoder: str = "retrained"  # or "frozen", "continued"
    control: bool = False

    @property
    def name(self) -> str:
        suffix = "-control" if self.control else ""
        if self.encoder != "retrained":
            suffix = f"-{self.encoder}"
        return f"{self.view}/{self.conditioning}{suffix}/seed{self.seed}"


def cells(args: Args) -> list[Cell]:
    planned = []
    for seed in args.seeds:
        for view in args.views:
            for conditioning in args.conditionings:
                if args.plain:
                    planned.append(Cell(view, conditioning, seed))
                if conditioning == "ctd" and seed in args.frozen_encoder_seeds:
                    planned.append(Cell(view, conditioning, seed, encoder="frozen"))
                trains_encoder = conditioning in ("ctd", "ctd+history")
                if trains_encoder and seed in args.continued_encoder_seeds:
                    planned.append(Cell(view, conditioning, seed, encoder="continued"))
                if conditioning in args.controls:
                    planned.append(Cell(view, conditioning, seed, control=True))
    return planned


def dagger_config(args: Args, cell: Cell) -> DaggerConfig:
    defaults = DaggerConfig()
    return DaggerConfig(
        tasks=args.tasks,
        rounds=args.rounds,
        episodes_per_task=args.episodes_per_task,
        allocation=args.allocation,
        allocation_floor=args.allocation_floor,
        beta=1.0 if cell.control else args.beta,
        noise=args.noise,
        collective=dataclasses.replace(
            defaults.collective,
            conditioning=cell.conditioning,
            view=cell.view,
            normalize_context=args.normalize_context,
            actor_average=args.actor_average,
            cls_swap=args.cls_swap if cell.conditioning == "ctd+history" else 0.0,
            hidden=args.hidden,
        ),
        collective_steps=args.collective_steps,
        encoder=args.encoder,
        encoder_steps=args.encoder_steps,
        encoder_schedule=cell.encoder,
        eval_seeds=args.eval_seeds,
        screening_episodes=args.screening_episodes,
        final_episodes=args.final_episodes,
        seed=cell.seed,
        workers=args.workers,
        out=args.out / cell.name,
        progress=False,
    )


def _results(folder: Path) -> list[EvalResult]:
    return [
        EvalResult(**read_json_object(p, str(p))["result"])
        for p in sorted(folder.glob("official-seed*.json"))
    ]


def _row(cells_done: list[tuple[Cell, dict]], round_index: int, kind: str) -> dict | None:
    """One results row: the cells' evaluations of ``round_index`` pooled over seeds."""
    pooled, seeds, collect_seeds, transitions, steps = [], [], [], set(), set()
    for cell, result in cells_done:
        record = next((r for r in result["rounds"] if r["round"] == round_index), None)
        if record is None:
            continue
        run_dir = Path(result["out"])
        if kind == "screening":
            folder = run_dir / f"round-{round_index}" / "screening"
        else:
            folder = run_dir / f"final-round-{round_index}"
        found = _results(folder)
        if not found:
            continue
        pooled += found
        seeds.append(cell.seed)
        collect_seeds += [r["collect_seed"] for r in result["rounds"][: round_index + 1]]
        transitions.add(record["labelled_transitions"])
        steps.add(record["actor_steps"])
    if not pooled:
        return None
    summary = summarize(pooled)
    cell = cells_done[0][0]
    episodes = len(pooled[0].episodes) // len(pooled[0].tasks)
    return {
        "conditioning": cell.conditioning,
        "view": cell.view,
        "round": -1 if cell.control else round_index,
        "labelled_transitions": max(transitions),
        "actor_steps": max(steps),
        "encoder": cell.encoder,
        "seeds": sorted(seeds),
        "collect_seeds": sorted(set(collect_seeds)),
        "eval_seeds": sorted({r.seed for r in pooled}),
        "episodes_per_task": episodes,
        "screening": kind == "screening",
        "mean": summary["mean_success"],
        "ci": summary["ci95"],
        "per_task": {t: v["success"] for t, v in summary["tasks"].items()},
    }


RECORD_PATTERNS = ("rounds.json", "round-*/screening/*.json", "final-round-*/*.json")


def archive_folder(args: Args) -> Path:
    """Where the runs' evaluation records live beside the results (committed with them)."""
    return args.results.with_name(f"{args.results.stem}_runs")


def archive(source: Path, target: Path, patterns: tuple[str, ...]) -> None:
    """Copy the small record files of ``source`` into ``target`` (each file atomically)."""
    for pattern in patterns:
        for path in sorted(source.glob(pattern)):
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(destination, lambda tmp, path=path: shutil.copyfile(path, tmp))


def run_folder(args: Args, cell: Cell) -> Path | None:
    """The cell's run folder here (its records archived on the way), else its archived records."""
    here, kept = args.out / cell.name, archive_folder(args) / cell.name
    if (here / "rounds.json").is_file():
        archive(here, kept, RECORD_PATTERNS)
        return here
    return kept if (kept / "rounds.json").is_file() else None


def _group(row: dict) -> tuple:
    return (row["view"], row["conditioning"], row["encoder"], row["round"] == -1)


def _seeds(rows: list[dict]) -> dict[tuple, set[int]]:
    seeds: dict[tuple, set[int]] = {}
    for row in rows:
        seeds.setdefault(_group(row), set()).update(row["seeds"])
    return seeds


def merge_committed(args: Args, rows: list[dict], wall: list[dict]) -> tuple[list, list]:
    """The fold's rows, except for groups where the committed results hold seeds this fold has
    not got (their runs were on another machine before the archive existed): those keep their
    committed rows and wall times, and the fold says so. A fold never loses a seed."""
    if not args.results.is_file():
        return rows, wall
    committed = read_json_object(args.results, str(args.results))
    found, before = _seeds(rows), _seeds(committed["rows"])
    kept = {g for g, seeds in before.items() if not seeds <= found.get(g, set())}
    for group in sorted(kept, key=str):
        print(
            f"kept from {args.results}: {group}, seeds {sorted(before[group])} "
            f"(here and in {archive_folder(args)}: {sorted(found.get(group, ()))})"
        )
    names = {Cell(v, c, 0, e, control).name.rsplit("/", 1)[0] for v, c, e, control in kept}

    def kept_run(entry: dict) -> bool:
        return entry["run"].rsplit("/", 1)[0] in names

    return (
        [r for r in committed["rows"] if _group(r) in kept]
        + [r for r in rows if _group(r) not in kept],
        [w for w in committed.get("wall_seconds", []) if kept_run(w)]
        + [w for w in wall if not kept_run(w)],
    )


NOT_SETTINGS = (
    *("out", "results", "only_results", "workers"),
    *("views", "conditionings", "seeds", "plain", "controls"),
    *("frozen_encoder_seeds", "continued_encoder_seeds"),
)
"""Args that are not the runs' settings: where files go, and which cells this invocation ran
(the rows name their own view, conditioning, encoder schedule and seeds)."""


def archived_cells(args: Args) -> list[Cell]:
    """Every cell with a run in the archive beside the results: a fold of ``--seeds 2`` pools
    the seeds and cells archived by earlier invocations as well, not only what it ran."""
    found = []
    for path in sorted(archive_folder(args).glob("*/*/seed*/rounds.json")):
        view, name, seed = path.parts[-4:-1]
        encoder, control = "retrained", False
        for suffix in ("-frozen", "-continued", "-control"):
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
                encoder, control = (encoder, True) if suffix == "-control" else (suffix[1:], False)
        found.append(Cell(view, name, int(seed.removeprefix("seed")), encoder, control))
    return found


def fold(args: Args) -> dict:
    """Every finished run of the cells asked for (under ``--out``, else archived) and every
    archived run, as the results JSON (and its markdown and plot)."""
    groups: dict[tuple, list[tuple[Cell, dict]]] = {}
    wall = []
    for cell in dict.fromkeys(archived_cells(args) + cells(args)):
        folder = run_folder(args, cell)
        if folder is None:
            continue
        path = folder / "rounds.json"
        result = read_json_object(path, str(path)) | {"out": str(folder)}
        key = (cell.view, cell.conditioning, cell.encoder, cell.control)
        groups.setdefault(key, []).append((cell, result))
        wall.append(
            {"run": cell.name, "seconds": {r["round"]: r["seconds"] for r in result["rounds"]}}
        )
    rows = []
    for done in groups.values():
        control = done[0][0].control
        last = max(r["round"] for _, res in done for r in res["rounds"])
        for round_index in range(last + 1):
            if not control:
                row = _row(done, round_index, "screening")
                rows.append(row) if row else None
        row = _row(done, last, "final")
        rows.append(row) if row else None
    rows, wall = merge_committed(args, rows, wall)
    teacher = _teacher(args)
    results = {
        "teacher": teacher["mean_success"],
        "teacher_ci": teacher["ci95"],
        "tasks": list(resolve_tasks(args.tasks)),
        "protocol": "official",
        "settings": {
            k: v
            for k, v in json.loads(json.dumps(dataclasses.asdict(args), default=str)).items()
            if k not in NOT_SETTINGS
        },
        "rows": rows,
        "wall_seconds": wall,
    }
    write_json_atomic(args.results, results, indent=1)
    write_text_atomic(args.results.with_suffix(".md"), markdown(results))
    plot(results, args.results.with_suffix(".png"))
    return results


def _teacher(args: Args) -> dict:
    """The scripted experts under the same protocol, seeds and final episode count (read back
    from the archive when evaluated on another machine; the settings are checked on reading)."""
    here, kept = args.out / "teacher", archive_folder(args) / "teacher"
    if not here.is_dir():
        archive(kept, here, ("*.json",))
    summary = run_evaluation(
        EvaluateConfig(
            agent="scripted",
            tasks=args.tasks,
            seeds=args.eval_seeds,
            episodes=args.final_episodes,
            out=here,
            progress=False,
        )
    )
    archive(here, kept, ("*.json",))
    return summary


def _label(row: dict) -> str:
    encoder = row["encoder"]
    name = row["conditioning"] + ("" if encoder == "retrained" else f" ({encoder} encoder)")
    return name + (" control (β=1)" if row["round"] == -1 else "")


_VARIANT_SETTINGS = (
    "rounds",
    "episodes_per_task",
    "allocation",
    "allocation_floor",
    "beta",
    "noise",
    "collective_steps",
    "encoder_steps",
    "normalize_context",
    "actor_average",
    "cls_swap",
    "hidden",
)
"""Study settings a variant may change; the table names each one that differs from the study's."""


def markdown(results: dict, screening: bool = True) -> str:
    """Final rows first (every seed, last round, final actor step), then screening by round
    (``screening=False``: the final rows only, as the README shows them; the results' own
    ``.md`` keeps every row)."""
    default = json.loads(json.dumps(dataclasses.asdict(DaggerConfig().encoder)))
    changed = {
        k: v for k, v in results["settings"].get("encoder", {}).items() if v != default.get(k)
    }
    study_default = json.loads(json.dumps(dataclasses.asdict(Args()), default=str))
    for name in _VARIANT_SETTINGS:
        if name in results["settings"] and results["settings"][name] != study_default[name]:
            changed[name] = results["settings"][name]
    variant = ", ".join(f"{k}={v}" for k, v in changed.items() if k != "seed")
    lines = [
        *([f"**Variant:** {variant} (otherwise the study's settings).", ""] if variant else []),
        f"Teacher (scripted, same protocol): **{results['teacher']:.3f}** "
        f"[{results['teacher_ci'][0]:.2f}, {results['teacher_ci'][1]:.2f}]. Official protocol "
        f"on held-out goals (evaluation seeds >= 100; collection seeds < 100).",
        "",
        "| conditioning | view | round | labelled transitions | actor steps | seeds "
        "| episodes/task | mean [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ordered = sorted(
        (r for r in results["rows"] if screening or not r["screening"]),
        key=lambda r: (r["screening"], r["view"], _label(r), r["round"]),
    )
    for row in ordered:
        kind = " (screening)" if row["screening"] else ""
        lines.append(
            f"| {_label(row)} | {row['view']} | {row['round']} | {row['labelled_transitions']} "
            f"| {row['actor_steps']} | {row['seeds']} | {row['episodes_per_task']}{kind} "
            f"| **{row['mean']:.3f}** [{row['ci'][0]:.2f}, {row['ci'][1]:.2f}] |"
        )
    finals = [r for r in results["rows"] if not r["screening"]]
    if finals:
        tasks = results["tasks"]
        lines += ["", "Per task, final rows:", ""]
        views = {r["view"] for r in finals}
        seed_sets = {tuple(r["seeds"]) for r in finals}

        def column(row: dict) -> str:
            """The row's label, with its view and seeds where the final rows differ in them."""
            parts = [row["view"]] if len(views) > 1 else []
            if len(seed_sets) > 1:
                seeds = ", ".join(str(s) for s in row["seeds"])
                parts.append(f"seed{'s' if len(row['seeds']) > 1 else ''} {seeds}")
            return _label(row) + (f" ({'; '.join(parts)})" if parts else "")

        names = [column(r) for r in finals]
        lines.append("| task | " + " | ".join(names) + " |")
        lines.append("|---|" + "---|" * len(finals))
        for task in tasks:
            cells_ = " | ".join(f"{r['per_task'][task]:.2f}" for r in finals)
            lines.append(f"| {task} | {cells_} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Screening success against round, one line per conditioning (95% CI as a band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    series: dict[str, list[dict]] = {}
    for row in results["rows"]:
        if row["screening"]:
            series.setdefault(f"{_label(row)} ({row['view']})", []).append(row)
    for label, rows in sorted(series.items()):
        rows.sort(key=lambda r: r["round"])
        x = [r["round"] for r in rows]
        ax.plot(x, [r["mean"] for r in rows], marker="o", label=label)
        ax.fill_between(x, [r["ci"][0] for r in rows], [r["ci"][1] for r in rows], alpha=0.15)
    ax.axhline(results["teacher"], color="black", linestyle="--", label="teacher")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("DAgger round")
    ax.set_ylabel("success (screening)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(args: Args) -> None:
    if not args.only_results:
        for cell in cells(args):
            started = time.perf_counter()
            run_dagger(dagger_config(args, cell))
            print(f"{cell.name}: done ({time.perf_counter() - started:.0f} s)", flush=True)
            fold(args)
    results = fold(args)
    print(markdown(results))


if __name__ == "__main__":
    main(tyro.cli(Args))
