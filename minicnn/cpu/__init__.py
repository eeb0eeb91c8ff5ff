"""The CPU runtime: what makes the NumPy bodies of the ops fast, kept out of the maths.

    threads     a thread pool splitting memory-bound array work over the cores
    workspace   reusable scratch buffers, per backend, freed by `release`
    wide        the "wide row" layout of stride-1 window ops
    tuning      cache-size constants (change speed, never results)
    conv, depthwise, pooling, batchnorm, elementwise
                the CPU bodies of those ops (`forward_cpu`/`backward_cpu` call them)

Only CPU bodies import this package; `minicnn.ops` reads without it.
"""
from .threads import get_num_threads, parallel_blocks, parallel_range, set_num_threads
from .workspace import release as release_workspace

__all__ = ["get_num_threads", "set_num_threads", "parallel_blocks", "parallel_range", "release_workspace"]
