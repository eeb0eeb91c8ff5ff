"""GPU bodies of convolution and depthwise convolution, on our kernels (kernels/*.cu) and cuBLAS.

Convolution, for each call one of two algorithms (`choose_gpu_conv_algorithm`):
  "im2col"   im2col kernel -> cols (N, C*kh*kw, oh*ow); y = W @ cols by cuBLAS (CuPy's matmul);
             backward gx = col2im kernel (a gather, no atomics) of W^T @ gy, gW = gy @ cols^T.
  "direct"   the tiled implicit-GEMM 3x3 kernel (conv3x3.cu): no column matrix at all; its input
             gradient for stride 1 is the same kernel with flipped, transposed weights. The weight
             gradient always takes the im2col + cuBLAS route (no direct kernel for it).
Bias is added in place by bias_act.cu (activation "none"); its gradient is bias_grad (a per-channel
tree reduction). Depthwise convolution (depth multiplier 1, taps <= 64, shared patch <= 48) runs
on depthwise_conv.cu for forward, input and weight gradients; other geometries use the tap-loop
reference, which is plain array code and runs on CuPy as it is.
"""
from __future__ import annotations

from typing import Any

from ..backend import Array, get_array_module
from ..cuda import launches as L
from .gpu import contiguous, kernels

# The direct kernel's provisional rule (kernels/README.md): a guess from the roofline, NOT measured.
# Direct when the reduction is short (C*9 <= 288: early, thin layers where the GEMM is bandwidth-bound
# and the 9x column matrix dominates the traffic) or the stride is 2; im2col + cuBLAS otherwise.
# bench/bench_gpu.py measures both; replace this rule with the measured crossover.
DIRECT_MAX_REDUCTION = 288


def choose_gpu_conv_algorithm(k: tuple, stride: tuple, dilation: tuple, groups: int, in_channels: int) -> str:
    """'direct' (conv3x3.cu) or 'im2col' (im2col.cu + cuBLAS) for one convolution's geometry."""
    if k != (3, 3) or dilation != (1, 1) or groups != 1 or not set(stride) <= {1, 2}:
        return "im2col"
    if in_channels * 9 <= DIRECT_MAX_REDUCTION or stride == (2, 2):
        return "direct"
    return "im2col"


def _im2col(fn: Any, xp: Any, x: Array) -> Array:
    n, c = x.shape[:2]
    oh, ow = fn.out_hw
    cols = xp.empty((n, c * fn.k[0] * fn.k[1], oh * ow), dtype=x.dtype)   # (N, C*kh*kw, oh*ow)
    L.im2col(kernels(xp, "im2col"), x, cols, fn.k, fn.stride, (fn.pads[0], fn.pads[2]), fn.dilation, fn.out_hw)
    return cols


def _add_bias(xp: Any, y: Array, b: Array | None) -> Array:
    if b is not None:
        L.bias_act(kernels(xp, "bias_act"), y, contiguous(xp, b), y, "none")   # in place
    return y


def _bias_grad(fn: Any, xp: Any, gy: Array) -> Array | None:
    if not fn.needs_grad[2]:
        return None
    db = xp.empty(gy.shape[1], dtype=gy.dtype)
    L.bias_grad(kernels(xp, "bias_act"), gy, db)
    return db


