"""``python -m ctdkit.bench run``: train and evaluate every (algorithm, data variant, seed) of a
suite, one record each.

Plan → shared encoders (one per seed and data variant, for ``ctd`` conditioning) → runs, each
phase through :func:`ctdkit.parallel.parallel_map` (processes, or Ray). A run that raises
leaves an error record and the others go on; finished runs are skipped on rerun, so an
interrupted benchmark continues where it stopped. The slowest runs are scheduled first.

A suite with curve points (``Suite.curve_steps``) trains each run once to ``n_steps``, pausing
at every point: the learner's full training state (weights, optimisers, step counter, and the
global RNG streams d3rlpy samples from) is saved under ``OUT/checkpoints/``, then the weights
are evaluated and the RNG streams put back as they were before the evaluation, so the
evaluations change nothing in the training. A run killed after a point continues from it on
rerun (the same record as an uninterrupted run, apart from timings); without curve points an
interrupted run starts over.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ctdkit.bench import learners
from ctdkit.bench.algos import COLLECTIVE, COST, action_targets, parse_algo
from ctdkit.bench.conditioning import (
    EncoderJob,
    encoder_directory,
    is_done,
    train_shared_encoder,
)
from ctdkit.bench.data import check_dataset, episode_counts
from ctdkit.bench.records import (
    SCHEMA,
    environment,
    fingerprint,
    read_record,
    record_path,
    variant_name,
    write_record,
)
from ctdkit.bench.spec import RunSpec
from ctdkit.bench.suites import Suite, get_suite
from ctdkit.collective.config import ENCODER_CONDITIONINGS
from ctdkit.envs.tasks import resolve_tasks
from ctdkit.errors import CtdkitError, unknown
from ctdkit.files import read_json_object, write_json_atomic
from ctdkit.parallel import parallel_map
from ctdkit.runs import check_count, differences, different_config, lock_run

RECORDS, MODELS, ENCODERS, CHECKPOINTS = "records", "models", "encoders", "checkpoints"
#: a curve run's progress in its checkpoint folder (written last: it names the learner state)
PROGRESS_FILE = "progress.json"


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
    variants: tuple[str, ...] = ()
    """Data variants to run (`all`, or `ep<N>` for N episodes per task; default: the suite's)."""
    out: Path = Path("runs/bench")
    """Records go to OUT/records, shared encoders to OUT/encoders, weights to OUT/models, the
    training state of unfinished curve runs to OUT/checkpoints (removed when the run ends)."""
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
    """Rerun runs whose record (or curve checkpoint) was written with other settings
    (otherwise refused)."""
    dry_run: bool = False
    """Print the plan (finished / to run) and stop; builds nothing."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        suite = get_suite(self.suite)
        known = [variant_name(episodes) for episodes in suite.variants()]
        for variant in self.variants:
            if variant not in known:
                raise unknown(f"data variant of suite {self.suite}", variant, known)
        for algo in self.algos:
            parse_algo(algo)
        check_count("--workers", self.workers)
        check_count("--threads", self.threads)
        if self.backend not in ("local", "ray"):
            raise unknown("backend", self.backend, ("local", "ray"))


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
        if config.variants and variant_name(episodes) not in config.variants:
            continue
        for algo in algos:
            for seed in suite.seeds_for(algo.learner, seeds):
                job = None
                if algo.conditioning in ENCODER_CONDITIONINGS:
                    job = _encoder_job(config, suite, checksum, tasks, episodes, seed)
                variant = variant_name(episodes)
                models = config.out / MODELS / suite.name / algo.id / variant / f"seed{seed}"
                checkpoints = config.out / CHECKPOINTS / suite.name / algo.id / variant
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
                    checkpoint_dir=checkpoints / f"seed{seed}" if suite.curve_steps else None,
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
                saved = read_progress(spec.checkpoint_dir)
                if saved is not None and not config.overwrite:
                    differ = differences(saved.get("settings", {}), spec.fingerprinted())
                    if differ:
                        stale[spec.checkpoint_dir] = differ
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
            saved = read_progress(spec.checkpoint_dir)
            resumes = f" (continues from step {saved.get('steps')})" if saved else ""
            print(f"  to run: {spec.algo.id} {spec.variant} seed {spec.seed} -> {spec.record}"
                  f"{resumes}")  # fmt: skip
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
    if record["status"] != "ok" and spec.checkpoint_dir is not None:
        try:
            saved = read_progress(spec.checkpoint_dir)
        except CtdkitError:
            saved = None
        if saved is not None:  # a rerun continues from there
            where = str(spec.checkpoint_dir)
            record["checkpoint"] = {"directory": where, "steps": saved.get("steps")}
    record |= environment(spec.device)
    record.setdefault("seconds", {})["total"] = time.perf_counter() - started
    write_record(spec.record, record)
    if record["status"] == "ok" and spec.checkpoint_dir is not None:
        _remove_checkpoint(spec.checkpoint_dir)  # the record has it all
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
    """Train to ``n_steps`` (pausing at each curve point to save the training state and
    evaluate), evaluate the final weights; a run with a checkpoint continues from it."""
    from ctdkit.bench.conditioning import run_context
    from ctdkit.bench.data import select, transitions_checksum
    from ctdkit.data import load_transitions

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
    saved = _resume_point(spec)
    progress = saved or {
        "curve": [],
        "train_metrics": {},
        "seconds": {"train": 0.0, "curve_eval": 0.0, "checkpoint": 0.0},
        "resumed_at": [],
    }
    state = None if saved is None else spec.checkpoint_dir / saved["state"]
    if saved is not None:
        progress["resumed_at"].append(saved["steps"])
    stated: dict[str, Any] = {}  # what BC cloned (offline RL: always the executed actions)
    if spec.algo.learner == COLLECTIVE:
        learner = learners.CollectiveRunLearner(spec, data, context, state)
    else:
        targets = action_targets(spec.algo.learner, data.relabelled)
        step = 0 if saved is None else saved["steps"]
        learner = learners.D3rlpyRunLearner(spec, data, context, targets, state, step)
        if spec.algo.learner == "bc":
            stated["bc_targets"] = targets
    times = progress["seconds"]
    times["train"] += time.perf_counter() - clock

    rng = None if saved is None else saved["rng"]
    final: dict[str, dict[str, Any]] = {}
    for point in suite.points() if suite.curve_steps else (suite.n_steps,):
        if learner.step < point:
            clock = time.perf_counter()
            progress["train_metrics"] = learner.train(point - learner.step)
            times["train"] += time.perf_counter() - clock
            rng = _rng_state()  # the training's streams, put back after the evaluation
            if spec.checkpoint_dir is not None:
                clock = time.perf_counter()
                _save_checkpoint(spec, learner, progress, rng)
                times["checkpoint"] += time.perf_counter() - clock
        if point < suite.n_steps:
            if all(entry["steps"] != point for entry in progress["curve"]):
                entry = _evaluate_point(learner.agent(), data.tasks, spec, point)
                progress["curve"].append(entry)
                times["curve_eval"] += entry["eval_seconds"]
                _write_progress(spec, progress)
        else:
            if spec.model_dir is not None:
                clock = time.perf_counter()
                learner.save_model(spec.model_dir)
                times["train"] += time.perf_counter() - clock
            clock = time.perf_counter()
            agent = learner.agent()
            for protocol in suite.protocols():
                final[protocol] = _evaluate_point(agent, data.tasks, spec, point, protocol)
            seconds["eval"] = time.perf_counter() - clock
        if rng is not None:
            _set_rng_state(rng)

    main = final[suite.protocol]
    seconds["train"] = times["train"]
    if suite.curve_steps:
        seconds |= {"curve_eval": times["curve_eval"], "checkpoint": times["checkpoint"]}
    result = {
        "success_by_task": main["per_task"],
        "mean_success": main["mean_success"],
        "success_by_eval_seed": main.pop("per_eval_seed"),
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
        "train_metrics": progress["train_metrics"],
        "seconds": seconds,
    }
    if suite.has_curve:
        for entry in final.values():
            entry.pop("per_eval_seed", None)
        result["curve"] = [*progress["curve"], *final.values()]
    if progress["resumed_at"]:
        result["resumed_at"] = progress["resumed_at"]
    return result


def _evaluate_point(
    agent, tasks: tuple[str, ...], spec: RunSpec, steps: int, protocol: str | None = None
) -> dict[str, Any]:
    """One evaluation of the weights at ``steps`` on the run's eval seeds: a curve entry (the
    final point with `eval_episodes` under ``protocol``, a curve point with `curve_episodes`
    under the suite's protocol), with the success per eval seed for the record's top level."""
    from ctdkit.eval import evaluate

    suite = spec.suite
    final = steps == suite.n_steps
    protocol = protocol or suite.protocol
    episodes = suite.eval_episodes if final else suite.curve_episodes
    options = suite.eval_options(protocol, episodes)
    clock = time.perf_counter()
    per_seed, env_steps = {}, 0
    for eval_seed in suite.eval_seeds(spec.seed):
        result = evaluate(agent, tasks, protocol, eval_seed, **options)
        per_seed[str(eval_seed)] = result.success_by_task()
        if suite.has_curve:  # the scored episodes' env steps (interval width per env step)
            env_steps += sum(int(e["length"]) for e in result.episodes)
    success = {t: float(np.mean([s[t] for s in per_seed.values()])) for t in tasks}
    return {
        "steps": steps,
        "protocol": protocol,
        "episodes_per_task": episodes,
        "mean_success": float(np.mean(list(success.values()))),
        "per_task": success,
        "eval_seconds": time.perf_counter() - clock,
        "env_steps": env_steps,
        **({"per_eval_seed": per_seed} if final else {}),
    }


# ---------------------------------------------------------------------------- curve checkpoints
def read_progress(directory: Path | None) -> dict[str, Any] | None:
    """The progress of an unfinished curve run (None: no checkpoint)."""
    if directory is None or not (directory / PROGRESS_FILE).is_file():
        return None
    return read_json_object(directory / PROGRESS_FILE, f"checkpoint {directory}")


def _write_progress(spec: RunSpec, progress: dict[str, Any]) -> None:
    if spec.checkpoint_dir is not None:
        fingerprinted = spec.fingerprinted()
        write_json_atomic(
            spec.checkpoint_dir / PROGRESS_FILE,
            {"fingerprint": fingerprinted["fingerprint"], "settings": fingerprinted, **progress},
        )


def _save_checkpoint(spec: RunSpec, learner, progress: dict[str, Any], rng: dict) -> None:
    """The learner's full training state in a folder of its step, then the progress naming it
    (the commit point: a run killed in between continues from the previous point), then the
    previous state is removed."""
    name = f"step{learner.step}"
    target = spec.checkpoint_dir / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    learner.save_state(target)
    progress |= {"steps": learner.step, "state": name, "rng": rng}
    _write_progress(spec, progress)
    for old in spec.checkpoint_dir.glob("step*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def _remove_checkpoint(directory: Path) -> None:
    """Delete a run's checkpoint folder and the folders above it it leaves empty."""
    shutil.rmtree(directory, ignore_errors=True)
    for parent in directory.parents:
        if parent.name == CHECKPOINTS:
            break
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break


def _resume_point(spec: RunSpec) -> dict[str, Any] | None:
    """The checkpoint a run continues from, or None (a fresh start: a folder without progress,
    or of other settings, which `plan` let through only with --overwrite, is cleared)."""
    saved = read_progress(spec.checkpoint_dir)
    if saved is None or saved.get("fingerprint") != spec.fingerprinted()["fingerprint"]:
        if spec.checkpoint_dir is not None:
            shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)  # nothing to continue from
        return None
    keys = ("steps", "state", "rng", "curve", "train_metrics", "seconds", "resumed_at")
    missing = [k for k in keys if k not in saved]
    if missing or not (spec.checkpoint_dir / str(saved["state"])).is_dir():
        what = f"lacks {missing[0]!r}" if missing else f"lacks its state {saved['state']}"
        raise CtdkitError(
            f"checkpoint {spec.checkpoint_dir} {what}: delete the folder to start the run over"
        )
    return saved


def _rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's global RNG states as JSON (d3rlpy samples its batches from
    NumPy's and its policies' noise from torch's)."""
    import torch

    name, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(internal), python_gauss],
        "numpy": [name, keys.tolist(), int(position), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state().numpy().tobytes().hex(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.numpy().tobytes().hex() for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    def tensor(text: str):
        return torch.tensor(list(bytes.fromhex(text)), dtype=torch.uint8)

    version, internal, python_gauss = state["python"]
    random.setstate((version, tuple(internal), python_gauss))
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(tensor(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensor(s) for s in state["cuda"]])
