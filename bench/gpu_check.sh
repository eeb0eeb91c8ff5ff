#!/usr/bin/env bash
# One call on a fresh GPU machine, under 8 minutes: install, GPU tests, benchmark, JSON to $OUT.
#   OUT=/some/dir bash bench/gpu_check.sh
# Installs from wheels carried in .whl/ first (a GPU machine may have no network), PyPI otherwise.
# Fill .whl/ beforehand on a machine with PyPI, for the GPU machine's Python, e.g.:
#   pip download -d .whl cupy-cuda12x nvidia-cuda-nvrtc-cu12 numpy pillow matplotlib tqdm pytest 'setuptools>=61' wheel
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
t0=$(date +%s)
log() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/gpu_check.log"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia_smi.csv" 2>&1 || true
log "gpu: $(tail -n +2 "$OUT/nvidia_smi.csv" 2>/dev/null)"

python3 -m venv /tmp/minicnn-gpu-venv && . /tmp/minicnn-gpu-venv/bin/activate
if ls .whl/*.whl >/dev/null 2>&1 && \
   timeout 240 pip install -q --no-index --find-links .whl -e '.[test,gpu]' >>"$OUT/gpu_check.log" 2>&1; then
  log "installed from .whl/"
else
  log "installing from PyPI"
  timeout 240 pip install -q --retries 1 --timeout 15 -e '.[test,gpu]' >>"$OUT/gpu_check.log" 2>&1 || log "pip install failed"
fi
python -c "import minicnn.cuda as mc; mc.require(); print('cuda ok')" 2>&1 | tee -a "$OUT/gpu_check.log"

log "gpu tests"
timeout 150 python -m pytest -q -m gpu tests/ --junitxml "$OUT/gpu_tests.xml" > "$OUT/gpu_tests.txt" 2>&1
echo "{\"gpu_tests_exit\": $?}" > "$OUT/gpu_tests_status.json"
tail -3 "$OUT/gpu_tests.txt" | tee -a "$OUT/gpu_check.log"

log "benchmark"
timeout 150 python bench/bench_gpu.py --out "$OUT/bench_gpu.json" > "$OUT/bench_gpu.txt" 2>&1 || log "benchmark failed or timed out"
tail -20 "$OUT/bench_gpu.txt" | tee -a "$OUT/gpu_check.log"
log "done; results in $OUT"
