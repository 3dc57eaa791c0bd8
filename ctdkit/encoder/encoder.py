"""``TrajectoryEncoder``: the trained model and its state, assembled from one module per job.

d3rlpy-style: ``EncoderConfig(...).create(device)`` builds it, ``fit(transitions, n_steps)``
trains it (:mod:`ctdkit.encoder.training`), ``embed(windows)`` uses it
(:mod:`ctdkit.encoder.inference`), ``save``/``load`` move it with its config and the input
normalisation statistics (:mod:`ctdkit.encoder.persistence`).
"""

from __future__ import annotations

import torch

from ctdkit.encoder.config import EncoderConfig
from ctdkit.encoder.inference import EncoderInference
from ctdkit.encoder.network import TrajectoryTransformer
from ctdkit.encoder.persistence import EncoderPersistence
from ctdkit.encoder.training import EncoderTraining
from ctdkit.encoder.windows import EpisodeSplit
from ctdkit.policies.checkpoint import resolve_device


class TrajectoryEncoder(EncoderTraining, EncoderInference, EncoderPersistence):
    """A trajectory transformer mapping windows of ``(state, action, reward)`` to a task
    embedding. Build it with :meth:`EncoderConfig.create`."""

    def __init__(self, config: EncoderConfig, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = resolve_device(device)
        # the weights are initialised from config.seed in a forked RNG: the caller's global
        # RNGs are untouched (CPU only: the network is built on the CPU, CUDA RNGs stay as they are)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(config.seed)
            self.network = TrajectoryTransformer(config)
        self.network.to(self.device).eval()
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.lr)
        self.step = 0
        self.split: EpisodeSplit | None = None
        self.data: dict = {}  # id, checksum, episode count and view of the training data
        self.history: list[dict] = []
        self._numpy_rng_state: dict | None = None  # fit's generators, kept between calls
        self._torch_rng_state: dict | None = None
        self._compiled = None  # the torch.compile-d network of embed(compile=True)
