"""The learners a benchmark run trains, behind one small interface: ``step``, ``train(n)`` (n
more gradient steps), ``agent()`` (what the evaluator acts with), ``save_state`` (the full
training state a curve run continues from) and ``save_model`` (the final weights).

:class:`CollectiveRunLearner` wraps ctdkit's collective (``CollectiveSAC``);
:class:`D3rlpyRunLearner` wraps a d3rlpy algorithm built from the suite's settings
(:func:`ctdkit.bench.algos.d3rlpy_config`).
"""

from __future__ import annotations

from pathlib import Path

from ctdkit.bench.algos import ConditionedAgent, conditioned, d3rlpy_config, fit_quietly
from ctdkit.bench.conditioning import PrecomputedContext
from ctdkit.bench.data import conditioned_dataset
from ctdkit.bench.spec import RunSpec
from ctdkit.cli import quiet_d3rlpy


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


class CollectiveRunLearner:
    """A run's collective learner: ``train(n)`` takes n more steps (``CollectiveSAC.fit``),
    its full training state saved and loaded with ``CollectiveSAC.save``/``load``."""

    STATE = "collective.pt"

    def __init__(self, spec: RunSpec, data, context, state: Path | None = None):
        from ctdkit.collective import CollectiveSAC

        self.data, self.context = data, context
        if state is None:
            self.learner = collective_config(spec).create(device=spec.device)
        else:
            self.learner = CollectiveSAC.load(state / self.STATE, device=spec.device)
            if isinstance(context, PrecomputedContext):
                # the cached CLS rows (the same encoder): not a re-embedding of every row
                self.learner.context = context

    @property
    def step(self) -> int:
        return self.learner.step

    def train(self, n_steps: int) -> dict[str, float]:
        history = self.learner.fit(self.data, n_steps, context=self.context, progress=False)
        return history[-1] if history else {}

    def agent(self):
        from ctdkit.collective import CollectiveAgent

        return CollectiveAgent(self.learner)

    def save_state(self, directory: Path) -> None:
        self.learner.save(directory / self.STATE)

    def save_model(self, directory: Path) -> None:
        self.learner.save(directory / "collective.pt")


class D3rlpyRunLearner:
    """A run's d3rlpy algorithm. ``train(n)`` calls ``fit`` for n more steps: a built
    algorithm keeps its networks and optimisers, and its ``grad_step`` counts on (d3rlpy 2.8
    ``QLearningAlgoBase.fitter`` skips building; only the logger's epoch counter restarts).
    Its training state is ``save_model`` (every network and optimiser, with any LR scheduler)
    plus the step, restored with ``build_with_dataset``, ``load_model``, ``set_grad_step``."""

    def __init__(
        self,
        spec: RunSpec,
        data,
        context,
        targets: str = "actions",
        state: Path | None = None,
        step: int = 0,
    ):
        import d3rlpy

        suite = spec.suite
        self.spec, self.context = spec, context
        quiet_d3rlpy()  # hundreds of runs: their records hold what matters
        d3rlpy.seed(spec.seed)
        rows, next_rows = context.for_transitions(data)
        self.dataset = conditioned_dataset(data, rows, next_rows, suite.view, targets)
        inputs = conditioned(data.observations, rows, suite.view)
        self.algo = d3rlpy_config(
            spec.algo.learner,
            suite.hidden,
            suite.batch_size,
            inputs.mean(axis=0),
            inputs.std(axis=0),
            suite.reward_scale,
            {
                name: value
                for learner, name, value in suite.d3rlpy_options
                if learner == spec.algo.learner
            },
        ).create(device=spec.device)
        if state is not None:
            self.algo.build_with_dataset(self.dataset)
            self.algo.load_model(str(state / self.state_file))
            self.algo.set_grad_step(step)

    @property
    def state_file(self) -> str:
        return f"{self.spec.algo.learner}.pt"

    @property
    def step(self) -> int:
        return self.algo.grad_step

    def train(self, n_steps: int) -> dict[str, float]:
        # runs are counted by the benchmark's own progress bar
        metrics = fit_quietly(self.algo, self.dataset, n_steps)
        final = {k: float(v) for k, v in (metrics[-1][1] if metrics else {}).items()}
        return {k: v for k, v in final.items() if not k.startswith("time_")}  # losses only

    def agent(self):
        return ConditionedAgent(self.algo, self.context, self.spec.suite.view, self.spec.algo.id)

    def save_state(self, directory: Path) -> None:
        self.algo.save_model(str(directory / self.state_file))

    def save_model(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.algo.save(str(directory / f"{self.spec.algo.learner}.d3"))
