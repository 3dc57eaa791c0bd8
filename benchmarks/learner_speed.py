"""Learner update speed, equal work side by side: ctdkit's collective learner vs. d3rlpy.

    python benchmarks/learner_speed.py --steps 100 --repeats 5 \\
        --json-out benchmarks/leaderboard/throughput/learner-cpu.json

Same data (reach + push, 10 scripted episodes each), same 300x300 networks, same batch (512),
1 torch thread. Two comparisons, each of the same work per update:

* **actor**: ours ``fit()`` with the critic off (one supervised step of the tanh-Gaussian
  actor toward the expert labels) vs. d3rlpy ``BC.fit()`` (one supervised step of its
  deterministic actor toward the dataset actions).
* **critic**: ours, the critic half of ``CollectiveSAC.update`` (TD target from a sampled next
  action and the min of the target twin critics, both heads regressed, Adam step, Polyak step)
  vs. d3rlpy SAC's ``update_critic`` + ``update_critic_target`` (the same, its target minus
  ``α log π(a'|s')``), each on batches from its own sampler — d3rlpy's ``fit()`` samples the
  same way. d3rlpy's whole ``SAC.fit()`` step also updates the actor through the critics and
  the temperature (about 1.5x the work of ours): it is not compared.

Per round every row runs ``steps`` updates, the rows interleaved (order rotated each round),
after ``warmup`` untimed updates; each ratio is taken within a round; median and spread over
``repeats`` rounds go to ``--json-out`` with the thread setting, the load average and the
command. ``benchmarks/render_figures.py`` writes the docs' figures from that file.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import timing  # before torch: pins OMP_NUM_THREADS
import torch
import tyro

from ctdkit.bench.algos import fit_quietly
from ctdkit.cli import quiet_d3rlpy
from ctdkit.collect import CollectConfig, collect
from ctdkit.collective import CollectiveSACConfig, make_context
from ctdkit.data import load_transitions, to_d3rlpy

warnings.filterwarnings("ignore")

HIDDEN = (300, 300)
ACTOR, D3_BC = "ours actor distillation fit()", "d3rlpy BC fit()"
CRITIC, D3_CRITIC = "ours critic update", "d3rlpy SAC critic update"
WORK = {
    ACTOR: "one supervised step of the tanh-Gaussian actor (μ and log σ heads, tanh(μ) MSE + "
    "0.2 × log σ MSE) on standardised observations, batch sampled by index",
    D3_BC: "one supervised step of d3rlpy's deterministic actor (tanh head, action MSE), "
    "batch from d3rlpy's transition sampler",
    CRITIC: "TD target from a sampled next action and min of the target twin critics, both "
    "heads regressed, Adam step, Polyak step",
    D3_CRITIC: "the same, its target also subtracting α log π(a'|s') (a few element-wise ops); "
    "d3rlpy sampler and mini-batch conversion as in its fit()",
}
RATIOS = {
    "actor: ours / d3rlpy BC fit()": (ACTOR, D3_BC),
    "critic: ours / d3rlpy SAC critic": (CRITIC, D3_CRITIC),
}


@dataclass
class Args:
    steps: int = 100
    """Timed updates per row and round."""
    repeats: int = 5
    """Rounds (each row once per round, interleaved)."""
    warmup: int = 20
    """Untimed updates per row before the first round."""
    batch_size: int = 512
    threads: int = 1
    """Torch intra-op threads (pinned)."""
    json_out: Path | None = None


def _ours_critic_steps(learner, tensors: dict[str, torch.Tensor], steps: int) -> None:
    """The critic half of ``CollectiveSAC.update`` (the learner has no critic-only step)."""
    for _ in range(steps):
        loss = learner.critic_loss(learner._batch(tensors))
        learner.critic_optim.zero_grad(set_to_none=True)
        loss.backward()
        learner.critic_optim.step()
        with torch.no_grad():
            torch._foreach_lerp_(
                list(learner.critic_target.parameters()),
                list(learner.critic.parameters()),
                learner.config.tau,
            )
        loss.item()


def _d3rlpy_critic_steps(algo, dataset, steps: int) -> None:
    """What d3rlpy's ``fit()`` does per step, less the actor and temperature updates."""
    from d3rlpy.torch_utility import TorchMiniBatch

    config, impl = algo.config, algo.impl
    impl.modules.set_train()
    for _ in range(steps):
        batch = TorchMiniBatch.from_batch(
            batch=dataset.sample_transition_batch(config.batch_size),
            gamma=config.gamma,
            compute_returns_to_go=algo.need_returns_to_go,
            device=algo._device,
            observation_scaler=config.observation_scaler,
            action_scaler=config.action_scaler,
            reward_scaler=config.reward_scaler,
        )
        impl.update_critic(batch)
        impl.update_critic_target()


