"""Encoder throughput, side by side in one run: ``TrajectoryEncoder.embed`` vs. the original's
forward ported op for op, on the same weights and inputs.

    python benchmarks/encoder_throughput.py --batch-sizes 1 256 4096 \\
        --json-out benchmarks/leaderboard/throughput/encoder-cpu-k20.json   # CPU, 1 thread
    python benchmarks/encoder_throughput.py --threads 2 --compile   # + torch.compile variant
    python benchmarks/encoder_throughput.py --device cuda --bf16 --batch-sizes 1 256 4096 65536

The reference is the original's forward as docs/method.md describes it, at its sizes (K=20,
d=32, 3 layers, 8 heads, FFN 128, 6-dim embedding): its input is the 21-dim compressed state
the original stored (``obs[0:18] ++ obs[36:39]``, sliced before timing, as its data came),
K−1 actions and rewards, no normalisation; separate per-modality embeddings, tokens interleaved
``s0, a0, r0, ..., s19`` with CLS last (59 tokens); ``nn.TransformerEncoder`` built as the
original built it (``batch_first=False``, post-LN, ReLU, PyTorch's defaults otherwise, so
whatever fast path PyTorch takes by default for that module), no mask, eval mode, under
``inference_mode``, float32. Its parameters are copied from the encoder (whose normalisation
is set to the identity so that both compute one function), and both outputs are checked equal
(within a tolerance) before anything is timed. Windows are full length (the reference cannot
take shorter ones). ``embed`` is timed end to end from raw numpy windows on CPU (input checks,
state slicing and normalisation included: more work than the reference's), from
device-resident tensors on CUDA. The attention kernels each path actually runs are read from
the torch profiler and printed.

Per batch size the rows (reference, ours, variants) are timed interleaved: ``repeats`` rounds,
each row once per round (order rotated), a sample being as many calls as last at least
``seconds_per_sample``; each ratio is taken within a round. Median and spread, the thread
setting (pinned), the load average and the command go to ``--json-out``;
``benchmarks/render_figures.py`` writes the docs' figures from that file.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import timing  # before torch: pins OMP_NUM_THREADS
import torch
import tyro
from torch import nn

from ctdkit.encoder import EncoderConfig, TrajectoryEncoder
from ctdkit.encoder.network import TrajectoryTransformer
from ctdkit.envs.observation import OBS_DIM
from ctdkit.policies.history import Windows

#: profiler op names that identify the attention implementation
ATTENTION_OPS = ("attention", "_transformer_encoder_layer_fwd", "_masked_softmax", "bernoulli")


@dataclass
class Args:
    device: str = "cpu"
    """Torch device (`cpu`, `cuda`)."""
    threads: int = 1
    """Torch intra-op threads (pinned; also OMP_NUM_THREADS)."""
    batch_sizes: tuple[int, ...] = (1, 256, 4096)
    """Windows per call."""
    repeats: int = 5
    """Rounds per batch size (every row once per round, interleaved)."""
    seconds_per_sample: float = 0.5
    """Each timed sample repeats its call until it lasts at least this long."""
    bf16: bool = False
    """Also time embed under bfloat16 autocast."""
    compile: bool = False
    """Also time embed with torch.compile (compiles first; tens of seconds on CPU)."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Encoder sizes (defaults: the original's d=32, 3 layers, 8 heads, FFN 128, K=20, 6-dim)."""
    tolerance: float = 1e-4
    """Largest allowed |ours - reference| of the float32 embeddings."""
    json_out: Path | None = None
    """Also write the results here."""


