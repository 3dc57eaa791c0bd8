"""Benchmark suites: what is trained on, with which budgets, and how it is evaluated.

A suite fixes everything that must be equal across the algorithms it compares — one dataset
(a quality tier), the tasks, the observation view, the gradient-step budget, network sizes,
batch size, the encoder budget of ``ctd`` conditioning and the evaluation protocol — so a
leaderboard row differs from the next only by the algorithm. Suites live in code (``SUITES``)
and every record stores the settings it ran with.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Literal

from ctdkit.bench.algos import D3RLPY_LEARNERS
from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.errors import CtdkitError, unknown

#: the MT10 leaderboard budgets (see README "Benchmark"): ~1-2 h for a tier on 2 cores; the
#: `-50k` suites use LONG_BUDGET (below)
MT10_BUDGET: dict[str, Any] = dict(
    n_steps=5000,
    hidden=(256, 256),
    batch_size=256,
    encoder_steps=600,
    protocol="official",
    eval_episodes=10,
    eval_seeds_per_run=1,
)
#: the evaluation protocols of ``ctdkit.eval.protocols`` (not imported here: it loads Meta-World)
PROTOCOLS: tuple[str, ...] = ("official", "all-goals")
BASELINES = tuple(
    f"{learner}-{c}" for learner in ("bc", "iql", "td3bc", "cql") for c in ("none", "oracle", "ctd")
)
MT10_ALGOS = ("ctd", "oracle", "none", *BASELINES)


@dataclass(frozen=True)
class Suite:
    """One comparison: every algorithm gets the same data, budgets and evaluation."""

    name: str
    description: str
    dataset_id: str
    """Dataset group id (one quality tier); built from its recipe if absent."""
    tasks: tuple[str, ...] = ()
    """Tasks trained and evaluated on (a subset of the dataset's; empty: all of them)."""
    view: Literal["full", "goal-hidden"] = "full"
    """Observation view of every learner and of the ctd encoder."""
    n_steps: int = 5000
    """Gradient steps of every algorithm (equal budgets; the final weights are evaluated)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of every actor, critic and value network."""
    batch_size: int = 256
    encoder_steps: int = 600
    """Training steps of the trajectory encoder behind `ctd` conditioning (one per seed,
    shared by all ctd-conditioned algorithms of that seed)."""
    encoder_window: int = 20
    encoder_lr: float = 1e-3
    encoder_batch_size: int = 64
    collective_lr: float = 1e-3
    """Actor learning rate of the collective learner (d3rlpy algorithms keep their defaults)."""
    collective_critic: bool = False
    """Also train the collective learner's TD critic. Its actor loss never reads the critic, so
    the evaluated policy is the same either way; off saves half the update time."""
    collective_options: tuple[tuple[str, Any], ...] = ()
    """(field, value) pairs of ``CollectiveSACConfig`` changed for an ablation (e.g.
    ``("log_std_weight", 0.0)``); left out of the settings when empty, so the records of suites
    without ablations keep their fingerprints."""
    reward_scale: float = 1.0
    """Multiplies rewards for the d3rlpy algorithms (d3rlpy's MultiplyRewardScaler)."""
    d3rlpy_options: tuple[tuple[str, str, Any], ...] = ()
    """(learner, field, value) triples changing one d3rlpy config field of that learner from
    d3rlpy's default (e.g. ``("cql", "alpha_learning_rate", 0.0)``: a fixed conservative
    weight, as d3rlpy's and CORL's reference scripts run CQL); left out of the settings when
    empty, like `collective_options`."""
    protocol: Literal["official", "all-goals"] = "official"
    eval_episodes: int = 10
    """Episodes per task and eval seed (official) or the first N goal variations (all-goals)."""
    curve_steps: tuple[int, ...] = ()
    """Learning curve: gradient steps (increasing, below `n_steps`) at which the one training
    run pauses to evaluate its weights under `protocol` with `curve_episodes`, and saves its
    full training state (a killed run continues from the last). Empty: the final weights only;
    left out of the settings then, so such suites keep their record fingerprints."""
    curve_episodes: int = 10
    """Episodes per task (or goals, all-goals) at each curve point (the final point uses
    `eval_episodes`). In the settings only when `curve_steps` is set."""
    final_protocols: tuple[str, ...] = ()
    """Protocols the final weights are evaluated under, each with `eval_episodes` (e.g.
    `("official", "all-goals")`); must include `protocol`, whose result is the record's
    top-level success. Empty: `protocol` only (and left out of the settings)."""
    eval_seeds_per_run: int = 1
    eval_seed_base: int = 100
    """Run seed s is evaluated on seeds base + s * eval_seeds_per_run + i: held out from the
    data's collection seed (0), and different per run seed."""
    max_episode_steps: int = 500
    """Episode limit of the all-goals protocol (official episodes are Meta-World's 500)."""
    episodes_per_task: tuple[int, ...] = ()
    """Data-scaling suites: train on the first N episodes of each task, for each N (empty:
    the whole dataset)."""
    reference: str = "ctd"
    """The leaderboard's reference row: P(reference > row) is reported for every other row."""
    algos: tuple[str, ...] = MT10_ALGOS
    """Algorithms run when `--algos` is not given."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds run when `--seeds` is not given."""
    seed_limits: tuple[tuple[str, int], ...] = ()
    """(learner, n): run a learner on its first n seeds only (e.g. CQL, ~10x slower)."""
    recipe: str | None = None
    """`python -m ctdkit.collect ...` command building the dataset when it has no recipe in
    `datasets/*.toml` (the tiny test suite)."""

    def variants(self) -> tuple[int | None, ...]:
        """The data variants: None = all episodes, else episodes per task."""
        return self.episodes_per_task or (None,)

    def seeds_for(self, learner: str, seeds: tuple[int, ...]) -> tuple[int, ...]:
        limit = dict(self.seed_limits).get(learner)
        return seeds if limit is None else seeds[:limit]

    def eval_seeds(self, seed: int) -> tuple[int, ...]:
        first = self.eval_seed_base + seed * self.eval_seeds_per_run
        return tuple(range(first, first + self.eval_seeds_per_run))

    def eval_options(
        self, protocol: str | None = None, episodes: int | None = None
    ) -> dict[str, Any]:
        """Keyword arguments of ``ctdkit.eval.evaluate`` for ``protocol`` (default: the
        suite's) with ``episodes`` per task (default: `eval_episodes`)."""
        protocol = protocol or self.protocol
        episodes = episodes or self.eval_episodes
        if protocol == "official":
            return {"num_episodes": episodes}
        return {"goals": range(episodes), "max_episode_steps": self.max_episode_steps}

    @property
    def has_curve(self) -> bool:
        """Whether records carry a ``curve`` (curve points or several final protocols)."""
        return bool(self.curve_steps or self.final_protocols)

    def points(self) -> tuple[int, ...]:
        """The steps at which the weights are evaluated: the curve points, then `n_steps`."""
        return (*self.curve_steps, self.n_steps)

    def protocols(self) -> tuple[str, ...]:
        """The protocols of the final evaluation (`protocol` first)."""
        others = tuple(p for p in self.final_protocols if p != self.protocol)
        return (self.protocol, *others)

    def settings(self) -> dict[str, Any]:
        """What a run's result depends on (stored in records; compared on rerun). Options at
        their empty defaults are left out, so suites that do not use them keep the settings
        (and record fingerprints) they had before the options existed."""
        skip = {"name", "description", "reference", "algos", "seeds", "seed_limits", "recipe"}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}
        values["collective_options"] = dict(self.collective_options)
        values["d3rlpy_options"] = [list(option) for option in self.d3rlpy_options]
        for key in ("collective_options", "d3rlpy_options", "final_protocols"):
            if not values[key]:
                del values[key]
        if not self.curve_steps:
            del values["curve_steps"], values["curve_episodes"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def __post_init__(self) -> None:
        fields = {f.name for f in dataclasses.fields(CollectiveSACConfig)}
        for name, _ in self.collective_options:
            if name not in fields:
                raise unknown("collective option", name, sorted(fields))
        for learner, *_ in self.d3rlpy_options:
            if learner not in D3RLPY_LEARNERS:
                raise unknown("d3rlpy learner", learner, D3RLPY_LEARNERS)
        steps = (0, *self.curve_steps, self.n_steps)
        if any(a >= b for a, b in itertools.pairwise(steps)):
            raise CtdkitError(
                f"suite {self.name}: curve_steps {list(self.curve_steps)} must increase "
                f"strictly between 0 and n_steps {self.n_steps}"
            )
        if self.curve_episodes < 1:
            raise CtdkitError(f"suite {self.name}: curve_episodes must be > 0")
        for protocol in (self.protocol, *self.final_protocols):
            if protocol not in PROTOCOLS:
                raise unknown("evaluation protocol", protocol, PROTOCOLS)
        if self.final_protocols and (
            self.protocol not in self.final_protocols
            or len(set(self.final_protocols)) != len(self.final_protocols)
        ):
            raise CtdkitError(
                f"suite {self.name}: final_protocols {list(self.final_protocols)} must name "
                f"each protocol once, its protocol {self.protocol!r} among them"
            )


def _mt10(name: str, description: str, dataset_id: str, **changes: Any) -> Suite:
    options: dict[str, Any] = dict(MT10_BUDGET, seed_limits=(("cql", 1),))
    options.update(changes)
    return Suite(name=name, description=description, dataset_id=dataset_id, **options)


EXPERT, MIXED = "ctdkit/mt10-scripted-v0", "ctdkit/mt10-scripted-random0p5-v0"
NOISY = "ctdkit/mt10-scripted-noise0p5-v0"
EXPERT_MT50 = "ctdkit/mt50-scripted-v0"
#: MT50 costs 5x MT10 per evaluation: the collective's rows and the baselines with a one-hot
MT50_ALGOS = ("ctd", "oracle", "none", "bc-none", "bc-oracle", "iql-oracle", "td3bc-oracle",
              "cql-oracle")  # fmt: skip
#: the mixed and noisy tiers relabelled: the same acting data, the noise-free scripted expert's
#: label at every visited state (BC clones the labels, offline RL the executed actions)
MIXED_LABELLED = "ctdkit/mt10-scripted-random0p5-v1"
NOISY_LABELLED = "ctdkit/mt10-scripted-noise0p5-v1"
#: the labelled tiers add the raw-history conditioning (new suites; the others keep their rows)
LABELLED_ALGOS = (*MT10_ALGOS, "history", "bc-history")
#: conventional budgets with learning curves (issue 20): every row trained to 50k gradient steps
#: in one run, evaluated on the way at 5k, 10k and 25k (10 episodes per task) and at 50k (50
#: episodes per task, official and all-goals); every seed, CQL included
LONG_BUDGET: dict[str, Any] = dict(
    n_steps=50_000,
    curve_steps=(5000, 10_000, 25_000),
    curve_episodes=10,
    eval_episodes=50,
    final_protocols=("official", "all-goals"),
    seed_limits=(),
)
LONG_ALGOS = (
    "ctd",
    "history",
    "oracle",
    "none",
    "bc-oracle",
    "bc-none",
    "iql-oracle",
    "td3bc-oracle",
    "cql-oracle",
)
REPLAY = "ctdkit/reach-sac-online-v1"
#: the DAgger tier (`python -m ctdkit.dagger ... --export-dataset-id`): built by training
DAGGER = "ctdkit/mt10-dagger-history-v0"
#: one factor of the collective learner changed at a time toward d3rlpy BC's setting (suffix,
#: description, suite changes): BC has no log-std output, standardises with a 1e-3 epsilon and
#: no floor, and standardises the one-hot with the observations (our learner feeds it raw)
COLLECTIVE_ABLATIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("", "", {}),
    (
        "-no-log-std",
        "; ablation: no log-std term (the mean then trains exactly as a deterministic head)",
        {"collective_options": (("log_std_weight", 0.0),)},
    ),
    (
        "-std-floor",
        "; ablation: observation std floor 1e-3 instead of 0.05",
        {"collective_options": (("obs_std_floor", 1e-3),)},
    ),
    ("-lr3e-4", "; ablation: actor learning rate 3e-4 instead of 1e-3", {"collective_lr": 3e-4}),
    (
        "-context-std",
        "; ablation: the one-hot standardised with the observations, as d3rlpy's inputs",
        {"collective_options": (("normalize_context", True),)},
    ),
)
#: CQL as d3rlpy's and CORL's reference scripts run it, against our rows at d3rlpy's defaults
#: (whose conservative weight is tuned by a Lagrangian: docs/bench.md, "CQL configuration
#: check"): one seed each, the replay and the expert tier, the tier's own budget
FIXED_ALPHA = (("cql", "alpha_learning_rate", 0.0),)  # α = initial_alpha · 5, never updated
CQL_CHECKS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("-cql-fixed-alpha", "d3rlpy's reproduction: α fixed at 5", {"d3rlpy_options": FIXED_ALPHA}),
    (
        "-cql-corl",
        "CORL's MuJoCo settings where they differ: α fixed at 10, actor and temperature "
        "learning rates 3e-5",
        {
            "d3rlpy_options": (
                *FIXED_ALPHA,
                ("cql", "conservative_weight", 10.0),
                ("cql", "actor_learning_rate", 3e-5),
                ("cql", "temp_learning_rate", 3e-5),
            )
        },
    ),
    (
        "-cql-fixed-alpha-reward0p1",
        "α fixed at 5 and rewards x0.1 (Q in the tens, not the hundreds)",
        {"d3rlpy_options": FIXED_ALPHA, "reward_scale": 0.1},
    ),
)

