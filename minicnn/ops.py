"""Elementwise, reduction and shape ops: one Function each, forward beside backward.

Every op works on NumPy or CuPy arrays alike (`get_array_module`). Broadcasting is undone
in backward by `sum_to`, which sums a gradient back down to its input's shape.
"""
from __future__ import annotations

import builtins
from typing import Any, Optional, Sequence

import numpy as np

from .autograd import Function, Tensor, as_tensor
from .backend import get_array_module
from .conv.parallel import parallel_blocks


def sum_to(g: Any, shape: tuple) -> Any:
    """Sum g over the axes that broadcasting added or stretched, so it has `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape) if lead else g


def _norm_axis(axis: Any, ndim: int) -> Optional[tuple]:
    if axis is None:
        return None
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim if ndim else a for a in axis)


# ---- arithmetic -------------------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.sa), sum_to(gy, self.sb)


class Sub(Function):
    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.sa), sum_to(-gy, self.sb)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        ga = sum_to(gy * self.b, self.a.shape) if self.needs_grad[0] else None
        gb = sum_to(gy * self.a, self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = sum_to(gy / self.b, self.a.shape) if self.needs_grad[0] else None
        gb = sum_to(-gy * self.a / (self.b * self.b), self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """x ** p for a constant exponent p."""

    def __init__(self, p: float):
        self.p = p

    def forward(self, x):
        self.x = x
        return x ** self.p

    def backward(self, gy):
        return gy * self.p * self.x ** (self.p - 1)


class MatMul(Function):
    """a @ b for 1-D, 2-D and batched operands (NumPy's matmul rules)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
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
    def forward(self, x):
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    def forward(self, x):
        self.y = get_array_module(x).sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return get_array_module(x).abs(x)

    def backward(self, gy):
        return gy * get_array_module(gy).sign(self.x).astype(gy.dtype)


class Clip(Function):
    """Clamp to [lo, hi]; the gradient flows only where x was inside the range."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        self.x = x
        return get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy):
        mask = True
        if self.lo is not None:
            mask = mask & (self.x >= self.lo)
        if self.hi is not None:
            mask = mask & (self.x <= self.hi)
        return gy * mask


class Maximum(Function):
    """Elementwise max; ties send the gradient to the first argument."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return get_array_module(a).maximum(a, b)

    def backward(self, gy):
        m = self.a >= self.b
        return sum_to(gy * m, self.a.shape), sum_to(gy * ~m, self.b.shape)


class Minimum(Function):
    """Elementwise min; ties send the gradient to the first argument."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return get_array_module(a).minimum(a, b)

    def backward(self, gy):
        m = self.a <= self.b
        return sum_to(gy * m, self.a.shape), sum_to(gy * ~m, self.b.shape)


class Where(Function):
    """cond ? a : b with a constant boolean condition."""

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return get_array_module(a).where(self.cond, a, b)

    def backward(self, gy):
        zero = gy.dtype.type(0)
        xp = get_array_module(gy)
        return sum_to(xp.where(self.cond, gy, zero), self.sa), sum_to(xp.where(self.cond, zero, gy), self.sb)


# ---- activations ------------------------------------------------------------------------
def _flat(*arrays: Any) -> Optional[list]:
    """1-D views of same-shape C-contiguous NumPy arrays, or None if any is not one (CuPy, strided)."""
    if not all(isinstance(a, np.ndarray) and a.flags.c_contiguous and a.shape == arrays[0].shape for a in arrays):
        return None
    return [a.reshape(-1) for a in arrays]


class ReLU(Function):
    def forward(self, x):
        zero = x.dtype.type(0)
        if _flat(x) is None:
            self.mask = x > 0  # a bool mask is 4x smaller to keep than the output
            return get_array_module(x).maximum(x, zero)
        y, self.mask = np.empty_like(x), np.empty(x.shape, dtype=bool)
        xf, yf, mf = _flat(x, y, self.mask)

        def run(a: int, z: int) -> None:  # both passes per cache-sized block, blocks over threads
            np.maximum(xf[a:z], zero, out=yf[a:z])
            np.greater(xf[a:z], zero, out=mf[a:z])
        parallel_blocks(run, x.size)
        return y

    def backward(self, gy):
        flat = _flat(gy, self.mask)
        if flat is None:
            return gy * self.mask
        gx = np.empty_like(gy)
        gf, mf, of = flat + [gx.reshape(-1)]
        parallel_blocks(lambda a, z: np.multiply(gf[a:z], mf[a:z], out=of[a:z]), gy.size)
        return gx


class LeakyReLU(Function):
    def __init__(self, slope: float = 0.01):
        self.slope = slope

    def forward(self, x):
        self.mask = x > 0
        return get_array_module(x).where(self.mask, x, x * x.dtype.type(self.slope))

    def backward(self, gy):
        return get_array_module(gy).where(self.mask, gy, gy * gy.dtype.type(self.slope))


class Sigmoid(Function):
    def forward(self, x):
        xp = get_array_module(x)
        # tanh form never overflows, unlike 1 / (1 + exp(-x)) for very negative x
        self.y = (xp.tanh(x * x.dtype.type(0.5)) + 1) * x.dtype.type(0.5)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class Tanh(Function):
    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class Softmax(Function):
    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy):
        gx = self.y * gy
        return gx - self.y * gx.sum(axis=self.axis, keepdims=True)


class LogSoftmax(Function):
    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        m = x.max(axis=self.axis, keepdims=True)
        lse = m + xp.log(xp.exp(x - m).sum(axis=self.axis, keepdims=True))
        self.y = x - lse
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


# ---- reductions -------------------------------------------------------------------------
class Sum(Function):
    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        self.ax = _norm_axis(self.axis, x.ndim)
        return x.sum(axis=self.ax, keepdims=self.keepdims)

    def backward(self, gy):
        xp = get_array_module(gy)
        if not self.keepdims and self.ax is not None:
            gy = gy.reshape([1 if i in self.ax else n for i, n in enumerate(self.shape)])
        return xp.broadcast_to(gy, self.shape).copy()


class Mean(Sum):
    def forward(self, x):
        y = super().forward(x)
        self.count = x.size // builtins.max(y.size, 1) if x.size else 1
        return y / y.dtype.type(self.count) if hasattr(y, "dtype") else y / self.count

    def backward(self, gy):
        return super().backward(gy / gy.dtype.type(self.count))


class Max(Function):
    """max over axes; ties share the gradient equally (so the check is symmetric)."""

    def __init__(self, axis, keepdims, use_min=False):
        self.axis, self.keepdims, self.use_min = axis, keepdims, use_min

    def forward(self, x):
        self.x = x
        self.ax = _norm_axis(self.axis, x.ndim)
        self.y = x.min(axis=self.ax, keepdims=True) if self.use_min else x.max(axis=self.ax, keepdims=True)
        if self.keepdims:
            return self.y
        return self.y.reshape([n for i, n in enumerate(self.y.shape) if self.ax is not None and i not in self.ax])

    def backward(self, gy):
        mask = (self.x == self.y)
        gy = gy.reshape(self.y.shape)
        return gy * mask / mask.sum(axis=self.ax, keepdims=True).astype(gy.dtype)


class Var(Function):
    def __init__(self, axis, keepdims, ddof):
        self.axis, self.keepdims, self.ddof = axis, keepdims, ddof

    def forward(self, x):
        self.ax = _norm_axis(self.axis, x.ndim)
        self.xc = x - x.mean(axis=self.ax, keepdims=True)
        n = x.size if self.ax is None else int(np.prod([x.shape[a] for a in self.ax]))
        self.denom = x.dtype.type(n - self.ddof)
        return (self.xc * self.xc).sum(axis=self.ax, keepdims=self.keepdims) / self.denom

    def backward(self, gy):
        if not self.keepdims and self.ax is not None:
            gy = gy.reshape([1 if i in self.ax else n for i, n in enumerate(self.xc.shape)])
        return gy * 2 * self.xc / self.denom


# ---- shape ops --------------------------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.src = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {self.shape}") from None

    def backward(self, gy):
        return gy.reshape(self.src)


class Transpose(Function):
    def __init__(self, axes):
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x):
        self.inv = None if self.axes is None else tuple(np.argsort([a % x.ndim for a in self.axes]))
        return x.transpose(self.axes)

    def backward(self, gy):
        return gy.transpose(self.inv)


class GetItem(Function):
    """x[index] for basic and advanced indices; repeated indices accumulate in backward."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if xp is np:
            np.add.at(gx, self.index, gy)
        else:  # pragma: no cover - GPU
            xp.add.at(gx, self.index, gy)
        return gx


class Concatenate(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        cuts = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(xp.split(gy, cuts, axis=self.axis))


class Stack(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        return get_array_module(*xs).stack(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        n = gy.shape[self.axis]
        return tuple(xp.take(gy, i, axis=self.axis) for i in range(n))


class Pad(Function):
    """Constant padding; `pad` is a per-axis list of (before, after)."""

    def __init__(self, pad, value=0.0):
        self.pad, self.value = pad, value

    def forward(self, x):
        xp = get_array_module(x)
        pad = list(self.pad) + [(0, 0)] * (x.ndim - len(self.pad))
        self.slices = tuple(slice(b, b + n) for (b, _), n in zip(pad, x.shape))
        return xp.pad(x, pad, mode="constant", constant_values=self.value)

    def backward(self, gy):
        return gy[self.slices]


# ---- functional forms -------------------------------------------------------------------
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
def relu(x) -> Tensor: return ReLU()(x)
def leaky_relu(x, negative_slope: float = 0.01) -> Tensor: return LeakyReLU(negative_slope)(x)
def sigmoid(x) -> Tensor: return Sigmoid()(x)
def tanh(x) -> Tensor: return Tanh()(x)
def softmax(x, dim: int = -1) -> Tensor: return Softmax(dim)(x)
def log_softmax(x, dim: int = -1) -> Tensor: return LogSoftmax(dim)(x)
def sum(x, axis=None, keepdims=False) -> Tensor: return Sum(axis, keepdims)(x)
def mean(x, axis=None, keepdims=False) -> Tensor: return Mean(axis, keepdims)(x)
def max(x, axis=None, keepdims=False) -> Tensor: return Max(axis, keepdims)(x)
def min(x, axis=None, keepdims=False) -> Tensor: return Max(axis, keepdims, use_min=True)(x)
def var(x, axis=None, keepdims=False, ddof=0) -> Tensor: return Var(axis, keepdims, ddof)(x)
def reshape(x, shape) -> Tensor: return Reshape(shape)(x)
def transpose(x, axes=None) -> Tensor: return Transpose(axes)(x)
def permute(x, axes) -> Tensor: return Transpose(axes)(x)


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one, e.g. (N, C, H, W) -> (N, C*H*W) with start_dim=1."""
    shape = x.shape
    s, e = start_dim % len(shape), end_dim % len(shape)
    return reshape(x, shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:])


def getitem(x, index) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem(index)(x)


def concatenate(xs: Sequence, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (DenseNet's feature concatenation)."""
    xs = list(xs)
    like = next((x for x in xs if isinstance(x, Tensor)), None)
    return Concatenate(axis)(*(as_tensor(x, like) for x in xs))


cat = concatenate


def stack(xs: Sequence, axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    return Stack(axis)(*xs)


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Constant-pad with NumPy's per-axis ((before, after), ...) convention."""
    return Pad([tuple(p) for p in pad_width], value)(x)


def where(cond, a, b) -> Tensor:
    cond = cond.data if isinstance(cond, Tensor) else cond
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return Where(cond)(as_tensor(a, like), as_tensor(b, like))
