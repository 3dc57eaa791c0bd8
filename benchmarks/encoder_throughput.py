"""Encoder throughput, side by side in one run: ``TrajectoryEncoder.embed`` vs. a naive
reference reproducing the original's forward, on the same weights and inputs.

    python benchmarks/encoder_throughput.py                         # CPU, 1 thread
    python benchmarks/encoder_throughput.py --threads 2 --compile   # + torch.compile variant
    python benchmarks/encoder_throughput.py --device cuda --bf16 --batch-sizes 1 256 4096 65536

The reference is the original's forward as docs/method.md describes it: separate per-modality
embeddings, tokens interleaved ``s0, a0, r0, ..., s19`` with CLS last (59 tokens at K=20),
``nn.TransformerEncoder`` with ``batch_first=False``, post-LN, ReLU, no mask, eval mode,
``no_grad``, float32. Its parameters are copied from the encoder, and both outputs are checked
equal (within a tolerance) before anything is timed. Windows are full length (the reference
cannot take shorter ones). ``embed`` is timed end to end from numpy windows on CPU (input
checks included), from device-resident tensors on CUDA. Threads are pinned and reported; the
attention kernels each path actually runs are read from the torch profiler and printed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported; --threads overrides

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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
    min_seconds: float = 2.0
    """Time each measurement for at least this long (best of repeats)."""
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
    """The original's forward (see module docstring); preprocessing as ours (state slices and
    normalisation), so that both start from the same raw windows."""

    def __init__(self, network: TrajectoryTransformer) -> None:
        super().__init__()
        config = network.config
        d = config.d_model
        self.window = config.window
        for name in ("state_columns", "state_keep"):
            self.register_buffer(name, getattr(network, name).clone())
        for name in ("state", "action", "reward"):
            for stat in ("mean", "std"):
                self.register_buffer(f"{name}_{stat}", getattr(network, f"{name}_{stat}").clone())
        self.state_embedding = nn.Sequential(nn.Linear(network.state_dim, d), nn.LayerNorm(d))
        self.action_embedding = nn.Sequential(nn.Linear(network.action_dim, d), nn.LayerNorm(d))
        self.reward_embedding = nn.Sequential(nn.Linear(1, d), nn.LayerNorm(d))
        self.positional = nn.Embedding(config.window, d)
        self.cls_token = nn.Parameter(torch.zeros(d))
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, config.ffn, config.dropout, activation="relu", batch_first=False
        )
        self.transformer = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
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

    def forward(self, observations, actions, rewards):
        """Full windows: ``(B, K, obs)``, ``(B, K, A)``, ``(B, K)`` -> ``(B, E)``."""
        k = self.window
        states = observations.index_select(-1, self.state_columns)
        states = torch.where(self.state_keep, states, 0.0)
        states = (states - self.state_mean) / self.state_std
        actions = (actions[:, : k - 1] - self.action_mean) / self.action_std
        rewards = (rewards[:, : k - 1, None] - self.reward_mean) / self.reward_std
        position = self.positional.weight
        s = self.state_embedding(states) + position
        a = self.action_embedding(actions) + position[:-1]
        r = self.reward_embedding(rewards) + position[:-1]
        batch = s.shape[0]
        interleaved = torch.stack([s[:, :-1], a, r], dim=2).reshape(batch, 3 * (k - 1), -1)
        cls = self.cls_token.expand(batch, 1, -1)
        tokens = torch.cat([interleaved, s[:, -1:], cls], dim=1)  # s0 a0 r0 ... s19 CLS
        out = self.transformer(tokens.transpose(0, 1))  # (N, B, d): batch_first=False
        return self.cls_head(out[-1])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def windows_per_second(call, batch: int, device: torch.device, min_seconds: float) -> float:
    call()  # warm-up (and compile)
    synchronize(device)
    best = float("inf")
    spent, repeats = 0.0, 0
    while spent < min_seconds or repeats < 3:
        start = time.perf_counter()
        call()
        synchronize(device)
        elapsed = time.perf_counter() - start
        best, spent, repeats = min(best, elapsed), spent + elapsed, repeats + 1
    return batch / best


def attention_ops(call) -> list[str]:
    """Names of the attention-related ops one call runs (from the torch profiler)."""
    from torch.profiler import profile

    with profile() as prof:
        call()
    names = {event.key for event in prof.key_averages()}
    return sorted(n for n in names if any(op in n for op in ATTENTION_OPS))


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":")[1].strip() for line in cpuinfo if "model name" in line), "")
    return f"{model or platform.processor()} ({os.cpu_count()} logical CPUs)"


def main(args: Args) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = args.encoder
    encoder: TrajectoryEncoder = config.create(device=device)
    rng = np.random.default_rng(0)
    with torch.no_grad():  # non-trivial normalisation so that it is compared too
        for name in ("state", "action", "reward"):
            getattr(encoder.network, f"{name}_mean").normal_()
            getattr(encoder.network, f"{name}_std").uniform_(0.5, 2.0)
    reference = OriginalEncoder(encoder.network).copy_from(encoder.network).to(device).eval()
    print(
        f"torch {torch.__version__}; device {device} = {hardware(device)}; "
        f"threads {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})"
    )
    print(f"encoder: K={config.window} d={config.d_model} layers={config.n_layers} "
          f"heads={config.n_heads} ffn={config.ffn} embedding={config.embedding_dim}")  # fmt: skip

    def make_windows(batch: int) -> tuple[Windows, tuple[torch.Tensor, ...]]:
        k = config.window
        observations = rng.normal(size=(batch, k, OBS_DIM)).astype(np.float32)
        actions = rng.uniform(-1, 1, size=(batch, k, config.action_dim)).astype(np.float32)
        rewards = rng.uniform(0, 10, size=(batch, k)).astype(np.float32)
        tensors = tuple(torch.from_numpy(x).to(device) for x in (observations, actions, rewards))
        lengths = np.full(batch, k)
        if device.type == "cuda":  # device-resident inputs: time the model, not the copy
            return Windows(*tensors, torch.from_numpy(lengths).to(device)), tensors
        return Windows(observations, actions, rewards, lengths), tensors

    check, check_tensors = make_windows(512)
    ours = torch.as_tensor(encoder.embed(check, normalize=False)).float().cpu()
    with torch.no_grad():
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
    with torch.no_grad():
        print("attention ops, reference:", ", ".join(attention_ops(lambda: reference(
            *tensors_probe))))  # fmt: skip
    for dropout in (None, 0.0):
        trainer = config.replace(attention_dropout=dropout).create(device=device)
        states, actions, rewards = trainer.network.features(*tensors_probe)
        lengths = torch.full((256,), config.window, device=device)

        def step(trainer=trainer, states=states, actions=actions, rewards=rewards, lengths=lengths):
            trainer.network.train()
            hidden = trainer.network.encode(states, actions, rewards, lengths, padded=True)
            hidden.sum().backward()

        label = "default (= dropout)" if dropout is None else dropout
        print(f"attention ops, training step (attention_dropout {label}):",
              ", ".join(attention_ops(step)))  # fmt: skip

    rows = []
    for batch in args.batch_sizes:
        windows, tensors = make_windows(batch)
        with torch.no_grad():
            ref_rate = windows_per_second(
                lambda tensors=tensors: reference(*tensors), batch, device, args.min_seconds
            )
        row = {"batch": batch, "reference": ref_rate}
        for name, options in variants.items():
            row[name] = windows_per_second(
                lambda windows=windows, options=options: encoder.embed(
                    windows, normalize=False, **options
                ),
                batch,
                device,
                args.min_seconds,
            )
        rows.append(row)
        ratios = "  ".join(
            f"{name} {row[name]:>10.0f}/s ({row[name] / ref_rate:.2f}x)" for name in variants
        )
        print(f"batch {batch:>6}: reference {ref_rate:>10.0f}/s  {ratios}", flush=True)
    result = {
        "device": str(device),
        "hardware": hardware(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": config.to_dict(),
        "max_abs_error": error,
        "windows_per_second": rows,
    }
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
