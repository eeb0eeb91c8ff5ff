"""Host -> device copies made by data-loader worker threads, overlapping the training step.

A worker copies its batch on its own non-blocking CUDA stream (so the copy never waits for, nor
holds up, the kernels the main thread queues on the default stream), through a pinned staging
buffer (so the DMA is truly asynchronous), and synchronises only its own stream before handing
the batch over: the array is complete when the main thread first touches it.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

_local = threading.local()


def _stream(cp: Any) -> Any:
    s = getattr(_local, "stream", None)
    if s is None:
        s = _local.stream = cp.cuda.Stream(non_blocking=True)
    return s


def to_device_in_worker(x: Any) -> Any:
    """`x` (host array) copied to the GPU on this thread's stream; returns once the copy is complete."""
    from ..backend import cuda_module
    cp = cuda_module()
    if not isinstance(x, np.ndarray) or not hasattr(cp.cuda, "alloc_pinned_memory"):
        return cp.asarray(x)               # the CPU stand-in of tests (no streams) or a non-array
    src = np.ascontiguousarray(x)
    stream = _stream(cp)
    with stream:
        mem = cp.cuda.alloc_pinned_memory(max(1, src.nbytes))   # from CuPy's pinned-memory pool
        host = np.frombuffer(mem, src.dtype, src.size).reshape(src.shape)
        host[...] = src
        out = cp.empty(src.shape, dtype=src.dtype)
        out.set(host, stream=stream)
        stream.synchronize()               # the staging buffer goes back to the pool after this
    return out