class OriginalEncoder(nn.Module):
    """The original's forward (see module docstring): compressed states in, no preprocessing."""

    def __init__(self, network: TrajectoryTransformer) -> None:
        super().__init__()
        config = network.config
        d = config.d_model
        self.window = config.window
        self.state_embedding = nn.Sequential(nn.Linear(network.state_dim, d), nn.LayerNorm(d))
        self.action_embedding = nn.Sequential(nn.Linear(network.action_dim, d), nn.LayerNorm(d))
        self.reward_embedding = nn.Sequential(nn.Linear(1, d), nn.LayerNorm(d))
        self.positional = nn.Embedding(config.window, d)
        self.cls_token = nn.Parameter(torch.full((d,), -2.0))
        layer = nn.TransformerEncoderLayer(d, config.n_heads, config.ffn, config.dropout)
        with warnings.catch_warnings():  # "enable_nested_tensor is True, but ...": the default
            warnings.simplefilter("ignore", UserWarning)
            self.transformer = nn.TransformerEncoder(layer, config.n_layers)
        self.cls_head = nn.Linear(d, config.embedding_dim)

    def copy_from(self, network: TrajectoryTransformer) -> OriginalEncoder:
        """Take every parameter from ``network`` (same layout, different names)."""
        with torch.no_grad():
            pairs = [
                (self.state_embedding, network.embed_state),
                (self.action_embedding, network.embed_action),
                (self.reward_embedding, network.embed_reward),
                (self.positional, network.position),
                (self.cls_head, network.embedding_head),
            ]
            pairs += list(zip(self.transformer.layers, network.layers, strict=True))
            for mine, theirs in pairs:
                mine.load_state_dict(theirs.state_dict())
            self.cls_token.copy_(network.cls)
        return self

    def forward(self, states, actions, rewards):
        """``(B, K, 21)`` states, ``(B, K-1, A)`` actions, ``(B, K-1)`` rewards -> ``(B, E)``."""
        position = self.positional.weight
        s = self.state_embedding(states) + position
        a = self.action_embedding(actions) + position[:-1]
        r = self.reward_embedding(rewards[..., None]) + position[:-1]
        batch = s.shape[0]
        interleaved = torch.stack([s[:, :-1], a, r], dim=2).reshape(
            batch, 3 * (self.window - 1), -1
        )
        cls = self.cls_token.expand(batch, 1, -1)
        tokens = torch.cat([interleaved, s[:, -1:], cls], dim=1)  # s0 a0 r0 ... s19 CLS
        out = self.transformer(tokens.transpose(0, 1))  # (N, B, d): batch_first=False
        return self.cls_head(out[-1])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sampler(call, batch: int, device: torch.device, seconds: float):
    """A function timing ``calls`` calls of ``call`` (enough to last ``seconds``, measured on a
    warm call) and returning windows per second."""
    call()  # warm-up (and compile)
    synchronize(device)
    start = time.perf_counter()
    call()
    synchronize(device)
    calls = max(1, math.ceil(seconds / (time.perf_counter() - start)))

    def sample() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            call()
        synchronize(device)
        return batch * calls / (time.perf_counter() - start)

    return sample


def attention_ops(call) -> list[str]:
    """Names of the attention-related ops one call runs (from the torch profiler)."""
    from torch.profiler import profile

    with profile() as prof:
        call()
    names = {event.key for event in prof.key_averages()}
    return sorted(n for n in names if any(op in n for op in ATTENTION_OPS))


