"""ReLU's CPU body: both passes over each cache-sized block, the blocks split over threads."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import tuning
from .threads import parallel_blocks


def _flat(*arrays: Any) -> list | None:
    """1-D views of same-shape C-contiguous NumPy arrays, or None if any is not one (strided)."""
    if not all(isinstance(a, np.ndarray) and a.flags.c_contiguous and a.shape == arrays[0].shape for a in arrays):
        return None
    return [a.reshape(-1) for a in arrays]


_zeros: dict = {}


def _zero_block(dtype: np.dtype, n: int) -> np.ndarray:
    """A read-only array of n zeros: np.maximum(x, zeros) runs ~4x faster than np.maximum(x, 0)
    (NumPy 2.4 takes its SIMD loop only when both operands are arrays of the same shape; measured)."""
    z = _zeros.get(dtype)
    if z is None or z.size < n:
        z = np.zeros(max(n, tuning.BLOCK), dtype=dtype)
        z.flags.writeable = False
        _zeros[dtype] = z
    return z[:n]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, mask) = (max(x, 0), x > 0)."""
    zero = x.dtype.type(0)
    if _flat(x) is None:
        return np.maximum(x, zero), x > 0
    y, mask = np.empty_like(x), np.empty(x.shape, dtype=bool)
    xf, yf, mf = _flat(x, y, mask)  # type: ignore[misc]
    zeros = _zero_block(x.dtype, tuning.BLOCK)

    def run(a: int, z: int) -> None:  # both passes per block, so the block is read from memory once
        np.maximum(xf[a:z], zeros[:z - a], out=yf[a:z])
        np.greater(xf[a:z], zero, out=mf[a:z])
    parallel_blocks(run, x.size)
    return y, mask


def relu_backward(gy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """gy * mask."""
    flat = _flat(gy, mask)
    if flat is None:
        return gy * mask
    gx = np.empty_like(gy)
    gf, mf, of = flat + [gx.reshape(-1)]
    parallel_blocks(lambda a, z: np.multiply(gf[a:z], mf[a:z], out=of[a:z]), gy.size)
    return gx
