"""Time minicnn's batch norm (training, affine) forward and backward on one workload.

    python bench/bench_batchnorm.py [--shape 16 64 90 90] [--repeats 25] [--label after]

Prints min and median milliseconds of forward and of backward. Run it in separate processes
for two checkouts (PYTHONPATH=<tree>) and interleave them: on a shared machine the spread
between runs is larger than most differences.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import minicnn.nn.functional as F
from minicnn import Tensor


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=int, nargs=4, default=[16, 64, 90, 90])
    p.add_argument("--repeats", type=int, default=25)
    p.add_argument("--label", default="minicnn")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    c = args.shape[1]
    x = Tensor(rng.standard_normal(args.shape).astype(np.float32), requires_grad=True)
    w = Tensor((1 + 0.1 * rng.standard_normal(c)).astype(np.float32), requires_grad=True)
    b = Tensor(rng.standard_normal(c).astype(np.float32), requires_grad=True)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    fw, bw = [], []
    for _ in range(args.repeats):
        x.grad = w.grad = b.grad = None
        t0 = time.perf_counter()
        y = F.batch_norm(x, np.zeros(c, np.float32), np.ones(c, np.float32), w, b, True)
        t1 = time.perf_counter()
        y.backward(gy)
        t2 = time.perf_counter()
        fw.append(t1 - t0)
        bw.append(t2 - t1)
    print(f"{args.label} {tuple(args.shape)}: forward min {min(fw) * 1e3:.1f} ms median {np.median(fw) * 1e3:.1f}; "
          f"backward min {min(bw) * 1e3:.1f} median {np.median(bw) * 1e3:.1f}")


if __name__ == "__main__":
    main()
