#!/usr/bin/env bash
# bench/learning_curve.sh and bench/plot_learning_curves.py end to end, at toy budgets (a few
# seconds): snapshots, evals, curve.json, table and plots are written; a rerun with a larger budget
# trains only the new segment, and its snapshot holds the same weights as one uninterrupted run to
# that budget (the script's claim that segments are one run); bad arguments and bad run folders
# fail with messages that name them.
#   tests/plot/learning_curve_test.sh FLOWCEPTION_BIN SCRATCH_DIR PYTHON
set -euo pipefail
bin=$1 work=$2 py=${3:-python3}
repo=$(cd "$(dirname "$0")/../.." && pwd)
lc="$repo/bench/learning_curve.sh"
fail() { echo "learning_curve_test: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
export FLOWCEPTION_BIN=$bin OMP_NUM_THREADS=1
train=(--data ring --batch 16 --tasks 1,0,0,0 --seed 3 --save-every 0)
evalf=(--eval-count 4 --eval-steps 10)

bash "$lc" --out "$work/run" --budgets 32,64 "${evalf[@]}" -- "${train[@]}" > "$work/log1" 2>&1 \
  || fail "first run failed: $(cat "$work/log1")"
for v in 32 64; do
  for f in snapshots/videos_$v.safetensors snapshots/videos_$v.train.json eval/videos_$v/run.json; do
    [ -s "$work/run/$f" ] || fail "no $f after the first run"
  done
done
[ "$(grep -c '^== .* training to' "$work/log1")" = 2 ] || fail "expected two training segments: $(cat "$work/log1")"

# A larger budget: only the new segment is trained, only its snapshot is evaluated.
bash "$lc" --out "$work/run" --budgets 32,64,128 "${evalf[@]}" > "$work/log2" 2>&1 \
  || fail "second run failed: $(cat "$work/log2")"
[ "$(grep -c '^== .* training to' "$work/log2")" = 1 ] || fail "the rerun retrained old segments: $(cat "$work/log2")"
[ "$(grep -c '^== .* evaluating' "$work/log2")" = 1 ] || fail "the rerun re-evaluated old snapshots: $(cat "$work/log2")"

# The same training in one go (8 steps of 16 videos).
bash "$lc" --out "$work/straight" --budgets 128 --no-eval -- "${train[@]}" > "$work/log3" 2>&1 \
  || fail "straight run failed: $(cat "$work/log3")"

"$py" - "$work" <<'EOF'
import json, os, struct, sys
work = sys.argv[1]
def fail(msg):
    sys.exit("learning_curve_test: " + msg)
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    header.pop("__metadata__", None)
    return {k: blob[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}
a = tensors(os.path.join(work, "run/snapshots/videos_128.safetensors"))
b = tensors(os.path.join(work, "straight/snapshots/videos_128.safetensors"))
if a.keys() != b.keys() or not a:
    fail("the segmented and the straight snapshots hold different tensors")
diff = [k for k in a if a[k] != b[k]]
if diff:
    fail(f"segmented training differs from one run in {len(diff)} tensors, e.g. {diff[0]}")
rows = json.load(open(os.path.join(work, "run/curve.json")))
if [r["videos"] for r in rows] != [32, 64, 128] or [r["steps"] for r in rows] != [2, 4, 8]:
    fail(f"curve.json rows: {[(r['videos'], r['steps']) for r in rows]}")
if not all(r1["flops"] > r0["flops"] > 0 for r0, r1 in zip(rows, rows[1:])):
    fail("training FLOPs do not grow along the curve")
if not all(r1["train_seconds"] >= r0["train_seconds"] for r0, r1 in zip(rows, rows[1:])):
    fail("cumulative training time decreases")
for r in rows:
    for k in ("valid_frame_fraction", "length_legal_fraction", "consistent_fraction"):
        if not 0.0 <= r.get(k, -1) <= 1.0:
            fail(f"{k} missing or out of [0, 1] at {r['videos']} videos")
table = open(os.path.join(work, "run/plots/learning_curves.md")).read().splitlines()
if len(table) != 2 + 3 or "valid frames" not in table[0]:
    fail("the Markdown table does not have one row per snapshot")
for name in ("lc_valid_frame_fraction_videos.png", "lc_length_tv_flops.png"):
    with open(os.path.join(work, "run/plots", name), "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            fail(f"{name} is not a PNG")
EOF

# Bad input: each fails, and says what is wrong.
expect_error() {  # expect_error PATTERN COMMAND...
  local pattern=$1; shift
  if "$@" > "$work/err" 2>&1; then fail "succeeded but should not: $*"; fi
  grep -q -- "$pattern" "$work/err" || fail "'$*' did not say '$pattern': $(cat "$work/err")"
}
expect_error "--out DIR is required" bash "$lc" --budgets 32
expect_error "unknown argument '--bogus'" bash "$lc" --out "$work/x" --bogus
expect_error "give --batch and --data" bash "$lc" --out "$work/nobatch" -- --data ring
mkdir -p "$work/empty"
expect_error "$work/empty is not a learning-curve run" "$py" "$repo/bench/plot_learning_curves.py" --out "$work/p" "$work/empty"
cp -r "$work/run" "$work/broken"
head -c 40 "$work/run/snapshots/videos_64.train.json" > "$work/broken/snapshots/videos_64.train.json"
expect_error "videos_64.train.json" "$py" "$repo/bench/plot_learning_curves.py" --out "$work/p" "$work/broken"
echo "learning_curve_test: passed"
