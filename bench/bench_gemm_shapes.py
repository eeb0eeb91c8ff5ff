"""The matrix products of minicnn's 3x3 convolutions, alone, in the shapes and orientations that
the CPU algorithms could use (issue 14): which ones does BLAS run well?

    OPENBLAS_NUM_THREADS=1 /work/venv/bin/python bench/bench_gemm_shapes.py [--repeats 9]

For each (M, K) of a convolution's product (M = output rows: out channels in forward, in channels
for the input gradient; K = channels x 9 taps) and each N (positions: one band of one sample up
to several samples side by side):
    W @ cols      (M, K) @ (K, N), the weight on the left, writing the NCHW output directly
    cols^T @ W^T  (N, K) @ (K, M), the transposed ("channels last") product
and the Winograd products: 16 batched (M, K=C) @ (C, N) products and the weight-gradient form
(16, M, N) @ (16, N, C). GFLOP/s per CPU second of the calling thread (`time.thread_time`, the
minimum of the repeats), so time spent waiting for a core on a loaded machine is not counted.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np


def cpu_seconds(f: Callable[[], object], repeats: int) -> float:
    f()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        f()
        best = min(best, time.thread_time() - t0)
    return max(best, 1e-9)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=9)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print("im2col products, GFLOP/s per CPU second")
    for m, k, what in [(16, 144, "16->16 forward"), (64, 288, "32->64 forward"), (32, 576, "32->64 input grad"),
                       (128, 576, "64->128 forward"), (64, 1152, "64->128 input grad")]:
        for n in (1088, 3640, 8192, 32768):
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
            o, ot = np.empty((m, n), np.float32), np.empty((n, m), np.float32)
            flops = 2 * m * n * k
            r1 = flops / cpu_seconds(partial(np.matmul, a, b, out=o), args.repeats) / 1e9
            r2 = flops / cpu_seconds(partial(np.matmul, bt, at, out=ot), args.repeats) / 1e9
            print(f"  {what:20s} M{m:<4d} K{k:<5d} N{n:<6d} W@cols {r1:6.1f}   cols^T@W^T {r2:6.1f}")
    print("Winograd products (16 batched), GFLOP/s per CPU second")
    for m, k in [(64, 32), (32, 64), (128, 64), (64, 128), (16, 16)]:
        for n in (256, 1024, 4096, 16384):
            u = rng.standard_normal((16, m, k), dtype=np.float32)
            v = rng.standard_normal((16, k, n), dtype=np.float32)
            g = rng.standard_normal((16, m, n), dtype=np.float32)
            o = np.empty((16, m, n), np.float32)
            flops = 16 * 2 * m * n * k
            r1 = flops / cpu_seconds(partial(np.matmul, u, v, out=o), args.repeats) / 1e9
            r2 = flops / cpu_seconds(partial(np.matmul, g, v.swapaxes(1, 2)), args.repeats) / 1e9
            print(f"  O{m:<4d} C{k:<4d} tiles {n:<6d} U@V {r1:6.1f}   gM@V^T {r2:6.1f}")


if __name__ == "__main__":
    main()
