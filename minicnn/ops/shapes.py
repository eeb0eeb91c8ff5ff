"""Shape ops: reshape, transpose, indexing, concatenation, stacking and constant padding."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd import Function, Tensor, as_tensor
from ..backend import Array, get_array_module


# ---- shape ops --------------------------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x: Array) -> Array:
        self.src = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                             f"into {self.shape}") from None

    def backward(self, gy: Array) -> Any:
        return gy.reshape(self.src)


class Transpose(Function):
    def __init__(self, axes):
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x: Array) -> Array:
        self.inv = None if self.axes is None else tuple(np.argsort([a % x.ndim for a in self.axes]))
        return x.transpose(self.axes)

    def backward(self, gy: Array) -> Any:
        return gy.transpose(self.inv)


class GetItem(Function):
    """x[index] for basic and advanced indices; repeated indices accumulate in backward."""

    def __init__(self, index):
        self.index = index

    def forward(self, x: Array) -> Array:
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy: Array) -> Any:
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

    def forward(self, *xs: Array) -> Array:
        self.sizes = [x.shape[self.axis] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        cuts = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(xp.split(gy, cuts, axis=self.axis))


class Stack(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs: Array) -> Array:
        return get_array_module(*xs).stack(xs, axis=self.axis)

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        n = gy.shape[self.axis]
        return tuple(xp.take(gy, i, axis=self.axis) for i in range(n))


class Pad(Function):
    """Constant padding; `pad` is a per-axis list of (before, after)."""

    def __init__(self, pad, value=0.0):
        self.pad, self.value = pad, value

    def forward(self, x: Array) -> Array:
        xp = get_array_module(x)
        pad = list(self.pad) + [(0, 0)] * (x.ndim - len(self.pad))
        self.slices = tuple(slice(b, b + n) for (b, _), n in zip(pad, x.shape))
        return xp.pad(x, pad, mode="constant", constant_values=self.value)

    def backward(self, gy: Array) -> Any:
        return gy[self.slices]



def reshape(x, shape) -> Tensor: return Reshape(shape)(x)
def transpose(x, dim0: int, dim1: int) -> Tensor:
    """PyTorch's transpose: swap dims dim0 and dim1 (NumPy's full reordering is `permute`)."""
    return x.transpose(dim0, dim1) if isinstance(x, Tensor) else Tensor(x).transpose(dim0, dim1)


def permute(x, axes) -> Tensor:
    """Reorder all dims, e.g. (N, H, W, C) -> (N, C, H, W) with (0, 3, 1, 2)."""
    return Transpose(axes)(x)


def reverse_dims(x) -> Tensor:
    """All dims reversed (Tensor.T)."""
    return Transpose(None)(x)


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


def np_pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Constant-pad with NumPy's per-axis ((before, after), ...) convention (F.pad is PyTorch's flat tuple)."""
    return Pad([tuple(p) for p in pad_width], value)(x)


