"""Inverted dropout: scale kept units by 1/(1-p) in training, identity in eval.

The mask is drawn on the input's own backend, from that backend's generator
(`minicnn.random.generator_for`): nothing is drawn on the host and copied to the GPU.
"""
from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module
from ..random import generator_for


class DropoutFn(Function):
    def __init__(self, p: float):
        self.p = p

    def forward(self, x: Array) -> Array:
        xp = get_array_module(x)
        keep = 1.0 - self.p
        u = generator_for(xp).random(x.shape, dtype=xp.float64 if x.dtype == xp.float64 else xp.float32)
        # the mask already carries the 1/keep scale, so backward is one multiply
        self.mask = (u < keep).astype(x.dtype)
        self.mask *= x.dtype.type(1.0 / keep)
        return x * self.mask

    def backward(self, gy: Array) -> Array:
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
