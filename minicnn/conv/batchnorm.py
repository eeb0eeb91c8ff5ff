"""Batch normalisation over axis 1 of (N, C), (N, C, L) or (N, C, H, W), with a fused backward.

Training normalises with the batch mean and *biased* variance over every axis but C, and
moves the running statistics towards the batch mean and *unbiased* variance (PyTorch).
The backward is the closed form
    gx = gamma / sigma * (gy - mean(gy) - xhat * mean(gy * xhat))
so it costs a few passes over the data instead of a chain of small autograd ops.
"""
from __future__ import annotations

from typing import Any, Optional

from ..autograd import Function, Tensor
from ..backend import get_array_module
from .conv2d import check_float


class BatchNormFn(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics per channel (axis 1)."""

    def __init__(self, running_mean: Optional[Any], running_var: Optional[Any], training: bool,
                 momentum: float = 0.1, eps: float = 1e-5, who: str = "batch_norm"):
        self.rm, self.rv = running_mean, running_var
        self.training, self.momentum, self.eps, self.who = training, momentum, eps, who
        if not training and (running_mean is None or running_var is None):
            raise ValueError(f"{who}: eval mode needs running_mean and running_var")

    def forward(self, x, weight=None, bias=None):
        who = self.who
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"{who}: expected input (N, C), (N, C, L) or (N, C, H, W), got shape {x.shape}")
        c = x.shape[1]
        for name, a in (("weight", weight), ("bias", bias), ("running_mean", self.rm), ("running_var", self.rv)):
            if a is not None and a.shape != (c,):
                raise ValueError(f"{who}: expected input with {a.size} channels ({name} has shape {a.shape}), "
                                 f"got shape {x.shape}")
        check_float(who, input=x, weight=weight, bias=bias)
        xp = get_array_module(x)
        dt = x.dtype.type
        self.x_shape, self.has_affine = x.shape, weight is not None
        x3 = x.reshape(x.shape[0], c, -1)                  # (N, C, L)
        m = x3.shape[0] * x3.shape[2]                      # values per channel
        self.m = m
        self.gamma = weight if weight is not None else xp.ones(c, dtype=x.dtype)
        if self.training:
            if m < 2:
                raise ValueError(f"{who}: training needs more than 1 value per channel, got input shape {x.shape}")
            mean = x3.sum(axis=2).sum(axis=0) / dt(m)
            xhat = x3 - mean[:, None]                      # centred first: var of xc is exact, no E[x^2]-E[x]^2 cancellation
            var = xp.einsum("ncl,ncl->c", xhat, xhat) / dt(m)
            self.invstd = 1.0 / xp.sqrt(var + dt(self.eps))
            xhat *= self.invstd[:, None]
            if self.rm is not None:
                mom = dt(self.momentum)
                self.rm *= 1 - mom
                self.rm += mom * mean
                self.rv *= 1 - mom
                self.rv += mom * var * dt(m / (m - 1))    # unbiased variance for the running estimate
            self.xhat = xhat
            y = xhat * self.gamma[:, None]
        else:
            self.invstd = 1.0 / xp.sqrt(self.rv + dt(self.eps))
            self.xhat = None
            self.x3, self.mean = x3, self.rm.copy()
            scale = self.gamma * self.invstd
            y = x3 * scale[:, None]
            y -= (self.mean * scale)[:, None]
        if bias is not None:
            y += bias[:, None]
        return y.reshape(x.shape)

    def backward(self, gy):
        xp = get_array_module(gy)
        n, c = self.x_shape[:2]
        g3 = gy.reshape(n, c, -1)                          # (N, C, L)
        dt = gy.dtype.type
        gbeta = g3.sum(axis=2).sum(axis=0)
        if self.xhat is not None:
            ggamma = xp.einsum("ncl,ncl->c", g3, self.xhat)
        else:  # eval: xhat = (x - running_mean) * invstd, never materialised
            ggamma = (xp.einsum("ncl,ncl->c", g3, self.x3) - gbeta * self.mean) * self.invstd
        gx = None
        if self.needs_grad[0]:
            k = self.gamma * self.invstd
            gx = g3 * k[:, None]
            if self.training:
                gx -= self.xhat * (k * ggamma / dt(self.m))[:, None]
                gx -= (k * gbeta / dt(self.m))[:, None]
            gx = gx.reshape(self.x_shape)
        if not self.has_affine:
            return gx
        return (gx, ggamma if self.needs_grad[1] else None) + ((gbeta if self.needs_grad[2] else None),)


def batch_norm(x: Any, running_mean: Any = None, running_var: Any = None, weight: Any = None, bias: Any = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """PyTorch's F.batch_norm: normalise per channel (axis 1); running stats updated in place when training."""
    def raw(a):
        return a.data if isinstance(a, Tensor) else a
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: pass both weight and bias or neither")
    fn = BatchNormFn(raw(running_mean), raw(running_var), training, momentum, eps)
    return fn(x) if weight is None else fn(x, weight, bias)
