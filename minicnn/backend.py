"""Array-module selection: NumPy on the CPU, CuPy on NVIDIA GPUs, chosen per array."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

Array = Any
"""A `numpy.ndarray` or a `cupy.ndarray` (the two share the API minicnn uses). An alias, not a
Protocol: NumPy's and CuPy's stubs disagree in details no signature here depends on, so the
name documents intent (raw arrays in `Function.forward`/`backward`, not Tensors)."""


class BackendError(NotImplementedError):
    """An op was given arrays on a backend for which it has no body (e.g. no GPU path yet)."""

try:  # CuPy is the optional `gpu` extra; everything works without it.
    import cupy as cp  # type: ignore
except Exception:  # ImportError, or a CuPy that cannot find a CUDA driver
    cp = None


def get_array_module(*xs: Any) -> ModuleType:
    """Return `cupy` if any argument lives on the GPU, else `numpy` (Chainer's idiom)."""
    if cp is not None:
        for x in xs:
            x = getattr(x, "data", x) if not isinstance(x, np.ndarray) else x
            if isinstance(x, cp.ndarray):
                return cp
    return np


def gpu_available() -> bool:
    """True when CuPy is importable and sees at least one CUDA device."""
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def to_device(x: Any, device: str) -> Any:
    """Move an array to 'cpu' (NumPy) or 'cuda' (CuPy); a no-op when already there."""
    device = str(device)
    if device == "cpu":
        if cp is not None and isinstance(x, cp.ndarray):
            return cp.asnumpy(x)
        return np.asarray(x)
    if device.startswith("cuda"):
        if cp is None:
            raise RuntimeError("device='cuda' needs CuPy: pip install 'minicnn[gpu]' on a machine with an NVIDIA GPU")
        return cp.asarray(x)
    raise ValueError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")


def device_of(x: Any) -> str:
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if get_array_module(x) is not np else "cpu"