_SUITES: list[Suite] = [
    Suite(
        name="tiny",
        description="Smoke test: reach + push, tiny budgets, 3 goals x 60 steps per task.",
        dataset_id="ctdkit/bench-tiny-v0",
        n_steps=100,
        hidden=(32, 32),
        batch_size=64,
        encoder_steps=10,
        encoder_window=5,
        encoder_batch_size=16,
        protocol="all-goals",
        eval_episodes=3,
        max_episode_steps=60,
        algos=("ctd", "bc-none"),
        seeds=(0, 1),
        recipe=(
            "python -m ctdkit.collect --tasks reach-v3 push-v3 --episodes-per-task 4 "
            "--max-episode-steps 60 --noise 0.3 --seed 0 --ref-episodes 0 --workers 1 "
            "--dataset-id ctdkit/bench-tiny-v0"
        ),
    ),
    _mt10("mt10-expert", "MT10, noise-free scripted experts (expert tier).", EXPERT),
    _mt10(
        "mt10-mixed",
        "MT10, half random / half expert episodes per task (mixed tier).",
        MIXED,
    ),
    _mt10("mt10-noisy", "MT10, scripted experts with action noise σ=0.5 (noisy tier).", NOISY),
    _mt10(
        "mt10-mixed-labelled",
        "MT10 mixed tier relabelled: half random / half expert episodes per task, every visited "
        "state labelled by the noise-free scripted expert whoever acted (BC clones the labels, "
        "offline RL the executed actions).",
        MIXED_LABELLED,
        algos=LABELLED_ALGOS,
    ),
    _mt10(
        "mt10-expert-50k",
        "MT10 expert tier at a conventional budget: 50k gradient steps per row, learning "
        "curve at 5k / 10k / 25k (10 episodes per task), final weights at 50k under the "
        "official and all-goals protocols (50 episodes per task), 3 seeds, CQL included.",
        EXPERT,
        algos=LONG_ALGOS,
        **LONG_BUDGET,
    ),
    _mt10(
        "mt10-mixed-labelled-50k",
        "MT10 mixed tier relabelled (BC clones the scripted expert's labels, offline RL the "
        "executed actions) at a conventional budget: 50k gradient steps per row, learning "
        "curve at 5k / 10k / 25k (10 episodes per task), final weights at 50k under the "
        "official and all-goals protocols (50 episodes per task), 3 seeds, CQL included.",
        MIXED_LABELLED,
        algos=LONG_ALGOS,
        **LONG_BUDGET,
    ),
    _mt10(
        "mt10-noisy-labelled",
        "MT10 noisy tier relabelled: scripted experts acting with noise σ=0.5, every visited "
        "state labelled by the noise-free scripted expert (BC clones the labels, offline RL the "
        "executed actions).",
        NOISY_LABELLED,
        algos=LABELLED_ALGOS,
    ),
    _mt10(
        "mt10-dagger",
        "MT10 DAgger tier: rounds 0-3 of the history collective's DAgger run (noisy expert, "
        "then the expert/collective mixture), every visited state labelled by the noise-free "
        "scripted expert (BC clones the labels, offline RL the executed actions).",
        DAGGER,
        algos=LABELLED_ALGOS,
    ),
    _mt10(
        "mt50-expert",
        "MT50, noise-free scripted experts (expert tier, 20 episodes per task): the MT10 "
        "budgets on all 50 tasks, one seed.",
        EXPERT_MT50,
        algos=MT50_ALGOS,
        seeds=(0,),
    ),
    _mt10(
        "mt10-expert-goal-hidden",
        "MT10 expert tier, goal slice hidden from every learner and the encoder.",
        EXPERT,
        view="goal-hidden",
    ),
    _mt10(
        "mt10-mixed-goal-hidden",
        "MT10 mixed tier, goal slice hidden from every learner and the encoder.",
        MIXED,
        view="goal-hidden",
    ),
    _mt10(
        "reach-replay",
        "reach-v3, the whole training replay of a SAC expert (replay tier, D4RL medium-replay "
        "style): one task, so no conditioning; offline RL against BC on mixed-quality data.",
        REPLAY,
        eval_episodes=50,
        algos=("none", "bc-none", "iql-none", "td3bc-none", "cql-none"),
        reference="bc-none",
    ),
    _mt10(
        "mt10-scaling",
        "MT10 expert tier: success vs. episodes per task (first N of each task's 20).",
        EXPERT,
        episodes_per_task=(5, 10, 20),
        algos=("ctd", "bc-none", "bc-ctd"),
    ),
    *(
        _mt10(
            f"mt10-expert-e50{suffix}",
            "MT10 expert tier, 50 episodes per task: the collective learner against d3rlpy BC, "
            f"both with the one-hot (why the collective trailed BC){note}.",
            EXPERT,
            eval_episodes=50,
            algos=("oracle", "bc-oracle") if not suffix else ("oracle",),
            reference="bc-oracle" if not suffix else "oracle",
            **changes,
        )
        for suffix, note, changes in COLLECTIVE_ABLATIONS
    ),
    *(
        _mt10(
            f"{tier}{suffix}",
            f"CQL configuration check on the {tier} suite's data and budget: {note}.",
            dataset,
            algos=(algo,),
            reference=algo,
            seeds=(0,),
            **extra,
            **changes,
        )
        for tier, dataset, algo, extra in (
            ("reach-replay", REPLAY, "cql-none", {"eval_episodes": 50}),
            ("mt10-expert", EXPERT, "cql-oracle", {}),
        )
        for suffix, note, changes in CQL_CHECKS
    ),
]
SUITES: dict[str, Suite] = {suite.name: suite for suite in _SUITES}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise unknown("suite", name, SUITES)
    return SUITES[name]
