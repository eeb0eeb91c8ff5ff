"""The distributed scenarios of tests/distributed/mpi_worker.py, each on 2 and 3 ranks under mpiexec.

Skipped when mpi4py or mpiexec is missing, unless MINICNN_REQUIRE_MPI=1 (CI sets it after
installing the `distributed` extra, so a broken install fails instead of skipping).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "distributed" / "mpi_worker.py"
TIMEOUT = 180  # seconds; every scenario takes a few seconds, a hang is caught here
pytestmark = pytest.mark.mpi


def _mpiexec() -> list[str] | None:
    """The mpiexec matching this Python's mpi4py (the venv's own first), with the flags it needs."""
    here = Path(sys.executable).parent / "mpiexec"
    exe = str(here) if here.exists() else shutil.which("mpiexec")
    if exe is None:
        return None
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    cmd = [exe]
    if "Open MPI" in version or "OpenRTE" in version:
        # Open MPI refuses root without the flag and more ranks than cores without oversubscribe;
        # MPICH (the `mpich` wheel) needs neither
        cmd += ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return cmd


def _launcher() -> list[str]:
    reason = None
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        reason = "mpi4py is not installed (pip install 'minicnn[distributed]')"
    cmd = _mpiexec()
    if reason is None and cmd is None:
        reason = "no mpiexec found next to this Python or on PATH"
    if reason is not None:
        if os.environ.get("MINICNN_REQUIRE_MPI") == "1":
            pytest.fail(f"MINICNN_REQUIRE_MPI=1 but {reason}")
        pytest.skip(reason)
    return cmd  # type: ignore[return-value]


def run_scenario(name: str, ranks: int) -> tuple[int, str, float]:
    cmd = _launcher() + ["-n", str(ranks), sys.executable, str(WORKER), name]
    env = dict(os.environ, MINICNN_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MPLBACKEND="Agg")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"{name} on {ranks} ranks hung for {TIMEOUT}s:\n{out}")
    return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("name", ["equivalence", "equivalence_bn", "fit", "syncbn", "sampler"])
def test_scenario(name, ranks):
    rc, out, _ = run_scenario(name, ranks)
    assert rc == 0, f"{name} on {ranks} ranks failed (exit {rc}):\n{out}"
    for r in range(ranks):
        assert f"OK {name} rank {r}" in out, out


@pytest.mark.parametrize("ranks", [2, 3])
def test_failing_rank_aborts_all_fast(ranks):
    rc, out, secs = run_scenario("raise", ranks)
    assert rc != 0, out
    assert f"rank {ranks - 1} of {ranks} failed" in out and f"boom from rank {ranks - 1}" in out, out
    assert "OK raise" not in out
    assert secs < 60, f"the job took {secs:.0f}s to die after one rank failed"