def main(args: Args) -> dict:
    import d3rlpy
    from d3rlpy.models.encoders import VectorEncoderFactory

    quiet_d3rlpy()
    threads = timing.pin_threads(args.threads)
    record = timing.conditions(threads)
    with tempfile.TemporaryDirectory() as tmp:
        result = collect(
            CollectConfig(
                tasks=("reach-v3", "push-v3"),
                episodes_per_task=10,
                ref_episodes=0,
                root=Path(tmp),
                progress=False,
                dataset_id="bench/learner-v0",
            )
        )
        data = load_transitions(result.group_id, root=result.root)
    dataset = to_d3rlpy(data)
    nets = VectorEncoderFactory(list(HIDDEN))
    ours = dict(conditioning="none", hidden=HIDDEN, batch_size=args.batch_size)
    context = make_context("none", data)

    actor = CollectiveSACConfig(**ours, critic=False).create()
    actor.fit(data, args.warmup, context=context, progress=False)
    critic = CollectiveSACConfig(**ours, critic=True).create()
    critic.fit(data, 1, context=context, progress=False)  # builds it, fits obs_norm
    tensors = critic._tensors(data)
    _ours_critic_steps(critic, tensors, args.warmup)
    bc = d3rlpy.algos.BCConfig(batch_size=args.batch_size, encoder_factory=nets).create()
    fit_quietly(bc, dataset, args.warmup)
    sac = d3rlpy.algos.SACConfig(
        batch_size=args.batch_size, actor_encoder_factory=nets, critic_encoder_factory=nets
    ).create()
    sac.build_with_dataset(dataset)
    _d3rlpy_critic_steps(sac, dataset, args.warmup)

    steps = args.steps
    rows = {
        ACTOR: lambda: timing.timed_rate(lambda: actor.fit(data, steps, progress=False), steps),
        D3_BC: lambda: timing.timed_rate(lambda: fit_quietly(bc, dataset, steps), steps),
        CRITIC: lambda: timing.timed_rate(
            lambda: _ours_critic_steps(critic, tensors, steps), steps
        ),
        D3_CRITIC: lambda: timing.timed_rate(
            lambda: _d3rlpy_critic_steps(sac, dataset, steps), steps
        ),
    }
    print(
        f"{len(data)} transitions; batch {args.batch_size}; {HIDDEN[0]}x{HIDDEN[1]} nets; "
        f"torch threads {threads}; load average {record['load_average_start']}"
    )
    samples = timing.interleaved(rows, args.repeats)
    summaries = {name: timing.summary(rates) for name, rates in samples.items()}
    ratios = {name: timing.paired_ratio(samples[a], samples[b]) for name, (a, b) in RATIOS.items()}
    for name, s in summaries.items():
        print(f"{name:34s} {s['median']:8.1f} updates/s  [{s['min']:.1f}, {s['max']:.1f}]")
    for name, s in ratios.items():
        print(f"{name:34s} {s['median']:8.2f}x  [{s['min']:.2f}, {s['max']:.2f}]")
    out = {
        "benchmark": "learner_speed",
        **record,
        "load_average_end": timing.load_average(),
        "batch_size": args.batch_size,
        "hidden": list(HIDDEN),
        "transitions": len(data),
        "steps_per_round": steps,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "work": WORK,
        # medians (the leaderboard's throughput table reads these two)
        "updates_per_s": {name: s["median"] for name, s in summaries.items()},
        "ratios": {name: s["median"] for name, s in ratios.items()},
        "rows": summaries,
        "ratio_spread": ratios,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
