"""NumPy spellings of ReLU's passes on one cache-sized block (issue 14): which loops are fast?

    /work/venv/bin/python bench/bench_elementwise_variants.py [--repeats 3000]

One block of `minicnn.cpu.tuning.BLOCK` float32 values (what `parallel_blocks` hands each call),
CPU microseconds per call (`time.thread_time`, mean over the repeats, best of two rounds).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3000)
    args = p.parse_args()
    import numpy as np

    from minicnn.cpu import tuning

    rng = np.random.default_rng(0)
    n = tuning.BLOCK
    x, gy = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    out, mask, zeros, zero = np.empty_like(x), x > 0, np.zeros_like(x), np.float32(0)
    maskf = mask.astype(np.float32)
    variants: dict[str, Callable[[], object]] = {
        "forward: maximum(x, 0.0)  [before]": lambda: np.maximum(x, zero, out=out),
        "forward: maximum(x, zeros array)  [after]": lambda: np.maximum(x, zeros, out=out),
        "forward: fmax(x, 0.0)": lambda: np.fmax(x, zero, out=out),
        "forward: clip(x, 0.0, None)": lambda: np.clip(x, zero, None, out=out),
        "forward: greater(x, 0.0) -> bool mask": lambda: np.greater(x, zero, out=mask),
        "forward: x * bool mask (wrong for -inf)": lambda: np.multiply(x, mask, out=out),
        "backward: gy * bool mask  [kept]": lambda: np.multiply(gy, mask, out=out),
        "backward: gy * float32 mask (4x the mask memory)": lambda: np.multiply(gy, maskf, out=out),
        "backward: copyto(gy, where=mask)": lambda: np.copyto(out, gy, where=mask),
    }
    print(f"block of {n} float32; CPU microseconds per call")
    for name, f in variants.items():
        best = float("inf")
        for _ in range(2):
            t0 = time.thread_time()
            for _ in range(args.repeats):
                f()
            best = min(best, (time.thread_time() - t0) / args.repeats)
        print(f"  {name:50s} {1e6 * best:7.1f} us")


if __name__ == "__main__":
    main()