def conv_forward(fn: Any, x: Array, w: Array, b: Array | None) -> Array:
    """Conv2dFn's forward_gpu (fn has run setup: k, stride, pads, dilation, out_hw, groups)."""
    xp = get_array_module(x)
    x, w = contiguous(xp, x), contiguous(xp, w)
    n, c = x.shape[:2]
    o, g = w.shape[0], fn.groups
    oh, ow = fn.out_hw
    fn.gpu_algorithm = choose_gpu_conv_algorithm(fn.k, fn.stride, fn.dilation, g, c)
    if fn.gpu_algorithm == "direct":
        y = xp.empty((n, o, oh, ow), dtype=x.dtype)
        L.conv3x3(kernels(xp, "conv3x3"), x, w, y, fn.stride, (fn.pads[0], fn.pads[2]))
    else:
        cols = _im2col(fn, xp, x).reshape(n, g, -1, oh * ow)                 # (N, G, C/G*kh*kw, oh*ow)
        y = (w.reshape(g, o // g, -1) @ cols).reshape(n, o, oh, ow)           # cuBLAS, batched over N, G
    return _add_bias(xp, y, b)


def conv_backward(fn: Any, gy: Array) -> tuple:
    """Conv2dFn's backward_gpu: (gx, gw[, gb])."""
    xp = get_array_module(gy)
    gy, x, w = contiguous(xp, gy), contiguous(xp, fn.x), contiguous(xp, fn.w)
    n, o, g = gy.shape[0], w.shape[0], fn.groups
    t, b, left, r = fn.pads
    gy4 = gy.reshape(n, g, o // g, -1)                                       # (N, G, O/G, oh*ow)
    gx = gw = None
    if fn.needs_grad[0]:
        gx = xp.empty(x.shape, dtype=gy.dtype)
        if fn.gpu_algorithm == "direct" and fn.stride == (1, 1) and t == b <= 2 and left == r <= 2:
            L.conv3x3_input_grad(kernels(xp, "conv3x3"), gy, w, gx, (t, left))
        else:
            wg = w.reshape(g, o // g, -1)                                      # (G, O/G, C/G*kh*kw)
            gcols = (wg.swapaxes(1, 2) @ gy4).reshape(n, -1, gy4.shape[-1])    # (N, C*kh*kw, oh*ow)
            L.col2im(kernels(xp, "col2im"), gcols, gx, fn.k, fn.stride, (t, left), fn.dilation, fn.out_hw)
    if fn.needs_grad[1]:
        cols = _im2col(fn, xp, x).reshape(n, g, -1, gy4.shape[-1])           # recomputed: 9x the input
        gw = (gy4 @ cols.swapaxes(2, 3)).sum(axis=0).reshape(w.shape)        # (G, O/G, C/G*kh*kw)
    if not fn.has_bias:
        return gx, gw
    return gx, gw, _bias_grad(fn, xp, gy)


def depthwise_on_kernels(fn: Any) -> bool:
    """True when depthwise_conv.cu covers this geometry (multiplier 1, taps and patch within its tiles)."""
    if fn.m != 1:
        return False
    try:
        L._dw_check(fn.k, fn.stride, fn.dilation, "depthwise")
    except ValueError:
        return False
    return True


def depthwise_forward(fn: Any, x: Array, w: Array, b: Array | None) -> Array:
    """DepthwiseConv2dFn's forward_gpu (falls back to the tap-loop reference outside the kernels' reach)."""
    fn.gpu_kernels = depthwise_on_kernels(fn)
    if not fn.gpu_kernels:
        return fn.forward_reference(x, w, b)
    xp = get_array_module(x)
    x, w = contiguous(xp, x), contiguous(xp, w)
    y = xp.empty((x.shape[0], w.shape[0], *fn.out_hw), dtype=x.dtype)
    L.depthwise_forward(kernels(xp, "depthwise_conv"), x, w, y, fn.stride, (fn.pads[0], fn.pads[2]), fn.dilation)
    return _add_bias(xp, y, b)


def depthwise_backward(fn: Any, gy: Array) -> tuple:
    """DepthwiseConv2dFn's backward_gpu: (gx, gw[, gb])."""
    if not fn.gpu_kernels:
        return fn.backward_reference(gy)
    xp = get_array_module(gy)
    gy, x, w = contiguous(xp, gy), contiguous(xp, fn.x), contiguous(xp, fn.w)
    mod, pads = kernels(xp, "depthwise_conv"), (fn.pads[0], fn.pads[2])
    gx = gw = None
    if fn.needs_grad[0]:
        gx = xp.empty(x.shape, dtype=gy.dtype)
        L.depthwise_input_grad(mod, gy, w, gx, fn.stride, pads, fn.dilation)
    if fn.needs_grad[1]:
        gw = xp.empty(w.shape, dtype=gy.dtype)
        L.depthwise_weight_grad(mod, x, gy, gw, fn.stride, pads, fn.dilation)
    if not fn.has_bias:
        return gx, gw
    return gx, gw, _bias_grad(fn, xp, gy)
