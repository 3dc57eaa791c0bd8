"""``python -m ctdkit.bench run``: train and evaluate every (algorithm, data variant, seed) of a
suite, one record each.

Plan → shared encoders (one per seed and data variant, for ``ctd`` conditioning) → runs, each
phase through :func:`ctdkit.parallel.parallel_map` (processes, or Ray). A run that raises
leaves an error record and the others go on; finished runs are skipped on rerun, so an
interrupted benchmark continues where it stopped (a run is the unit: an interrupted run starts
over). The slowest runs are scheduled first.
"""

from __future__ import annotations

import dataclasses
import random
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ctdkit.bench.algos import COLLECTIVE, COST, Algo, action_targets, parse_algo
from ctdkit.bench.conditioning import EncoderJob, encoder_directory, is_done, train_shared_encoder
from ctdkit.bench.data import DatasetCheck, check_dataset, episode_counts
from ctdkit.bench.records import (
    SCHEMA,
    environment,
    fingerprint,
    read_record,
    record_path,
    variant_name,
    write_record,
)
from ctdkit.bench.suites import Suite, get_suite
from ctdkit.cli import quiet_d3rlpy
from ctdkit.collective.config import ENCODER_CONDITIONINGS
from ctdkit.envs.tasks import resolve_tasks
from ctdkit.errors import CtdkitError, unknown
from ctdkit.parallel import parallel_map
from ctdkit.runs import check_count, differences, different_config, lock_run

RECORDS, MODELS, ENCODERS = "records", "models", "encoders"


@dataclass
class BenchRunConfig:
    """Train and evaluate a suite's algorithms at equal budgets; one JSON record per run."""

    suite: str
    """Suite name (see `ctdkit.bench.suites`: tiny, mt10-expert, mt10-mixed, ...)."""
    algos: tuple[str, ...] = ()
    """Algorithm ids, `[learner-]conditioning` (e.g. ctd oracle history bc-none iql-ctd
    bc-history); default: the suite's."""
    seeds: tuple[int, ...] = ()
    """Run seeds (default: the suite's; a suite may run slow learners on fewer)."""
    out: Path = Path("runs/bench")
    """Records go to OUT/records, shared encoders to OUT/encoders, weights to OUT/models."""
    workers: int = 2
    """Parallel runs (processes, or Ray tasks)."""
    threads: int = 1
    """Torch threads per run (1 is the stable setting on small shared machines)."""
    backend: Literal["local", "ray"] = "local"
    """Where runs execute: local processes, or a Ray cluster (OUT must be shared storage)."""
    ray_address: str | None = None
    """Ray cluster address (default: start a local Ray)."""
    device: str = "cpu"
    """Torch device of every run, e.g. `cpu`, `cuda`."""
    root: Path | None = None
    """Minari datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    save_models: bool = True
    """Keep each run's final weights under OUT/models."""
    overwrite: bool = False
    """Rerun runs whose record was written with other settings (otherwise refused)."""
    dry_run: bool = False
    """Print the plan (finished / to run) and stop; builds nothing."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        get_suite(self.suite)
        for algo in self.algos:
            parse_algo(algo)
        check_count("--workers", self.workers)
        check_count("--threads", self.threads)
        if self.backend not in ("local", "ray"):
            raise unknown("backend", self.backend, ("local", "ray"))


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs (picklable: it travels to worker processes)."""

    suite: Suite
    algo: Algo
    seed: int
    episodes_per_task: int | None
    tasks: tuple[str, ...]
    dataset_checksum: str
    record: Path
    model_dir: Path | None
    encoder_dir: Path | None
    root: Path | None
    device: str = "cpu"
    threads: int = 1
    encoder_error: str | None = None
    data_check: DatasetCheck | None = None  # the data against its recipe (not a setting)

    @property
    def variant(self) -> str:
        return variant_name(self.episodes_per_task)

    def fingerprinted(self) -> dict[str, Any]:
        """The settings with the fingerprint a record carries (compared as one more key)."""
        settings = self.settings()
        return {"fingerprint": fingerprint(settings), **settings}

    def settings(self) -> dict[str, Any]:
        return {
            **self.suite.settings(),
            "tasks": list(self.tasks),
            "algo": self.algo.id,
            "seed": self.seed,
            "episodes_per_task": self.episodes_per_task,
            "dataset_checksum": self.dataset_checksum,
        }


