"""Batch normalisation over axis 1 of (N, C), (N, C, L) or (N, C, H, W), with a fused backward.

Training normalises with the batch mean and *biased* variance over every axis but C, and
moves the running statistics towards the batch mean and *unbiased* variance (PyTorch).
The backward is the closed form
    gx = gamma / sigma * (gy - mean(gy) - xhat * mean(gy * xhat))
evaluated on x - mean (never on x and mean separately) so it keeps float32 accuracy on
post-ReLU, large-offset or tiny-variance data.
so it costs two passes over the data instead of a chain of small autograd ops. The GPU body
runs our kernels (`minicnn.ops.gpu_layers`: statistics, fused normalise + affine, backward
reductions); the CPU body (`minicnn.cpu.batchnorm`) runs the same passes block by block over threads.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module
from .geometry import check_float

# Above this |mean| / sigma in some channel the CPU body centres x before scaling (one more
# pass): x * scale + shift loses ~|mean| / sigma float32 roundings to cancellation.
CENTRE_RATIO = 4.0


class BatchNormFn(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics per channel (axis 1).

    Float32 accuracy whatever the data's mean and sign: the mean is held as float32 hi + lo
    parts (hi = mean rounded to x's dtype, lo = the float64 remainder) and every pass works on
    x - hi, which is exact for x near the mean; lo is folded into the per-channel coefficients
    (in float64), so y = (x - hi) * scale + (bias - lo * scale) never cancels. Backward
    recomputes x - hi from the saved input (which autograd keeps alive anyway).
    """

    def __init__(self, running_mean: Any | None, running_var: Any | None, training: bool,
                 momentum: float = 0.1, eps: float = 1e-5, who: str = "batch_norm"):
        self.rm, self.rv = running_mean, running_var
        self.training, self.momentum, self.eps, self.who = training, momentum, eps, who
        if not training and (running_mean is None or running_var is None):
            raise ValueError(f"{who}: eval mode needs running_mean and running_var")

    def setup(self, x: Array, weight: Array | None = None, bias: Array | None = None) -> None:
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

    def _coefficients(self, mean: Array, var: Array, bias: Array | None) -> tuple[Array, Array, Array]:
        """From float64 (C,) mean and biased var: update the running statistics (training), save
        hi, lo, 1/sigma; return (C, 1) hi, scale and shift for y = (x - hi) * scale + shift."""
        xp, dt = get_array_module(mean), self.x3.dtype
        f64 = xp.float64
        mean, var = mean.astype(f64), var.astype(f64)
        if self.training and self.rm is not None and self.rv is not None:
            mom, m = self.momentum, self.m
            self.rm[...] = ((1 - mom) * self.rm + mom * mean).astype(self.rm.dtype)
            # the running estimate takes the unbiased variance (PyTorch)
            self.rv[...] = ((1 - mom) * self.rv + mom * var * (m / (m - 1))).astype(self.rv.dtype)
        invstd = 1.0 / xp.sqrt(var + self.eps)
        self.hi = mean.astype(dt)
        self.lo = mean - self.hi                           # float64: what rounding the mean dropped
        self.invstd = invstd                               # float64
        scale = self.gamma.astype(f64) * invstd
        shift = (0 if self.bias is None else self.bias.astype(f64)) - self.lo * scale
        return self.hi[:, None], scale.astype(dt)[:, None], shift.astype(dt)[:, None]

    def _eval_stats(self) -> tuple[Array, Array]:
        assert self.rm is not None and self.rv is not None  # __init__ refuses eval mode without them
        return self.rm, self.rv

    def _grad_coefficients(self, gbeta: Array, sgxc: Array, centred: bool = True) -> tuple:
        """From float64 sum(gy) and sum(gy * (x - hi)): ggamma, (C, 1) k and, in training, the
        coefficients of the input gradient (None in eval mode, where the statistics are constants):
        ("centred", gbar, hi, w) for gx = k * (gy - gbar - (x - hi) * w), or where |mean| / sigma
        is small the one-pass-shorter ("affine", u, v) for gx = k * gy + x * u + v."""
        dt = self.x3.dtype
        sgxc = sgxc - self.lo * gbeta                      # sum(gy * (x - mean))
        ggamma = sgxc * self.invstd                        # sum(gy * xhat)
        k = self.gamma.astype(gbeta.dtype) * self.invstd
        coef = None
        if self.training:  # xhat = (x - mean) * invstd, and mean, invstd depend on x
            w = ggamma * self.invstd / self.m
            gbar = gbeta / self.m - self.lo * w            # folds the lo part of x - mean
            if centred:
                coef = ("centred",) + tuple(a.astype(dt)[:, None] for a in (gbar, self.hi, w))
            else:
                mean = self.hi + self.lo
                coef = ("affine", (-k * w).astype(dt)[:, None], (k * (w * mean - gbeta / self.m)).astype(dt)[:, None])
        return ggamma.astype(dt), k.astype(dt)[:, None], coef

    def _grads(self, gx: Any, ggamma: Array, gbeta: Array) -> Any:
        if gx is not None:
            gx = gx.reshape(self.x_shape)
        if not self.has_affine:
            return gx
        return gx, ggamma if self.needs_grad[1] else None, gbeta.astype(ggamma.dtype) if self.needs_grad[2] else None

    # ---- GPU: bn_stats, fused normalise + affine and backward kernels (minicnn/ops/gpu_layers.py) --
    def forward_gpu(self, x: Array, weight: Array | None = None, bias: Array | None = None) -> Array:
        from . import gpu_layers
        return gpu_layers.batchnorm_forward(self, x, weight, bias)

    def backward_gpu(self, gy: Array) -> Any:
        from . import gpu_layers
        return gpu_layers.batchnorm_backward(self, gy)

    # ---- CPU: the same passes block by block over threads --------------------------------
    def forward_cpu(self, x: Array, weight: Array | None = None, bias: Array | None = None) -> Array:
        from ..cpu import batchnorm as kernels
        self.bias = bias
        mean, var = kernels.batch_stats(self.x3) if self.training else self._eval_stats()
        hi, scale, shift = self._coefficients(mean, var, bias)
        # Centring costs a pass; skip it where x * scale and the shift cannot cancel much
        self.centred = bool(np.max(np.abs(self.hi + self.lo) * self.invstd, initial=0.0) > CENTRE_RATIO)
        if self.centred:
            return kernels.normalize(self.x3, hi, scale, shift).reshape(x.shape)
        shift = shift - (hi * scale).astype(np.float64)    # (C, 1): bias - mean * scale
        return kernels.normalize(self.x3, None, scale, shift.astype(scale.dtype)).reshape(x.shape)

    def backward_cpu(self, gy: Array) -> Any:
        from ..cpu import batchnorm as kernels
        g3 = gy.reshape(self.x3.shape)                     # (N, C, L)
        if self.centred:
            gbeta, sgxc = kernels.grad_sums(g3, self.x3, self.hi[:, None])
        else:  # |mean| / sigma small: centring the sum afterwards cancels little
            gbeta, sgx = kernels.grad_sums(g3, self.x3)
            sgxc = sgx - self.hi.astype(np.float64) * gbeta
        ggamma, k, coef = self._grad_coefficients(gbeta, sgxc, self.centred)
        gx = kernels.input_grad(g3, self.x3, k, coef) if self.needs_grad[0] else None
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
