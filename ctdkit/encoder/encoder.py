"""``TrajectoryEncoder``: training (``fit``), embedding (``embed``) and persistence.

d3rlpy-style: ``EncoderConfig(...).create(device)`` builds it, ``fit(transitions, n_steps)``
trains it, ``embed(windows)`` uses it, ``save``/``load`` move it with its config and the input
normalisation statistics. The update math is :meth:`TrajectoryEncoder.update` (losses in
:mod:`ctdkit.encoder.losses`).

Reproducibility: the weights are initialised from ``config.seed``; ``fit`` draws windows from
its own numpy generator and masks/dropout from a forked torch RNG whose states are kept on the
encoder and in checkpoints, so the same seed gives the same weights, and a run resumed from a
checkpoint continues exactly as if it had not stopped. The caller's global RNGs are untouched.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ctdkit.data import Transitions
from ctdkit.encoder.config import ARCHITECTURE_FIELDS, EncoderConfig
from ctdkit.encoder.losses import bert_mask, info_nce, masked_mse
from ctdkit.encoder.network import TrajectoryTransformer
from ctdkit.encoder.windows import (
    EpisodeSplit,
    EpisodeTable,
    PairBatch,
    Windows,
    WindowSampler,
    gather_windows,
    split_episodes,
)
from ctdkit.envs.observation import OBS_DIM
from ctdkit.errors import CtdkitError
from ctdkit.files import write_atomic
from ctdkit.policies.checkpoint import (
    ENCODER,
    check_checkpoint,
    checkpoint_damaged,
    read_checkpoint,
    resolve_device,
)
from ctdkit.progress import progress_bar

CHECKPOINT_FORMAT = ENCODER.format
CHECKPOINT_GLOB = "step_*.pt"
#: checkpoints kept in a checkpoint directory (older ones are deleted)
CHECKPOINTS_KEPT = 2
#: default windows per forward pass in ``embed``: on a CPU, chunks much larger than this fall
#: out of cache (measured: 4096 at once ran at ~0.65x the rate of 256-window chunks)
EMBED_BATCH_CPU = 256
EMBED_BATCH_GPU = 16384


@dataclass
class _TrainingData:
    """Normalised features of every row, resident on the training device."""

    states: torch.Tensor  # (rows, S)
    actions: torch.Tensor  # (rows, A)
    rewards: torch.Tensor  # (rows, 1)
    episode_task: torch.Tensor | None  # (episodes,) task of each episode (label-aware only)


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint with the highest step in ``directory`` (None if there is none)."""
    paths = sorted(Path(directory).glob(CHECKPOINT_GLOB))
    return paths[-1] if paths else None


