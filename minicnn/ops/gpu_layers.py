"""GPU bodies of pooling, batch norm and ReLU on our kernels (maxpool.cu, avgpool.cu,
batchnorm_stats.cu, batchnorm_apply.cu, bias_act.cu), called from the ops' forward_gpu/backward_gpu.

Each takes the op's Function object after its shared `setup` (geometry, saved state) and works on
C-contiguous device arrays: every kernel indexes flat memory.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Array, get_array_module
from ..cuda import launches as L
from .gpu import contiguous, kernels


# ---- max pooling: value and first-argmax index (int64 iy*W + ix) per output ---------------------
def maxpool_forward(fn: Any, x: Array) -> Array:
    xp = get_array_module(x)
    x = contiguous(xp, x)
    y = xp.empty((x.shape[0], x.shape[1], *fn.out_hw), dtype=x.dtype)
    fn.gpu_idx = xp.empty(y.shape, dtype=np.int64)
    L.maxpool_forward(kernels(xp, "maxpool"), x, y, fn.gpu_idx, fn.k, fn.stride, (fn.pads[0], fn.pads[2]))
    return y


def maxpool_backward(fn: Any, gy: Array) -> Array:
    xp = get_array_module(gy)
    dx = xp.empty(fn.x_shape, dtype=gy.dtype)
    L.maxpool_backward(kernels(xp, "maxpool"), contiguous(xp, gy), fn.gpu_idx, dx, fn.k, fn.stride,
                       (fn.pads[0], fn.pads[2]))
    return dx


# ---- average pooling ----------------------------------------------------------------------------
def avgpool_forward(fn: Any, x: Array) -> Array:
    xp = get_array_module(x)
    x = contiguous(xp, x)
    y = xp.empty((x.shape[0], x.shape[1], *fn.out_hw), dtype=x.dtype)
    L.avgpool_forward(kernels(xp, "avgpool"), x, y, fn.k, fn.stride, (fn.pads[0], fn.pads[2]), fn.include)
    return y


def avgpool_backward(fn: Any, gy: Array) -> Array:
    xp = get_array_module(gy)
    dx = xp.empty(fn.x_shape, dtype=gy.dtype)
    L.avgpool_backward(kernels(xp, "avgpool"), contiguous(xp, gy), dx, fn.k, fn.stride, (fn.pads[0], fn.pads[2]),
                       fn.include)
    return dx


# ---- batch norm ---------------------------------------------------------------------------------
def batchnorm_forward(fn: Any, x: Array, weight: Array | None, bias: Array | None) -> Array:
    """Training: per-channel mean and biased variance by bn_stats (double sums, Chan merge), running
    statistics moved towards mean and unbiased variance; eval: the running statistics. Then the
    fused normalise + affine kernel, which takes the statistics in float64 (the mean's float64
    remainder is what keeps float32 accurate when |mean| >> sigma)."""
    xp = get_array_module(x)
    x3 = contiguous(xp, fn.x3)                                            # (N, C, L)
    c, dt = x3.shape[1], x3.dtype
    gamma = contiguous(xp, weight) if weight is not None else xp.ones(c, dtype=dt)
    beta = contiguous(xp, bias) if bias is not None else xp.zeros(c, dtype=dt)
    if fn.training:
        mean, var = xp.empty(c, dtype=np.float64), xp.empty(c, dtype=np.float64)
        L.bn_stats(kernels(xp, "batchnorm_stats"), x3, mean, var)
        if fn.rm is not None:
            mom, m = fn.momentum, fn.m
            fn.rm[...] = ((1 - mom) * fn.rm + mom * mean).astype(fn.rm.dtype)
            # the running estimate takes the unbiased variance (PyTorch)
            fn.rv[...] = ((1 - mom) * fn.rv + (mom * m / (m - 1)) * var).astype(fn.rv.dtype)
    else:
        mean = contiguous(xp, fn.rm.astype(np.float64))
        var = contiguous(xp, fn.rv.astype(np.float64))
    y = xp.empty_like(x3)
    L.bn_forward(kernels(xp, "batchnorm_apply"), x3, mean, var, gamma, beta, y, fn.eps)
    fn.gpu_saved = (x3, mean, var, gamma)
    return y.reshape(fn.x_shape)


def batchnorm_backward(fn: Any, gy: Array) -> Any:
    """dgamma, dbeta by a per-channel tree reduction in double, then dx (batch statistics in
    training, constants in eval)."""
    xp = get_array_module(gy)
    x3, mean, var, gamma = fn.gpu_saved
    g3 = contiguous(xp, gy).reshape(x3.shape)                             # (N, C, L)
    c = x3.shape[1]
    dx, dgamma, dbeta = xp.empty_like(x3), xp.empty(c, dtype=x3.dtype), xp.empty(c, dtype=x3.dtype)
    L.bn_backward(kernels(xp, "batchnorm_apply"), x3, g3, mean, var, gamma, dx, dgamma, dbeta, fn.eps,
                  training=fn.training)
    gx = dx.reshape(fn.x_shape) if fn.needs_grad[0] else None
    if not fn.has_affine:
        return gx
    return gx, dgamma if fn.needs_grad[1] else None, dbeta if fn.needs_grad[2] else None


# ---- ReLU: bias_act with a zero bias, backward from the output ----------------------------------
def relu_forward(fn: Any, x: Array) -> Array:
    xp = get_array_module(x)
    x = contiguous(xp, x)
    y = xp.empty_like(x)
    if x.size:
        L.bias_act(kernels(xp, "bias_act"), x.reshape(1, 1, -1), xp.zeros(1, dtype=x.dtype), y.reshape(1, 1, -1),
                   "relu")                                                # (1, 1, size): one channel, no bias
    fn.gpu_y = y
    return y


def relu_backward(fn: Any, gy: Array) -> Array:
    xp = get_array_module(gy)
    dx = xp.empty_like(fn.gpu_y)
    if dx.size:
        L.relu_backward(kernels(xp, "bias_act"), fn.gpu_y, contiguous(xp, gy), dx)
    return dx
