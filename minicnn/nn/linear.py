"""`Linear`: y = x W^T + b with PyTorch's (out, in) weight layout (the op is `minicnn.ops.linear`)."""
from __future__ import annotations

from ..autograd import Tensor
from ..backend import get_array_module
from ..ops.linear import linear
from . import init
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """Dense layer: (N, in_features) -> (N, out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(get_array_module().zeros((out_features, in_features), dtype="float32"))
        self.bias = Parameter(get_array_module().zeros(out_features, dtype="float32")) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input (..., {self.in_features}), got shape {tuple(x.shape)}")
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
