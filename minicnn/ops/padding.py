"""PyTorch's F.pad: a flat (left, right, top, bottom, front, back) tuple, last dim first,
modes constant / reflect / replicate / circular, differentiable.

The tuple pads the *last* len(pad) // 2 dims, so F.pad(x, (1, 1)) on an (N, C, H, W) input
pads W only (PyTorch). NumPy's per-axis ((before, after), ...) list is `np_pad` / `Pad`.
Negative amounts crop (constant mode), as in PyTorch.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module

MODES = ("constant", "reflect", "replicate", "circular")


def pad_widths(who: str, pad: Any, shape: tuple) -> list[tuple[int, int]]:
    """PyTorch's flat pad tuple -> NumPy's per-axis (before, after) list for an array of `shape`."""
    if isinstance(pad, (int, np.integer)) or not isinstance(pad, (tuple, list)):
        raise TypeError(f"{who}: pad must be a flat tuple (left, right[, top, bottom, ...]) of ints, last dim "
                        f"first (PyTorch), got {pad!r}")
    pad = tuple(pad)
    if any(not isinstance(p, (int, np.integer)) or isinstance(p, bool) for p in pad):
        raise TypeError(f"{who}: pad must hold ints only, got {pad!r} (NumPy's ((before, after), ...) "
                        f"form is minicnn.ops.shapes.np_pad)")
    if len(pad) % 2:
        raise ValueError(f"{who}: pad needs an even number of values (left, right, top, bottom, ...), "
                         f"got {len(pad)}: {pad}")
    if len(pad) // 2 > len(shape):
        raise ValueError(f"{who}: pad {pad} covers {len(pad) // 2} dims but the input of shape {shape} has "
                         f"{len(shape)}")
    widths = [(0, 0)] * len(shape)
    for k in range(len(pad) // 2):  # pairs run from the last dim backwards
        widths[len(shape) - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return widths


class PadFn(Function):
    """y = x padded per axis by `widths` [(before, after), ...] in one of `MODES`.

    The backward folds the border's gradient back onto the cells it copied: for constant mode
    the border is dropped; for reflect / replicate / circular each padded cell adds its gradient
    to its source cell (a scatter-add through the index map, one axis at a time).
    """

    def __init__(self, widths: list, mode: str = "constant", value: float = 0.0, who: str = "pad"):
        self.widths, self.mode, self.value, self.who = widths, mode, value, who

    def _index(self, n: int, before: int, after: int) -> np.ndarray:
        """The source index along one axis of each output cell (non-constant modes)."""
        i = np.arange(-before, n + after)
        if self.mode == "replicate":
            return np.clip(i, 0, n - 1)
        if self.mode == "circular":
            return i % n
        period = 2 * (n - 1)                                  # reflect: ... 2 1 [0 1 2 ... n-1] n-2 ...
        j = np.abs(i) % period if period else np.zeros_like(i)
        return np.where(j < n, j, period - j)

    def forward(self, x: Array) -> Array:
        xp = get_array_module(x)
        self.shape = x.shape
        if self.mode == "constant":
            crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(self.widths, x.shape))
            grow = [(max(b, 0), max(a, 0)) for b, a in self.widths]
            self.slices = tuple(slice(b, b + (s.stop - s.start)) for (b, _), s in zip(grow, crop))
            self.crop = crop
            return xp.pad(x[crop], grow, mode="constant", constant_values=self.value)
        for (b, a), n in zip(self.widths, x.shape):
            if min(b, a) < 0:
                raise ValueError(f"{self.who}: negative padding is only supported in constant mode, got {b, a}")
            if self.mode == "reflect" and max(b, a) >= n:
                raise ValueError(f"{self.who}: reflect padding ({b}, {a}) must be smaller than the padded "
                                 f"dim's size {n} (input shape {x.shape})")
            if self.mode == "circular" and max(b, a) > n:
                raise ValueError(f"{self.who}: circular padding ({b}, {a}) can be at most the padded dim's "
                                 f"size {n} (input shape {x.shape})")
        self.maps = [None if b == a == 0 else self._index(n, b, a) for (b, a), n in zip(self.widths, x.shape)]
        y = x
        for axis, idx in enumerate(self.maps):
            if idx is not None:
                y = xp.take(y, xp.asarray(idx), axis=axis)
        return y

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        if self.mode == "constant":
            gx = xp.zeros(self.shape, dtype=gy.dtype)
            gx[self.crop] = gy[self.slices]
            return gx
        g = gy
        for axis in reversed(range(len(self.maps))):
            idx = self.maps[axis]
            if idx is None:
                continue
            n = self.shape[axis]
            # scatter-add as a (n, len(idx)) 0/1 matrix product along this axis
            onehot = (xp.arange(n)[:, None] == xp.asarray(idx)[None, :]).astype(g.dtype)
            g = xp.moveaxis(xp.tensordot(onehot, xp.moveaxis(g, axis, 0), axes=(1, 0)), 0, axis)
        return xp.ascontiguousarray(g)


def pad(input: Any, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """PyTorch's F.pad: `pad` = (left, right, top, bottom, ...) for the last dims, last dim first."""
    if mode not in MODES:
        raise ValueError(f"pad: mode must be one of {MODES}, got {mode!r}")
    x = input if isinstance(input, Tensor) else Tensor(input)
    return PadFn(pad_widths("pad", pad, tuple(x.shape)), mode, value)(x)
