"""Inverted dropout: scale kept units by 1/(1-p) in training, identity in eval."""
from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..random import get_rng
from .module import Module


class DropoutFn(Function):
    def __init__(self, p: float):
        self.p = p

    def forward(self, x):
        xp = get_array_module(x)
        keep = 1.0 - self.p
        u = get_rng().random(x.shape, dtype="float32" if x.dtype != "float64" else "float64")
        # the mask already carries the 1/keep scale, so backward is one multiply
        self.mask = xp.asarray((u < keep) * x.dtype.type(1.0 / keep), dtype=x.dtype)
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p); shape unchanged."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return DropoutFn(p)(x)


class Dropout(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
