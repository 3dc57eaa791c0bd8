"""Write the docs' benchmark figures from the committed benchmark JSON, so that no figure is
copied by hand.

    python benchmarks/render_figures.py           # rewrite the generated blocks
    python benchmarks/render_figures.py --check   # exit 1 if a block differs from its JSON

A generated block is everything between ``<!-- generated:NAME -->`` and ``<!-- /generated -->``
in a file of ``TARGETS``; ``NAME`` is a key of ``BLOCKS``, whose function renders it from the
JSON files in ``RESULTS`` (written by ``learner_speed.py`` / ``encoder_throughput.py`` /
``collect_throughput.py`` with ``--json-out``; the leaderboard's throughput tables read the
same files) and, for the DAgger study, ``results/dagger_mt10.json``,
``results/dagger_mt10_steps30k.json`` and its ``cls_swap`` variant
``results/dagger_mt10_steps30k_clsswap.json`` (written by ``dagger_study.py``; their final rows
only).
``tests/test_docs_figures.py`` regenerates every block in memory and checks the docs equal it.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "leaderboard" / "throughput"
TARGETS = (ROOT / "docs" / "measured.md", ROOT / "README.md")
BLOCK = re.compile(r"(<!-- generated:([\w-]+) -->\n)(.*?)(<!-- /generated -->)", re.DOTALL)
SHARED = (
    "The machine is shared with other engineers' test runs (the load average is recorded): "
    "absolute rates move with the load, so compare the ratios, each taken between rows timed "
    "seconds apart in the same round."
)


def _load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text())


def _spread(s: dict[str, Any], digits: int, unit: str = "") -> str:
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} [{f.format(s['min'])}, {f.format(s['max'])}]"


def _conditions(run: dict[str, Any]) -> str:
    threads = "1 torch thread" if run["threads"] == 1 else f"{run['threads']} torch threads"
    start = " / ".join(f"{x:.1f}" for x in run["load_average_start"])
    end = " / ".join(f"{x:.1f}" for x in run["load_average_end"])
    return (
        f"`{run['command']}`, {run['date']}, {run['hardware']}, torch {run['torch']}, "
        f"{threads}; load average (1 / 5 / 15 min) {start} at the start, {end} at the end"
    )


def learner_speed() -> str:
    run = _load("learner-cpu.json")
    lines = [
        f"Learner update speed ({_conditions(run)}). Same data ({run['transitions']} "
        f"transitions), {run['hidden'][0]}×{run['hidden'][1]} networks, batch "
        f"{run['batch_size']}; {run['repeats']} rounds of {run['steps_per_round']} updates per "
        f"row, rows interleaved; median [min, max] over the rounds:",
        "",
        "| row | updates/s | work per update |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {_spread(s, 1)} | {run['work'][name]} |" for name, s in run["rows"].items()
    ]
    lines += [
        f"| **{name}** | **{_spread(s, 2, '×')}** | |" for name, s in run["ratio_spread"].items()
    ]
    lines += [
        "",
        "d3rlpy's whole `SAC.fit()` step is not compared: it also updates the actor through the "
        f"critics and the temperature, about 1.5× the work of ours. {SHARED}",
    ]
    return "\n".join(lines)


def encoder_throughput() -> str:
    runs = sorted(
        (_load(p.name) for p in RESULTS.glob("encoder-*.json")),
        key=lambda run: (run["device"], run["config"]["window"]),
    )
    first = runs[0]
    lines = [
        "Encoder throughput, `TrajectoryEncoder.embed` (from raw windows) vs. the original's "
        "forward ported op for op (21-dim compressed states, per-modality embeddings, "
        "`nn.TransformerEncoder` as the original built it: seq-first, post-LN, CLS last; eval, "
        "`inference_mode`) on copied weights, outputs checked equal first; windows/s, "
        "median [min, max] over "
        f"{first['repeats']} interleaved rounds (samples of ≥ {first['seconds_per_sample']} s), "
        "full-length windows:",
    ]
    for run in runs:
        c = run["config"]
        variants = [k for k in run["windows_per_second"][0] if k not in ("batch", "reference")]
        lines += [
            "",
            f"K = {c['window']}, d = {c['d_model']}, {c['n_layers']} layers, {c['n_heads']} "
            f"heads, device {run['device']} ({_conditions(run)}):",
            "",
            "| batch | reference | "
            + " | ".join(variants)
            + " | "
            + " | ".join(f"{v} / reference" for v in variants)
            + " |",
            "|---|---|" + "---|" * (2 * len(variants)),
        ]
        for row in run["spread"]:
            rates = [_spread(row["rows"][name], 0) for name in ["reference", *variants]]
            ratios = [_spread(row["ratios"][f"{v} / reference"], 2, "×") for v in variants]
            lines.append(f"| {row['batch']} | " + " | ".join(rates + ratios) + " |")
    large = [
        (run["config"]["window"], row["batch"], row["ratios"]["ours / reference"]["median"])
        for run in runs
        for row in run["spread"]
        if row["batch"] >= 256
    ]
    reached = all(ratio >= 3.0 for _, _, ratio in large)
    goal = "; ".join(f"K = {k}, batch {batch}: {ratio:.2f}×" for k, batch, ratio in large)
    lines += [
        "",
        f"Goal ≥ 3× at batch ≥ 256: {'reached' if reached else 'not reached'} ({goal}). " + SHARED,
    ]
    return "\n".join(lines)


def collect_throughput() -> str:
    run = _load("collect-cpu.json")
    lines = [
        f"Collection throughput ({_conditions(run)}). Fixed workload: "
        f"{run['episodes_per_task']} episodes each of {' and '.join(run['tasks'])} "
        f"({run['max_episode_steps']} steps); {run['repeats']} rounds, rows interleaved; "
        "median [min, max] over the rounds:",
        "",
        "| row | steps/s |",
        "|---|---|",
    ]
    lines += [f"| {name} | {_spread(s, 0)} |" for name, s in run["steps_per_second"].items()]
    lines += [f"| **{name}** | **{_spread(s, 2, '×')}** |" for name, s in run["ratios"].items()]
    one = run["ratios"]["collect, 1 worker / bare loop"]["median"]
    two = run["ratios"]["2 workers / 1 worker"]["median"]
    verdict = {True: "reached", False: "not reached"}
    lines += [
        "",
        f"Goals: ≥ 0.95× the bare loop per worker ({verdict[one >= 0.95]}: {one:.2f}×); "
        f"≥ 1.7× for 2 workers over 1 ({verdict[two >= 1.7]}: {two:.2f}×). {SHARED}",
    ]
    if run.get("ray_start_seconds") is not None:
        lines.append(f"Ray's one-off start-up, not in its rate: {run['ray_start_seconds']:.1f} s.")
    if run.get("peak_rss_mb") is not None:
        lines.append(
            f"Peak RSS of a {run['rss_steps']}-step collection (1 worker): "
            f"{run['peak_rss_mb']:.0f} MB."
        )
    return "\n".join(lines)


def _script(name: str) -> Any:
    """A study script of ``benchmarks/`` as a module (its own renderer of its JSON)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _dagger_finals(name: str) -> str:
    """A DAgger study's final rows, rendered by the study's own ``markdown`` from its JSON
    (its screening rows are in the ``.md`` beside the JSON)."""
    results = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())
    return _script("dagger_study").markdown(results, screening=False).rstrip("\n")


