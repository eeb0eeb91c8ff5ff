"""Depthwise convolution as its own op: each input channel is filtered by its own m kernels.

Not im2col over groups (a C-fold bigger column matrix for a handful of multiply-adds):
the output is a sum over the kh*kw kernel taps of (shifted input) * (per-channel tap weight).
Work goes one sample at a time (so the temporaries stay in cache), samples split over threads.

Stride 1 uses the "wide row" trick: in a padded plane flattened to 1-D with row pitch Wp,
the pixel a tap (i, j) reads for output (y, x) sits at a fixed offset i*d*Wp + j*d from
y*Wp + x. So each tap is one contiguous slice of the flat plane, computed for all oh*Wp
positions; the Wp - ow columns that wrap around a row edge are garbage and cropped off.
"""
from __future__ import annotations

from typing import Any

from ..autograd import Function, Tensor
from ..backend import get_array_module
from .conv2d import check_float, conv2d
from .im2col import pad_hw, tap
from .parallel import parallel_range
from .shapes import Padding, pair, window_geometry


class DepthwiseConv2dFn(Function):
    """x (N, C, H, W), w (C*m, 1, kh, kw) [, b (C*m,)] -> (N, C*m, oh, ow); output channel c*m+k
    reads input channel c (PyTorch's groups=C layout)."""

    def __init__(self, stride: Any = 1, padding: Padding = 0, dilation: Any = 1, who: str = "depthwise_conv2d"):
        self.who = who
        self.stride, self.dilation = pair(stride, "stride", who), pair(dilation, "dilation", who)
        self.padding = padding

    def _check(self, x: Any, w: Any, b: Any) -> None:
        who = self.who
        if w.ndim != 4 or w.shape[1] != 1:
            raise ValueError(f"{who}: weight must have shape (C*depth_multiplier, 1, kh, kw), got {w.shape}")
        if x.ndim == 4 and (x.shape[1] == 0 or w.shape[0] % x.shape[1]):
            raise ValueError(f"{who}: weight has {w.shape[0]} output channels, not a multiple of the input's "
                             f"{x.shape[1]} channels; input shape {x.shape}, weight shape {w.shape}")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"{who}: bias must have shape ({w.shape[0]},), got {b.shape}")
        check_float(who, input=x, weight=w, bias=b)

    # ---- layout -------------------------------------------------------------------------
    def _layout(self, x: Any, w: Any) -> None:
        """Pad x into a buffer with one spare zero row per plane (the wide reads of the last
        taps run up to kw-1 pixels past the plane) and record the tap offsets."""
        xp = get_array_module(x)
        n, c, h, wd = x.shape
        t, b, l, r = self.pads
        hp, wp = h + t + b, wd + l + r
        (kh, kw), (dh, dw) = self.k, self.dilation
        self.wide = self.stride == (1, 1)
        spare = 1 if self.wide and kw > 1 else 0
        self.buf_shape = (n, c, hp + spare, wp)
        xbuf = xp.zeros(self.buf_shape, dtype=x.dtype) if spare or any(self.pads) else None
        if xbuf is None:
            self.xbuf = x
        else:
            pad_hw(x, self.pads, out=xbuf[:, :, :hp])
            self.xbuf = xbuf
        self.offsets = [i * dh * wp + j * dw for i in range(kh) for j in range(kw)]

    def _taps(self, buf: Any, n: int) -> list:
        """The input each tap reads for sample n: (C, oh*Wp) slices if wide, else (C, oh, ow) views."""
        oh, ow = self.out_hw
        if self.wide:
            _, c, hq, wp = buf.shape
            flat = buf[n].reshape(c, hq * wp)              # (C, Hq*Wp)
            return [flat[:, o:o + oh * wp] for o in self.offsets]
        kh, kw = self.k
        return [tap(buf[n:n + 1], i, j, self.stride, self.dilation, oh, ow)[0] for i in range(kh) for j in range(kw)]

    def _span(self) -> tuple:
        """Trailing shape of one channel's output as computed: (oh*Wp,) wide, else (oh, ow)."""
        oh, ow = self.out_hw
        return (oh * self.buf_shape[3],) if self.wide else (oh, ow)

    # ---- forward ------------------------------------------------------------------------
    def forward(self, x, w, b=None):
        self._check(x, w, b)
        self.k = (w.shape[2], w.shape[3])
        self.pads, oh, ow = window_geometry(x.shape, self.k, self.stride, self.padding, self.dilation, self.who)
        xp = get_array_module(x)
        n, c = x.shape[:2]
        m = w.shape[0] // c
        self.out_hw, self.x_shape, self.w, self.has_bias = (oh, ow), x.shape, w, b is not None
        self._layout(x, w)
        span = self._span()
        extra = (1,) * len(span)
        w3 = w.reshape(c, m, -1)                           # (C, m, kh*kw)
        y = xp.empty((n, c, m, oh, ow), dtype=x.dtype)

        def run(a: int, z: int) -> None:
            acc = xp.empty((c, m) + span, dtype=x.dtype)  # this thread's accumulator and temporary
            tmp = xp.empty_like(acc)
            for i in range(a, z):
                for t, xs in enumerate(self._taps(self.xbuf, i)):
                    xs = xs.reshape((c, 1) + span)         # (C, 1, *span) broadcast over m
                    wt = w3[:, :, t].reshape((c, m) + extra)
                    xp.multiply(xs, wt, out=acc if t == 0 else tmp)
                    if t:
                        acc += tmp
                y[i] = acc.reshape(c, m, oh, -1)[..., :ow]  # crop the wrap-around columns
        parallel_range(run, n, y.size * len(self.offsets), xp)
        y = y.reshape(n, c * m, oh, ow)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    # ---- backward -----------------------------------------------------------------------
    def backward(self, gy):
        xp = get_array_module(gy)
        n, c, h, wd = self.x_shape
        (oh, ow), span = self.out_hw, self._span()
        m = self.w.shape[0] // c
        w3 = self.w.reshape(c, m, -1)                      # (C, m, kh*kw)
        gy5 = gy.reshape(n, c, m, oh, ow)                  # (N, C, m, oh, ow)
        need_x, need_w = self.needs_grad[0], self.needs_grad[1]
        gx = xp.empty(self.x_shape, dtype=gy.dtype) if need_x else None
        partial_gw: list = []
        t_, _, l_, _ = self.pads
        sp = "pq"[:len(span)]                              # einsum letters for the spatial axes

        def run(a: int, z: int) -> None:
            gyw = xp.zeros((c, m) + span, dtype=gy.dtype)  # gy laid out like the forward's accumulator
            tmp = xp.empty((c,) + span, dtype=gy.dtype)
            gbuf = xp.empty((1,) + self.buf_shape[1:], dtype=gy.dtype) if need_x else None
            gw = xp.zeros((c, m, len(self.offsets)), dtype=gy.dtype) if need_w else None
            for i in range(a, z):
                gyw.reshape(c, m, oh, -1)[..., :ow] = gy5[i]   # wrap-around columns stay zero
                if gbuf is not None:
                    gbuf[...] = 0
                for t, (xs, gs) in enumerate(zip(self._taps(self.xbuf, i),
                                                 self._taps(gbuf, 0) if gbuf is not None else [None] * len(self.offsets))):
                    if gw is not None:
                        gw[:, :, t] += xp.einsum(f"cm{sp},c{sp}->cm", gyw, xs)
                    if gs is not None:  # overlapping taps add into the same pixels
                        if m == 1:
                            xp.multiply(gyw[:, 0], w3[:, 0, t].reshape((c,) + (1,) * len(span)), out=tmp)
                        else:
                            xp.einsum(f"cm{sp},cm->c{sp}", gyw, w3[:, :, t], out=tmp)
                        gs += tmp
                if gbuf is not None:
                    gx[i] = gbuf[0, :, t_:t_ + h, l_:l_ + wd]
            if gw is not None:
                partial_gw.append(gw)
        parallel_range(run, n, gy.size * len(self.offsets), xp)
        gw = sum(partial_gw[1:], partial_gw[0]).reshape(self.w.shape) if need_w else None
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
