"""CPU time, page faults and peak memory of minicnn's pneumonia-CNN training step, minicnn alone.

    MINICNN_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /work/venv/bin/python bench/bench_step_cpu.py \\
        --tree /path/to/minicnn/tree [--sizes 64 180] [--steps 5]

The same step as bench_step.py (same network, weights and batch from the same seeded inputs),
timed by the process's own clocks (`getrusage`): user and system CPU seconds, minor page faults
per step and the peak resident size. With one thread these do not count the time the process
waited for a core, so on a loaded machine they compare two trees far more steadily than wall
time; run it once per tree (`--tree`). bench_step.py remains the comparison with PyTorch.
`--per-op` also prints the CPU time per step of each op class's forward and backward (ops with a
`setup` + per-backend body, timed by wrapping `Function.forward`/`backward`; the CPU algorithm
chosen is part of the conv's name).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 180])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--per-op", action="store_true", help="CPU time per op class (wraps Function)")
    args = p.parse_args()
    sys.path.insert(0, args.tree)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_step
    import numpy as np

    print(f"tree {args.tree}; threads MINICNN {os.environ.get('MINICNN_NUM_THREADS')} "
          f"OPENBLAS {os.environ.get('OPENBLAS_NUM_THREADS')}; load average {os.getloadavg()[0]:.1f}")
    for size in args.sizes:
        opts = {"sizes": [size], "batch": args.batch, "infer_size": 0, "infer_batch": 0}
        wl = next(w for w in bench_step.workloads(opts) if "train" in w.name)
        case = wl.setups["minicnn"](wl.make_inputs(np.random.default_rng(0)))
        case.run()
        case.run()
        per_op = _wrap_functions() if args.per_op else None
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(args.steps):
            case.run()
        r1, wall = resource.getrusage(resource.RUSAGE_SELF), (time.perf_counter() - t0) / args.steps
        user, sys_ = (r1.ru_utime - r0.ru_utime) / args.steps, (r1.ru_stime - r0.ru_stime) / args.steps
        print(f"{wl.name}: user {1e3 * user:.0f} ms + system {1e3 * sys_:.0f} ms = CPU {1e3 * (user + sys_):.0f} ms "
              f"per step (wall {1e3 * wall:.0f} ms); {(r1.ru_minflt - r0.ru_minflt) / args.steps:.0f} page faults "
              f"per step; peak resident {r1.ru_maxrss / 1024:.0f} MiB")
        if per_op is not None:
            totals, restore = per_op
            restore()
            for name, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
                print(f"    {name:40s} {1e3 * sec / args.steps:6.2f} ms CPU per step")


def _wrap_functions() -> tuple[dict, object]:
    """Time every Function.forward/backward by the calling thread's CPU clock, keyed by op class
    (and, for convolutions, the algorithm it chose); returns (totals, restore)."""
    from collections import Counter

    from minicnn import autograd

    totals: Counter = Counter()
    fwd, bwd = autograd.Function.forward, autograd.Function.backward

    def name(fn: object, phase: str) -> str:
        algo = getattr(fn, "chosen", "")
        x = getattr(fn, "x", None)
        chans = f" C{x.shape[1]}" if getattr(x, "ndim", 0) == 4 else ""
        return f"{type(fn).__name__}{' ' + algo if algo else ''}{chans} {phase}"

    def timed_forward(self: object, *xs: object, **kw: object) -> object:
        t0 = time.thread_time()
        y = fwd(self, *xs, **kw)  # type: ignore[arg-type]
        totals[name(self, "fwd")] += time.thread_time() - t0
        return y

    def timed_backward(self: object, gy: object) -> object:
        label = name(self, "bwd")  # before the body: release() may drop attributes afterwards
        t0 = time.thread_time()
        g = bwd(self, gy)  # type: ignore[arg-type]
        totals[label] += time.thread_time() - t0
        return g

    autograd.Function.forward, autograd.Function.backward = timed_forward, timed_backward  # type: ignore[method-assign]

    def restore() -> None:
        autograd.Function.forward, autograd.Function.backward = fwd, bwd  # type: ignore[method-assign]
    return totals, restore


if __name__ == "__main__":
    main()
