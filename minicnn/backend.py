"""Array-module selection: NumPy on the CPU, CuPy on NVIDIA GPUs, chosen per array.

CuPy is never imported here. A CuPy array can only exist once `cupy` has been imported (by the
user, or by `minicnn.cuda.require()` when 'cuda' is asked for), so `get_array_module` looks in
`sys.modules` instead: `import minicnn` costs nothing and cannot fail on a machine without CUDA.

Tests can install a stand-in GPU array module (`minicnn.cuda.cpu_harness.fake_device`, NumPy
underneath, kernels run by the CPU harness) with `use_gpu_module`; it is then what 'cuda' means.
"""
from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

Array = Any
"""A `numpy.ndarray` or a `cupy.ndarray` (the two share the API minicnn uses). An alias, not a
Protocol: NumPy's and CuPy's stubs disagree in details no signature here depends on, so the
name documents intent (raw arrays in `Function.forward`/`backward`, not Tensors)."""

DEVICES = ("cpu", "cuda")


class BackendError(NotImplementedError):
    """An op was given arrays on a backend for which it has no body (e.g. no GPU path yet)."""


class DeviceMismatchError(RuntimeError):
    """One op got tensors that live on two devices."""


_override: ModuleType | None = None      # a stand-in GPU module installed by tests


def use_gpu_module(module: ModuleType | None) -> ModuleType | None:
    """Make `module` the GPU array module (None: back to CuPy); returns the previous override."""
    global _override
    old, _override = _override, module
    return old


def gpu_module() -> ModuleType | None:
    """The GPU array module if one is loaded (the override, or an already-imported cupy), else None."""
    if _override is not None:
        return _override
    return sys.modules.get("cupy")


def get_array_module(*xs: Any) -> ModuleType:
    """Return `cupy` if any argument lives on the GPU, else `numpy` (Chainer's idiom)."""
    cp = gpu_module()
    if cp is not None:
        nd = cp.ndarray
        for x in xs:
            if not isinstance(x, np.ndarray):
                x = getattr(x, "data", x)
            if isinstance(x, nd):
                return cp
    return np


def gpu_available() -> bool:
    """True when a CUDA device can be used (imports CuPy if installed; never raises)."""
    if _override is not None:
        return True
    from .cuda import is_available
    return is_available()


def normalize_device(device: Any) -> str:
    """'cpu' or 'cuda' from 'cpu', 'cuda', 'cuda:0' (one GPU per process: the current one)."""
    name = str(device)
    if name == "cpu":
        return "cpu"
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        return "cuda"
    raise ValueError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")


def cuda_module() -> ModuleType:
    """The GPU array module for moving data to 'cuda'; CudaUnavailable (what is missing, how to fix) otherwise."""
    if _override is not None:
        return _override
    from .cuda import require
    return require()


def to_device(x: Any, device: str) -> Any:
    """Move an array to 'cpu' (NumPy) or 'cuda' (CuPy); a no-op when already there."""
    device = normalize_device(device)
    xp = get_array_module(x)
    if device == "cpu":
        return xp.asnumpy(x) if xp is not np else np.asarray(x)
    if xp is not np:
        return x
    return cuda_module().asarray(x)


def device_of(x: Any) -> str:
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if get_array_module(x) is not np else "cpu"
