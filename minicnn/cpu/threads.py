"""Split memory-bound array work over the CPU cores with plain threads.

NumPy releases the GIL inside ufunc loops, copies and reductions, so threads that work on
disjoint slices of a batch really run in parallel. BLAS already threads its own matmuls;
this is for the elementwise parts (im2col copies, depthwise taps, pooling, batch norm).
Only CPU bodies call this (GPU bodies never loop over samples: the device is already parallel).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import tuning


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


_num_threads = int(os.environ.get("MINICNN_NUM_THREADS", "0")) or _cpu_count()
_pool: ThreadPoolExecutor | None = None


def set_num_threads(n: int) -> None:
    """Threads used for the elementwise parts of the conv ops (default: the usable cores)."""
    global _num_threads, _pool
    if n < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    _num_threads = int(n)
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


def get_num_threads() -> int:
    return _num_threads


def parallel_range(fn: Callable[[int, int], Any], n: int, work: int) -> None:
    """Call fn(start, stop) on contiguous pieces of range(n), one piece per thread.

    `work` (total elements touched) decides whether threading is worth it (`tuning.MIN_WORK`). The pieces must
    write to disjoint memory; the calling thread does the first piece itself.
    """
    global _pool
    t = min(_num_threads, n) if work >= tuning.MIN_WORK else 1
    if t <= 1:
        fn(0, n)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads - 1, thread_name_prefix="minicnn")
    bounds = [(n * i // t, n * (i + 1) // t) for i in range(t)]
    futures = [_pool.submit(fn, a, b) for a, b in bounds[1:]]
    fn(*bounds[0])
    for f in futures:
        f.result()  # re-raises a worker's exception here


def parallel_blocks(fn: Callable[[int, int], Any], n: int) -> None:
    """Call fn(start, stop) on L2-sized blocks of range(n), the blocks split over the threads.

    For several elementwise passes over the same data: doing all of them block by block reads
    each block from memory once instead of once per pass.
    """
    block = tuning.BLOCK
    nb = -(-n // block)

    def run(a: int, z: int) -> None:
        for s in range(a * block, min(z * block, n), block):
            fn(s, min(s + block, n))
    parallel_range(run, nb, n)
