"""The student study: learning curves of plain SAC, the student and the finetuned collective on a
task the collective was trained on and on one it never saw.

    python benchmarks/student_study.py select --ctd-collective C1 --none-collective C2
    python benchmarks/student_study.py run --ctd-collective C1 --none-collective C2
    python benchmarks/student_study.py run --tasks trained ...   # push only: no selection needed
    python benchmarks/student_study.py run --methods student --seeds 1 2 ...   # only those runs
    python benchmarks/student_study.py results

Everything below is fixed before any student run (and is what the results record):

* **Methods** (one SAC implementation, the experts', through ``ctdkit.train_student``):
  ``sac`` — plain SAC (``--bonus-weight 0``: its updates equal plain SAC's exactly, tested);
  ``student`` — SAC from scratch with the collective's bonus (w = 1 to 8k steps, 0 at 50k);
  ``finetune-ctd`` / ``finetune-none`` — SAC started from the ``ctd``-family / ``none``
  collective's networks, no bonus (so the two effects are measured apart); its warm-up acts
  with the collective's own samples and its first 5k updates fit only the critics
  (``--critic-only-updates``: the DAgger collectives have no trained critics).
* **Added after the first runs (2026-12-01)**, a variant, not the protocol's student:
  ``student-floor0.3`` — the student with σ floored at 0.3 in the bonus. The ``ctd+history``
  collective's σ is about 0.01 per dimension, so with the original's 1e-4 floor b(s, a)
  underflows to 0 for every action the student tries and ``student`` equals ``sac`` bit for
  bit (seed 0: the same evaluations to the last digit). 0.3 is about the spread of a SAC
  actor's early actions: a uniform-random action then scores about e^-8, one within 0.1 per
  dimension of the collective's about 0.8. ``student-none-floor0.3`` (seed 0): the same with
  the ``none`` collective as the teacher, which already solves button-press-v3 at step 0 while
  the ``ctd+history`` one scores 0.25 there — whether the shaping helps when its teacher is
  right.
* **Shared settings**: 500-step episodes (the collective's), batch 256, LayerNorm critics for
  the scratch methods (a finetuned critic keeps the collective's architecture), 4k random
  warm-up steps, no demonstrations, the same budget of 100k env steps, an evaluation at step 0
  and every 5k steps (ctdkit's official protocol, 20 episodes, held-out goals: evaluation
  seed 1000), ``--stop-at-success 0.9`` with patience 2.
* **Seeds**: 0, 1, 2 for sac, student and finetune-ctd; 0 for finetune-none. Seed s sets the
  SAC seed and the env seed.
* **Tasks**: (a) ``push-v3``, an MT10 task the collective was trained on, where plain SAC
  without demonstrations reached at most 0.40 in 590k steps here; (b) the held-out task chosen
  by the rule below.
* **Held-out rule** (``select``): walk the MT50 tasks outside MT10 in Meta-World's order; take
  the first whose scripted policy scores >= 0.95 on 50 held-out-goal episodes (official
  protocol, seed 1000) and on which plain SAC seed 0 — the pilot, which is also the ``sac``
  seed-0 run of that task — reaches 0.9 (two consecutive evaluations) within the budget. Every
  candidate examined is recorded in ``benchmarks/results/student_selection.json``.
* **Read-out** (``results``): steps_to_90 (steps_to_50) = the env step of the first of two
  consecutive evaluations at >= 0.9 (0.5); a seed that never gets there is ``null`` and counts
  as the full budget in medians. ``final_success`` is the last evaluation of each seed.

Every run resumes exactly (``train_student --resume``), so the study spans sessions: rerun the
same command. Runs live under ``--out``; the JSON goes to ``benchmarks/results/student.json``
with a markdown table and one PNG per task. The JSON keeps every seed's curve, so ``results`` on
another machine keeps the seeds folded there and adds the ones run here (a seed's curve from
its run folder when that got at least as far, else the committed one, said in one line).
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from ctdkit.envs import MT10
from ctdkit.envs.tasks import resolve_tasks
from ctdkit.eval.run import EvaluateConfig, run_evaluation
from ctdkit.experts import SACConfig
from ctdkit.files import read_json_object, write_json_atomic, write_text_atomic
from ctdkit.student import STD_FLOOR, TrainStudentConfig, train_student

METHODS = (
    "sac",
    "student",
    "finetune-ctd",
    "finetune-none",
    "student-floor0.3",
    "student-none-floor0.3",
)
BUDGET = 100_000
EVAL_EVERY, EVAL_EPISODES, EVAL_SEED = 5_000, 20, 1_000
STOP_AT = 0.9
CRITIC_ONLY_UPDATES = 5_000
SCRIPTED_EPISODES, SCRIPTED_BAR = 50, 0.95
TRAINED_TASK = "push-v3"
SEEDS = {
    "sac": (0, 1, 2),
    "student": (0, 1, 2),
    "finetune-ctd": (0, 1, 2),
    "finetune-none": (0,),
    "student-floor0.3": (0, 1, 2),
    "student-none-floor0.3": (0,),
}
#: the variant's σ floor in the bonus (the protocol's student keeps the original's 1e-4)
VARIANT_STD_FLOOR = 0.3
RESULTS = Path("benchmarks/results")


@dataclass
class Args:
    stage: Annotated[Literal["select", "run", "results"], tyro.conf.Positional]
    """select: apply the held-out rule; run: every run of both tasks; results: fold them."""
    ctd_collective: Path | None = None
    """The ctd-family collective (its encoder's CLS as context): the student's teacher and the
    finetune-ctd start."""
    none_collective: Path | None = None
    """The collective without context: the finetune-none start."""
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    """run: only these seeds (each method runs those of its own seeds that are named), so a
    session can finish the seeds a lost machine left unfinished without rerunning the rest."""
    tasks: tuple[Literal["trained", "held-out"], ...] = ("trained", "held-out")
    """run / results: the trained task (push), the held-out one, or both. The trained task's
    runs need no selection, so they can go first while the held-out rule is still walking."""
    out: Path = Path("runs/student-study")
    results: Path = RESULTS


def student_config(args: Args, method: str, task: str, seed: int) -> TrainStudentConfig:
    """One run of the study: the shared settings plus what the method changes."""
    none = method in ("finetune-none", "student-none-floor0.3")
    collective = args.none_collective if none else args.ctd_collective
    if collective is None:
        raise SystemExit(f"{method} needs --ctd-collective and --none-collective")
    out_dir = args.out / task / method / f"seed{seed}"
    return TrainStudentConfig(
        collective=collective,
        task=task,
        init="collective" if method.startswith("finetune") else "scratch",
        bonus_weight=1.0 if method.startswith("student") else 0.0,
        bonus_std_floor=VARIANT_STD_FLOOR if method.endswith("floor0.3") else STD_FLOOR,
        critic_only_updates=CRITIC_ONLY_UPDATES if method.startswith("finetune") else 0,
        total_steps=BUDGET,
        sac=shared_sac(method, seed),
        env_seed=seed,
        eval_every=EVAL_EVERY,
        eval_episodes=EVAL_EPISODES,
        eval_seed=EVAL_SEED,
        stop_at_success=STOP_AT,
        out_dir=out_dir,
        resume=(out_dir / "run.json").is_file(),
        progress=True,
    )


def shared_sac(method: str, seed: int) -> SACConfig:
    """The SAC settings every method shares (a finetuned critic keeps the collective's
    architecture, which has no LayerNorm)."""
    finetune = method.startswith("finetune")
    return SACConfig(batch_size=256, warmup_steps=4_000, critic_layer_norm=not finetune, seed=seed)


def run_one(args: Args, method: str, task: str, seed: int) -> list[dict[str, Any]]:
    """Train (or continue) one run; its evaluations."""
    config = student_config(args, method, task, seed)
    print(f"{task} {method} seed {seed} -> {config.out_dir}", flush=True)
    train_student(config)
    return evaluations(config.out_dir)


def evaluations(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "metrics.json"
    return read_json_object(path, str(path))["evaluations"] if path.is_file() else []


def steps_to(curve: list[dict[str, Any]], success: float) -> int | None:
    """Env step of the first of two consecutive evaluations at >= ``success``."""
    for before, after in itertools.pairwise(curve):
        if before["success"] >= success and after["success"] >= success:
            return int(before["env_steps"])
    return None


def select(args: Args) -> str | None:
    """Apply the held-out rule; every candidate examined is recorded as it finishes."""
    path = args.results / "student_selection.json"
    record = read_json_object(path, str(path)) if path.is_file() else {"candidates": []}
    record["rule"] = __doc__.split("* **Held-out rule**")[1].split("* **Read-out**")[0].strip()
    done = {c["task"]: c for c in record["candidates"]}
    for task in (t for t in resolve_tasks(("MT50",)) if t not in MT10):
        entry = done.get(task) or {"task": task}
        if "scripted" not in entry:
            summary = run_evaluation(
                EvaluateConfig(
                    agent="scripted",
                    tasks=(task,),
                    seeds=(EVAL_SEED,),
                    episodes=SCRIPTED_EPISODES,
                    out=args.out / "scripted" / task,
                    progress=False,
                )
            )
            entry["scripted"] = summary["mean_success"]
        if entry["scripted"] >= SCRIPTED_BAR and "pilot_steps_to_90" not in entry:
            curve = run_one(args, "sac", task, 0)
            entry["pilot_steps_to_90"] = steps_to(curve, STOP_AT)
            entry["pilot_final_success"] = curve[-1]["success"]
        done[task] = entry
        record["candidates"] = list(done.values())
        chosen = entry["scripted"] >= SCRIPTED_BAR and entry.get("pilot_steps_to_90") is not None
        record["selected"] = task if chosen else None
        write_json_atomic(path, record, indent=1)
        if chosen:
            print(f"held-out task: {task}")
            return task
    return None


def selected_task(args: Args) -> str:
    path = args.results / "student_selection.json"
    chosen = read_json_object(path, str(path)).get("selected") if path.is_file() else None
    if not chosen:
        raise SystemExit("no held-out task selected yet: run the `select` stage first")
    return chosen


def study_tasks(args: Args) -> tuple[str, ...]:
    """The tasks ``--tasks`` names (the held-out one only once selected: else an error)."""
    kinds = {"trained": lambda: TRAINED_TASK, "held-out": lambda: selected_task(args)}
    return tuple(kinds[kind]() for kind in args.tasks)


def run(args: Args) -> None:
    tasks = study_tasks(args)
    for seed in args.seeds:  # seed by seed: partial results stay balanced across methods
        for task in tasks:
            for method in args.methods:
                if seed in SEEDS[method]:
                    run_one(args, method, task, seed)


def committed_runs(args: Args) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Runs folded into ``student.json`` by an earlier session, keyed (task, method, seed).

    Their run folders need not exist here (a new machine): the JSON keeps each seed's curve and
    collective digest, which is all the read-out needs, so a study spread over sessions adds
    seeds without rerunning the ones it has."""
    path = args.results / "student.json"
    if not path.is_file():
        return {}
    runs = {}
    for row in read_json_object(path, str(path))["rows"]:
        digests = row.get("collective_sha256", {})
        for seed, curve in row["curves"].items():
            runs[row["task"], row["method"], int(seed)] = {
                "curve": [{"env_steps": int(s), "success": float(v)} for s, v in curve],
                "collective_sha256": digests.get(seed) if isinstance(digests, dict) else None,
            }
    return runs


def study_runs(args: Args, task: str, method: str) -> dict[int, dict[str, Any]]:
    """Each seed's curve and collective digest: from its run folder, or from the committed JSON
    where that got further (the folder was lost with an earlier machine, or is a fresh rerun
    still behind it)."""
    committed = committed_runs(args)
    runs = {}
    for seed in SEEDS[method]:
        out_dir = args.out / task / method / f"seed{seed}"
        curve, record = evaluations(out_dir), out_dir / "run.json"  # run.json: from the start
        fingerprint = read_json_object(record, str(record))["fingerprint"] if curve else None
        digest = fingerprint["student"]["collective_sha256"] if curve else None
        here = {"curve": curve, "collective_sha256": digest}
        earlier = committed.get((task, method, seed))
        other_collective = (
            method != "sac" and earlier and curve and earlier["collective_sha256"] != digest
        )
        if other_collective:  # another teacher: another experiment, whatever its length
            print(
                f"{task} {method} seed {seed}: this run's collective ({digest[:8]}) replaces the "
                f"committed curve's ({str(earlier['collective_sha256'])[:8]})"
            )
        elif earlier and len(earlier["curve"]) > len(curve):
            print(f"{task} {method} seed {seed}: from the committed results ({args.results})")
            here = earlier
        if here["curve"]:
            runs[seed] = here
    return runs


def results(args: Args) -> dict[str, Any]:
    rows = []
    for task in study_tasks(args):
        for method in args.methods:
            runs = study_runs(args, task, method)
            if not runs:
                continue
            curves = {s: r["curve"] for s, r in runs.items()}
            rows.append(
                {
                    "task": task,
                    "held_out": task != TRAINED_TASK,
                    "method": method,
                    "seeds": list(curves),
                    "steps_to_90": [steps_to(c, 0.9) for c in curves.values()],
                    "steps_to_50": [steps_to(c, 0.5) for c in curves.values()],
                    "success_at_0": [c[0]["success"] for c in curves.values()],
                    "final_success": [c[-1]["success"] for c in curves.values()],
                    "finished": [
                        c[-1]["env_steps"] >= BUDGET or steps_to(c, STOP_AT) is not None
                        for c in curves.values()
                    ],
                    "env_steps": BUDGET,
                    "curves": {
                        str(s): [[e["env_steps"], e["success"]] for e in c]
                        for s, c in curves.items()
                    },
                    "collective_sha256": {str(s): r["collective_sha256"] for s, r in runs.items()},
                }
            )
    study = {
        "settings": {
            "budget": BUDGET,
            "eval_every": EVAL_EVERY,
            "eval_episodes": EVAL_EPISODES,
            "eval_seed": EVAL_SEED,
            "stop_at_success": STOP_AT,
            "finetune_critic_only_updates": CRITIC_ONLY_UPDATES,
            "sac": dataclasses.asdict(shared_sac("sac", 0)),
        },
        "rows": rows,
    }
    write_json_atomic(args.results / "student.json", study, indent=1)
    write_text_atomic(args.results / "student.md", table(study))
    plot(study, args.results)
    return study


def _median_steps(values: list[int | None]) -> float:
    return statistics.median(BUDGET if v is None else v for v in values)


def table(study: dict[str, Any]) -> str:
    lines = [
        f"Budget {BUDGET // 1000}k env steps; official protocol, {EVAL_EPISODES} held-out-goal "
        f"episodes per evaluation every {EVAL_EVERY // 1000}k steps; steps to 90% / 50%: first "
        "of two consecutive evaluations at or above it (— never: counts as the budget in the "
        "median; a seed not finished shows how far it got, and its row's median waits for it); "
        "final success: each seed's last evaluation so far; the collective behind each row is "
        "listed under the table (plain SAC never consults it).",
        "",
        "| task | method | seeds | success at step 0 | steps to 50% | steps to 90% | median to "
        "90% | final success |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def steps(row: dict[str, Any], key: str) -> str:
        """Per seed; a seed not finished says how far it got instead of "never"."""
        shown = []
        for value, done, seed in zip(row[key], row["finished"], row["seeds"], strict=True):
            last = row["curves"][str(seed)][-1][0] // 1000
            never = "—" if done else f"(at {last}k)"
            shown.append(never if value is None else f"{value // 1000}k")
        return ", ".join(shown)

    for row in study["rows"]:
        task = row["task"] + (" (held out)" if row["held_out"] else "")
        median = _median_steps(row["steps_to_90"]) / 1000
        median = f"{median:.0f}k" if all(row["finished"]) else "running"
        lines.append(
            f"| {task} | {row['method']} | {len(row['seeds'])} | "
            f"{', '.join(f'{v:.2f}' for v in row['success_at_0'])} | "
            f"{steps(row, 'steps_to_50')} | {steps(row, 'steps_to_90')} | {median} | "
            f"{', '.join(f'{v:.2f}' for v in row['final_success'])} |"
        )
    lines += ["", *collectives(study)]
    return "\n".join(lines) + "\n"


def collectives(study: dict[str, Any]) -> list[str]:
    """One line per row that consults a collective: its sha256 (first 8) and the seeds it
    taught, so a row whose seeds had different collectives says so."""
    lines = []
    for row in (r for r in study["rows"] if r["method"] != "sac"):
        seeds_by_digest: dict[str, list[str]] = {}
        for seed, digest in row.get("collective_sha256", {}).items():
            seeds_by_digest.setdefault(str(digest)[:8], []).append(seed)
        used = "; ".join(f"`{d}` (seeds {', '.join(s)})" for d, s in seeds_by_digest.items())
        mixed = (
            " — **mixed: its seeds had different collectives**" if len(seeds_by_digest) > 1 else ""
        )
        lines.append(f"- {row['task']} {row['method']}: collective {used}{mixed}")
    return lines


def plot(study: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for task in dict.fromkeys(r["task"] for r in study["rows"]):
        figure, axis = plt.subplots(figsize=(6, 4))
        for index, row in enumerate(r for r in study["rows"] if r["task"] == task):
            color = f"C{index}"
            for seed, curve in row["curves"].items():
                steps, success = zip(*curve, strict=True)
                label = row["method"] if seed == str(row["seeds"][0]) else None
                axis.plot([s / 1000 for s in steps], success, color=color, label=label, alpha=0.8)
        axis.set(xlabel="env steps (k)", ylabel="success (held-out goals)", ylim=(-0.02, 1.02))
        axis.set_title(f"{task}: one line per seed")
        axis.legend()
        figure.tight_layout()
        figure.savefig(folder / f"student_{task.removesuffix('-v3')}.png", dpi=100)
        plt.close(figure)


def main(args: Args) -> None:
    if args.stage == "select":
        print(f"selected: {select(args)}")
    elif args.stage == "run":
        run(args)
    else:
        study = results(args)
        print(table(study), end="")


if __name__ == "__main__":
    main(tyro.cli(Args))