#: The DAgger studies whose final rows the docs show, each a ``results/NAME.json`` and a
#: block of that name: as scoped (10k actor updates per round), at 30k, the 30k
#: ``ctd+history`` trained with ``cls_swap``, and MT50 (30k, one seed; and with a 512×512×512
#: collective).
DAGGER_STUDIES = (
    "dagger_mt10",
    "dagger_mt10_steps30k",
    "dagger_mt10_steps30k_clsswap",
    "dagger_mt50",
    "dagger_mt50_wide",
)


def student() -> str:
    """The student study's table, rendered by the study's own ``table`` from its JSON."""
    results = json.loads((ROOT / "benchmarks" / "results" / "student.json").read_text())
    return _script("student_study").table(results).rstrip("\n")


BLOCKS: dict[str, Callable[[], str]] = {
    "learner_speed": learner_speed,
    "encoder_throughput": encoder_throughput,
    "collect_throughput": collect_throughput,
    **{name: functools.partial(_dagger_finals, name) for name in DAGGER_STUDIES},
    "student": student,
}


def render(text: str, source: str = "text") -> str:
    """``text`` with every generated block rewritten from the JSON."""

    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise SystemExit(f"{source}: unknown generated block {name!r} (known: {list(BLOCKS)})")
        return f"{match.group(1)}{BLOCKS[name]()}\n{match.group(4)}"

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report differing files")
    args = parser.parse_args(argv)
    stale = []
    for path in TARGETS:
        text = path.read_text()
        updated = render(text, str(path))
        if updated != text:
            stale.append(path)
            if not args.check:
                path.write_text(updated)
    for path in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
