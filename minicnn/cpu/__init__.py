"""The CPU runtime: what makes the NumPy bodies of the ops fast, kept out of the maths.

    threads     a thread pool splitting memory-bound array work over the cores
    workspace   reusable scratch buffers, per backend, freed by `release`
    wide        the "wide row" layout of stride-1 window ops
    tuning      cache-size constants (change speed, never results)
    memory      malloc settings that keep freed arrays mapped (no page faults per step)
    conv, depthwise, pooling, batchnorm, elementwise
                the CPU bodies of those ops (`forward_cpu`/`backward_cpu` call them)

Only CPU bodies import this package; `minicnn.ops` reads without it.
"""
from .memory import keep_freed_memory
from .threads import get_num_threads, parallel_blocks, parallel_range, set_num_threads
from .workspace import release as release_workspace

keep_freed_memory()  # the first CPU op imports this package: before the big arrays come

__all__ = ["keep_freed_memory", "get_num_threads", "set_num_threads", "parallel_blocks", "parallel_range",
           "release_workspace"]
