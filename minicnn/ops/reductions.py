"""Reductions over axes: sum, mean, max/min (ties share the gradient) and variance."""
from __future__ import annotations

import builtins
from typing import Any, Optional

import numpy as np

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module


def _norm_axis(axis: Any, ndim: int) -> Optional[tuple]:
    if axis is None:
        return None
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim if ndim else a for a in axis)


# ---- reductions -------------------------------------------------------------------------
class Sum(Function):
    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: Array) -> Array:
        self.shape = x.shape
        self.ax = _norm_axis(self.axis, x.ndim)
        return x.sum(axis=self.ax, keepdims=self.keepdims)

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        if not self.keepdims and self.ax is not None:
            gy = gy.reshape([1 if i in self.ax else n for i, n in enumerate(self.shape)])
        return xp.broadcast_to(gy, self.shape).copy()


class Mean(Sum):
    def forward(self, x: Array) -> Array:
        y = super().forward(x)
        self.count = x.size // builtins.max(y.size, 1) if x.size else 1
        return y / y.dtype.type(self.count) if hasattr(y, "dtype") else y / self.count

    def backward(self, gy: Array) -> Any:
        return super().backward(gy / gy.dtype.type(self.count))


class Max(Function):
    """max over axes; ties share the gradient equally (so the check is symmetric)."""

    def __init__(self, axis, keepdims, use_min=False):
        self.axis, self.keepdims, self.use_min = axis, keepdims, use_min

    def forward(self, x: Array) -> Array:
        self.x = x
        self.ax = _norm_axis(self.axis, x.ndim)
        self.y = x.min(axis=self.ax, keepdims=True) if self.use_min else x.max(axis=self.ax, keepdims=True)
        if self.keepdims:
            return self.y
        return self.y.reshape([n for i, n in enumerate(self.y.shape) if self.ax is not None and i not in self.ax])

    def backward(self, gy: Array) -> Any:
        mask = (self.x == self.y)
        gy = gy.reshape(self.y.shape)
        return gy * mask / mask.sum(axis=self.ax, keepdims=True).astype(gy.dtype)


class Var(Function):
    def __init__(self, axis, keepdims, ddof):
        self.axis, self.keepdims, self.ddof = axis, keepdims, ddof

    def forward(self, x: Array) -> Array:
        self.ax = _norm_axis(self.axis, x.ndim)
        self.xc = x - x.mean(axis=self.ax, keepdims=True)
        n = x.size if self.ax is None else int(np.prod([x.shape[a] for a in self.ax]))
        self.denom = x.dtype.type(n - self.ddof)
        return (self.xc * self.xc).sum(axis=self.ax, keepdims=self.keepdims) / self.denom

    def backward(self, gy: Array) -> Any:
        if not self.keepdims and self.ax is not None:
            gy = gy.reshape([1 if i in self.ax else n for i, n in enumerate(self.xc.shape)])
        return gy * 2 * self.xc / self.denom



def sum(x, axis=None, keepdims=False) -> Tensor: return Sum(axis, keepdims)(x)
def mean(x, axis=None, keepdims=False) -> Tensor: return Mean(axis, keepdims)(x)
def max(x, axis=None, keepdims=False) -> Tensor: return Max(axis, keepdims)(x)
def min(x, axis=None, keepdims=False) -> Tensor: return Max(axis, keepdims, use_min=True)(x)
def var(x, axis=None, keepdims=False, ddof=0) -> Tensor: return Var(axis, keepdims, ddof)(x)
