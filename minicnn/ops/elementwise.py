"""Elementwise arithmetic and math: one Function each, forward beside backward.

Every op here is plain array code, right on NumPy and CuPy alike, so each has a single
`forward`/`backward` (no per-backend bodies). Broadcasting is undone in backward by `sum_to`,
which sums a gradient back down to its input's shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Function, Tensor, as_tensor
from ..backend import Array, get_array_module


def sum_to(g: Any, shape: tuple) -> Any:
    """Sum g over the axes that broadcasting added or stretched, so it has `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape) if lead else g


# ---- arithmetic -------------------------------------------------------------------------
class Add(Function):
    def forward(self, a: Array, b: Array) -> Array:
        self.sa, self.sb = a.shape, b.shape
        return a + b

    def backward(self, gy: Array) -> Any:
        return sum_to(gy, self.sa), sum_to(gy, self.sb)


class Sub(Function):
    def forward(self, a: Array, b: Array) -> Array:
        self.sa, self.sb = a.shape, b.shape
        return a - b

    def backward(self, gy: Array) -> Any:
        return sum_to(gy, self.sa), sum_to(-gy, self.sb)


class Mul(Function):
    def forward(self, a: Array, b: Array) -> Array:
        self.a, self.b = a, b
        return a * b

    def backward(self, gy: Array) -> Any:
        ga = sum_to(gy * self.b, self.a.shape) if self.needs_grad[0] else None
        gb = sum_to(gy * self.a, self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a: Array, b: Array) -> Array:
        self.a, self.b = a, b
        return a / b

    def backward(self, gy: Array) -> Any:
        ga = sum_to(gy / self.b, self.a.shape) if self.needs_grad[0] else None
        gb = sum_to(-gy * self.a / (self.b * self.b), self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x: Array) -> Array:
        return -x

    def backward(self, gy: Array) -> Any:
        return -gy


class Pow(Function):
    """x ** p for a constant exponent p."""

    def __init__(self, p: float):
        self.p = p

    def forward(self, x: Array) -> Array:
        self.x = x
        return x ** self.p

    def backward(self, gy: Array) -> Any:
        if self.p == 0:  # d(x**0)/dx = 0 everywhere, x = 0 included (PyTorch); 0 * x**-1 would be NaN
            return get_array_module(gy).zeros_like(gy)
        return gy * self.p * self.x ** (self.p - 1)


class MatMul(Function):
    """a @ b for 1-D, 2-D and batched operands (NumPy's matmul rules)."""

    def forward(self, a: Array, b: Array) -> Array:
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a          # promote vectors to matrices
        b2 = b[:, None] if b.ndim == 1 else b
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = gy.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if self.needs_grad[0]:
            ga = sum_to(g2 @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_grad[1]:
            gb = sum_to(xp.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


# ---- elementwise math -------------------------------------------------------------------
class Exp(Function):
    def forward(self, x: Array) -> Array:
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy: Array) -> Any:
        return gy * self.y


class Log(Function):
    def forward(self, x: Array) -> Array:
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy: Array) -> Any:
        return gy / self.x


class Sqrt(Function):
    def forward(self, x: Array) -> Array:
        self.y = get_array_module(x).sqrt(x)
        return self.y

    def backward(self, gy: Array) -> Any:
        return gy / (2 * self.y)


class Abs(Function):
    def forward(self, x: Array) -> Array:
        self.x = x
        return get_array_module(x).abs(x)

    def backward(self, gy: Array) -> Any:
        return gy * get_array_module(gy).sign(self.x).astype(gy.dtype)


class Clip(Function):
    """Clamp to [lo, hi]; the gradient flows only where x was inside the range."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x: Array) -> Array:
        self.x = x
        return get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy: Array) -> Any:
        mask = True
        if self.lo is not None:
            mask = mask & (self.x >= self.lo)
        if self.hi is not None:
            mask = mask & (self.x <= self.hi)
        return gy * mask


class Maximum(Function):
    """Elementwise max; ties send the gradient to the first argument (PyTorch splits it in half)."""

    def forward(self, a: Array, b: Array) -> Array:
        self.a, self.b = a, b
        return get_array_module(a).maximum(a, b)

    def backward(self, gy: Array) -> Any:
        m = self.a >= self.b
        return sum_to(gy * m, self.a.shape), sum_to(gy * ~m, self.b.shape)


class Minimum(Function):
    """Elementwise min; ties send the gradient to the first argument (PyTorch splits it in half)."""

    def forward(self, a: Array, b: Array) -> Array:
        self.a, self.b = a, b
        return get_array_module(a).minimum(a, b)

    def backward(self, gy: Array) -> Any:
        m = self.a <= self.b
        return sum_to(gy * m, self.a.shape), sum_to(gy * ~m, self.b.shape)


class Where(Function):
    """cond ? a : b with a constant boolean condition."""

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a: Array, b: Array) -> Array:
        self.sa, self.sb = a.shape, b.shape
        return get_array_module(a).where(self.cond, a, b)

    def backward(self, gy: Array) -> Any:
        zero = gy.dtype.type(0)
        xp = get_array_module(gy)
        return sum_to(xp.where(self.cond, gy, zero), self.sa), sum_to(xp.where(self.cond, zero, gy), self.sb)


def _binary(cls, a, b):
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return cls()(as_tensor(a, like), as_tensor(b, like))


def add(a, b) -> Tensor: return _binary(Add, a, b)
def sub(a, b) -> Tensor: return _binary(Sub, a, b)
def mul(a, b) -> Tensor: return _binary(Mul, a, b)
def div(a, b) -> Tensor: return _binary(Div, a, b)
def matmul(a, b) -> Tensor: return _binary(MatMul, a, b)
def maximum(a, b) -> Tensor: return _binary(Maximum, a, b)
def minimum(a, b) -> Tensor: return _binary(Minimum, a, b)
def neg(x) -> Tensor: return Neg()(x)


def pow(x, p) -> Tensor:
    if isinstance(p, Tensor):
        raise TypeError("pow supports a constant exponent only; use exp(p * log(x)) for a tensor exponent")
    return Pow(p)(x)


def exp(x) -> Tensor: return Exp()(x)
def log(x) -> Tensor: return Log()(x)
def sqrt(x) -> Tensor: return Sqrt()(x)
def abs(x) -> Tensor: return Abs()(x)
def clip(x, min=None, max=None) -> Tensor: return Clip(min, max)(x)


def where(cond, a, b) -> Tensor:
    cond = cond.data if isinstance(cond, Tensor) else cond
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return Where(cond)(as_tensor(a, like), as_tensor(b, like))
