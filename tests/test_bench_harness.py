"""The benchmark harness (bench/harness.py, bench/worker.py) with two NumPy-only fake frameworks.

No torch, no timing claims: this checks that workers start in their own processes with the
thread settings, that a numerical mismatch stops the run before timing, and that the result
record and table are complete.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import textwrap
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import harness  # noqa: E402  (bench/ is not a package: importable only once on sys.path)

FAKE = textwrap.dedent('''
    """Two fake frameworks computing y = x @ w; fake_a optionally off by options['error']."""
    import os
    import numpy as np
    from harness import Case, Workload

    FRAMEWORKS = ("fake_a", "fake_b")

    def setup(fw, options):
        def build(a):
            # the worker must see the parent's thread count before it imported NumPy
            want = str(options.get("threads", 1))
            got = {v: os.environ[v] for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MINICNN_NUM_THREADS")}
            assert set(got.values()) == {want}, f"thread settings {got}, expected {want}"
            dtype = np.float64 if fw == "fake_b" and options.get("b64") else np.float32
            x, w = a["x"].astype(dtype), a["w"].astype(dtype)

            def check(double=False):
                xx, ww = (x.astype(np.float64), w.astype(np.float64)) if double else (x, w)
                y = xx @ ww
                if fw == "fake_a":
                    y = y + options.get("error", 0.0) * np.abs(y).max()
                return {"y": y, "threads": np.array(int(os.environ["OPENBLAS_NUM_THREADS"]))}

            with_truth = fw == "fake_b" and options.get("truth")
            return Case(lambda: x @ w, check, (lambda: check(True)) if with_truth else None)
        return build

    def workloads(options):
        make = lambda rng: {"x": rng.standard_normal((64, 48), dtype=np.float32),
                            "w": rng.standard_normal((48, 32), dtype=np.float32)}
        return [Workload("matmul 64x48x32", make, {fw: setup(fw, options) for fw in FRAMEWORKS},
                         flops=2 * 64 * 48 * 32, target=2.0)]
''')


def run(tmp_path: Path, **options: object) -> dict:
    script = tmp_path / "fake_bench.py"
    script.write_text(FAKE)
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        import fake_bench
        importlib.reload(fake_bench)
    finally:
        sys.path.remove(str(tmp_path))
    args = argparse.Namespace(threads=options.get("threads", 1), warmup=1, repeats=3)
    fws = [harness.Framework("fake_a", sys.executable), harness.Framework("fake_b", sys.executable)]
    (wl,) = fake_bench.workloads(options)
    return harness.run_workload(str(script), dict(options), wl, fws, args, str(tmp_path), seed=0)


def test_agreeing_frameworks_are_timed_and_summarized(tmp_path: Path) -> None:
    rec = run(tmp_path)
    assert rec["max_rel_err"] < 1e-6
    for fw in ("fake_a", "fake_b"):
        st = rec["stats"][fw]
        assert st["n"] == 3 and len(st["samples"]) == 3
        assert 0 < st["min"] <= st["q1"] <= st["median"] <= st["q3"] <= st["max"]
        assert rec["memory"][fw]["peak_rss_mib"] > 0
    assert math.isclose(rec["ratio"], rec["stats"]["fake_a"]["median"] / rec["stats"]["fake_b"]["median"])
    ceil = {"sgemm_gflops": 100.0, "sgemm_n": 4096, "copy_gbs": 10.0, "copy_mib": 256}
    result = {"title": "t", "label": "", "command": "c", "tree": "/x", "commit": "abc", "threads": 1,
              "repeats": 3, "warmup": 1, "machine": "m", "versions": {}, "ceilings": ceil,
              "load_before": [0, 0, 0], "load_after": [0, 0, 0], "frameworks": ["fake_a", "fake_b"],
              "workloads": [rec]}
    table = harness.markdown(result, previous=dict(result, label="before"))
    assert "| matmul 64x48x32 |" in table and "GFLOP/s" in table and "before: fake_a ms" in table


def test_thread_count_reaches_the_worker_processes(tmp_path: Path) -> None:
    # each fake worker asserts its thread variables equal options["threads"] (an error stops the run)
    rec = run(tmp_path, threads=2)
    assert rec["rel_err"]["fake_a"]["threads"] == 0.0
    with pytest.raises(harness.BenchError, match="thread settings"):
        script = tmp_path / "fake_bench.py"
        script.write_text(FAKE)
        sys.path.insert(0, str(tmp_path))
        import fake_bench
        sys.path.remove(str(tmp_path))
        (wl,) = fake_bench.workloads({"threads": 3})  # the workers get 2, the fake expects 3
        fws = [harness.Framework("fake_a", sys.executable), harness.Framework("fake_b", sys.executable)]
        harness.run_workload(str(script), {"threads": 3}, wl, fws, argparse.Namespace(threads=2, warmup=1, repeats=1),
                             str(tmp_path), seed=0)
    env: dict = {}
    harness.set_thread_env(3, env)
    assert all(env[v] == "3" for v in harness.THREAD_VARS)


def test_mismatch_stops_before_timing(tmp_path: Path) -> None:
    with pytest.raises(harness.BenchError, match=r"(?s)fake_a disagrees with fake_b before timing.*y \(64, 32\)"):
        run(tmp_path, error=1e-3)


def test_float64_reference_bounds_the_error(tmp_path: Path) -> None:
    # fake_b gives a float64 truth: float32 rounding passes, a 1e-2 error does not
    rec = run(tmp_path, truth=True)
    assert "fake_b (float32 vs float64)" in rec["rel_err"]
    with pytest.raises(harness.BenchError, match="from float64 > allowed"):
        run(tmp_path, truth=True, error=1e-2)


def test_compare_arrays_flags_shape_and_nonfinite() -> None:
    import numpy as np

    ref = {"a": np.ones((2, 3)), "b": np.ones(4)}
    errs, problems = harness.compare_arrays({"a": np.ones((3, 2)), "b": np.full(4, np.nan)}, ref, 1e-4)
    assert errs["a"] == errs["b"] == float("inf") and len(problems) == 2
    errs, problems = harness.compare_arrays({"a": np.ones((2, 3)), "b": np.ones(4) * (1 + 2e-4)}, ref, 1e-4)
    assert problems and "b (4,)" in problems[0] and math.isclose(errs["b"], 2e-4, rel_tol=1e-6)
    _, problems = harness.compare_arrays({"a": np.ones((2, 3))}, ref, 1e-4)
    assert "names differ" in problems[0]


def test_quantiles() -> None:
    assert harness.quantile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.5
    assert harness.quantile([5.0], 0.25) == 5.0
    s = harness.summarize([0.001, 0.003, 0.002])
    assert (s["min"], s["median"], s["max"]) == pytest.approx((1.0, 2.0, 3.0))


def test_harness_import_leaves_numpy_unloaded() -> None:
    # scripts parse --threads through harness before NumPy is imported, so harness must not import it
    import subprocess

    code = "import sys, harness; print(sorted(m for m in ('numpy', 'torch', 'minicnn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(BENCH)))
    assert out.stdout.strip() == "[]"
