"""Reusable scratch buffers, so the hot ops do not allocate a fresh im2col matrix per call.

A buffer is only borrowed for the duration of one forward or backward call of one op and is
never handed to the caller, so reuse is safe as long as ops run one at a time (they do: the
engine is single-threaded; BLAS threads work inside one call).
"""
from __future__ import annotations

from typing import Any

_buffers: dict[tuple, Any] = {}


def scratch(slot: str, shape: tuple, dtype: Any, xp: Any) -> Any:
    """A C-contiguous array of `shape` (uninitialised) backed by the cached buffer for `slot`."""
    n = 1
    for s in shape:
        n *= int(s)
    key = (slot, xp.__name__, str(dtype))
    buf = _buffers.get(key)
    if buf is None or buf.size < n:
        buf = xp.empty(max(n, 1), dtype=dtype)
        _buffers[key] = buf
    return buf[:n].reshape(shape)


def release_all() -> None:
    """Drop every cached buffer (frees memory after a large run)."""
    _buffers.clear()
