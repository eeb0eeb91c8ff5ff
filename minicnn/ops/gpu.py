"""Helpers for the GPU bodies of the ops: the compiled kernels/*.cu module for an array module.

On CuPy this is `minicnn.cuda.module(name)` (a cupy.RawModule compiled once per process and
device). The CPU stand-in of tests (`minicnn.cuda.cpu_harness.fake_device`) answers with the same
kernels built for the CPU harness. Either way the launch code is `minicnn.cuda.launches`.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any


def kernels(xp: ModuleType, name: str) -> Any:
    """kernels/<name>.cu as an object with `launch()` and `grid_cap`, for arrays of module `xp`."""
    fake = getattr(xp, "kernel_module", None)
    if fake is not None:
        return fake(name)
    from ..cuda import module
    return module(name)


def contiguous(xp: ModuleType, a: Any) -> Any:
    """`a` as a C-contiguous array (kernels index flat memory); no copy when it already is one."""
    return a if a.flags.c_contiguous else xp.ascontiguousarray(a)
