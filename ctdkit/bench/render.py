"""Rendering of the leaderboard: markdown tables, rliable plots, throughput tables."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ctdkit.bench.suites import SUITES
from ctdkit.errors import CtdkitError
from ctdkit.files import read_json_object


def _fmt(ci: list[float] | None) -> str:
    if ci is None:
        return "—"
    point, low, high = ci
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


def _seconds(value: float | None) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.0f}"


def _short(task: str) -> str:
    return task.removesuffix("-v3")


def _budget_line(suite: dict[str, Any]) -> str:
    s, d = suite["settings"], suite["dataset"]
    tasks = d["tasks"]
    task_text = "MT10" if len(tasks) == 10 else ", ".join(_short(t) for t in tasks)
    hidden = "×".join(str(h) for h in s["hidden"])
    eval_text = (
        f"{s['protocol']} protocol, {s['eval_episodes']} episodes per task per eval seed"
        if s["protocol"] == "official"
        else f"{s['protocol']} protocol, first {s['eval_episodes']} goals per task, "
        f"≤{s['max_episode_steps']} steps"
    )
    weights = "Final weights only."
    if s.get("curve_steps"):
        points = ", ".join(str(n) for n in s["curve_steps"])
        also = [p for p in s.get("final_protocols", []) if p != s["protocol"]]
        weights = (
            f"One training run per row, evaluated on the way at steps {points} "
            f"({s['curve_episodes']} episodes per task, {s['protocol']} protocol) and at "
            f"{s['n_steps']} ({s['eval_episodes']} episodes per task); the main and per-task "
            f"tables are the final weights under {s['protocol']}"
            + (f" (also evaluated under {', '.join(also)}: see protocols side by side)." if also
               else ".")
        )  # fmt: skip
    elif s.get("final_protocols"):
        weights = f"Final weights only, evaluated under {', '.join(s['final_protocols'])}."
    changed = [f"collective {k} = {v}" for k, v in s.get("collective_options", {}).items()]
    changed += [f"{learner} {k} = {v}" for learner, k, v in s.get("d3rlpy_options", [])]
    if s.get("reward_scale", 1.0) != 1.0:
        changed.append(f"d3rlpy rewards x{s['reward_scale']}")
    if changed:
        weights += " Changed from the defaults: " + "; ".join(changed) + "."
    return (
        f"Dataset `{d['id']}` (content checksum `{d['checksum'][:12]}…`), tasks {task_text}, "
        f"view `{s['view']}`. **Every algorithm: {s['n_steps']} gradient steps, batch "
        f"{s['batch_size']}, hidden {hidden}**; ctd conditioning: encoder trained "
        f"{s['encoder_steps']} steps per seed (window {s['encoder_window']}). Evaluation: "
        f"{eval_text}, {s['eval_seeds_per_run']} held-out eval seed(s) per run (seed "
        f"{s['eval_seed_base']} + …). {weights}"
    )


def _environment_line(suite: dict[str, Any]) -> str:
    parts = []
    for env in suite["environments"]:
        h, t = env["hardware"], env["threads"]
        gpu = f", GPU {h['gpu']}" if h.get("gpu") and h.get("device", "cpu") != "cpu" else ""
        parts.append(
            f"{h.get('cpu')} ({h.get('logical_cpus')} logical CPUs{gpu}), device "
            f"{h.get('device')}, torch threads {t.get('torch')} (OMP_NUM_THREADS="
            f"{t.get('OMP_NUM_THREADS')}) — {env['runs']} runs"
        )
    return "Hardware: " + "; ".join(parts) + "."


def _suite_section(name: str, suite: dict[str, Any], images: dict[str, str]) -> list[str]:
    registered = SUITES.get(name)
    title = f"## {name}" + (f" — {registered.description}" if registered else "")
    ref = suite["reference"]
    lines = [title, "", _budget_line(suite), _environment_line(suite), ""]
    lines += [
        f"| algorithm | learner | conditioning | runs | IQM [95% CI] | mean [95% CI] "
        f"| P({ref} > row) [95% CI] | train s/run | s/1k steps | eval s/run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in suite["rows"]:
        lines.append(
            f"| {row['label']} | {row['learner']} | {row['conditioning']} | {row['runs']} "
            f"| {_fmt(row['iqm'])} | {_fmt(row['mean'])} | {_fmt(row.get('p_reference_better'))} "
            f"| {_seconds(row['train_seconds'])} | {row['train_seconds_per_1k_steps']:.1f} "
            f"| {_seconds(row['eval_seconds'])} |"
        )
    counts = {row["runs"] for row in suite["rows"]}
    if len(counts) > 1:
        fewer = [f"{r['label']} ({r['runs']})" for r in suite["rows"] if r["runs"] < max(counts)]
        lines += [
            "",
            f"Fewer runs (seeds) for: {', '.join(fewer)} — CQL is about 10× slower per "
            "update than the others, so the suite gives it fewer seeds; its CIs are wider.",
        ]
    encoder = [r["encoder_seconds"] for r in suite["rows"] if r["encoder_seconds"] is not None]
    if encoder:
        lines += [
            "",
            f"Shared encoder (ctd conditioning): {np.mean(encoder):.0f} s of training per "
            "seed, once for all ctd-conditioned rows of that seed (not in train s/run).",
        ]
    tasks = suite["dataset"]["tasks"]
    lines += [
        "",
        "Per-task success (mean over runs):",
        "",
        "| algorithm | " + " | ".join(_short(t) for t in tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for row in suite["rows"]:
        cells = " | ".join(f"{row['success_by_task'][t]:.2f}" for t in tasks)
        lines.append(f"| {row['label']} | {cells} |")
    lines += _scaling_table(suite)
    lines += _curve_table(suite)
    lines += _protocol_table(suite)
    for key, caption in (("profile", "performance profile"), ("aggregates", "IQM and mean")):
        if key in images:
            lines += ["", f"![{name} {caption}]({images[key]})"]
    if "scaling" in images:
        lines += ["", f"![{name} data scaling]({images['scaling']})"]
    if "curve" in images:
        lines += ["", f"![{name} IQM against gradient steps]({images['curve']})"]
    return [*lines, ""]


def _main_curve(row: dict[str, Any], protocol: str) -> list[dict[str, Any]]:
    """A row's curve points under the suite's protocol, by step."""
    return sorted((p for p in row.get("curve", []) if p["protocol"] == protocol),
                  key=lambda p: p["steps"])  # fmt: skip


def _curve_table(suite: dict[str, Any]) -> list[str]:
    protocol = suite["settings"]["protocol"]
    points = [p for row in suite["rows"] for p in _main_curve(row, protocol)]
    columns = sorted({(p["steps"], p["episodes_per_task"]) for p in points})
    if len(columns) < 2:
        return []
    lines = [
        "",
        f"Learning curve — IQM [95% CI] at each evaluation point of the one training run "
        f"({protocol} protocol; header: gradient steps, episodes per task per eval seed):",
        "",
        "| algorithm | " + " | ".join(f"{n} ({e} ep)" for n, e in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for row in suite["rows"]:
        cell = {(p["steps"], p["episodes_per_task"]): p for p in _main_curve(row, protocol)}
        cells = [_fmt(cell[c]["iqm"]) + _fewer(cell[c], row) if c in cell else "—" for c in columns]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return lines


def _fewer(point: dict[str, Any], row: dict[str, Any]) -> str:
    return "" if point["runs"] == row["runs"] else f" ({point['runs']} runs)"


def _protocol_table(suite: dict[str, Any]) -> list[str]:
    """The final rows under each protocol they were evaluated with, with the IQM interval's
    width per evaluated env step."""
    steps = suite["settings"]["n_steps"]
    final = {
        row["label"]: {p["protocol"]: p for p in row.get("curve", []) if p["steps"] == steps}
        for row in suite["rows"]
    }
    protocols = [p for p in ("official", "all-goals") if any(p in f for f in final.values())]
    if len(protocols) < 2:
        return []
    lines = [
        "",
        f"Protocols side by side — final weights (step {steps}), IQM [95% CI] under each "
        "protocol; width: the interval's high − low; env steps: the scored evaluation "
        "episodes' env steps summed over the row's runs; width / env step: their ratio:",
        "",
        "| algorithm | "
        + " | ".join(f"{p} IQM [95% CI] | width | env steps | width / env step" for p in protocols)
        + " |",
        "|---|" + "---|---|---|---|" * len(protocols),
    ]
    for row in suite["rows"]:
        cells = []
        for protocol in protocols:
            point = final[row["label"]].get(protocol)
            if point is None:
                cells += ["—"] * 4
                continue
            ratio = point["iqm_width_per_env_step"]
            cells += [
                _fmt(point["iqm"]) + _fewer(point, row),
                f"{point['iqm_width']:.3f}",
                str(point["env_steps"]),
                "—" if ratio is None else f"{ratio:.2e}",
            ]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return lines


def _scaling_table(suite: dict[str, Any]) -> list[str]:
    sizes = sorted({r["episodes_per_task"] for r in suite["rows"] if r["episodes_per_task"]})
    if not sizes:
        return []
    algos = list(dict.fromkeys(r["algo"] for r in suite["rows"]))
    cell = {(r["algo"], r["episodes_per_task"]): r for r in suite["rows"]}
    lines = [
        "",
        "Data scaling — IQM [95% CI] by episodes per task:",
        "",
        "| algorithm | " + " | ".join(str(n) for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for algo in algos:
        cells = [_fmt(cell[(algo, n)]["iqm"]) if (algo, n) in cell else "—" for n in sizes]
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    stats = result["statistics"]
    lines = [
        "# ctdkit leaderboard",
        "",
        "Generated by `python -m ctdkit.bench leaderboard` from the run records of "
        "`python -m ctdkit.bench run` (one JSON per suite, algorithm, data variant and seed: "
        "per-task success, settings, dataset checksums, versions, hardware, wall time).",
        f"Scores are success rates; each row is a runs × tasks matrix. IQM (interquartile "
        f"mean) and mean with {int(stats['confidence'] * 100)}% stratified-bootstrap CIs, "
        f"performance profiles and probability of improvement from rliable "
        f"{stats['rliable']} ({stats['reps']} resamples, seed {stats['seed']}).",
        "",
    ]
    plots = result.get("plots", {})
    for name, suite in result["suites"].items():
        lines += _suite_section(name, suite, plots.get(name, {}))
    if result["errors"]:
        lines += [f"Left out: {len(result['errors'])} failed run(s):", ""]
        lines += [f"* `{e['path']}`: {e['error']}" for e in result["errors"]]
        lines.append("")
    lines += render_throughput(result.get("throughput", {}))
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------ plots
def write_plots(result: dict[str, Any], folder: Path) -> dict[str, dict[str, str]]:
    """PNG per suite: performance profile, IQM/mean intervals, data scaling if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    written: dict[str, dict[str, str]] = {}
    for name, suite in result["suites"].items():
        files: dict[str, str] = {}
        labels = [row["label"] for row in suite["rows"]]
        profiles = {k: np.asarray(suite["profiles"][k]["point"]) for k in labels}
        cis = {
            k: np.stack([suite["profiles"][k]["low"], suite["profiles"][k]["high"]]) for k in labels
        }
        fig, ax = plt.subplots(figsize=(7, 4.5))
        plot_utils.plot_performance_profiles(
            profiles,
            np.asarray(suite["taus"]),
            performance_profile_cis=cis,
            ax=ax,
            xlabel=r"success rate $\tau$",
            ylabel=r"fraction of run-tasks with success $> \tau$",
        )
        ax.legend(fontsize="small", ncol=2)
        ax.set_title(name)
        files["profile"] = _save(fig, folder / f"{name}-profile.png")
        points = {r["label"]: np.array([r["iqm"][0], r["mean"][0]]) for r in suite["rows"]}
        intervals = {
            r["label"]: np.array([[r["iqm"][1], r["mean"][1]], [r["iqm"][2], r["mean"][2]]])
            for r in suite["rows"]
        }
        fig, _ = plot_utils.plot_interval_estimates(
            points,
            intervals,
            metric_names=["IQM", "mean"],
            algorithms=labels,
            xlabel="success rate",
            row_height=0.45,
        )
        files["aggregates"] = _save(fig, folder / f"{name}-aggregates.png")
        scaling = [r for r in suite["rows"] if r["episodes_per_task"]]
        if scaling:
            fig, ax = plt.subplots(figsize=(6, 4))
            for algo in dict.fromkeys(r["algo"] for r in scaling):
                mine = sorted(
                    (r for r in scaling if r["algo"] == algo), key=lambda r: r["episodes_per_task"]
                )
                x = [r["episodes_per_task"] for r in mine]
                iqm = np.array([r["iqm"] for r in mine])
                ax.plot(x, iqm[:, 0], marker="o", label=algo)
                ax.fill_between(x, iqm[:, 1], iqm[:, 2], alpha=0.2)
            ax.set_xlabel("episodes per task")
            ax.set_ylabel("success (IQM, 95% CI)")
            ax.set_xscale("log")
            ax.set_xticks(x, [str(v) for v in x])
            ax.minorticks_off()  # log-scale minor labels (6×10⁰) read as data
            ax.legend()
            ax.set_title(name)
            files["scaling"] = _save(fig, folder / f"{name}-scaling.png")
        curve = _curve_plot(suite, name)
        if curve is not None:
            files["curve"] = _save(curve, folder / f"{name}-curve.png")
        written[name] = files
    return written


