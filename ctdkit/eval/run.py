"""Evaluate an agent over several seeds, one JSON per seed (a rerun skips finished seeds)."""

from __future__ import annotations

import dataclasses
import os
import platform
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Literal

from ctdkit.envs.tasks import resolve_tasks, task_set_name
from ctdkit.errors import CtdkitError
from ctdkit.eval.protocols import EvalResult, evaluate
from ctdkit.eval.stats import summarize
from ctdkit.files import read_json_object
from ctdkit.policies.agents import EvalAgent, RandomAgent, ScriptedAgent
from ctdkit.progress import progress_bar
from ctdkit.runs import check_count, check_same_settings, open_run

#: default evaluation seeds: goal variations apart from those of data collection and training,
#: which default to seed 0 (datasets, experts' runs, the pipeline)
HELD_OUT_SEEDS: tuple[int, ...] = (100,)


@dataclass
class EvaluateConfig:
    """Evaluate an agent on Meta-World tasks with one of the two protocols."""

    agent: Literal["scripted", "random", "collective", "sac"] = "scripted"
    """Agent to evaluate: Meta-World's scripted experts, random, a collective checkpoint or a
    SAC expert (deterministic actions)."""
    checkpoint: Path | None = None
    """Weights of a trained agent (`collective.pt` of `ctdkit.train_collective`, `expert.pt`
    of `ctdkit.train_expert`)."""
    tasks: tuple[str, ...] = ("MT10",)
    """Task set (MT10, MT50) and/or task names."""
    protocol: Literal["official", "all-goals"] = "official"
    """`official` = metaworld.evaluation; `all-goals` = each goal variation once."""
    seeds: tuple[int, ...] = HELD_OUT_SEEDS
    """Evaluation seeds: they choose the goal variations, so the default (100) is held out from
    the data and training seeds (0, 1, ...); each seed is one file in OUT."""
    episodes: int = 50
    """Episodes per task (official protocol)."""
    noise: float = 0.0
    """Gaussian action noise of the scripted agent."""
    out: Path = Path("runs/eval")
    """Directory for per-seed results and summary.json."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        check_count("--episodes", self.episodes)
        if not self.seeds:
            raise CtdkitError(
                "--seeds is empty: give at least one evaluation seed, e.g. --seeds 100"
            )
        if self.agent in ("collective", "sac") and self.checkpoint is None:
            raise CtdkitError(f"--agent {self.agent} needs --checkpoint PATH")
        resolve_tasks(self.tasks)


def evaluate_command(
    agent: str, checkpoint: Path, tasks: Sequence[str], seeds: Sequence[int] = HELD_OUT_SEEDS
) -> str:
    """The ``python -m ctdkit.evaluate`` line for a trained agent on its own tasks (printed
    at the end of training, so it can be pasted as is)."""
    name = task_set_name(tasks)
    named = list(tasks) if name in ("MT1", "custom") else [name]
    parts = ["python", "-m", "ctdkit.evaluate", "--agent", agent, "--checkpoint", str(checkpoint)]
    return shlex.join([*parts, "--tasks", *named, "--seeds", *map(str, seeds)])


def make_agent(config: EvaluateConfig, seed: int) -> EvalAgent:
    if config.agent == "scripted":
        return ScriptedAgent(noise=config.noise, seed=seed)
    if config.agent == "random":
        return RandomAgent(seed=seed)
    if config.agent == "sac":
        from ctdkit.policies.sac import SACAgent

        return SACAgent.load(config.checkpoint)
    from ctdkit.collective import CollectiveAgent, CollectiveSAC  # a later stage: import lazily

    return CollectiveAgent(CollectiveSAC.load(config.checkpoint))


def _fingerprint(config: EvaluateConfig) -> dict:
    fields = dataclasses.asdict(config)
    fields["checkpoint"] = None if config.checkpoint is None else str(config.checkpoint)
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in fields.items()
        if k not in ("seeds", "out", "progress")
    }


def _recorded(out: Path) -> dict | None:
    """The settings of an evaluation written before ``run.json``: those its files carry."""
    for path in sorted(out.glob("*-seed*.json")):
        config = read_json_object(path, str(path)).get("config")
        return config if isinstance(config, dict) else {}
    return None


def run_evaluation(config: EvaluateConfig) -> dict:
    """Evaluate every seed not already in ``config.out``, then write and return the summary."""
    if config.checkpoint is not None and not config.checkpoint.is_file():
        problem = "is a directory" if config.checkpoint.is_dir() else "does not exist"
        raise CtdkitError(
            f"--checkpoint {config.checkpoint} {problem}: pass the weights file "
            "(`expert.pt` of ctdkit.train_expert, `collective.pt` of ctdkit.train_collective)"
        )
    agents = {config.seeds[0]: make_agent(config, config.seeds[0])}  # a bad checkpoint: now
    settings = _fingerprint(config)
    results: list[EvalResult] = []
    with (
        open_run(
            config.out,
            settings,
            resume=None,  # a rerun always continues: finished seeds are read back
            overwrite=None,
            what="an evaluation",
            legacy=_recorded,
        ) as run,
        progress_bar(f"evaluate {config.agent}", len(config.seeds), config.progress) as advance,
    ):
        for seed in config.seeds:
            name = f"{config.protocol}-seed{seed}.json"
            path = run.file(name)
            if path.exists():
                saved = read_json_object(path, str(path))
                previous = saved.get("config")
                check_same_settings(
                    previous if isinstance(previous, dict) else {},
                    settings,
                    path,
                    resume=None,
                    overwrite=None,
                )
                results.append(EvalResult(**saved["result"]))
            else:
                kwargs = {"num_episodes": config.episodes} if config.protocol == "official" else {}
                agent = agents.pop(seed, None) or make_agent(config, seed)
                result = evaluate(agent, config.tasks, config.protocol, seed, **kwargs)
                record = {"config": settings, "result": dataclasses.asdict(result)}
                run.write_json(name, record, indent=None)
                results.append(result)
            advance(1)
        summary = summarize(results)
        summary |= {
            "config": settings,
            "versions": {p: version(p) for p in ("ctdkit", "metaworld", "gymnasium", "torch")},
            "hardware": {"machine": platform.machine(), "cpus": os.cpu_count()},
        }
        run.write_json("summary.json", summary)
    return summary
