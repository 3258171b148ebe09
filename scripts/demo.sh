#!/usr/bin/env bash
# The main job. Builds the flowception program, then with the tiny DiT trained on crossing
# shapes (the checkpoint committed under assets/, or a fresh ~9-minute training run with
# --retrain) samples unconditional, image-to-video and interpolation videos and writes a
# scored report:  runs/demo/{sample,i2v,interpolate,eval}/  and  runs/demo/eval/report.html
set -euo pipefail
cd "$(dirname "$0")/.."

retrain=0
train_seconds=540
for arg in "$@"; do
  case "$arg" in
    --retrain) retrain=1 ;;
    --train-seconds=*) train_seconds="${arg#*=}" ;;
    *) echo "usage: scripts/demo.sh [--retrain] [--train-seconds=N]" >&2; exit 2 ;;
  esac
done

bash scripts/install_deps.sh cmake g++ make libeigen3-dev xtensor-dev xtl-dev nlohmann-json3-dev libpng-dev libgif-dev libcli11-dev

start=$(date +%s)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DFLOWCEPTION_BUILD_TESTS=OFF -DFLOWCEPTION_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" --target flowception_cli
fc=build/release/examples/flowception
out=runs/demo
mkdir -p "$out"

ckpt=assets/shapes_tiny.safetensors
if [ "$retrain" = 1 ] || [ ! -f "$ckpt" ]; then
  $fc train --data shapes --model tiny --patch 4 --batch 16 --lr 5e-4 --warmup 200 --ema 0.999 --tasks 0.5,0.2,0.2,0.1 \
      --steps 100000 --time-limit "$train_seconds" --seed 1 --out "$out/train"
  $fc export --checkpoint "$out/train/checkpoint.safetensors" --out "$out/shapes_tiny.safetensors"
  ckpt="$out/shapes_tiny.safetensors"
fi
echo "model: $ckpt"

common=(--checkpoint "$ckpt" --steps 50 --grid end_dense:3 --solver heun --max-frames 48 --seed 1)
$fc sample "${common[@]}" --count 8 --out "$out/sample"
$fc i2v "${common[@]}" --count 4 --data shapes --image-from-data 7 --out "$out/i2v"
$fc interpolate "${common[@]}" --count 4 --data shapes --keys-from-data 7 --num-keys 2 --out "$out/interpolate"
$fc eval "${common[@]}" --count 48 --data shapes --data-videos 2000 --out "$out/eval"
echo "demo finished in $(( $(date +%s) - start )) s; open $out/eval/report.html"
