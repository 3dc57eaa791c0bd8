"""Checkpoints are untrusted input: read as tensors and plain data only, checked for their kind,
refused in one line naming the file and what was expected; loading never runs a file's code and
never touches torch's global RNG."""

from __future__ import annotations

import pickle

import pytest
import torch
from test_collective import FAST

from ctdkit.collective.config import CollectiveSACConfig
from ctdkit.collective.context import make_context
from ctdkit.collective.learner import CollectiveSAC
from ctdkit.encoder import EncoderConfig, TrajectoryEncoder
from ctdkit.errors import CtdkitError
from ctdkit.policies.checkpoint import SAC_TRAINING, read_checkpoint
from ctdkit.policies.sac import SACActor, expert_record, load_expert

PLAIN = (dict, list, tuple, str, int, float, bool, type(None), torch.Tensor)


class _RunsCode:
    """Unpickling this calls ``exec``: it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def _one_line(load, path, match: str) -> str:
    with pytest.raises(CtdkitError, match=match) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


def _plain(value, where="checkpoint"):
    """Every value inside is a tensor or plain data (no bytes, no objects)."""
    assert isinstance(value, PLAIN), f"{where} is a {type(value).__name__}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, (str, int)), f"{where} has a {type(key).__name__} key"
            _plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _plain(item, f"{where}[{i}]")


@pytest.fixture(scope="module")
def data(reach_push):
    return reach_push


@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    """One file of each kind: collective (oracle, trained a little), ctd and ctd-e2e
    collectives, expert, encoder."""
    folder = tmp_path_factory.mktemp("checkpoints")
    learner = CollectiveSACConfig(conditioning="oracle", **{**FAST, "critic": True}).create()
    learner.fit(data, 4, context=make_context("oracle", data), progress=False)
    learner.save(folder / "collective.pt")
    encoder = EncoderConfig(window=5, view="goal-hidden", seed=0).create()
    encoder.save(folder / "encoder.pt")
    ctd = CollectiveSACConfig(conditioning="ctd", view="goal-hidden", **FAST).create()
    ctd.build(39, 4, make_context("ctd", data, encoder))
    ctd.save(folder / "ctd.pt")
    e2e = CollectiveSACConfig(conditioning="ctd-e2e", view="goal-hidden", **FAST).create()
    e2e.build(39, 4, make_context("ctd-e2e", data, encoder))
    e2e.save(folder / "e2e.pt")
    torch.save(expert_record(SACActor(39, 4), "reach-v3", {}), folder / "expert.pt")
    return folder


LOADERS = {
    "collective": CollectiveSAC.load,
    "expert": load_expert,
    "encoder": TrajectoryEncoder.load,
}
EXPECTED = {
    "collective": "collective checkpoint",
    "expert": "SAC expert",
    "encoder": "encoder checkpoint",
}


# ----- checkpoints are tensors and plain data, read with weights_only=True ----------------------
@pytest.mark.parametrize("name", ["collective.pt", "ctd.pt", "e2e.pt"])
def test_collective_checkpoint_is_tensors_and_plain_data(files, name):
    state = torch.load(files / name, weights_only=True)
    assert state["format"] == "ctdkit-collective/2"
    _plain(state)  # the ctd encoder travels as its payload, not as pickled bytes of a file
    assert ("encoder_optim" in state) == (name == "e2e.pt")  # and ctd-e2e's optimiser, RNG
    if name != "collective.pt":  # and comes back as the same encoder
        assert state["context"]["encoder"]["format"] == "ctdkit-encoder/1"
        loaded = CollectiveSAC.load(files / name).context.encoder.network.state_dict()
        original = TrajectoryEncoder.load(files / "encoder.pt").network.state_dict()
        for key, value in original.items():
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)


def test_every_loader_reads_with_weights_only(files, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    for kind, load in LOADERS.items():
        load(files / f"{kind}.pt")
    CollectiveSAC.load(files / "ctd.pt")
    CollectiveSAC.load(files / "e2e.pt")
    assert calls == [True] * 5


def test_an_old_format_collective_checkpoint_is_one_line(files, tmp_path):
    state = torch.load(files / "collective.pt", weights_only=True)
    for key in ("format", "noise_generator"):
        state.pop(key)
    state["torch_rng"] = torch.get_rng_state()  # the layout before the format entry
    torch.save(state, tmp_path / "old.pt")
    message = _one_line(CollectiveSAC.load, tmp_path / "old.pt", "older format")
    assert "python -m ctdkit.train_collective" in message


def test_a_future_format_is_one_line(files, tmp_path):
    state = torch.load(files / "collective.pt", weights_only=True)
    state["format"] = "ctdkit-collective/99"
    torch.save(state, tmp_path / "future.pt")
    _one_line(CollectiveSAC.load, tmp_path / "future.pt", "format 'ctdkit-collective/99'")


# ----- anything that is not a checkpoint of the expected kind: one line ------------------------
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_random_truncated_missing_and_foreign_files_are_one_line(files, kind, tmp_path):
    load, expected = LOADERS[kind], EXPECTED[kind]
    (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 8)
    _one_line(load, tmp_path / "random.pt", f"{expected} .* is unreadable")
    raw = (files / f"{kind}.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    _one_line(load, tmp_path / "truncated.pt", f"{expected} .* is unreadable")
    _one_line(load, tmp_path / "missing.pt", f"{expected} .* does not exist")
    _one_line(load, tmp_path, f"{expected} .* is a directory, not a checkpoint file")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    _one_line(load, tmp_path / "foreign.pt", f"is not a ctdkit {expected}")
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    _one_line(load, tmp_path / "list.pt", f"is not a ctdkit {expected}.* \\(it holds a list")


@pytest.mark.parametrize(
    ("kind", "given", "match"),
    [
        ("collective", "expert.pt", "is a SAC expert, not a collective checkpoint"),
        ("collective", "encoder.pt", "is an encoder checkpoint, not a collective checkpoint"),
        ("expert", "collective.pt", "is a collective checkpoint, not a SAC expert"),
        ("expert", "encoder.pt", "is an encoder checkpoint, not a SAC expert"),
        ("encoder", "ctd.pt", "is a collective checkpoint, not an encoder checkpoint"),
        ("encoder", "expert.pt", "is a SAC expert, not an encoder checkpoint"),
    ],
)
def test_a_checkpoint_of_another_kind_is_named(files, kind, given, match):
    _one_line(LOADERS[kind], files / given, match)


@pytest.mark.parametrize("kind", sorted(LOADERS))
@pytest.mark.parametrize("how", ["torch.save", "pickle-2", "pickle-default"])
def test_a_pickle_that_runs_code_is_refused_without_running_it(kind, how, tmp_path):
    marker, path = tmp_path / "marker", tmp_path / f"{kind}.pt"
    payload = {"format": "ctdkit-collective/2", "config": _RunsCode(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        protocol = 2 if how == "pickle-2" else pickle.DEFAULT_PROTOCOL
        path.write_bytes(pickle.dumps(payload, protocol=protocol))
    pickle.loads(pickle.dumps(_RunsCode(tmp_path / "proof")))  # the payload really runs code
    assert (tmp_path / "proof").exists()
    message = _one_line(LOADERS[kind], path, EXPECTED[kind])
    assert not marker.exists()
    assert "weights_only" not in message  # not torch's advice to load it unsafely
    if how != "pickle-default":  # protocol >= 4 frames stop torch before the code is seen
        assert "would run Python code (exec)" in message


def test_damaged_entries_are_one_line(files, tmp_path):
    state = torch.load(files / "collective.pt", weights_only=True)
    state["actor"] = {"net.0.weight": torch.zeros(2, 2)}
    torch.save(state, tmp_path / "shapes.pt")
    _one_line(CollectiveSAC.load, tmp_path / "shapes.pt", "collective checkpoint .* is damaged")
    state = torch.load(files / "collective.pt", weights_only=True)
    del state["critic"]
    torch.save(state, tmp_path / "partial.pt")
    _one_line(CollectiveSAC.load, tmp_path / "partial.pt", "is damaged: it has no 'critic' entry")
    state = torch.load(files / "ctd.pt", weights_only=True)
    state["context"]["encoder"] = torch.load(files / "expert.pt", weights_only=True)
    torch.save(state, tmp_path / "ctd-expert.pt")
    _one_line(CollectiveSAC.load, tmp_path / "ctd-expert.pt", "its encoder\\) is a SAC expert")
    state = torch.load(files / "e2e.pt", weights_only=True)
    state["context"]["encoder"] = torch.load(files / "expert.pt", weights_only=True)
    torch.save(state, tmp_path / "e2e-expert.pt")
    _one_line(CollectiveSAC.load, tmp_path / "e2e-expert.pt", "its encoder\\) is a SAC expert")
    state = torch.load(files / "e2e.pt", weights_only=True)
    del state["encoder_optim"]
    torch.save(state, tmp_path / "e2e-partial.pt")
    _one_line(CollectiveSAC.load, tmp_path / "e2e-partial.pt", "damaged: it has no 'encoder_optim'")
    for rng in ({"cpu": torch.zeros(3)}, {"cpu": "seed"}, [1]):
        state = torch.load(files / "e2e.pt", weights_only=True)
        state["encoder_rng"] = rng
        torch.save(state, tmp_path / "e2e-rng.pt")
        _one_line(
            CollectiveSAC.load, tmp_path / "e2e-rng.pt", "collective checkpoint .* is damaged"
        )
    record = torch.load(files / "expert.pt", weights_only=True)
    record["hidden"] = [7]
    torch.save(record, tmp_path / "expert.pt")
    _one_line(load_expert, tmp_path / "expert.pt", "SAC expert .* is damaged")


def test_an_expert_training_checkpoint_is_checked_too(files, tmp_path):
    expert = torch.load(files / "expert.pt", weights_only=True)
    training = {
        "fingerprint": {},
        "env_steps": 0,
        "episodes": 0,
        "seconds": 0.0,
        "evaluations": [],
        "learner": {},
        "replay": {},
        "rng": {},
        "expert": expert,
    }
    torch.save(training, tmp_path / "unformatted.pt")  # written before the format entry
    _, record = load_expert(tmp_path / "unformatted.pt")
    assert record["task"] == "reach-v3"
    torch.save({**training, "format": SAC_TRAINING.format}, tmp_path / "checkpoint.pt")
    assert read_checkpoint(tmp_path / "checkpoint.pt", SAC_TRAINING)["episodes"] == 0
    torch.save({**training, "expert": {"weights": 1}}, tmp_path / "bad-expert.pt")
    _one_line(load_expert, tmp_path / "bad-expert.pt", "its 'expert' entry\\) is not a ctdkit SAC")
    _one_line(
        lambda p: read_checkpoint(p, SAC_TRAINING),
        files / "collective.pt",
        "is a collective checkpoint, not a SAC training checkpoint",
    )


# ----- an explicit device, and torch's global RNG untouched ------------------------------------
def test_loading_and_training_leave_torchs_global_rng_alone(files, data):
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    learner = CollectiveSAC.load(files / "collective.pt", device="cpu")
    CollectiveSAC.load(files / "ctd.pt", device="cpu")
    learner.fit(data, 3, progress=False)
    CollectiveSAC.load(files / "e2e.pt", device="cpu").fit(data, 1, progress=False)  # dropout
    CollectiveSACConfig(conditioning="none", **FAST).create().build(
        39, 4, make_context("none", data)
    )
    assert torch.equal(torch.get_rng_state(), before)


def test_resume_is_exact_whatever_the_global_rng_does(files, data):
    histories = []
    for seed in (0, 99):
        learner = CollectiveSAC.load(files / "collective.pt", device="cpu")
        torch.manual_seed(seed)  # a caller's own seeding between load and fit
        histories.append(learner.fit(data, 3, progress=False, log_every=1))
    assert histories[0] == histories[1] and "critic" in histories[0][0]


def test_an_unknown_or_absent_device_is_one_line(files):
    with pytest.raises(CtdkitError, match="unknown device 'gpu0'"):
        CollectiveSAC.load(files / "collective.pt", device="gpu0")
    with pytest.raises(CtdkitError, match="unknown device 'gpu0'"):
        load_expert(files / "expert.pt", device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(CtdkitError, match="not available"):
            CollectiveSAC.load(files / "collective.pt", device="cuda")
