#!/usr/bin/env python3
"""Tables (Markdown) and plots (PNG, through gnuplot) from the Google Benchmark JSON files of
bench/ and, optionally, the run.json files of `flowception eval` on the toy sets.

  python3 bench/plot_benchmarks.py --out docs/img --markdown docs/benchmark_tables.md \
      training_cost.json sampling_cost.json ablation.json [--eval NAME=runs/x/run.json ...]

Every ratio is formed from numbers of one JSON file, i.e. measured in the same run. Files of
other benchmarks are ignored; an input that is not benchmark JSON is an error that names it.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

TRAIN = re.compile(r"^BM_TrainStep/(?P<method>\w+)/(?P<which>\d)/(?P<L>\d+)")
SAMPLE = re.compile(r"^BM_Sample(?P<method>Flowception|FullSequence|Autoregressive(?:/\w+)?)/(?P<L>\d+)")
ABLATE = re.compile(r"^BM_(?P<kind>Ablation|Rules)<(?P<kappa>\w+), (?P<solver>\w+), (?P<grid>\w+)>/(?P<N>\d+)/(?P<mode>\d)/(?P<rule>\d)")
RULES = ["learned", "random", "hierarchical", "left_to_right"]
MODES = ["poisson", "bernoulli"]


def fail(msg):
    sys.exit("plot_benchmarks: " + msg)


def load(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fail(f"cannot read {path}: {e}")
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        fail(f"{path} is not Google Benchmark JSON (no 'benchmarks' list)")
    return data


def ms(b):
    """Real time per iteration in milliseconds."""
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def runs_of(data):
    """Per-iteration entries, or the means of repeated ones (aggregates only)."""
    out = []
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "mean":
            continue
        name = re.sub(r"(_mean)$", "", b["name"])
        name = re.sub(r"/iterations:\d+|/repeats:\d+|/min_time:[\d.]+", "", name)
        out.append((name, b))
    return out


def gnuplot(script, what):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
    except FileNotFoundError:
        fail("gnuplot is not installed (apt-get install gnuplot-nox)")
    except subprocess.CalledProcessError as e:
        fail(f"gnuplot failed on {what}: {e.stderr.strip()}")


def write_data(tmp, name, rows):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        for r in rows:
            f.write(" ".join(str(x) for x in r) + "\n")
    return path


HEAD = "set terminal pngcairo size 900,560 font 'sans,11'\nset grid\nset key outside right\n"


def training(data, out, tmp, md):
    rows = {}
    for name, b in runs_of(data):
        m = TRAIN.match(name)
        if m:
            rows[(m["which"], int(m["L"]), m["method"])] = b
    if not rows:
        return
    md.append("### Training cost per step (one video)\n")
    md.append("FLOPs are the DiT's forward + backward count averaged over 512 drawn samples; wall time is the "
              "mean of the timed steps (sample building, packing, forward, backward, loss, AdamW, EMA).\n")
    md.append("| config | frames | method | GFLOP / step | attention share | ms / step | FLOPs vs full-seq | "
              "attention FLOPs vs full-seq | wall vs full-seq |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    series = {}
    for (which, L, method), b in sorted(rows.items()):
        ref = rows.get((which, L, "full_sequence"))
        fr = b["GFLOPs_expected"] / ref["GFLOPs_expected"] if ref else float("nan")
        ar = (b["GFLOPs_expected"] * b["attention_share"] / (ref["GFLOPs_expected"] * ref["attention_share"])
              if ref else float("nan"))
        wr = ms(b) / ms(ref) if ref else float("nan")
        cfg = "tiny" if which == "0" else "S"
        md.append(f"| {cfg} | {L} | {method} | {b['GFLOPs_expected']:.2f} | {b['attention_share']:.2f} | "
                  f"{ms(b):.1f} | {fr:.3f} | {ar:.3f} | {wr:.3f} |")
        series.setdefault((cfg, method), []).append((L, fr, wr, ar))
    md.append("")
    for col, what, png in [(2, "FLOPs", "training_flops_ratio.png"), (4, "attention FLOPs", "training_attention_ratio.png")]:
        plots = []
        for (cfg, method), pts in sorted(series.items()):
            if method == "full_sequence":
                continue
            f = write_data(tmp, f"train_{cfg}_{method}.dat", sorted(pts))
            plots.append(f"'{f}' using 1:{col} with linespoints lw 2 title '{cfg} {method.replace('_', ' ')}'")
        gnuplot(HEAD.replace("900,560", "1100,560") + f"set output '{os.path.join(out, png)}'\n"
                f"set title 'Training {what} per step relative to full-sequence (same videos, same run)'\n"
                f"set xlabel 'frames per video'\nset ylabel '{what} / full-sequence {what}'\nset logscale x 2\n"
                "set key outside right\nset yrange [0:*]\n" + "plot " + ", ".join(plots) + "\n", png)


def sampling(data, out, tmp, md):
    rows = {}
    for name, b in runs_of(data):
        m = SAMPLE.match(name)
        if m:
            method = {"Flowception": "flowception", "FullSequence": "full_sequence"}.get(m["method"], None)
            if method is None:
                method = "autoregressive_" + m["method"].split("/")[1]
            rows[(method, int(m["L"]))] = b
    if not rows:
        return
    md.append("### Sampling cost per video (tiny DiT, Euler, N = 20)\n")
    md.append("| method | frames | NFE | GFLOP | ms | NFE vs full-seq | GFLOP vs full-seq |")
    md.append("|---|---|---|---|---|---|---|")
    series = {}
    for (method, L), b in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        ref = rows.get(("full_sequence", L))
        md.append(f"| {method} | {L} | {b['NFE']:.0f} | {b['GFLOPs']:.2f} | {ms(b):.0f} | "
                  f"{b['NFE'] / ref['NFE']:.2f} | {b['GFLOPs'] / ref['GFLOPs']:.2f} |" if ref else
                  f"| {method} | {L} | {b['NFE']:.0f} | {b['GFLOPs']:.2f} | {ms(b):.0f} | | |")
        series.setdefault(method, []).append((L, b["NFE"], b["GFLOPs"], ms(b)))
    md.append("")
    for col, label, fname in [(3, "GFLOP per video", "sampling_flops.png"), (4, "wall time per video (ms)", "sampling_time.png")]:
        plots = []
        for method, pts in sorted(series.items()):
            f = write_data(tmp, f"sample_{method}.dat", sorted(pts))
            plots.append(f"'{f}' using 1:{col} with linespoints lw 2 title '{method.replace('_', ' ')}'")
        gnuplot(HEAD + f"set output '{os.path.join(out, fname)}'\nset title 'Sampling cost against video length'\n"
                f"set xlabel 'frames'\nset ylabel '{label}'\nset logscale xy\n" + "plot " + ", ".join(plots) + "\n", fname)


def ablation(data, out, tmp, md):
    grid_rows, rule_rows = [], []
    for name, b in runs_of(data):
        m = ABLATE.match(name)
        if not m:
            continue
        (grid_rows if m["kind"] == "Ablation" else rule_rows).append((m, b))
    if grid_rows:
        md.append("### κ × solver × grid (length and Gaussian oracles, 1000 videos, Poisson jumps)\n")
        md.append("| κ | solver | grid | N | length TV | mean error | variance error | NFE / video |")
        md.append("|---|---|---|---|---|---|---|---|")
        bars = {}
        for m, b in grid_rows:
            md.append(f"| {m['kappa']} | {m['solver']} | {m['grid']} | {m['N']} | {b['length_tv']:.3f} | "
                      f"{b['mean_error']:.4f} | {b['var_error']:.4f} | {b['NFE']:.0f} |")
            key = f"{m['kappa'].replace('Kappa', '')}-{m['solver'].replace('RungeKutta4', 'RK4')}-{m['grid'].replace('Grid', '')}"
            bars.setdefault(key, {})[int(m["N"])] = b["length_tv"]
        md.append("")
        steps = sorted({n for v in bars.values() for n in v})
        rows = [(k.replace("_", "-"), *[v.get(n, "NaN") for n in steps]) for k, v in sorted(bars.items())]
        f = write_data(tmp, "ablation.dat", rows)
        cols = ", ".join(f"'{f if i == 0 else ''}' using {i + 2}{':xtic(1)' if i == 0 else ''} title 'N = {n}'"
                         for i, n in enumerate(steps))
        gnuplot(HEAD.replace("900,560", "1100,560") + f"set output '{os.path.join(out, 'ablation_length_tv.png')}'\n"
                "set title 'Length TV against P(L) by scheduler, solver and grid'\nset ylabel 'total variation'\n"
                "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
                "set xtics rotate by -45 scale 0 font ',9'\nset key top right\n"
                f"plot {cols}\n", "ablation_length_tv.png")
    if rule_rows:
        md.append("### Jump mode × insertion rule (linear κ, Heun, N = 100)\n")
        md.append("| grid | jump | rule | length TV | mean error | variance error | NFE / video |")
        md.append("|---|---|---|---|---|---|---|")
        for m, b in rule_rows:
            md.append(f"| {m['grid']} | {MODES[int(m['mode'])]} | {RULES[int(m['rule'])]} | {b['length_tv']:.3f} | "
                      f"{b['mean_error']:.4f} | {b['var_error']:.4f} | {b['NFE']:.0f} |")
        md.append("")


def evals(specs, out, tmp, md):
    if not specs:
        return
    md.append("### Trained models on the toy sets\n")
    md.append("Ring: valid frames, consistent rotation, fully valid videos, legal lengths. Crossing shapes: legal "
              "frames, speed–length agreement, valid videos (no fixed set of legal lengths).\n")
    md.append("| run | method | videos | valid / legal frames | consistent / speed–length | valid videos | "
              "legal lengths | length TV |")
    md.append("|---|---|---|---|---|---|---|---|")
    plots = {}
    for spec in specs:
        if "=" not in spec:
            fail(f"--eval wants NAME=PATH, got '{spec}'")
        name, path = spec.split("=", 1)
        try:
            with open(path) as f:
                run = json.load(f)
            s = run["scores"]
            if "valid_fraction" in s:  # crossing shapes
                row = (s["legal_frame_fraction"], s["speed_length_agreement"], s["valid_fraction"], None, s["length_tv"])
            else:
                row = (s["valid_frame_fraction"], s["consistent_fraction"], s["fully_valid_fraction"],
                       s["length_legal_fraction"], s["length_tv"])
        except (OSError, json.JSONDecodeError, KeyError) as e:
            fail(f"cannot read eval results {path}: {e}")
        legal = "—" if row[3] is None else f"{row[3]:.1%}"
        md.append(f"| {name} | {run.get('method', 'flowception')} | {len(run['lengths'])} | {row[0]:.1%} | {row[1]:.1%} | "
                  f"{row[2]:.1%} | {legal} | {row[4]:.3f} |")
        drift = [(d["frame"], d["legal_fraction"], d["videos"]) for d in s.get("legal_fraction_by_frame", []) if d["videos"] >= 5]
        if drift:
            data_set = re.sub(r"[^A-Za-z0-9_]", "_", str(run.get("data", "data")))
            f = write_data(tmp, f"drift_{data_set}_{len(plots.get(data_set, []))}.dat", drift)
            plots.setdefault(data_set, []).append(f"'{f}' using 1:2 with linespoints lw 2 title '{name.replace('_', ' ')}'")
    md.append("")
    for data_set, lines in sorted(plots.items()):
        png = f"drift_{data_set}.png"
        gnuplot(HEAD.replace("900,560", "1150,560") + f"set output '{os.path.join(out, png)}'\n"
                f"set title 'Drift on {data_set}: legal frames at each frame index (indices with >= 5 videos)'\n"
                "set xlabel 'frame index'\nset ylabel 'legal fraction'\nset yrange [0:1.05]\n"
                "plot " + ", ".join(lines) + "\n", png)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="*", help="Google Benchmark JSON files")
    ap.add_argument("--out", required=True, help="directory for the PNG plots")
    ap.add_argument("--markdown", help="write the tables here (default: standard output)")
    ap.add_argument("--eval", action="append", default=[], help="NAME=run.json of 'flowception eval'")
    a = ap.parse_args()
    if not a.json and not a.eval:
        fail("nothing to plot: give benchmark JSON files and/or --eval NAME=run.json")
    os.makedirs(a.out, exist_ok=True)
    md = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in a.json:
            data = load(path)
            ctx = data.get("context", {})
            md.append(f"<!-- {os.path.basename(path)}: {ctx.get('date', '?')}, {ctx.get('num_cpus', '?')} CPUs at "
                      f"{ctx.get('mhz_per_cpu', '?')} MHz -->\n")
            training(data, a.out, tmp, md)
            sampling(data, a.out, tmp, md)
            ablation(data, a.out, tmp, md)
        evals(a.eval, a.out, tmp, md)
    text = "\n".join(md) + "\n"
    if a.markdown:
        tmp_path = a.markdown + ".tmp"
        with open(tmp_path, "w") as f:
            f.write(text)
        os.replace(tmp_path, a.markdown)  # atomic: a reader never sees half a file
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
