"""Depthwise convolution as its own op: each input channel is filtered by its own m kernels.

Not im2col over groups (a C-fold bigger column matrix for a handful of multiply-adds):
the output is a sum over the kh*kw kernel taps of (shifted input slice) * (per-channel tap
weight), each tap one vectorised multiply-add over the whole batch.
"""
from __future__ import annotations

from typing import Any

from ..autograd import Function, Tensor
from ..backend import get_array_module
from .conv2d import check_float, conv2d
from .im2col import pad_hw, tap
from .shapes import Padding, pair, window_geometry


class DepthwiseConv2dFn(Function):
    """x (N, C, H, W), w (C*m, 1, kh, kw) [, b (C*m,)] -> (N, C*m, oh, ow); output channel c*m+k
    reads input channel c (PyTorch's groups=C layout)."""

    def __init__(self, stride: Any = 1, padding: Padding = 0, dilation: Any = 1, who: str = "depthwise_conv2d"):
        self.who = who
        self.stride, self.dilation = pair(stride, "stride", who), pair(dilation, "dilation", who)
        self.padding = padding

    def forward(self, x, w, b=None):
        who = self.who
        if w.ndim != 4 or w.shape[1] != 1:
            raise ValueError(f"{who}: weight must have shape (C*depth_multiplier, 1, kh, kw), got {w.shape}")
        if x.ndim == 4 and (w.shape[0] % x.shape[1] or x.shape[1] == 0):
            raise ValueError(f"{who}: weight has {w.shape[0]} output channels, not a multiple of the input's "
                             f"{x.shape[1]} channels; input shape {x.shape}, weight shape {w.shape}")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"{who}: bias must have shape ({w.shape[0]},), got {b.shape}")
        check_float(who, input=x, weight=w, bias=b)
        self.k = (w.shape[2], w.shape[3])
        self.pads, oh, ow = window_geometry(x.shape, self.k, self.stride, self.padding, self.dilation, who)
        xp = get_array_module(x)
        n, c = x.shape[:2]
        m = w.shape[0] // c
        self.xpad, self.w, self.x_shape, self.has_bias, self.out_hw = pad_hw(x, self.pads), w, x.shape, b is not None, (oh, ow)
        w3 = w.reshape(c, m, -1)                           # (C, m, kh*kw)
        y = xp.zeros((n, c, m, oh, ow), dtype=x.dtype)
        tmp = xp.empty_like(y)
        for t in range(self.k[0] * self.k[1]):
            xs = tap(self.xpad, t // self.k[1], t % self.k[1], self.stride, self.dilation, oh, ow)
            xp.multiply(xs[:, :, None], w3[None, :, :, t, None, None], out=tmp)  # (N, C, m, oh, ow)
            y += tmp
        y = y.reshape(n, c * m, oh, ow)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        n, c, h, wd = self.x_shape
        (oh, ow), (kh, kw) = self.out_hw, self.k
        m = self.w.shape[0] // c
        gy5 = gy.reshape(n, c, m, oh, ow)                  # (N, C, m, oh, ow)
        w3 = self.w.reshape(c, m, -1)                      # (C, m, kh*kw)
        gw = xp.empty_like(w3) if self.needs_grad[1] else None
        gpad = xp.zeros(self.xpad.shape, dtype=gy.dtype) if self.needs_grad[0] else None
        for t in range(kh * kw):
            i, j = t // kw, t % kw
            if gw is not None:
                xs = tap(self.xpad, i, j, self.stride, self.dilation, oh, ow)
                gw[:, :, t] = xp.einsum("ncmhw,nchw->cm", gy5, xs)
            if gpad is not None:
                tap(gpad, i, j, self.stride, self.dilation, oh, ow)[...] += xp.einsum("ncmhw,cm->nchw", gy5, w3[:, :, t])
        t_, b_, l_, r_ = self.pads
        gx = gpad[:, :, t_:t_ + h, l_:l_ + wd] if gpad is not None else None
        gw = gw.reshape(self.w.shape) if gw is not None else None
        gb = gy.reshape(n, c * m, -1).sum(axis=2).sum(axis=0) if self.has_bias and self.needs_grad[2] else None
        return (gx, gw, gb) if self.has_bias else (gx, gw)


def depthwise_conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Padding = 0,
                     dilation: Any = 1) -> Tensor:
    """(N, C, H, W) with weight (C*m, 1, kh, kw) -> (N, C*m, oh, ow); = conv2d(groups=C)."""
    fn = DepthwiseConv2dFn(stride, padding, dilation)
    return fn(x, weight) if bias is None else fn(x, weight, bias)


def separable_conv2d(x: Any, depthwise_weight: Any, pointwise_weight: Any, bias: Any = None, stride: Any = 1,
                     padding: Padding = 0, dilation: Any = 1) -> Tensor:
    """Keras SeparableConv2D: depthwise (C*m, 1, kh, kw), no bias, then 1x1 pointwise (O, C*m, 1, 1) + bias."""
    return conv2d(depthwise_conv2d(x, depthwise_weight, None, stride, padding, dilation), pointwise_weight, bias)
