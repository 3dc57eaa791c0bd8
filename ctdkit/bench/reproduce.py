"""``python -m ctdkit.bench reproduce --record FILE``: rerun one leaderboard row (its suite,
algorithm, data variant and seed, with this checkout's code) and say whether it agrees.

* **identical** — the rerun trained on data with the record's content checksum, and its data
  description, scores (per task, per evaluation seed, the curve) and final training metrics
  equal the record's. Expected on the platform the record was made on.
* **agrees** — not identical (another CPU rounds MuJoCo and numpy differently, so the data are
  at best *equivalent* to the recipe's and the weights drift), but every task's difference of
  success rates lies inside the pair's 95% interval (Newcombe's interval of a difference of two
  proportions, each over the record's episodes per task).
* **differs** — some task's difference lies outside its interval; the tasks are named
  (``python -m ctdkit.bench reproduce`` exits 1).

The record is untrusted input (checked as the leaderboard checks records); a record made with
other settings than this checkout's suite is refused before anything runs. The rerun is an
ordinary bench run under ``--out``: rerunning the command reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdkit.bench.records import checked_record, read_record
from ctdkit.bench.run import BenchRunConfig, plan, run_bench
from ctdkit.errors import CtdkitError
from ctdkit.eval.stats import difference_interval
from ctdkit.runs import differences

#: what "identical" compares of the data: its identity, not provenance fields (recipe checksum,
#: equivalence verdict, relabelled flag) that records gained later and older records lack
DATA_KEYS = ("id", "checksum", "subset_checksum", "tasks", "episodes", "rows")
#: what "identical" compares, beside the settings and the data: every result of the run
RESULT_KEYS = (
    "success_by_task",
    "success_by_eval_seed",
    "mean_success",
    "curve",
    "train_metrics",
    "steps",
)
#: settings that may differ between the record and its rerun: the local data's checksum
#: (another platform's rebuild has another one; the data check says how they relate)
DATA_SETTING = "dataset_checksum"


@dataclass
class ReproduceConfig:
    """Rerun the leaderboard row of one record and report whether it agrees."""

    record: Path
    """A bench record (e.g. benchmarks/leaderboard/records/mt10-expert/bc-oracle/all/seed0.json)."""
    out: Path = Path("runs/reproduce")
    """Where the rerun goes (an ordinary bench OUT: records, models, encoders)."""
    root: Path | None = None
    """Minari datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets); an absent
    dataset is built from its recipe."""
    device: str = "cpu"
    """Torch device of the rerun (`cpu`, `cuda`): another device is another platform."""
    threads: int = 1
    """Torch threads of the rerun (the records here were made with 1)."""
    progress: bool = True
    """Show progress bars."""


@dataclass(frozen=True)
class TaskAgreement:
    task: str
    committed: float
    rerun: float
    interval: tuple[float, float]  # 95% interval of committed - rerun

    @property
    def inside(self) -> bool:
        return self.interval[0] <= 0.0 <= self.interval[1]


@dataclass(frozen=True)
class Reproduction:
    verdict: str  # "identical", "agrees" or "differs"
    committed: dict[str, Any]
    rerun: dict[str, Any]
    episodes_per_task: int
    tasks: tuple[TaskAgreement, ...]

    def lines(self) -> list[str]:
        def describe(record: dict[str, Any]) -> str:
            data = record["dataset"]
            relation = data.get("data_equivalence", "its relation to the recipe not recorded")
            where = record.get("hardware", {}).get("cpu", "?")
            return f"data {str(data.get('checksum'))[:12]} ({relation}), {where}"

        lines = [
            f"committed: {self.committed['path']} — {describe(self.committed)}",
            f"rerun:     {self.rerun['path']} — {describe(self.rerun)}",
            f"{'task':<28} committed  rerun  difference [95% interval]",
        ]
        for t in self.tasks:
            mark = "" if t.inside else "  <- outside"
            lines.append(
                f"{t.task:<28} {t.committed:9.2f} {t.rerun:6.2f}  {t.committed - t.rerun:+.2f} "
                f"[{t.interval[0]:+.2f}, {t.interval[1]:+.2f}]{mark}"
            )
        n = self.episodes_per_task
        if self.verdict == "identical":
            lines.append("identical: same data checksum, same scores and training metrics")
        elif self.verdict == "agrees":
            lines.append(
                "agrees: not identical, but every per-task difference lies inside its 95% "
                f"interval ({n} episodes per task in each run)"
            )
        else:
            outside = ", ".join(t.task for t in self.tasks if not t.inside)
            lines.append(f"differs: {outside} outside the 95% interval ({n} episodes per task)")
        return lines


def load_committed(path: Path) -> dict[str, Any]:
    """The record at ``path``, checked; one line naming what is wrong otherwise."""
    record, problem = checked_record(path)
    if record is None:
        raise CtdkitError(f"{path} is not a usable bench record: {problem}")
    if record["status"] != "ok":
        raise CtdkitError(f"{path} records a failed run: there is no row to reproduce")
    return {**record, "path": str(path)}


def evaluated_episodes(record: dict[str, Any]) -> int:
    """Episodes per task behind ``success_by_task``: per evaluation seed, times the seeds."""
    evaluation = record.get("eval")
    if not isinstance(evaluation, dict):
        raise CtdkitError(f"{record['path']}: no 'eval' object saying how many episodes it ran")
    episodes, seeds = evaluation.get("episodes"), evaluation.get("seeds")
    if not isinstance(episodes, int) or episodes < 1 or not isinstance(seeds, list) or not seeds:
        raise CtdkitError(f"{record['path']}: 'eval' does not give episodes and seeds")
    return episodes * len(seeds)


def compare(committed: dict[str, Any], rerun: dict[str, Any]) -> Reproduction:
    """The verdict on ``rerun`` against ``committed`` (see the module docstring)."""
    n = evaluated_episodes(committed)
    if evaluated_episodes(rerun) != n:
        raise CtdkitError("the rerun evaluated another number of episodes than the record")
    if set(committed["success_by_task"]) != set(rerun["success_by_task"]):
        raise CtdkitError(
            f"{committed['path']} scores other tasks than its rerun: "
            f"{sorted(committed['success_by_task'])} vs {sorted(rerun['success_by_task'])}"
        )
    tasks = []
    for task, rate in committed["success_by_task"].items():
        other = rerun["success_by_task"][task]
        interval = difference_interval((round(rate * n), round(other * n)), (n, n))
        tasks.append(TaskAgreement(task, rate, other, interval))
    same_data = all(committed["dataset"].get(key) == rerun["dataset"].get(key) for key in DATA_KEYS)
    if same_data and all(committed.get(key) == rerun.get(key) for key in RESULT_KEYS):
        verdict = "identical"
    elif all(t.inside for t in tasks):
        verdict = "agrees"
    else:
        verdict = "differs"
    return Reproduction(verdict, committed, rerun, n, tuple(tasks))


def reproduce(config: ReproduceConfig) -> Reproduction:
    """Rerun the row of ``config.record`` under ``config.out`` and compare."""
    committed = load_committed(config.record)
    bench = BenchRunConfig(
        suite=committed["suite"],
        algos=(committed["algo"],),
        seeds=(committed["seed"],),
        variants=(committed["variant"],),
        out=config.out,
        workers=1,
        threads=config.threads,
        device=config.device,
        root=config.root,
        progress=config.progress,
    )
    pending, finished, _ = plan(bench)
    if len(pending) + len(finished) != 1:
        raise CtdkitError(
            f"suite {committed['suite']} no longer runs {committed['algo']} "
            f"{committed['variant']} seed {committed['seed']}"
        )
    planned = pending[0].settings() if pending else read_record(finished[0])["settings"]
    differ = differences(
        {k: v for k, v in committed["settings"].items() if k != DATA_SETTING},
        {k: v for k, v in planned.items() if k != DATA_SETTING},
    )
    if differ:
        raise CtdkitError(
            f"{config.record} was made with other settings than this checkout's suite "
            f"{committed['suite']} ({', '.join(differ)} differ): check out the commit that made it"
        )
    run_bench(bench)
    path = pending[0].record if pending else finished[0]
    rerun = read_record(path)
    if rerun is None or rerun["status"] != "ok":
        error = (rerun or {}).get("error", "unreadable record")
        raise CtdkitError(f"the rerun failed ({error}); its record: {path}")
    return compare(committed, {**rerun, "path": str(path)})
