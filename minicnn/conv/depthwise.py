"""Depthwise convolution as its own op: each input channel is filtered by its own m kernels.

Not im2col over groups (one big matmul that is ~C times mostly zeros): per sample and per
block of channels, the kh*kw taps of each channel are copied into a small (T, S) matrix that
stays in cache, and a batched matmul (one tiny product per channel) sums them with the
channel's weights.

Stride 1 uses the "wide row" trick: in a padded plane flattened to 1-D with row pitch Wp,
the pixel that tap (i, j) reads for output (y, x) sits at a fixed offset i*d*Wp + j*d from
y*Wp + x, so each tap is one contiguous slice of the flat plane, computed for all oh*Wp
positions; the Wp - ow columns that wrap around a row edge are garbage and cropped off.
The input gradient is then the same kind of sum with the offsets negated (a "full"
correlation of the output gradient with the kernel).
"""
from __future__ import annotations

from typing import Any

from ..autograd import Function, Tensor
from ..backend import get_array_module
from .conv2d import check_float, conv2d
from .im2col import tap
from .parallel import parallel_range
from .shapes import Padding, pair, window_geometry

BLOCK_BYTES = 1 << 20  # per-thread tap matrix: small enough to stay in L2
# Split samples over threads? Measured 12-52 % slower per layer on 2 cores: the per-channel matmuls are
# already threaded by BLAS, and two Python threads issuing many small calls fight over the GIL.
THREAD_SAMPLES = False


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
    def _layout(self, x: Any) -> None:
        """Padded-plane geometry (one spare zero row under each plane: the wide reads of the
        last taps run up to (kw-1)*d pixels past it), tap offsets and channel block size."""
        n, c, h, wd = x.shape
        t, b, l, r = self.pads
        hp, wp = h + t + b, wd + l + r
        (kh, kw), (dh, dw), (oh, ow) = self.k, self.dilation, self.out_hw
        self.wide = self.stride == (1, 1)
        spare = 1 if self.wide and kw > 1 else 0
        self.buf_shape = (n, c, hp + spare, wp)
        self.x = x
        self.taps = [(i, j) for i in range(kh) for j in range(kw)]
        self.offsets = [i * dh * wp + j * dw for i, j in self.taps]
        self.span = oh * wp if self.wide else oh * ow      # columns of one channel's tap matrix
        per_channel = len(self.taps) * self.m * max(self.span, h * wp) * x.itemsize
        self.cb = max(1, min(c, BLOCK_BYTES // per_channel))  # channels per block

    def _padded(self, i: int, planes: Any) -> Any:
        """Sample i's planes copied into the interior of a zero-bordered (C, Hq, Wp) buffer."""
        t, l = self.pads[0], self.pads[2]
        h, w = self.x_shape[2:]
        planes[:, t:t + h, l:l + w] = self.x[i]
        return planes

    def _fill_taps(self, planes: Any, cols: Any) -> Any:
        """planes (cb, Hq, Wp) -> cols (cb, T, span): row t = what tap t reads at every output."""
        cb = planes.shape[0]
        oh, ow = self.out_hw
        if self.wide:
            flat = planes.reshape(cb, -1)                  # (cb, Hq*Wp)
            for t, o in enumerate(self.offsets):
                cols[:, t] = flat[:, o:o + self.span]
        else:
            for t, (i, j) in enumerate(self.taps):
                cols[:, t].reshape(cb, oh, ow)[...] = tap(planes[None], i, j, self.stride, self.dilation, oh, ow)[0]
        return cols

    def _samples(self, run: Any, n: int, work: int, xp: Any) -> None:
        if THREAD_SAMPLES:
            parallel_range(run, n, work, xp)
        else:
            run(0, n)

    def _blocks(self) -> list[tuple[int, int]]:
        c = self.x_shape[1]
        return [(c0, min(c0 + self.cb, c)) for c0 in range(0, c, self.cb)]

    # ---- forward ------------------------------------------------------------------------
    def forward(self, x, w, b=None):
        self._check(x, w, b)
        self.k = (w.shape[2], w.shape[3])
        self.pads, oh, ow = window_geometry(x.shape, self.k, self.stride, self.padding, self.dilation, self.who)
        xp = get_array_module(x)
        n, c = x.shape[:2]
        self.m = m = w.shape[0] // c
        self.out_hw, self.x_shape, self.w, self.has_bias = (oh, ow), x.shape, w, b is not None
        self._layout(x)
        w3 = w.reshape(c, m, -1)                           # (C, m, T)
        y = xp.empty((n, c, m, oh, ow), dtype=x.dtype)

        def run(a: int, z: int) -> None:
            cols = xp.empty((self.cb, len(self.taps), self.span), dtype=x.dtype)
            out = xp.empty((self.cb, m, self.span), dtype=x.dtype)
            planes = xp.zeros(self.buf_shape[1:], dtype=x.dtype)
            for i in range(a, z):
                self._padded(i, planes)
                for c0, c1 in self._blocks():
                    k = c1 - c0
                    xp.matmul(w3[c0:c1], self._fill_taps(planes[c0:c1], cols[:k]), out=out[:k])
                    y[i, c0:c1] = out[:k].reshape(k, m, oh, -1)[..., :ow]  # crop wrap-around columns
        self._samples(run, n, y.size * len(self.taps), xp)
        y = y.reshape(n, c * m, oh, ow)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    # ---- backward -----------------------------------------------------------------------
    def backward(self, gy):
        xp = get_array_module(gy)
        n, c, h, wd = self.x_shape
        (oh, ow), m, ntap, span = self.out_hw, self.m, len(self.taps), self.span
        t_, _, l_, _ = self.pads
        wp = self.buf_shape[3]
        w3 = self.w.reshape(c, m, ntap)                    # (C, m, T)
        gy5 = gy.reshape(n, c, m, oh, ow)                  # (N, C, m, oh, ow)
        need_x, need_w = self.needs_grad[0], self.needs_grad[1]
        gx = xp.empty(self.x_shape, dtype=gy.dtype) if need_x else None
        lead = max(self.offsets)                           # zeros in front of gy for the negated offsets
        partial_gw: list = []

        def run(a: int, z: int) -> None:
            cb = self.cb
            cols = xp.empty((cb, m * ntap, max(span, h * wp)), dtype=gy.dtype)
            # gy in the forward's column layout, behind `lead` zeros; wrap-around columns stay zero
            gext = xp.zeros((cb, m, lead + self.buf_shape[2] * wp), dtype=gy.dtype) if self.wide else None
            gxrows = xp.empty((cb, 1, h * wp), dtype=gy.dtype)
            gbuf = xp.empty((cb,) + self.buf_shape[2:], dtype=gy.dtype) if not self.wide else None
            gw = xp.zeros((c, m, ntap), dtype=gy.dtype) if need_w else None
            planes = xp.zeros(self.buf_shape[1:], dtype=gy.dtype) if need_w else None
            for i in range(a, z):
                if need_w:
                    self._padded(i, planes)
                for c0, c1 in self._blocks():
                    k = c1 - c0
                    if self.wide:
                        gcol = gext[:k, :, lead:lead + span]   # (k, m, oh*Wp)
                        gcol.reshape(k, m, oh, wp)[..., :ow] = gy5[i, c0:c1]
                    else:
                        gcol = gy5[i, c0:c1].reshape(k, m, span)
                    if gw is not None:  # gw[c] += gy_c (m, S) @ taps_c (S, T)
                        taps = self._fill_taps(planes[c0:c1], cols[:k, :ntap, :span])
                        gw[c0:c1] += xp.matmul(gcol, taps.swapaxes(1, 2))
                    if gx is None:
                        continue
                    if self.wide:  # gx[q] = sum_t w_t * gy[q - offset_t], over the rows that hold real pixels
                        rows = cols[:k, :, :h * wp].reshape(k, m, ntap, h * wp)
                        for t, o in enumerate(self.offsets):
                            start = lead - o + t_ * wp
                            rows[:, :, t] = gext[:k, :, start:start + h * wp]
                        xp.matmul(w3[c0:c1].reshape(k, 1, m * ntap), rows.reshape(k, m * ntap, h * wp), out=gxrows[:k])
                        gx[i, c0:c1] = gxrows[:k].reshape(k, h, wp)[:, :, l_:l_ + wd]
                    else:  # strided: add each tap's share back onto the pixels it read
                        gbuf[:k] = 0
                        for t, (ti, tj) in enumerate(self.taps):
                            share = xp.einsum("kmp,km->kp", gcol, w3[c0:c1, :, t]).reshape(k, oh, ow)
                            tap(gbuf[None, :k], ti, tj, self.stride, self.dilation, oh, ow)[0] += share
                        gx[i, c0:c1] = gbuf[:k, t_:t_ + h, l_:l_ + wd]
            if gw is not None:
                partial_gw.append(gw)
        self._samples(run, n, gy.size * ntap * 2, xp)
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
