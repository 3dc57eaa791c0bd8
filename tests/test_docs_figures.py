"""The docs' benchmark figures are generated from the committed benchmark JSON
(``benchmarks/render_figures.py``): regenerated here in memory, they must equal the docs, so a
figure copied by hand (and disagreeing with its source) cannot come back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scripts import load_script

ROOT = Path(__file__).resolve().parent.parent


FIGURES = load_script("benchmarks/render_figures.py")


@pytest.mark.parametrize("path", FIGURES.TARGETS, ids=lambda p: p.name)
def test_generated_blocks_equal_their_json(path):
    text = path.read_text()
    assert FIGURES.render(text, str(path)) == text, (
        f"{path.relative_to(ROOT)} differs from the benchmark JSON: "
        "run python benchmarks/render_figures.py"
    )


def test_measured_md_carries_every_block():
    text = (ROOT / "docs" / "measured.md").read_text()
    found = {match.group(2) for match in FIGURES.BLOCK.finditer(text)}
    assert found == set(FIGURES.BLOCKS)


def test_speed_ratios_appear_only_in_generated_blocks():
    """Outside the generated blocks no doc quotes the learner or encoder speed-ups."""
    claims = re.compile(r"d3rlpy (BC|SAC)[^.\n]*\d\.\d+×|at batch \d+[^.\n]*\d\.\d+×")
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        outside = FIGURES.BLOCK.sub("", path.read_text())
        assert not claims.search(outside), f"{path.name}: {claims.search(outside).group(0)!r}"


def test_leaderboard_throughput_tables_read_the_same_json():
    """benchmarks/LEADERBOARD.md's throughput tables come from the same files."""
    from ctdkit.bench.render import load_throughput, render_throughput

    files = sorted(FIGURES.RESULTS.glob("*.json"))
    expected = "\n".join(render_throughput(load_throughput(files)))
    assert expected.strip() in (ROOT / "benchmarks" / "LEADERBOARD.md").read_text()
