"""One framework's benchmark process, started by `harness.py` (not meant to be run by hand).

    python bench/worker.py '<json spec>'

Spec modes: "ceilings" (measure sgemm GFLOP/s and copy GB/s, answer, exit) or "workload"
(set up one workload of one script for one framework, write its check arrays, then serve
requests from stdin: {"cmd": "time", "calls": k} | {"cmd": "memory"} | {"cmd": "quit"}).
Replies are one JSON line each on the original stdout; anything else printed goes to stderr.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
from typing import Any, TextIO

SPEC = json.loads(sys.argv[1])
if "threads" in SPEC:  # the parent set these too; repeated here so the worker stands alone
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MINICNN_NUM_THREADS"):
        os.environ[_var] = str(SPEC["threads"])

import numpy as np  # noqa: E402  (after the thread variables: BLAS reads them when NumPy loads)


def protocol_stream() -> TextIO:
    """Keep the real stdout for replies; send fd 1 (prints, C libraries) to stderr."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def answer(out: TextIO, **msg: Any) -> None:
    out.write(json.dumps(msg) + "\n")
    out.flush()


def settle(max_s: float = 2.0) -> float:
    """Wait until this process uses no CPU (BLAS threads spin ~0.1 s after a call); returns
    the CPU seconds still burnt in the last 5 ms slice (near 0 unless max_s ran out)."""
    deadline = time.perf_counter() + max_s
    while True:
        c0 = time.process_time()
        time.sleep(0.005)
        busy = time.process_time() - c0
        if busy < 5e-4 or time.perf_counter() > deadline:
            return busy


def memory_mib() -> dict:
    """Current and peak resident set of this process (Linux /proc; zeros elsewhere)."""
    vals = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in vals:
                    vals[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {"rss_mib": vals["VmRSS"], "peak_rss_mib": vals["VmHWM"]}


def reset_peak_memory() -> None:
    """Restart the VmHWM peak from the current resident set (Linux >= 4.0; no-op elsewhere)."""
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def ceilings(n: int = 4096, copy_mib: int = 256, repeats: int = 5) -> dict:
    """sgemm (n x n float32 matmul) GFLOP/s and array-copy GB/s (bytes read + written), medians."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    src = np.ones(copy_mib * 2**20 // 4, np.float32)
    dst = np.zeros_like(src)

    def med(fn: Any) -> float:
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    sgemm = 2 * n**3 / med(lambda: np.matmul(a, b, out=c)) / 1e9
    copy = 2 * src.nbytes / med(lambda: np.copyto(dst, src)) / 1e9
    return {"sgemm_gflops": sgemm, "sgemm_n": n, "copy_gbs": copy, "copy_mib": copy_mib}


def load_script(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("bench_script", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import benchmark script {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def serve(out: TextIO) -> None:
    threads = int(SPEC["threads"])
    fw = SPEC["framework"]
    if fw == "torch":
        import torch
        torch.set_num_threads(threads)
    elif importlib.util.find_spec(fw) is not None:  # import cost and baseline memory before setup
        importlib.import_module(fw)
    after_import = memory_mib()
    script = load_script(SPEC["script"])
    found = [w for w in script.workloads(SPEC["options"]) if w.name == SPEC["workload"]]
    if not found:
        raise RuntimeError(f"{SPEC['script']} has no workload {SPEC['workload']!r}")
    wl = found[0]
    if fw not in wl.setups:
        raise RuntimeError(f"workload {wl.name!r} has no setup for framework {fw!r}")
    with np.load(SPEC["inputs"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    case = wl.setups[fw](arrays)
    checked = {k: np.asarray(v) for k, v in case.check().items()}
    tmp = SPEC["check"] + ".part.npz"  # atomic: the parent never reads a half-written file
    np.savez(tmp, **checked)  # type: ignore[arg-type]
    os.replace(tmp, SPEC["check"])
    if case.check64 is not None:
        checked = {k: np.asarray(v) for k, v in case.check64().items()}
        np.savez(tmp, **checked)  # type: ignore[arg-type]
        os.replace(tmp, SPEC["check"].replace(".npz", ".f64.npz"))
    del checked
    reset_peak_memory()  # the peak reported later is the timed calls', not the check's
    settle()
    answer(out, ready=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "quit":
            return
        if req["cmd"] == "memory":
            answer(out, rss_after_import_mib=after_import["rss_mib"], **memory_mib())
        elif req["cmd"] == "time":
            secs, cpu = [], []
            for _ in range(int(req["calls"])):
                c0, t0 = time.process_time(), time.perf_counter()
                case.run()
                secs.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)  # all threads: ~threads x secs when unshared
            answer(out, seconds=secs, cpu_seconds=cpu, unsettled_cpu_s=settle())
        else:
            answer(out, error=f"unknown request {req!r}")


def main() -> None:
    out = protocol_stream()
    try:
        if SPEC["mode"] == "ceilings":
            answer(out, **ceilings())
        else:
            serve(out)
    except Exception as e:  # noqa: BLE001  # any failure: the parent prints it and stops
        import traceback
        traceback.print_exc()
        answer(out, error=f"{type(e).__name__}: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