class TrajectoryEncoder:
    """A trajectory transformer mapping windows of ``(state, action, reward)`` to a task
    embedding. Build it with :meth:`EncoderConfig.create`."""

    def __init__(self, config: EncoderConfig, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = resolve_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(config.seed)  # CPU only: CUDA RNGs untouched
            self.network = TrajectoryTransformer(config)
        self.network.to(self.device).eval()
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.lr)
        self.step = 0
        self.split: EpisodeSplit | None = None
        self.data: dict = {}  # id, checksum, episode count and view of the training data
        self.history: list[dict] = []
        self._numpy_rng_state: dict | None = None
        self._torch_rng_state: dict | None = None
        self._compiled = None

    # ----- training -----------------------------------------------------------------------
    def fit(
        self,
        transitions: Transitions,
        n_steps: int,
        *,
        progress: bool = True,
        checkpoint_dir: Path | None = None,
        checkpoint_every: int = 0,
        log_every: int = 100,
    ) -> list[dict]:
        """Train ``n_steps`` more updates on the training episodes of ``transitions``.

        The first call fixes the episode split and the normalisation statistics (training
        episodes only); later calls (or a resumed checkpoint) must get the same data. With
        ``checkpoint_dir`` and ``checkpoint_every``, the full training state is saved every
        ``checkpoint_every`` steps (see :meth:`load` and :func:`latest_checkpoint` to resume).
        Returns the logged losses of this call. In ``label-free`` mode ``task_index`` is never
        read (it may be None).
        """
        if n_steps < 0:
            raise CtdkitError(f"n_steps must be non-negative, got {n_steps}")
        table = self._attach(transitions)
        data = self._training_data(transitions, table)
        sampler = WindowSampler(
            table,
            self.split.train,
            self.config.window,
            self.config.min_window,
            self.config.positives,
        )
        rng = np.random.default_rng([self.config.seed, 1])
        if self._numpy_rng_state is not None:
            rng.bit_generator.state = self._numpy_rng_state
        logged: list[dict] = []
        sums: dict[str, torch.Tensor] = {}
        count = 0
        started = time.perf_counter()
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        self.network.train()
        with (
            torch.random.fork_rng(devices=cuda),
            progress_bar("encoder", n_steps, enabled=progress) as advance,
        ):
            self._restore_torch_rng(cuda)
            for i in range(n_steps):
                losses = self.update(sampler.sample(rng, self.config.batch_size), data)
                self.step += 1
                count += 1
                for key, value in losses.items():
                    sums[key] = sums[key] + value if key in sums else value
                if self.step % log_every == 0 or i == n_steps - 1:
                    entry = {"step": self.step}
                    entry.update({k: float(v) / count for k, v in sums.items()})
                    entry["seconds"] = time.perf_counter() - started
                    logged.append(entry)
                    self.history.append(entry)
                    sums, count = {}, 0
                if (
                    checkpoint_dir is not None
                    and checkpoint_every
                    and (self.step % checkpoint_every == 0)
                ):
                    self._keep_rng(rng, cuda)
                    self.save_checkpoint(checkpoint_dir)
                advance(1)
            self._keep_rng(rng, cuda)
        self.network.eval()  # dropout only inside fit
        return logged

    def update(self, batch: PairBatch, data: _TrainingData) -> dict[str, torch.Tensor]:
        """One gradient step on ``B`` pairs of windows (both views in one forward pass)::

            L = rec(view a) + rec(view b) + contrastive_weight · InfoNCE(z_a, z_b)

        ``rec`` sums :func:`masked_mse` over state, action (and reward) tokens.
        """
        cfg, net = self.config, self.network
        rows = torch.from_numpy(np.concatenate([batch.rows_a, batch.rows_b])).to(self.device)
        lengths = torch.from_numpy(np.concatenate([batch.lengths_a, batch.lengths_b]))
        lengths = lengths.to(self.device)
        states, actions, rewards = data.states[rows], data.actions[rows], data.rewards[rows]
        step = torch.arange(cfg.window, device=self.device)
        state_valid = step < lengths[:, None]
        transition_valid = step < (lengths - 1)[:, None]  # last step's action is not an input
        masked_states, state_sel = bert_mask(states, state_valid, cfg.mask_prob)
        masked_actions, action_sel = bert_mask(actions, transition_valid, cfg.mask_prob)
        masked_rewards, reward_sel = bert_mask(rewards, transition_valid, cfg.mask_prob)
        hidden = net.encode(masked_states, masked_actions, masked_rewards, lengths, padded=True)
        state_hat, action_hat, reward_hat = net.reconstruction(hidden, cfg.window)

        reconstruction = states.new_zeros(())
        for view in (slice(None, len(batch.rows_a)), slice(len(batch.rows_a), None)):
            reconstruction = reconstruction + masked_mse(
                state_hat[view], states[view], state_sel[view]
            )
            reconstruction = reconstruction + masked_mse(
                action_hat[view], actions[view, :-1], action_sel[view, :-1]
            )
            if reward_hat is not None:
                reconstruction = reconstruction + masked_mse(
                    reward_hat[view], rewards[view, :-1], reward_sel[view, :-1]
                )
        z = F.normalize(net.embedding(hidden), dim=-1)
        z_a, z_b = z.chunk(2)
        episodes = torch.from_numpy(batch.episodes).to(self.device)
        groups = data.episode_task[episodes] if data.episode_task is not None else episodes
        contrastive = info_nce(z_a, z_b, cfg.temperature, groups[:, None] == groups[None, :])
        loss = reconstruction + cfg.contrastive_weight * contrastive

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        # detached tensors: no device sync per step (fit converts them when it logs)
        return {
            "loss": loss.detach(),
            "reconstruction": reconstruction.detach(),
            "contrastive": contrastive.detach(),
        }

    def _attach(self, transitions: Transitions) -> EpisodeTable:
        """Check the data, and on the first call fix the split and normalisation."""
        if transitions.view == "goal-hidden" and self.config.view == "full":
            raise CtdkitError(
                "transitions were loaded with view 'goal-hidden' but the encoder's view is "
                "'full' (load them with view='full'; the encoder hides what its view hides)"
            )
        width = transitions.observations.shape[-1]
        if width != OBS_DIM:
            raise CtdkitError(f"transitions have {width}-dim observations, expected {OBS_DIM}")
        if transitions.actions.shape[-1] != self.config.action_dim:
            raise CtdkitError(
                f"transitions have {transitions.actions.shape[-1]}-dim actions but "
                f"action_dim={self.config.action_dim}"
            )
        table = EpisodeTable.from_episode_index(transitions.episode_index)
        identity = {
            "dataset_id": transitions.dataset_id,
            "checksum": transitions.checksum,
            "num_episodes": table.num_episodes,
            "rows": len(transitions),
        }
        if self.split is None:
            self.split = split_episodes(
                table.num_episodes, self.config.validation_fraction, self.config.seed
            )
            train = table.rows_of(self.split.train)
            self.network.set_normalization(
                self._tensor(transitions.observations[train]),
                self._tensor(transitions.actions[train]),
                self._tensor(transitions.rewards[train]),
            )
            self.data = identity
        else:
            for key, value in identity.items():
                if self.data.get(key) != value:
                    raise CtdkitError(
                        f"this encoder was trained on other data: {key} is {value!r}, "
                        f"expected {self.data.get(key)!r}"
                    )
        return table

    def _training_data(self, transitions: Transitions, table: EpisodeTable) -> _TrainingData:
        with torch.no_grad():
            states, actions, rewards = self.network.features(
                self._tensor(transitions.observations),
                self._tensor(transitions.actions),
                self._tensor(transitions.rewards),
            )
        episode_task = None
        if self.config.mode == "label-aware":  # the only place task labels are read
            if transitions.task_index is None:
                raise CtdkitError("label-aware mode needs task_index in the transitions")
            task_index = np.asarray(transitions.task_index)
            episode_task = torch.from_numpy(task_index[table.starts]).to(self.device)
        return _TrainingData(states, actions, rewards, episode_task)

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(values, dtype=np.float32)).to(self.device)

    def _restore_torch_rng(self, cuda: list[int]) -> None:
        if self._torch_rng_state is None:
            torch.manual_seed(self.config.seed + 1)
            return
        torch.set_rng_state(self._torch_rng_state["cpu"])
        if cuda and "cuda" in self._torch_rng_state:
            torch.cuda.set_rng_state(self._torch_rng_state["cuda"], cuda[0])

    def _keep_rng(self, rng: np.random.Generator, cuda: list[int]) -> None:
        self._numpy_rng_state = rng.bit_generator.state
        self._torch_rng_state = {"cpu": torch.get_rng_state()}
        if cuda:
            self._torch_rng_state["cuda"] = torch.cuda.get_rng_state(cuda[0])

    # ----- inference ----------------------------------------------------------------------
    def embed(
        self,
        windows: Windows,
        *,
        batch_size: int | None = None,
        normalize: bool = True,
        bf16: bool = False,
        compile: bool = False,
    ) -> np.ndarray | torch.Tensor:
        """Task embeddings ``(B, embedding_dim)`` of padded windows (numpy in, numpy out;
        torch in, torch out on the encoder's device).

        Runs in eval mode under ``inference_mode`` in chunks of ``batch_size`` windows (default
        256 on CPU, 16384 on GPU); each chunk is cut to its longest window, and needs no
        attention mask when all its windows are full.
        ``normalize`` returns unit vectors: the contrastive loss only shapes the direction, so
        the raw norm is arbitrary. ``bf16`` runs under bfloat16 autocast (for GPUs; exercised
        on CPU by the tests); ``compile`` runs a ``torch.compile``-d network (compiled once per
        encoder, on the first call: tens of seconds on a CPU).
        """
        observations, actions, rewards, lengths = self._check_windows(windows)
        if batch_size is None:
            batch_size = EMBED_BATCH_CPU if self.device.type == "cpu" else EMBED_BATCH_GPU
        as_numpy = isinstance(windows.observations, np.ndarray)
        forward = self._compiled_network() if compile else self.network
        if self.network.training:  # only fit trains; switching costs ~1 ms, so only if needed
            self.network.eval()
        chunks = []
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)
        with torch.inference_mode(), autocast:
            for start in range(0, len(lengths), batch_size):
                part = lengths[start : start + batch_size]
                steps = int(part.max())
                chunk = slice(start, start + batch_size)

                def move(x, chunk=chunk, steps=steps):
                    return x[chunk, :steps].to(self.device, non_blocking=True)

                z = forward(
                    move(observations),
                    move(actions),
                    move(rewards),
                    torch.from_numpy(part).to(self.device),
                    padded=bool((part != steps).any()),
                )
                chunks.append(z.float())
        if chunks:
            z = torch.cat(chunks)
        else:
            z = torch.zeros(0, self.config.embedding_dim, device=self.device)
        if normalize:
            z = F.normalize(z, dim=-1)
        return z.cpu().numpy() if as_numpy else z

    def embed_rows(
        self,
        transitions: Transitions,
        rows: np.ndarray | None = None,
        *,
        chunk: int = 16384,
        **options,
    ) -> np.ndarray:
        """The embedding at each row (default: all) as the agent has it when acting there: the
        window of the episode's last ``<= K`` steps ending at the row (the row's own action
        and reward are not inputs). Use it to relabel a dataset with *this* encoder.
        ``options`` go to :meth:`embed`."""
        table = EpisodeTable.from_episode_index(transitions.episode_index)
        rows = np.arange(len(transitions)) if rows is None else np.asarray(rows, dtype=np.int64)
        window = self.config.window
        parts = [
            self.embed(
                gather_windows(
                    transitions.observations,
                    transitions.actions,
                    transitions.rewards,
                    table,
                    rows[start : start + chunk],
                    np.full(len(rows[start : start + chunk]), window),
                    padded_length=window,
                ),
                **options,
            )
            for start in range(0, len(rows), chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.config.embedding_dim))

    def _compiled_network(self):
        if self._compiled is None:
            self._compiled = torch.compile(self.network, dynamic=True)
        return self._compiled

    def _check_windows(self, windows: Windows):
        """Tensors (float32) and numpy lengths, or one line naming what is wrong."""
        observations = torch.as_tensor(windows.observations, dtype=torch.float32)
        actions = torch.as_tensor(windows.actions, dtype=torch.float32)
        rewards = torch.as_tensor(windows.rewards, dtype=torch.float32)
        lengths = np.asarray(
            windows.lengths.cpu() if torch.is_tensor(windows.lengths) else windows.lengths
        )
        if observations.ndim != 3:
            raise CtdkitError(
                f"window observations must be (batch, steps, {OBS_DIM}), "
                f"got shape {tuple(observations.shape)}"
            )
        batch, steps, width = observations.shape
        if width != OBS_DIM:
            slices = "+".join(self.config.state_slices)
            raise CtdkitError(
                f"window observations have width {width}; the encoder takes full {OBS_DIM}-dim "
                f"observations (it selects {slices} itself)"
            )
        if rewards.ndim == 3 and rewards.shape[-1] == 1:
            rewards = rewards[..., 0]
        if actions.ndim != 3 or actions.shape[-1] != self.config.action_dim:
            raise CtdkitError(
                f"window actions have shape {tuple(actions.shape)}; expected "
                f"({batch}, {steps}, {self.config.action_dim}) (action_dim="
                f"{self.config.action_dim})"
            )
        if actions.shape[:2] != (batch, steps) or rewards.shape != (batch, steps):
            raise CtdkitError(
                f"window actions {tuple(actions.shape)} / rewards {tuple(rewards.shape)} do not "
                f"match observations {tuple(observations.shape)}"
            )
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
            raise CtdkitError(f"window lengths must be {batch} integers, got {lengths!r}")
        if batch and (steps == 0 or lengths.min() < 1):
            first = 0 if steps == 0 else int(np.argmax(lengths < 1))
            raise CtdkitError(f"window {first} is empty (length 0); a window needs a state")
        if batch and lengths.max() > min(steps, self.config.window):
            first = int(np.argmax(lengths > min(steps, self.config.window)))
            limit = "padded steps" if lengths[first] > steps else "steps (window=K)"
            raise CtdkitError(
                f"window {first} has length {lengths[first]} but at most "
                f"{min(steps, self.config.window)} {limit}"
            )
        if all(bool(torch.isfinite(x).all()) for x in (observations, actions, rewards)):
            return observations, actions, rewards, lengths.astype(np.int64)
        # something is not finite: fine in padding, an error in a real step
        step = torch.arange(steps)
        lengths_t = torch.from_numpy(lengths)
        state_valid = step < lengths_t[:, None]
        transition_valid = step < (lengths_t - 1)[:, None]
        for name, values, valid in (
            ("observations", observations, state_valid),
            ("actions", actions, transition_valid),
            ("rewards", rewards[..., None], transition_valid),
        ):
            bad = ~torch.isfinite(values).all(-1) & valid.to(values.device)
            if bool(bad.any()):
                window, at = (int(i) for i in torch.nonzero(bad)[0])
                raise CtdkitError(f"window {window} has NaN or inf in its {name} at step {at}")
        return observations, actions, rewards, lengths.astype(np.int64)

    # ----- persistence --------------------------------------------------------------------
    def payload(self, training_state: bool = False) -> dict:
        """What :meth:`save` writes: tensors and plain data (``torch.load(weights_only=True)``
        reads it back; a collective checkpoint embeds it)."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "weights": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "step": self.step,
            "split": None
            if self.split is None
            else {"train": self.split.train.tolist(), "validation": self.split.validation.tolist()},
            "data": dict(self.data),
            "history": list(self.history),
        }
        if training_state:
            payload["training"] = {
                "optimizer": self.optimizer.state_dict(),
                "numpy_rng": self._numpy_rng_state,
                "torch_rng": self._torch_rng_state,
            }
        return payload

    def save(self, path: Path, training_state: bool = False) -> Path:
        """Write config, normalisation statistics, weights, split and history to ``path``
        (with the optimizer and RNG states too if ``training_state``); atomic (temp + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda tmp: torch.save(self.payload(training_state), tmp))
        return path

    def save_checkpoint(self, directory: Path) -> Path:
        """Save the full training state as ``directory/step_XXXXXXXX.pt``; keep the newest few."""
        path = self.save(Path(directory) / f"step_{self.step:08d}.pt", training_state=True)
        for old in sorted(Path(directory).glob(CHECKPOINT_GLOB))[:-CHECKPOINTS_KEPT]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
        return path

    @classmethod
    def load(cls, path: Path, device: str | torch.device = "cpu") -> TrajectoryEncoder:
        """An encoder rebuilt from a saved file's own config (training state included if saved,
        so ``fit`` continues the run)."""
        return cls.from_payload(read_checkpoint(path, ENCODER), device, str(path))

    @classmethod
    def from_payload(
        cls, payload: dict, device: str | torch.device = "cpu", source: str = "encoder payload"
    ) -> TrajectoryEncoder:
        """An encoder rebuilt from :meth:`payload` (``source`` names where it came from, for
        the one-line error if it is not an encoder's)."""
        payload = check_checkpoint(payload, ENCODER, source)
        try:
            config = EncoderConfig.from_dict(payload["config"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise checkpoint_damaged(ENCODER, source, error) from error
        encoder = cls(config, device=device)
        encoder._restore(payload, source)
        return encoder

    def load_weights(self, path: Path) -> None:
        """Load weights (and normalisation, split, training state) saved by an encoder of the
        same architecture; a mismatch is one line naming the first differing field."""
        payload = read_checkpoint(path, ENCODER)
        theirs = EncoderConfig.from_dict(payload["config"]).architecture()
        ours = self.config.architecture()
        for name in ARCHITECTURE_FIELDS:
            if theirs[name] != ours[name]:
                raise CtdkitError(
                    f"checkpoint {path} has {name}={theirs[name]!r} but this encoder's config "
                    f"has {name}={ours[name]!r}"
                )
        self._restore(payload, str(path))

    def _restore(self, payload: dict, source: str) -> None:
        try:
            self.network.load_state_dict(payload["weights"])
        except (RuntimeError, TypeError, AttributeError) as error:
            first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
            raise CtdkitError(f"checkpoint {source} does not fit this encoder ({first})") from error
        try:
            self._restore_state(payload)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise checkpoint_damaged(ENCODER, source, error) from error

    def _restore_state(self, payload: dict) -> None:
        self.step = int(payload["step"])
        split = payload.get("split")
        self.split = (
            None
            if split is None
            else EpisodeSplit(
                np.asarray(split["train"], dtype=np.int64),
                np.asarray(split["validation"], dtype=np.int64),
            )
        )
        self.data = dict(payload.get("data", {}))
        self.history = list(payload.get("history", []))
        training = payload.get("training")
        if training is not None:
            self.optimizer.load_state_dict(training["optimizer"])
            self._numpy_rng_state = training["numpy_rng"]
            self._torch_rng_state = training["torch_rng"]