@dataclass
class BenchRunResult:
    finished: list[Path]  # skipped: already done
    results: list[dict[str, Any]]  # one summary per run executed now


def encoder_settings(suite: Suite, seed: int) -> dict[str, Any]:
    from ctdkit.encoder import EncoderConfig

    return EncoderConfig(
        window=suite.encoder_window,
        view=suite.view,
        lr=suite.encoder_lr,
        batch_size=suite.encoder_batch_size,
        attention_dropout=0.0,  # keeps CPU attention on the fused kernel
        seed=seed,
    ).to_dict()


def _encoder_job(
    config: BenchRunConfig,
    suite: Suite,
    checksum: str,
    tasks: tuple[str, ...],
    episodes: int | None,
    seed: int,
) -> EncoderJob:
    """The shared encoder of the ctd-conditioned runs of one seed and data variant (keyed by
    the data it trains on, so a variant that keeps every episode shares the full data's)."""
    settings = encoder_settings(suite, seed)
    if episodes is not None:
        counts = episode_counts(suite.dataset_id, config.root)
        if all(n <= episodes for task, n in counts.items() if not tasks or task in tasks):
            episodes = None  # the subset is the whole dataset
    data_key = f"{checksum}|{','.join(tasks)}|{episodes}"
    directory = encoder_directory(
        config.out / ENCODERS, data_key, suite.view, settings, suite.encoder_steps, seed
    )
    return EncoderJob(
        directory=directory,
        dataset_id=suite.dataset_id,
        root=config.root,
        tasks=tasks,
        episodes_per_task=episodes,
        settings=settings,
        steps=suite.encoder_steps,
        device=config.device,
        threads=config.threads,
    )


def plan(config: BenchRunConfig) -> tuple[list[RunSpec], list[Path], list[EncoderJob]]:
    """Runs to execute (slowest first), records already finished, shared encoders to train."""
    suite = get_suite(config.suite)
    algos = [parse_algo(a) for a in (config.algos or suite.algos)]
    seeds = tuple(config.seeds or suite.seeds)
    tasks = resolve_tasks(suite.tasks) if suite.tasks else ()
    data_check = check_dataset(
        suite.dataset_id, config.root, suite.recipe, config.progress, build=not config.dry_run
    )
    checksum = data_check.checksum
    pending, finished, stale = [], [], {}
    jobs: dict[Path, EncoderJob] = {}
    for episodes in suite.variants():
        for algo in algos:
            for seed in suite.seeds_for(algo.learner, seeds):
                job = None
                if algo.conditioning in ENCODER_CONDITIONINGS:
                    job = _encoder_job(config, suite, checksum, tasks, episodes, seed)
                variant = variant_name(episodes)
                models = config.out / MODELS / suite.name / algo.id / variant / f"seed{seed}"
                spec = RunSpec(
                    suite=suite,
                    algo=algo,
                    seed=seed,
                    episodes_per_task=episodes,
                    tasks=tasks,
                    dataset_checksum=checksum,
                    record=record_path(config.out / RECORDS, suite.name, algo.id, variant, seed),
                    model_dir=models if config.save_models else None,
                    encoder_dir=None if job is None else job.directory,
                    root=config.root,
                    device=config.device,
                    threads=config.threads,
                    data_check=data_check,
                )
                existing = read_record(spec.record) if spec.record.exists() else None
                if existing is not None and existing["status"] == "ok":
                    recorded = {"fingerprint": existing["fingerprint"], **existing["settings"]}
                    differ = differences(recorded, spec.fingerprinted())
                    if not differ:
                        finished.append(spec.record)
                        continue
                    if not config.overwrite:
                        stale[spec.record] = differ
                        continue
                pending.append(spec)
                if job is not None and not is_done(job.directory):
                    jobs[job.directory] = job
    if stale:
        first, more = next(iter(stale.items())), len(stale) - 1
        where = f"{first[0]}" + (f" (and {more} more record(s))" if more else "")
        raise different_config(where, first[1], resume=None, overwrite=config.overwrite)
    pending.sort(key=lambda spec: -COST.get(spec.algo.learner, 1.0))  # longest first
    return pending, finished, list(jobs.values())