def hardware(device: torch.device) -> str | None:
    """The GPU's name on CUDA (the CPU is in the run's conditions)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


def main(args: Args) -> dict:
    threads = timing.pin_threads(args.threads)
    record = timing.conditions(threads)
    device = torch.device(args.device)
    config = args.encoder
    encoder: TrajectoryEncoder = config.create(device=device)
    rng = np.random.default_rng(0)
    for name in ("state", "action", "reward"):  # the original did not normalise
        getattr(encoder.network, f"{name}_mean").zero_()
        getattr(encoder.network, f"{name}_std").fill_(1.0)
    reference = OriginalEncoder(encoder.network).copy_from(encoder.network).to(device).eval()
    print(
        f"torch {torch.__version__}; device {device} = {hardware(device) or record['hardware']}; "
        f"threads {threads} (OMP_NUM_THREADS={record['omp_num_threads']}); "
        f"load average {record['load_average_start']}"
    )
    print(f"encoder: K={config.window} d={config.d_model} layers={config.n_layers} "
          f"heads={config.n_heads} ffn={config.ffn} embedding={config.embedding_dim}")  # fmt: skip

    def make_windows(batch: int) -> tuple[Windows, tuple[torch.Tensor, ...]]:
        k = config.window
        observations = rng.normal(size=(batch, k, OBS_DIM)).astype(np.float32)
        actions = rng.uniform(-1, 1, size=(batch, k, config.action_dim)).astype(np.float32)
        rewards = rng.uniform(0, 10, size=(batch, k)).astype(np.float32)
        tensors = tuple(torch.from_numpy(x).to(device) for x in (observations, actions, rewards))
        compressed = (  # what the original stored: 21-dim states, K-1 actions and rewards
            tensors[0].index_select(-1, encoder.network.state_columns).contiguous(),
            tensors[1][:, :-1].contiguous(),
            tensors[2][:, :-1].contiguous(),
        )
        lengths = np.full(batch, k)
        if device.type == "cuda":  # device-resident inputs: time the model, not the copy
            return Windows(*tensors, torch.from_numpy(lengths).to(device)), compressed
        return Windows(observations, actions, rewards, lengths), compressed

    check, check_tensors = make_windows(512)
    ours = torch.as_tensor(encoder.embed(check, normalize=False)).float().cpu()
    with torch.inference_mode():
        theirs = reference(*check_tensors).float().cpu()
    error = (ours - theirs).abs().max().item()
    print(f"max |ours - reference| over 512 windows: {error:.2e} (tolerance {args.tolerance})")
    if error > args.tolerance:
        raise SystemExit("outputs differ: not timing")
    if args.bf16:
        low = torch.as_tensor(encoder.embed(check, normalize=False, bf16=True)).float().cpu()
        print(f"bf16 autocast: max |bf16 - fp32| {(low - theirs).abs().max().item():.2e}")

    variants = {"ours": {}}
    if args.bf16:
        variants["ours bf16"] = {"bf16": True}
    if args.compile:
        variants["ours compiled"] = {"compile": True}
        if args.bf16:
            variants["ours compiled bf16"] = {"compile": True, "bf16": True}
    batch_probe, tensors_probe = make_windows(256)
    print("attention ops, embed :", ", ".join(attention_ops(lambda: encoder.embed(batch_probe))))
    with torch.inference_mode():
        print("attention ops, reference:", ", ".join(attention_ops(lambda: reference(
            *tensors_probe))))  # fmt: skip
    for dropout in (None, 0.0):
        trainer = config.replace(attention_dropout=dropout).create(device=device)
        raw = (batch_probe.observations, batch_probe.actions, batch_probe.rewards)
        states, actions, rewards = trainer.network.features(
            *(torch.as_tensor(x, device=device) for x in raw)
        )
        lengths = torch.full((256,), config.window, device=device)

        def step(trainer=trainer, states=states, actions=actions, rewards=rewards, lengths=lengths):
            trainer.network.train()
            hidden = trainer.network.encode(states, actions, rewards, lengths, padded=True)
            hidden.sum().backward()

        label = "default (= dropout)" if dropout is None else dropout
        print(f"attention ops, training step (attention_dropout {label}):",
              ", ".join(attention_ops(step)))  # fmt: skip

    rows, spread = [], []
    for batch in args.batch_sizes:
        windows, tensors = make_windows(batch)

        @torch.inference_mode()
        def run_reference(tensors=tensors):
            return reference(*tensors)

        calls = {"reference": run_reference}
        for name, options in variants.items():
            calls[name] = lambda windows=windows, options=options: encoder.embed(
                windows, normalize=False, **options
            )
        samplers = {
            name: sampler(call, batch, device, args.seconds_per_sample)
            for name, call in calls.items()
        }
        print(f"batch {batch}:", flush=True)
        samples = timing.interleaved(samplers, args.repeats)
        summaries = {name: timing.summary(rates) for name, rates in samples.items()}
        ratios = {
            f"{name} / reference": timing.paired_ratio(samples[name], samples["reference"])
            for name in variants
        }
        rows.append({"batch": batch, **{name: s["median"] for name, s in summaries.items()}})
        spread.append({"batch": batch, "rows": summaries, "ratios": ratios})
        line = "  ".join(
            f"{name} {s['median']:.2f}x [{s['min']:.2f}, {s['max']:.2f}]"
            for name, s in ratios.items()
        )
        print(f"batch {batch:>6}: reference {summaries['reference']['median']:>10.0f}/s  {line}")
    result = {
        "benchmark": "encoder_throughput",
        **record,
        "load_average_end": timing.load_average(),
        "device": str(device),
        "hardware": hardware(device) or record["hardware"],
        "config": config.to_dict(),
        "max_abs_error": error,
        "repeats": args.repeats,
        "seconds_per_sample": args.seconds_per_sample,
        # medians per row (the leaderboard's throughput table reads these)
        "windows_per_second": rows,
        "spread": spread,
    }
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
