"""Batch normalisation over axis 1 of (N, C), (N, C, L) or (N, C, H, W), with a fused backward.

Training normalises with the batch mean and *biased* variance over every axis but C, and
moves the running statistics towards the batch mean and *unbiased* variance (PyTorch).
The backward is the closed form
    gx = gamma / sigma * (gy - mean(gy) - xhat * mean(gy * xhat))
so it costs two passes over the data instead of a chain of small autograd ops. The GPU body
runs our kernels (`minicnn.ops.gpu_layers`: statistics, fused normalise + affine, backward
reductions); the CPU body (`minicnn.cpu.batchnorm`) runs the same passes block by block over threads.
"""
from __future__ import annotations

from typing import Any, Optional

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module
from .geometry import check_float


class BatchNormFn(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics per channel (axis 1).

    Both modes apply y = x * scale + shift with per-channel scale, shift; backward recomputes
    xhat from the saved input (which autograd keeps alive anyway) instead of storing it.
    """

    def __init__(self, running_mean: Optional[Any], running_var: Optional[Any], training: bool,
                 momentum: float = 0.1, eps: float = 1e-5, who: str = "batch_norm"):
        self.rm, self.rv = running_mean, running_var
        self.training, self.momentum, self.eps, self.who = training, momentum, eps, who
        if not training and (running_mean is None or running_var is None):
            raise ValueError(f"{who}: eval mode needs running_mean and running_var")

    def setup(self, x: Array, weight: Optional[Array] = None, bias: Optional[Array] = None) -> None:
        who, c = self.who, x.shape[1] if x.ndim > 1 else None
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"{who}: expected input (N, C), (N, C, L) or (N, C, H, W), got shape {x.shape}")
        for name, a in (("weight", weight), ("bias", bias), ("running_mean", self.rm), ("running_var", self.rv)):
            if a is not None and a.shape != (c,):
                raise ValueError(f"{who}: expected input with {a.size} channels ({name} has shape {a.shape}), "
                                 f"got shape {x.shape}")
        check_float(who, input=x, weight=weight, bias=bias)
        n = x.shape[0]
        self.x3 = x.reshape(n, c, -1)                      # (N, C, L)
        self.m = n * self.x3.shape[2]                      # values per channel
        if self.training and self.m < 2:
            raise ValueError(f"{who}: training needs more than 1 value per channel, got input shape {x.shape}")
        self.x_shape, self.has_affine = x.shape, weight is not None
        self.gamma = weight if weight is not None else get_array_module(x).ones(c, dtype=x.dtype)

    def _scale_shift(self, mean: Array, var: Array, bias: Optional[Array]) -> tuple[Array, Array]:
        """Update the running statistics (training), save mean and 1/sigma; (C, 1) scale and shift."""
        xp, dt = get_array_module(mean), self.x3.dtype.type
        if self.training and self.rm is not None:
            mom, m = dt(self.momentum), self.m
            self.rm *= 1 - mom
            self.rm += mom * mean
            self.rv *= 1 - mom
            self.rv += mom * var * dt(m / (m - 1))         # unbiased variance for the running estimate
        self.mean, self.invstd = mean, (1.0 / xp.sqrt(var + dt(self.eps))).astype(self.x3.dtype)
        scale = self.gamma * self.invstd
        shift = -mean * scale + (bias if bias is not None else 0)
        return scale[:, None], shift[:, None]              # (C, 1)

    def _eval_stats(self) -> tuple[Array, Array]:
        assert self.rm is not None and self.rv is not None  # __init__ refuses eval mode without them
        return self.rm.astype(self.x3.dtype), self.rv.astype(self.x3.dtype)

    def _grad_coefficients(self, gbeta: Array, sgx: Array) -> tuple:
        """From sum(gy) and sum(gy * x): ggamma, and gx = k * gy + u * x + v as (C, 1) k, u, v
        (u, v None in eval mode, where the statistics are constants)."""
        dt = self.x3.dtype
        ggamma = (sgx - gbeta * self.mean) * self.invstd   # sum(gy * xhat)
        k = self.gamma * self.invstd
        u = v = None
        if self.training:  # xhat = (x - mean) * invstd, and mean, invstd depend on x
            u = -k * ggamma * self.invstd / self.m
            v = -k * gbeta / self.m - u * self.mean
            u, v = u.astype(dt)[:, None], v.astype(dt)[:, None]
        return ggamma.astype(dt), k.astype(dt)[:, None], u, v

    def _grads(self, gx: Any, ggamma: Array, gbeta: Array) -> Any:
        if gx is not None:
            gx = gx.reshape(self.x_shape)
        if not self.has_affine:
            return gx
        return gx, ggamma if self.needs_grad[1] else None, gbeta.astype(ggamma.dtype) if self.needs_grad[2] else None

    # ---- GPU: bn_stats, fused normalise + affine and backward kernels (minicnn/ops/gpu_layers.py) --
    def forward_gpu(self, x: Array, weight: Optional[Array] = None, bias: Optional[Array] = None) -> Array:
        from . import gpu_layers
        return gpu_layers.batchnorm_forward(self, x, weight, bias)

    def backward_gpu(self, gy: Array) -> Any:
        from . import gpu_layers
        return gpu_layers.batchnorm_backward(self, gy)

    # ---- CPU: the same passes block by block over threads --------------------------------
    def forward_cpu(self, x: Array, weight: Optional[Array] = None, bias: Optional[Array] = None) -> Array:
        from ..cpu import batchnorm as kernels
        mean, var = kernels.batch_stats(self.x3) if self.training else self._eval_stats()
        scale, shift = self._scale_shift(mean, var, bias)
        return kernels.scale_shift(self.x3, scale, shift).reshape(x.shape)

    def backward_cpu(self, gy: Array) -> Any:
        from ..cpu import batchnorm as kernels
        g3 = gy.reshape(self.x3.shape)                     # (N, C, L)
        gbeta, sgx = kernels.grad_sums(g3, self.x3)
        ggamma, k, u, v = self._grad_coefficients(gbeta, sgx)
        gx = kernels.input_grad(g3, self.x3, k, u, v) if self.needs_grad[0] else None
        return self._grads(gx, ggamma, gbeta)


def batch_norm(x: Any, running_mean: Any = None, running_var: Any = None, weight: Any = None, bias: Any = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """PyTorch's F.batch_norm: normalise per channel (axis 1); running stats updated in place when training."""
    def raw(a):
        return a.data if isinstance(a, Tensor) else a
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: pass both weight and bias or neither")
    fn = BatchNormFn(raw(running_mean), raw(running_var), training, momentum, eps)
    return fn(x) if weight is None else fn(x, weight, bias)
