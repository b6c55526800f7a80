#!/usr/bin/env bash
# One prepared command for a GPU machine (the device tool): continue the painting network's run there.
# Here, first: python tools/pack_paint_data.py   (gpu_data/, gitignored, ~35 MiB)
# Then run this with carry = ["gpu_data", "train_runs/paint/checkpoint.safetensors"]; the updated checkpoint,
# log and samples come back under $OUT, to be copied into train_runs/paint/ (the CPU run continues from it).
# UNTESTED on a GPU so far (no device was lent to the session that wrote it).
set -euo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q torch==2.13.0 >/dev/null 2>&1 || true   # the machine may have its own torch
python3 -m pip install -q --no-deps -e . >/dev/null 2>&1 || export PYTHONPATH=$PWD
python3 -m pip install -q safetensors pillow numpy matplotlib >/dev/null 2>&1 || true
mkdir -p train_runs/paint
python3 tools/paint_run.py --device cuda --data gpu_data --threads 8 --minutes "${1:-8}" --steps "${2:-30000}" \
  2>&1 | tee "$OUT/run.log" | grep -E "step [0-9]*0{2,}/|resumed|bank: 2|Error" || true
cp train_runs/paint/checkpoint.safetensors train_runs/paint/log.json train_runs/paint/samples.jpg \
   train_runs/paint/curves.png "$OUT/"
