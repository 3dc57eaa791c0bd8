"""The public API re-exported from ``ctdkit`` resolves, and importing the env layer stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ctdkit


@pytest.mark.parametrize("name", sorted(set(ctdkit.__all__) - {"__version__"}))
def test_every_public_name_resolves(name):
    assert getattr(ctdkit, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = ctdkit.nope


def test_the_env_and_collect_layers_do_not_import_torch():
    code = "import sys, ctdkit.envs, ctdkit.collect; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
