#!/usr/bin/env bash
# Run the distributed tests under mpiexec with 2 and 3 ranks (CI, after `pip install -e '.[test,distributed]'`).
# MINICNN_REQUIRE_MPI=1 turns "mpi4py/mpiexec missing" into a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/../.."
python -c "import mpi4py, sys; from mpi4py import MPI; print('mpi4py', mpi4py.__version__, '|', MPI.Get_library_version().splitlines()[0].strip())"
MINICNN_REQUIRE_MPI=1 python -m pytest -q -ra tests/test_distributed_mpi.py tests/test_distributed.py
