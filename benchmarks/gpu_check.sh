#!/usr/bin/env bash
# The GPU measurements, prepared for whenever a GPU machine is lent (about 3-5 min on one GPU):
# encoder throughput on CUDA against the original's forward ported op for op, in float32,
# under bfloat16 autocast and with torch.compile, batches up to 65536 windows.
#
#   bash benchmarks/gpu_check.sh                 # JSON -> benchmarks/leaderboard/throughput/
#   OUT=/tmp/gpu bash benchmarks/gpu_check.sh    # JSON -> $OUT
#   DEVICE=cpu BATCHES="1 256" bash benchmarks/gpu_check.sh   # a smoke run of the same flags
#
# Needs a CUDA build of torch (`pip install torch==2.13.0 --index-url
# https://download.pytorch.org/whl/cu128`; the pinned default wheel is the CPU one). Then
# `python benchmarks/render_figures.py` and `python -m ctdkit.bench leaderboard --records
# benchmarks/leaderboard/records --out benchmarks` put the figures into the docs.
set -euo pipefail
cd "$(dirname "$0")/.."
device="${DEVICE:-cuda}"
out="${OUT:-benchmarks/leaderboard/throughput}"
batches="${BATCHES:-1 256 4096 65536}"
python=${PYTHON:-python}
mkdir -p "$out"
"$python" - "$device" <<'PY'
import sys, torch
device = sys.argv[1]
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA device: install a CUDA build")
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0) if device.startswith('cuda') else 'cpu'}")
PY
# shellcheck disable=SC2086  # the batch sizes are separate arguments
timeout 270 "$python" benchmarks/encoder_throughput.py --device "$device" --bf16 --compile \
    --batch-sizes $batches --repeats 5 --seconds-per-sample 0.3 \
    --json-out "$out/encoder-$device.json"