def run_bench(config: BenchRunConfig) -> BenchRunResult:
    """Plan, then train and evaluate what is not finished; OUT stays locked while it runs (a
    dry run only reads)."""
    if config.dry_run:
        return _run_bench(config)
    with lock_run(config.out, "a benchmark"):
        return _run_bench(config)


def _run_bench(config: BenchRunConfig) -> BenchRunResult:
    pending, finished, jobs = plan(config)
    print(
        f"suite {config.suite}: {len(pending) + len(finished)} runs ({len(finished)} finished, "
        f"{len(pending)} to run), {len(jobs)} shared encoder(s) to train"
    )
    if config.dry_run:
        for spec in pending:
            print(f"  to run: {spec.algo.id} {spec.variant} seed {spec.seed} -> {spec.record}")
        return BenchRunResult(finished, [])
    if not pending:
        return BenchRunResult(finished, [])
    if any(spec.algo.learner != COLLECTIVE for spec in pending):
        import d3rlpy  # noqa: F401  (once, before workers fork: its import is slow and chatty)
    options = dict(backend=config.backend, ray_address=config.ray_address, enabled=config.progress)
    failed = {}
    if jobs:
        errors = parallel_map(train_shared_encoder, jobs, config.workers, "encoders", **options)
        failed = {job.directory: e for job, e in zip(jobs, errors, strict=True) if e is not None}
    pending = [
        dataclasses.replace(spec, encoder_error=failed[spec.encoder_dir])
        if spec.encoder_dir in failed
        else spec
        for spec in pending
    ]
    results = parallel_map(
        execute_run,
        pending,
        config.workers,
        f"bench {config.suite}",
        done=len(finished),
        **options,
    )
    for result in results:
        if result["status"] == "ok":
            print(
                f"  {result['algo']:>14} {result['variant']:>5} seed {result['seed']}: "
                f"success {result['mean_success']:.3f} ({result['seconds']:.0f} s)"
            )
        else:
            print(f"  {result['algo']:>14} {result['variant']:>5} seed {result['seed']}: "
                  f"ERROR {result['error']} (record: {result['path']})")  # fmt: skip
    return BenchRunResult(finished, results)


