"""Every config dataclass refuses a bad value as it is built, in one line naming the flag, so a
CLI stops before it reads or writes anything (``run_cli`` parses inside its error handling)."""

from __future__ import annotations

import math
import re

import pytest

from ctdkit.cli import run_cli
from ctdkit.collect.config import CollectConfig
from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.encoder.config import EncoderConfig
from ctdkit.errors import CtdkitError
from ctdkit.experts.config import SACConfig, TrainExpertConfig


def refused(config_type: type, changes: dict, flag: str) -> None:
    """``config_type(**changes)`` raises one line that names ``flag``; the defaults build."""
    config_type()
    with pytest.raises(CtdkitError) as info:
        config_type(**changes)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", message), message


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"window": 0}, "window"),
        ({"d_model": 30, "n_heads": 8}, "d_model"),
        ({"dropout": 1.0}, "dropout"),
        ({"mask_prob": -0.1}, "mask_prob"),
        ({"temperature": 0.0}, "temperature"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"min_window": 21}, "min_window"),
        ({"mode": "labels"}, "encoder mode"),
        ({"view": "hidden"}, "observation view"),
    ],
)
def test_encoder_config_refuses_a_bad_value(changes, flag):
    refused(EncoderConfig, changes, flag)


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"actor_lr": 0.0}, "actor_lr"),
        ({"critic_lr": -1e-3}, "critic_lr"),
        ({"critic_lr": math.nan}, "critic_lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"hidden": (300, 0)}, "hidden"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"tau": 0.0}, "tau"),
        ({"tau": 2.0}, "tau"),
        ({"log_std_weight": -0.1}, "log_std_weight"),
        ({"obs_std_floor": 0.0}, "obs_std_floor"),
        ({"conditioning": "cls"}, "conditioning mode"),
        ({"view": "hidden"}, "observation view"),
    ],
)
def test_collective_sac_config_refuses_a_bad_value(changes, flag):
    refused(CollectiveSACConfig, changes, flag)


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"hidden": (0,)}, "--sac.hidden"),
        ({"actor_lr": 0.0}, "--sac.actor-lr"),
        ({"critic_lr": math.inf}, "--sac.critic-lr"),
        ({"alpha_lr": -1.0}, "--sac.alpha-lr"),
        ({"batch_size": 0}, "--sac.batch-size"),
        ({"buffer_size": 0}, "--sac.buffer-size"),
        ({"updates_per_step": 0}, "--sac.updates-per-step"),
        ({"warmup_steps": -1}, "--sac.warmup-steps"),
        ({"gamma": 0.0}, "--sac.gamma"),
        ({"tau": 1.5}, "--sac.tau"),
        ({"init_temperature": 0.0}, "--sac.init-temperature"),
        ({"target_entropy": math.nan}, "--sac.target-entropy"),
    ],
)
def test_sac_config_refuses_a_bad_value(changes, flag):
    refused(SACConfig, changes, flag)


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"task": "reachh-v3"}, "task"),
        ({"total_steps": 0}, "--total-steps"),
        ({"max_episode_steps": 501}, "max_episode_steps"),
        ({"eval_every": -1}, "--eval-every"),
        ({"eval_episodes": -1}, "--eval-episodes"),
        ({"checkpoint_every": -1}, "--checkpoint-every"),
        ({"demo_episodes": -1}, "--demo-episodes"),
        ({"demo_episodes": 2, "demo_fraction": 1.0}, "--demo-fraction"),
        ({"stop_at_success": 1.5}, "--stop-at-success"),
        ({"stop_at_success": 0.9, "eval_every": 0}, "--stop-at-success"),
        ({"stop_at_success": 0.9, "stop_patience": 0}, "--stop-patience"),
        ({"data_format": "csv"}, "data format"),
        ({"dataset_id": "ctdkit/reach-sac-online"}, "version suffix"),
    ],
)
def test_train_expert_config_refuses_a_bad_value(changes, flag):
    refused(TrainExpertConfig, changes, flag)


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"tasks": ("reachh-v3",)}, "task"),
        ({"episodes_per_task": 0}, "--episodes-per-task"),
        ({"workers": 0}, "--workers"),
        ({"ref_episodes": -1}, "--ref-episodes"),
        ({"policy": "expert"}, "policy"),
        ({"random_fraction": 1.5}, "--random-fraction"),
        ({"noise": -0.1}, "--noise"),
        ({"noise": math.nan}, "--noise"),
        ({"backend": "dask"}, "backend"),
        ({"data_format": "csv"}, "data format"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"dataset_id": "ctdkit/mt10-scripted"}, "version suffix"),
    ],
)
def test_collect_config_refuses_a_bad_value(changes, flag):
    refused(CollectConfig, changes, flag)


def test_a_bad_nested_flag_stops_the_cli_in_one_line(capsys):
    """Parsing runs inside run_cli's error handling: the command never starts."""
    started = []
    args = ["--sac.gamma", "0", "--out-dir", "/nonexistent/never-created"]
    assert run_cli(TrainExpertConfig, started.append, args=args) == 2
    err = capsys.readouterr().err.strip()
    assert started == [] and err.splitlines() == [err]
    assert "--sac.gamma must be in (0, 1], got 0.0" in err