def _curve_plot(suite: dict[str, Any], name: str):
    """IQM [95% CI] against gradient steps per row (the suite's protocol), or None."""
    import matplotlib.pyplot as plt

    protocol = suite["settings"]["protocol"]
    curves = {r["label"]: _main_curve(r, protocol) for r in suite["rows"]}
    curves = {label: points for label, points in curves.items() if len(points) > 1}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in curves.items():
        x = [p["steps"] for p in points]
        iqm = np.array([p["iqm"] for p in points])
        (line,) = ax.plot(x, iqm[:, 0], marker="o", label=label)
        ax.fill_between(x, iqm[:, 1], iqm[:, 2], alpha=0.15, color=line.get_color())
    episodes = sorted({(p["steps"], p["episodes_per_task"]) for ps in curves.values() for p in ps})
    ax.set_xticks([n for n, _ in episodes], [f"{n}\n({e} ep)" for n, e in episodes])
    ax.set_xlabel(f"gradient steps (episodes per task of each evaluation, {protocol} protocol)")
    ax.set_ylabel("success (IQM, 95% CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize="small", ncol=2)
    ax.set_title(name)
    return fig


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return str(path)


# ------------------------------------------------------------------------------ throughput
def load_throughput(paths: Iterable[Path]) -> dict[str, list[dict[str, Any]]]:
    """Encoder, learner and collection speed results (the JSON of
    ``benchmarks/encoder_throughput.py`` / ``learner_speed.py`` / ``collect_throughput.py``),
    told apart by their fields."""
    found: dict[str, list[dict[str, Any]]] = {"encoder": [], "learner": [], "collect": []}
    for path in paths:
        data = read_json_object(Path(path), f"throughput file {path}")  # size-capped
        if "windows_per_second" in data:
            found["encoder"].append({**data, "path": str(path)})
        elif "updates_per_s" in data:
            found["learner"].append({**data, "path": str(path)})
        elif data.get("benchmark") == "collect_throughput":
            found["collect"].append({**data, "path": str(path)})
        else:
            raise CtdkitError(
                f"{path} is not an encoder, learner or collection speed result: "
                "remove it from the throughput folder"
            )
    return found


def _encoder_ratio(row: dict[str, Any], paired: dict[str, Any], variant: str) -> float:
    """``variant / reference``: the median of the per-round ratios where the run has them."""
    ratio = paired.get(f"{variant} / reference")
    return ratio["median"] if ratio else row[variant] / row["reference"]


def render_throughput(throughput: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines: list[str] = []
    if throughput.get("encoder"):
        lines += [
            "## Encoder throughput",
            "",
            "`python benchmarks/encoder_throughput.py --json-out ...`: windows/s of "
            "`TrajectoryEncoder.embed` vs. an original-style reference on the same weights "
            "(outputs checked equal first), side by side in one run.",
            "",
        ]
        for run in throughput["encoder"]:
            c = run.get("config", {})
            variants = [k for k in run["windows_per_second"][0] if k not in ("batch",)]
            lines += [
                f"{run['hardware']}, device {run['device']}, torch {run['torch']}, threads "
                f"{run['threads']}; K={c.get('window')}, d={c.get('d_model')}, "
                f"{c.get('n_layers')} layers, {c.get('n_heads')} heads:",
                "",
                "| batch | " + " | ".join(variants) + " | "
                + " | ".join(f"{v} / reference" for v in variants if v != "reference") + " |",
                "|---|" + "---|" * (2 * len(variants) - 1),
            ]  # fmt: skip
            # interleaved runs record each ratio per round: their median, as the docs quote it
            paired = {s["batch"]: s["ratios"] for s in run.get("spread", [])}
            for row in run["windows_per_second"]:
                rates = " | ".join(f"{row[v]:.0f}" for v in variants)
                ratios = " | ".join(
                    f"{_encoder_ratio(row, paired.get(row['batch'], {}), v):.2f}×"
                    for v in variants
                    if v != "reference"
                )
                lines.append(f"| {row['batch']} | {rates} | {ratios} |")
            lines.append("")
    if throughput.get("learner"):
        lines += [
            "## Learner update speed",
            "",
            "`python benchmarks/learner_speed.py --json-out ...`: updates/s, ctdkit's "
            "collective learner vs. d3rlpy `fit()`, same data, nets and batch, side by side.",
            "",
        ]
        for run in throughput["learner"]:
            where = run.get("hardware", "hardware not recorded")
            sizes = ""
            if "batch_size" in run:
                sizes = f", batch {run['batch_size']}, hidden {run['hidden']}"
            lines += [
                f"{where}, torch threads {run.get('threads')}{sizes}:",
                "",
                "| learner | updates/s |",
                "|---|---|",
            ]
            lines += [f"| {k} | {v:.1f} |" for k, v in run["updates_per_s"].items()]
            lines += [f"| **{k}** | **{v:.2f}×** |" for k, v in run.get("ratios", {}).items()]
            lines.append("")
    for run in throughput.get("collect", []):
        lines += [
            "## Collection throughput",
            "",
            f"`{run['command']}`: steps/s, {run['episodes_per_task']} episodes each of "
            f"{', '.join(run['tasks'])}; {run['hardware']}; median over {run['repeats']} "
            f"interleaved rounds, load average {run['load_average_start']} at the start.",
            "",
            "| row | steps/s |",
            "|---|---|",
        ]
        lines += [
            f"| {name} | {spread['median']:.0f} |"
            for name, spread in run["steps_per_second"].items()
        ]
        lines += [
            f"| **{name}** | **{ratio['median']:.2f}×** |" for name, ratio in run["ratios"].items()
        ]
        lines.append("")
    return lines