# ---------------------------------------------------------------------------------- one run
def execute_run(spec: RunSpec) -> dict[str, Any]:
    """Train and evaluate one run and write its record; an exception becomes an error record
    (never raised), so one failing run does not stop the others."""
    import torch

    torch.set_num_threads(spec.threads)
    started = time.perf_counter()
    settings = spec.settings()
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "suite": spec.suite.name,
        "algo": spec.algo.id,
        "learner": spec.algo.learner,
        "conditioning": spec.algo.conditioning,
        "variant": spec.variant,
        "episodes_per_task": spec.episodes_per_task,
        "seed": spec.seed,
        "fingerprint": fingerprint(settings),
        "settings": settings,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        if spec.encoder_error is not None:
            raise CtdkitError(f"its shared encoder failed: {spec.encoder_error}")
        record |= {"status": "ok", **_train_and_evaluate(spec)}
    except Exception as error:
        record |= {
            "status": "error",
            "error": f"{type(error).__name__}: {error}".splitlines()[0],
            "traceback": traceback.format_exc(),
        }
    record |= environment(spec.device)
    record.setdefault("seconds", {})["total"] = time.perf_counter() - started
    write_record(spec.record, record)
    return {
        "path": str(spec.record),
        "algo": spec.algo.id,
        "variant": spec.variant,
        "seed": spec.seed,
        "status": record["status"],
        "mean_success": record.get("mean_success"),
        "error": record.get("error"),
        "seconds": record["seconds"]["total"],
    }


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _train_and_evaluate(spec: RunSpec) -> dict[str, Any]:
    from ctdkit.bench.conditioning import run_context
    from ctdkit.bench.data import select, transitions_checksum
    from ctdkit.data import load_transitions
    from ctdkit.eval import evaluate

    suite, seconds = spec.suite, {}
    clock = time.perf_counter()
    _seed_everything(spec.seed)
    full = load_transitions(suite.dataset_id, root=spec.root)
    if full.checksum != spec.dataset_checksum:
        raise CtdkitError(f"dataset {suite.dataset_id} changed since the run was planned")
    data = select(full, spec.tasks, spec.episodes_per_task)
    data_checksum = transitions_checksum(data)
    context, encoder_info = run_context(
        spec.algo.conditioning, data, data_checksum, spec.encoder_dir, spec.device
    )
    seconds["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stated: dict[str, Any] = {}  # what BC cloned (offline RL: always the executed actions)
    if spec.algo.learner == COLLECTIVE:
        agent, train_metrics = _train_collective(spec, data, context)
    else:
        targets = action_targets(spec.algo.learner, data.relabelled)
        agent, train_metrics = _train_d3rlpy(spec, data, context, targets)
        if spec.algo.learner == "bc":
            stated["bc_targets"] = targets
    seconds["train"] = time.perf_counter() - clock

    clock = time.perf_counter()
    per_seed = {}
    for eval_seed in suite.eval_seeds(spec.seed):
        result = evaluate(agent, data.tasks, suite.protocol, eval_seed, **suite.eval_options())
        per_seed[str(eval_seed)] = result.success_by_task()
    seconds["eval"] = time.perf_counter() - clock
    success = {t: float(np.mean([s[t] for s in per_seed.values()])) for t in data.tasks}
    return {
        "success_by_task": success,
        "mean_success": float(np.mean(list(success.values()))),
        "success_by_eval_seed": per_seed,
        "eval": {
            "protocol": suite.protocol,
            "seeds": list(suite.eval_seeds(spec.seed)),
            "episodes": suite.eval_episodes,
        },
        "dataset": {
            "id": suite.dataset_id,
            "checksum": full.checksum,
            "subset_checksum": data_checksum,
            "tasks": list(data.tasks),
            "episodes_per_task": spec.episodes_per_task,
            "episodes": data.num_episodes,
            "rows": len(data),
            "relabelled": data.relabelled,
            **(spec.data_check.record_fields() if spec.data_check else {}),
        },
        **stated,
        "encoder": encoder_info or None,
        "steps": suite.n_steps,
        "train_metrics": train_metrics,
        "seconds": seconds,
    }


def collective_config(spec: RunSpec):
    """The collective learner's config of a run: the suite's sizes, budgets and ablations."""
    from ctdkit.collective import CollectiveSACConfig

    suite = spec.suite
    return CollectiveSACConfig(
        conditioning=spec.algo.conditioning,
        view=suite.view,
        hidden=suite.hidden,
        actor_lr=suite.collective_lr,
        batch_size=suite.batch_size,
        critic=suite.collective_critic,
        seed=spec.seed,
        **dict(suite.collective_options),
    )


def _train_collective(spec: RunSpec, data, context):
    from ctdkit.collective import CollectiveAgent

    learner = collective_config(spec).create(device=spec.device)
    history = learner.fit(data, spec.suite.n_steps, context=context, progress=False)
    if spec.model_dir is not None:
        learner.save(spec.model_dir / "collective.pt")
    return CollectiveAgent(learner), history[-1] if history else {}


def _train_d3rlpy(spec: RunSpec, data, context, targets: str = "actions"):
    import d3rlpy

    from ctdkit.bench.algos import ConditionedAgent, conditioned, d3rlpy_config
    from ctdkit.bench.data import conditioned_dataset

    suite = spec.suite
    quiet_d3rlpy()  # hundreds of runs: their records hold what matters
    d3rlpy.seed(spec.seed)
    rows, next_rows = context.for_transitions(data)
    dataset = conditioned_dataset(data, rows, next_rows, suite.view, targets)
    inputs = conditioned(data.observations, rows, suite.view)
    algo = d3rlpy_config(
        spec.algo.learner,
        suite.hidden,
        suite.batch_size,
        inputs.mean(axis=0),
        inputs.std(axis=0),
        suite.reward_scale,
    ).create(device=spec.device)
    metrics = algo.fit(
        dataset,
        n_steps=suite.n_steps,
        n_steps_per_epoch=suite.n_steps,
        show_progress=False,  # runs are counted by the benchmark's own progress bar
        save_interval=10**9,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
        with_timestamp=False,
    )
    if spec.model_dir is not None:
        spec.model_dir.mkdir(parents=True, exist_ok=True)
        algo.save(str(spec.model_dir / f"{spec.algo.learner}.d3"))
    final = {k: float(v) for k, v in (metrics[-1][1] if metrics else {}).items()}
    final = {k: v for k, v in final.items() if not k.startswith("time_")}  # losses only
    return ConditionedAgent(algo, context, suite.view, spec.algo.id), final
