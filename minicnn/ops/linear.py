"""The dense layer's op: y = x W^T + b with PyTorch's (out, in) weight layout."""
from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import Array


class LinearFn(Function):
    """Fused x @ W.T + b; x (N, in), W (out, in), b (out,) -> (N, out)."""

    def forward(self, x: Array, w: Array, b: Array | None = None) -> Array:
        self.x, self.w = x, w
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, gy: Array) -> tuple:
        gx = gy @ self.w if self.needs_grad[0] else None                  # (N, in)
        # (out, in)
        gw = (gy.reshape(-1, gy.shape[-1]).T @ self.x.reshape(-1, self.x.shape[-1])) if self.needs_grad[1] else None
        if len(self.needs_grad) == 2:
            return gx, gw
        gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0) if self.needs_grad[2] else None  # (out,)
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """(..., in) @ (out, in).T + (out,) -> (..., out)."""
    return LinearFn()(x, weight) if bias is None else LinearFn()(x, weight, bias)
