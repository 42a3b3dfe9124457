#!/usr/bin/env bash
# GPU check of the performance comparisons: (a) training throughput vs the plain loop and TRL's GKDTrainer,
# (b) teacher cache vs live teacher and (d) distillation effectiveness at the `default` preset's budget, in bf16 (and
# fp32 for the equal-precision ratio) on CUDA with the default pair. Writes the JSON (the GPU's name is under
# machine.gpu) and the printed table next to it; stops after 8 minutes.
#
#   bench/gpu_check.sh [out.json]          # default: assets/bench/gpu-results.json
#
# Needs the `bench` extra (pip install -e '.[bench]') and the built-in teacher in the workbench home
# (KD_WORKBENCH_HOME or ~/.cache/kd-workbench): nothing is downloaded (HF_HUB_OFFLINE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-assets/bench/gpu-results.json}"
python="${PYTHON:-python}"
if [ -x .venv/bin/python ]; then python=.venv/bin/python; fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRL_EXPERIMENTAL_SILENCE=1
"$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run bench/gpu_check.sh on a GPU machine')"
mkdir -p "$(dirname "$out")"
timeout 480 "$python" -m workbench bench --device cuda --precision bf16 --only a,b,d --steps 30 \
    --out "$out" --work-dir "${BENCH_WORK_DIR:-bench-work-gpu}" | tee "${out%.json}.txt"
