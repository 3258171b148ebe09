#!/usr/bin/env python3
"""Learning curves from run folders written by bench/learning_curve.sh.

  python3 bench/plot_learning_curves.py --out DIR [--markdown FILE] [--name NAME=RUN ...] RUN [RUN ...]

For each RUN folder it reads snapshots/videos_<V>.train.json (written by `flowception train` at the
end of the segment that reached V videos) and eval/videos_<V>/run.json (`flowception eval` of the
exported EMA weights), and writes RUN/curve.json: one row per snapshot with videos seen, optimizer
steps, training FLOPs, cumulative training wall time and every quality metric. Into DIR it writes one
PNG per metric (all runs on one plot, against videos seen and against FLOPs) and a Markdown table
(DIR/learning_curves.md, or --markdown). Snapshots without an eval yet are listed with their cost only.
A folder that is not a learning-curve run, or a truncated JSON file, is an error that names it.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

SNAP = re.compile(r"^videos_(\d+)\.train\.json$")

# (key, label, higher is better, data set)
RING = [
    ("valid_frame_fraction", "valid frames", True),
    ("consistent_fraction", "consistent rotation (strict rule)", True),
    ("consistent_whole_video_fraction", "consistent (whole-video rule)", True),
    ("rotation_sequence_fraction", "rotation sequence (the authors rule)", True),
    ("length_legal_fraction", "legal lengths", True),
    ("length_tv", "length TV", False),
    ("fully_valid_fraction", "fully valid videos", True),
    ("rotation_steps_1_3", "rotation steps of 1-3 cells", True),
    ("start_frames_on_one_stride", "start frames on one stride", True),
    ("start_gap_counts_exact", "start-frame gaps with the count their rotations imply", True),
    ("rate_nll_gap", "rate NLL - content-free oracle NLL", False),
]
SHAPES = [
    ("legal_frame_fraction", "legal frames", True),
    ("valid_fraction", "valid videos", True),
    ("speed_length_agreement", "speed-length agreement", True),
    ("length_tv", "length TV", False),
    ("rate_nll_gap", "rate NLL - content-free oracle NLL", False),
]


def fail(msg):
    sys.exit("plot_learning_curves: " + msg)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fail(f"cannot read {path}: {e}")


def metrics_of(scores):
    """The flat metrics of one eval's scores (derived ones included)."""
    m = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    diag = scores.get("diagnostics", {})
    steps = diag.get("rotation_step_fraction")
    if steps:
        m["rotation_steps_1_3"] = sum(steps[1:4])
    if "start_frames_on_one_stride" in diag:
        m["start_frames_on_one_stride"] = diag["start_frames_on_one_stride"]
    counts = diag.get("count_errors")
    if counts and counts.get("gaps"):
        m["start_gap_counts_exact"] = counts["exact_fraction"]
    cal = scores.get("rate_calibration")
    if cal:
        n = sum(b["samples"] for b in cal)
        m["rate_nll_gap"] = sum(b["samples"] * (b["model_nll"] - b["oracle_nll"]) for b in cal) / max(n, 1)
        m["rate_nll"] = sum(b["samples"] * b["model_nll"] for b in cal) / max(n, 1)
        m["oracle_nll"] = sum(b["samples"] * b["oracle_nll"] for b in cal) / max(n, 1)
    return m


def curve(run):
    snaps = os.path.join(run, "snapshots")
    if not os.path.isdir(snaps):
        fail(f"{run} is not a learning-curve run (no snapshots/ folder)")
    rows = []
    for name in os.listdir(snaps):
        m = SNAP.match(name)
        if not m:
            continue
        videos = int(m.group(1))
        t = load(os.path.join(snaps, name))
        for key in ("steps_done", "seconds", "run_flops_total", "config"):
            if key not in t:
                fail(f"{os.path.join(snaps, name)} lacks '{key}' (not a run.json of flowception train)")
        row = {"videos": videos, "steps": t["steps_done"], "flops": t["run_flops_total"],
               "segment_seconds": t["seconds"], "batch": t["config"]["batch"]}
        ev = os.path.join(run, "eval", f"videos_{videos}", "run.json")
        if os.path.exists(ev):
            e = load(ev)
            if "scores" not in e:
                fail(f"{ev} has no 'scores' (not a run.json of flowception eval)")
            row["data"] = e.get("data", "")
            row.update(metrics_of(e["scores"]))
        rows.append(row)
    if not rows:
        fail(f"{run} has no snapshots yet")
    rows.sort(key=lambda r: r["videos"])
    total = 0.0
    for r in rows:
        total += r.pop("segment_seconds")
        r["train_seconds"] = total
        r["videos_seen"] = r["steps"] * r["batch"]
    return rows


