"""Depthwise convolution as its own op: each input channel is filtered by its own m kernels.

It is a grouped convolution with groups = C, but im2col over groups would build one big
matrix product that is mostly zeros. The reference body below is a loop over the kh*kw taps
(never over pixels): each tap is a strided slice of the padded input covering every output
position, weighted per channel and summed. The GPU body runs kernels/depthwise_conv.cu
(`minicnn.ops.gpu_conv`; the reference for geometries outside its tiles); the CPU body
(`minicnn.cpu.depthwise`) computes the same sums per sample and per block of channels, as
small matrix products on the wide-row layout.
"""
from __future__ import annotations

from typing import Any

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module
from .conv import conv2d
from .geometry import Padding, check_float, pair, window_geometry
from .im2col import pad_hw, tap

ALGORITHMS = ("auto", "reference", "blocks")


class DepthwiseConv2dFn(Function):
    """x (N, C, H, W), w (C*m, 1, kh, kw) [, b (C*m,)] -> (N, C*m, oh, ow); output channel c*m+k
    reads input channel c (PyTorch's groups=C layout)."""

    def __init__(self, stride: Any = 1, padding: Padding = 0, dilation: Any = 1, who: str = "depthwise_conv2d",
                 algorithm: str = "auto"):
        self.who = who
        self.stride, self.dilation = pair(stride, "stride", who), pair(dilation, "dilation", who)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"{who}: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        self.padding, self.algorithm = padding, algorithm

    def setup(self, x: Array, w: Array, b: Array | None = None) -> None:
        who = self.who
        if w.ndim != 4 or w.shape[1] != 1:
            raise ValueError(f"{who}: weight must have shape (C*depth_multiplier, 1, kh, kw), got {w.shape}")
        if x.ndim == 4 and (x.shape[1] == 0 or w.shape[0] % x.shape[1]):
            raise ValueError(f"{who}: weight has {w.shape[0]} output channels, not a multiple of the input's "
                             f"{x.shape[1]} channels; input shape {x.shape}, weight shape {w.shape}")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"{who}: bias must have shape ({w.shape[0]},), got {b.shape}")
        check_float(who, input=x, weight=w, bias=b)
        self.k = (w.shape[2], w.shape[3])
        self.pads, oh, ow = window_geometry(x.shape, self.k, self.stride, self.padding, self.dilation, who)
        self.m = w.shape[0] // x.shape[1]                  # depth multiplier
        self.x, self.w, self.x_shape, self.out_hw, self.has_bias = x, w, x.shape, (oh, ow), b is not None
        self.taps = [(i, j) for i in range(self.k[0]) for j in range(self.k[1])]

    def _finish(self, y: Array, b: Array | None) -> Array:
        n, c = self.x_shape[:2]
        y = y.reshape(n, c * self.m, *self.out_hw)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def _with_bias(self, gy: Array, gx: Any, gw: Any) -> tuple:
        if not self.has_bias:
            return gx, gw
        n, o = gy.shape[:2]
        return gx, gw, (gy.reshape(n, o, -1).sum(axis=2).sum(axis=0) if self.needs_grad[2] else None)

    # ---- the reference: one strided slice per tap --------------------------------------------
    def forward_reference(self, x: Array, w: Array, b: Array | None = None) -> Array:
        xp = get_array_module(x)
        n, c = x.shape[:2]
        oh, ow = self.out_hw
        w3 = w.reshape(c, self.m, -1)                      # (C, m, T)
        xpad = pad_hw(x, self.pads)
        y = xp.zeros((n, c, self.m, oh, ow), dtype=x.dtype)
        for t, (i, j) in enumerate(self.taps):
            # y[n, c, k] += w[c, k, t] * (what tap t reads of channel c)
            y += w3[None, :, :, t, None, None] * tap(xpad, i, j, self.stride, self.dilation, oh, ow)[:, :, None]
        return self._finish(y, b)

    def backward_reference(self, gy: Array) -> tuple:
        xp = get_array_module(gy)
        n, c = self.x_shape[:2]
        oh, ow = self.out_hw
        w3 = self.w.reshape(c, self.m, -1)                 # (C, m, T)
        gy5 = gy.reshape(n, c, self.m, oh, ow)             # (N, C, m, oh, ow)
        xpad = pad_hw(self.x, self.pads)
        gpad = xp.zeros(xpad.shape, dtype=gy.dtype) if self.needs_grad[0] else None
        gw = xp.zeros(w3.shape, dtype=gy.dtype) if self.needs_grad[1] else None
        for t, (i, j) in enumerate(self.taps):
            if gpad is not None:  # each tap's share goes back onto the pixels it read (overlaps add)
                share = (gy5 * w3[None, :, :, t, None, None]).sum(axis=2)
                tap(gpad, i, j, self.stride, self.dilation, oh, ow)[...] += share
            if gw is not None:
                xs = tap(xpad, i, j, self.stride, self.dilation, oh, ow)[:, :, None]  # (N, C, 1, oh, ow)
                gw[:, :, t] = (gy5 * xs).sum(axis=(0, 3, 4))
        gx = None
        if gpad is not None:
            t0, _, l0, _ = self.pads
            gx = gpad[:, :, t0:t0 + self.x_shape[2], l0:l0 + self.x_shape[3]]
        return self._with_bias(gy, gx, gw.reshape(self.w.shape) if gw is not None else None)

    # ---- GPU: depthwise_conv.cu where it applies, else the reference (minicnn/ops/gpu_conv.py) ----
    def forward_gpu(self, x: Array, w: Array, b: Array | None = None) -> Array:
        from . import gpu_conv
        return gpu_conv.depthwise_forward(self, x, w, b)

    def backward_gpu(self, gy: Array) -> tuple:
        from . import gpu_conv
        return gpu_conv.depthwise_backward(self, gy)

    # ---- CPU: per sample and block of channels (minicnn.cpu.depthwise) ----------------------
    def forward_cpu(self, x: Array, w: Array, b: Array | None = None) -> Array:
        if self.algorithm == "reference":
            return self.forward_reference(x, w, b)
        from ..cpu import depthwise as kernels
        return self._finish(kernels.forward(self, x, w), b)

    def backward_cpu(self, gy: Array) -> tuple:
        if self.algorithm == "reference":
            return self.backward_reference(gy)
        from ..cpu import depthwise as kernels
        gx, gw = kernels.backward(self, gy, self.needs_grad[0], self.needs_grad[1])
        return self._with_bias(gy, gx, gw)


def depthwise_conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Padding = 0,
                     dilation: Any = 1, algorithm: str = "auto") -> Tensor:
    """(N, C, H, W) with weight (C*m, 1, kh, kw) -> (N, C*m, oh, ow); = conv2d(groups=C).

    `algorithm` "reference" runs the tap-loop reference on the CPU too; "auto" and "blocks" the
    per-sample channel-block body of `minicnn.cpu.depthwise`.
    """
    fn = DepthwiseConv2dFn(stride, padding, dilation, algorithm=algorithm)
    return fn(x, weight) if bias is None else fn(x, weight, bias)


def separable_conv2d(x: Any, depthwise_weight: Any, pointwise_weight: Any, bias: Any = None, stride: Any = 1,
                     padding: Padding = 0, dilation: Any = 1) -> Tensor:
    """Keras SeparableConv2D: depthwise (C*m, 1, kh, kw), no bias, then 1x1 pointwise (O, C*m, 1, 1) + bias."""
    return conv2d(depthwise_conv2d(x, depthwise_weight, None, stride, padding, dilation), pointwise_weight, bias)
