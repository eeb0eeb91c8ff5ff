#!/usr/bin/env bash
# One call on a fresh GPU machine, under 8 minutes: install, GPU tests, benchmark (kernels and the full
# 180x180 batch-32 float32 training step, minicnn vs PyTorch + cuDNN), JSON to $OUT.
#   OUT=/some/dir bash bench/gpu_check.sh
#
# Wheels: a GPU machine may have no network, so install from .whl/ at the repository root when it is
# there (PyPI otherwise). Fill it beforehand, on a machine with PyPI, for the GPU machine's Python
# (3.12, x86-64 manylinux); with --platform pip needs --only-binary, so every package must be a wheel:
#   pip download -d .whl --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       cupy-cuda12x nvidia-cuda-nvrtc-cu12 numpy pillow matplotlib tqdm pytest 'setuptools>=61' wheel
#   # optional, for the cuDNN comparison (about 3 GB with its nvidia-* dependencies):
#   pip download -d .whl --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       --index-url https://download.pytorch.org/whl/cu124 torch
# (cupy-cuda12x alone is over 100 MB: carry .whl/ in a shared folder that travels with the checkout.)
# Time budget (each step has its own timeout): install <= 150 s, GPU tests <= 120 s, benchmark <= 180 s.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
t0=$(date +%s)
log() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/gpu_check.log"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia_smi.csv" 2>&1 || true
log "gpu: $(tail -n +2 "$OUT/nvidia_smi.csv" 2>/dev/null)"

WHL=${WHL:-.whl}
python3 -m venv /tmp/minicnn-gpu-venv && . /tmp/minicnn-gpu-venv/bin/activate
if ls "$WHL"/*.whl >/dev/null 2>&1 && \
   timeout 150 pip install -q --no-index --find-links "$WHL" -e '.[test,gpu]' >>"$OUT/gpu_check.log" 2>&1; then
  log "installed from $WHL/"
  timeout 60 pip install -q --no-index --find-links "$WHL" torch >>"$OUT/gpu_check.log" 2>&1 && log "torch installed"
else
  log "installing from PyPI"
  timeout 150 pip install -q --retries 1 --timeout 15 -e '.[test,gpu]' >>"$OUT/gpu_check.log" 2>&1 || log "pip install failed"
fi
python -c "import minicnn.cuda as mc; mc.require(); print('cuda ok')" 2>&1 | tee -a "$OUT/gpu_check.log"

log "gpu tests"
timeout 120 python -m pytest -q -m gpu tests/ --junitxml "$OUT/gpu_tests.xml" > "$OUT/gpu_tests.txt" 2>&1
echo "{\"gpu_tests_exit\": $?}" > "$OUT/gpu_tests_status.json"
tail -3 "$OUT/gpu_tests.txt" | tee -a "$OUT/gpu_check.log"

log "benchmark"
timeout 180 python bench/bench_gpu.py --out "$OUT/bench_gpu.json" > "$OUT/bench_gpu.txt" 2>&1 || log "benchmark failed or timed out"
tail -20 "$OUT/bench_gpu.txt" | tee -a "$OUT/gpu_check.log"
log "done; results in $OUT"