def gnuplot(script, what):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
    except FileNotFoundError:
        fail("gnuplot is not installed (apt-get install gnuplot-nox)")
    except subprocess.CalledProcessError as e:
        fail(f"gnuplot failed on {what}: {e.stderr.strip()}")


def fmt(v, key):
    if v is None:
        return ""
    if key in ("length_tv", "rate_nll_gap"):
        return f"{v:.3f}"
    return f"{100 * v:.1f} %"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the plots and the table")
    ap.add_argument("--markdown", help="where to write the table (default OUT/learning_curves.md)")
    ap.add_argument("--name", action="append", default=[], help="NAME=RUN: the label of a run (default: its folder name)")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    labels = {}
    for item in a.name:
        if "=" not in item:
            fail(f"--name wants NAME=RUN, got '{item}'")
        k, v = item.split("=", 1)
        labels[os.path.normpath(v)] = k
    os.makedirs(a.out, exist_ok=True)
    curves = {}
    for run in a.runs:
        rows = curve(run)
        with open(os.path.join(run, "curve.json") + ".tmp", "w") as f:
            json.dump(rows, f, indent=1)
        os.replace(os.path.join(run, "curve.json") + ".tmp", os.path.join(run, "curve.json"))
        curves[labels.get(os.path.normpath(run), os.path.basename(os.path.normpath(run)))] = rows

    data = {r.get("data") for rows in curves.values() for r in rows if r.get("data")}
    metrics = SHAPES if data and all(d.startswith("shapes") for d in data) else RING
    md = ["| run | videos | steps | train FLOPs | train time | " + " | ".join(l for _, l, _ in metrics) + " |",
          "|---|---|---|---|---|" + "---|" * len(metrics)]
    for name, rows in curves.items():
        for r in rows:
            cells = [fmt(r.get(k), k) for k, _, _ in metrics]
            md.append(f"| {name} | {r['videos']:,} | {r['steps']} | {r['flops']:.2e} | {r['train_seconds'] / 60:.1f} min | "
                      + " | ".join(cells) + " |")
    md_path = a.markdown or os.path.join(a.out, "learning_curves.md")
    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        for key, label, _ in metrics:
            for xcol, xname, suffix in [(1, "videos seen", "videos"), (2, "training FLOPs", "flops")]:
                plots = []
                for i, (name, rows) in enumerate(curves.items()):
                    pts = [(r["videos"], r["flops"], r[key]) for r in rows if key in r]
                    if not pts:
                        continue
                    path = os.path.join(tmp, f"{i}_{key}.dat")
                    with open(path, "w") as f:
                        for p in pts:
                            f.write(f"{p[0]} {p[1]} {p[2]}\n")
                    plots.append(f"'{path}' using {xcol}:3 with linespoints lw 2 title '{name.replace('_', ' ')}'")
                if not plots:
                    continue
                png = os.path.join(a.out, f"lc_{key}_{suffix}.png")
                yr = "set yrange [0:1]\n" if key not in ("length_tv", "rate_nll_gap") else ""
                if suffix == "videos":  # ticks at the budgets themselves: 25K, 50K, ..., 3.2M
                    budgets = sorted({r["videos"] for rows in curves.values() for r in rows})
                    ticks = ", ".join(f"'{v / 1e6:g}M' {v}" if v >= 1e6 else f"'{v / 1e3:g}K' {v}" for v in budgets)
                    xaxis = f"set logscale x 2\nset xtics ({ticks})\n"
                else:
                    xaxis = "set logscale x 10\nset format x '10^{%L}'\n"
                gnuplot("set terminal pngcairo size 1000,480 font 'sans,11'\nset grid\nset key outside right top\n"
                        f"set output '{png}'\nset title '{label}'\nset xlabel '{xname}'\n{xaxis}{yr}"
                        "plot " + ", ".join(plots) + "\n", png)
    print(f"learning curves: {md_path} and {a.out}/lc_*.png")


if __name__ == "__main__":
    main()
