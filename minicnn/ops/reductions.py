"""Reductions over axes: sum, mean, max/min (ties share the gradient), variance and std.

Both spellings are accepted: PyTorch's `dim=` / `keepdim=` and NumPy's `axis=` / `keepdims=`
(giving both of a pair is an error). Where the two libraries disagree, minicnn follows PyTorch:
  * var / std default to the unbiased estimate (correction=1; NumPy's default is ddof=0).
    `correction=`, `unbiased=` (PyTorch) and `ddof=` (NumPy) all set it.
  * Tensor.max(dim) / .min(dim) return (values, indices) like PyTorch; with NumPy's `axis=` they
    return the values only. With no dim, the scalar maximum.
  * Gradient ties: where several entries equal the maximum, minicnn splits the gradient equally
    between them (so finite differences agree from both sides); PyTorch's max(dim) sends it all
    to the one index it returns, and its full max() splits it evenly as here.
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module


def _norm_axis(axis: Any, ndim: int) -> tuple | None:
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



def resolve_dims(who: str, dim: Any = None, keepdim: Any = None, axis: Any = None,
                 keepdims: Any = None) -> tuple[Any, bool]:
    """PyTorch's (dim, keepdim) or NumPy's (axis, keepdims) -> (axis, keepdims); both of a pair is an error."""
    if dim is not None and axis is not None:
        raise TypeError(f"{who}: got dim={dim!r} and axis={axis!r}; pass one (dim is PyTorch's name, axis NumPy's)")
    if keepdim is not None and keepdims is not None:
        raise TypeError(f"{who}: got keepdim= and keepdims=; pass one (keepdim is PyTorch's name, keepdims NumPy's)")
    if isinstance(dim, list):
        dim = tuple(dim)
    return (dim if axis is None else axis), bool(keepdim if keepdims is None else keepdims)


def resolve_correction(who: str, correction: Any = None, unbiased: Any = None, ddof: Any = None) -> float:
    """PyTorch's correction= / unbiased= or NumPy's ddof= -> the divisor's offset (default 1, PyTorch)."""
    given = [(k, v) for k, v in (("correction", correction), ("unbiased", unbiased), ("ddof", ddof)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"{who}: pass one of correction=, unbiased=, ddof=; got {', '.join(k for k, _ in given)}")
    if unbiased is not None:
        return 1 if unbiased else 0
    if ddof is not None:
        return ddof
    return 1 if correction is None else correction


def sum(x, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Sum over dim (all dims when None)."""
    return Sum(*resolve_dims("sum", dim, keepdim, axis, keepdims))(x)


def mean(x, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Mean over dim (all dims when None)."""
    return Mean(*resolve_dims("mean", dim, keepdim, axis, keepdims))(x)


def max(x, axis=None, keepdims=False) -> Tensor:
    """Maximum values over axis (NumPy's amax; Tensor.max(dim) also returns the indices)."""
    return Max(axis, keepdims)(x)


def min(x, axis=None, keepdims=False) -> Tensor:
    """Minimum values over axis (NumPy's amin; Tensor.min(dim) also returns the indices)."""
    return Max(axis, keepdims, use_min=True)(x)


def var(x, dim=None, keepdim=None, *, correction=None, unbiased=None, ddof=None, axis=None, keepdims=None) -> Tensor:
    """Variance over dim, unbiased by default (PyTorch: correction=1; NumPy's default is ddof=0)."""
    ax, kd = resolve_dims("var", dim, keepdim, axis, keepdims)
    return Var(ax, kd, resolve_correction("var", correction, unbiased, ddof))(x)


def std(x, dim=None, keepdim=None, *, correction=None, unbiased=None, ddof=None, axis=None, keepdims=None) -> Tensor:
    """Standard deviation: sqrt(var(...)), unbiased by default (PyTorch)."""
    return var(x, dim, keepdim, correction=correction, unbiased=unbiased, ddof=ddof, axis=axis,
               keepdims=keepdims) ** 0.5
