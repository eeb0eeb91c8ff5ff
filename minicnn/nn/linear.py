"""`Linear`: y = x W^T + b with PyTorch's (out, in) weight layout."""
from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import get_array_module
from . import init
from .module import Module
from .parameter import Parameter


class LinearFn(Function):
    """Fused x @ W.T + b; x (N, in), W (out, in), b (out,) -> (N, out)."""

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        gx = gy @ self.w if self.needs_grad[0] else None                  # (N, in)
        gw = (gy.reshape(-1, gy.shape[-1]).T @ self.x.reshape(-1, self.x.shape[-1])) if self.needs_grad[1] else None  # (out, in)
        if len(self.needs_grad) == 2:
            return gx, gw
        gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0) if self.needs_grad[2] else None  # (out,)
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """(..., in) @ (out, in).T + (out,) -> (..., out)."""
    return LinearFn()(x, weight) if bias is None else LinearFn()(x, weight, bias)


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
