"""Reusable scratch buffers, so the hot CPU bodies do not allocate a fresh im2col matrix per call.

A buffer is only borrowed for the duration of one forward or backward call of one op and is
never handed to the caller, so reuse is safe as long as ops run one at a time (they do: the
engine is single-threaded; BLAS threads work inside one call). Buffers are keyed by array
module, so each backend has its own; `release` frees them (e.g. after a large run).
"""
from __future__ import annotations

from typing import Any

import numpy as np

_buffers: dict[tuple, Any] = {}


def scratch(slot: str, shape: tuple, dtype: Any, xp: Any) -> Any:
    """A C-contiguous array of `shape` (uninitialised) backed by the cached buffer for `slot`."""
    n = 1
    for s in shape:
        n *= int(s)
    key = (slot, xp.__name__, np.dtype(dtype))  # not str(dtype): ~5 us a call, hundreds of calls per op
    buf = _buffers.get(key)
    if buf is None or buf.size < n:
        buf = xp.empty(max(n, 1), dtype=dtype)
        _buffers[key] = buf
    return buf[:n].reshape(shape)


def release(xp: Any = None) -> int:
    """Drop the cached buffers of backend `xp` (all backends when None); returns the bytes freed."""
    keys = [k for k in _buffers if xp is None or k[1] == xp.__name__]
    freed = sum(int(_buffers[k].nbytes) for k in keys)
    for k in keys:
        del _buffers[k]
    return freed
