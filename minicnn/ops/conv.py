"""2-D convolution (cross-correlation, like every framework): y = W @ im2col(x).

im2col lays every window of the input out as a column, so the convolution is one matrix
product; backward is the same picture read the other way:
    gx = col2im(W^T @ gy)      (each column's gradient added back onto the pixels it read)
    gW = gy @ im2col(x)^T      (summed over the batch)
That reference is the baseline the CPU algorithms and the GPU body (our im2col/col2im kernels
around cuBLAS, or a direct 3x3 kernel: `minicnn.ops.gpu_conv`) are tested against. On
the CPU, `minicnn.cpu.conv` computes the same maths in cache-sized pieces ("pointwise",
"wide", "strided") or with fewer multiplies ("winograd", 3x3 stride 1), chosen by
`choose_conv_algorithm` unless `algorithm=` names one.
"""
from __future__ import annotations

from typing import Any

from ..autograd import Function, Tensor
from ..backend import Array
from .geometry import Padding, check_float, pair, window_geometry
from .im2col import col2im, im2col

ALGORITHMS = ("auto", "reference", "pointwise", "wide", "strided", "winograd")


class Conv2dFn(Function):
    """y = conv2d(x, w) + b with x (N, C, H, W), w (O, C/groups, kh, kw), b (O,)."""

    def __init__(self, stride: Any = 1, padding: Padding = 0, dilation: Any = 1, groups: int = 1,
                 who: str = "conv2d", algorithm: str = "auto"):
        self.who = who
        self.stride = pair(stride, "stride", who)
        self.dilation = pair(dilation, "dilation", who)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{who}: groups must be a positive int, got {groups!r}")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"{who}: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        self.padding, self.groups, self.algorithm = padding, groups, algorithm

    def setup(self, x: Array, w: Array, b: Array | None = None) -> None:
        """Check arguments, resolve padding and output size, save what backward needs."""
        who, g = self.who, self.groups
        if w.ndim != 4:
            raise ValueError(f"{who}: weight must be 4-D (out, in/groups, kh, kw), got shape {w.shape}")
        if x.ndim == 4 and x.shape[1] != w.shape[1] * g:
            raise ValueError(f"{who}: expected input with {w.shape[1] * g} channels, got shape {x.shape}")
        if w.shape[0] % g:
            raise ValueError(f"{who}: out channels {w.shape[0]} not divisible by groups={g}")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"{who}: bias must have shape ({w.shape[0]},), got {b.shape}")
        check_float(who, input=x, weight=w, bias=b)
        self.k = (w.shape[2], w.shape[3])
        self.pads, oh, ow = window_geometry(x.shape, self.k, self.stride, self.padding, self.dilation, who)
        self.x, self.w, self.has_bias, self.out_hw = x, w, b is not None, (oh, ow)

    # ---- the reference: W @ im2col(x) (on the CPU with algorithm="reference") ----
    def _padding(self) -> tuple:
        """The resolved pads as ((top, bottom), (left, right)), a form im2col/col2im accept."""
        return (self.pads[0], self.pads[1]), (self.pads[2], self.pads[3])

    def _im2col(self, x: Array) -> Array:
        return im2col(x, self.k, self.stride, self._padding(), self.dilation)  # (N, C*kh*kw, oh*ow)

    def forward_reference(self, x: Array, w: Array, b: Array | None = None) -> Array:
        n, g, o = x.shape[0], self.groups, w.shape[0]
        oh, ow = self.out_hw
        cols = self._im2col(x).reshape(n, g, -1, oh * ow)  # (N, G, C/G*kh*kw, oh*ow)
        y = w.reshape(g, o // g, -1) @ cols               # (G, O/G, C/G*kh*kw) @ ... -> (N, G, O/G, oh*ow)
        y = y.reshape(n, o, oh, ow)
        if b is not None:
            y += b.reshape(1, o, 1, 1)
        return y

    def backward_reference(self, gy: Array) -> tuple:
        x, w, g = self.x, self.w, self.groups
        n, o = gy.shape[:2]
        gy4 = gy.reshape(n, g, o // g, -1)                 # (N, G, O/G, oh*ow)
        wg = w.reshape(g, o // g, -1)                      # (G, O/G, C/G*kh*kw)
        gx = gw = None
        if self.needs_grad[0]:
            gcols = (wg.swapaxes(1, 2) @ gy4).reshape(n, -1, gy4.shape[-1])  # (N, C*kh*kw, oh*ow)
            gx = col2im(gcols, x.shape, self.k, self.stride, self._padding(), self.dilation)
        if self.needs_grad[1]:
            cols = self._im2col(x).reshape(n, g, -1, gy4.shape[-1])  # recomputed, not kept: 9x the input
            gw = (gy4 @ cols.swapaxes(2, 3)).sum(axis=0).reshape(w.shape)  # (G, O/G, C/G*kh*kw)
        return self._with_bias(gy, gx, gw)

    def _with_bias(self, gy: Array, gx: Any, gw: Any) -> tuple:
        if not self.has_bias:
            return gx, gw
        n, o = gy.shape[:2]
        gb = gy.reshape(n, o, -1).sum(axis=2).sum(axis=0) if self.needs_grad[2] else None
        return gx, gw, gb

    # ---- GPU: im2col kernel + cuBLAS, or the direct 3x3 kernel (minicnn/ops/gpu_conv.py) ------
    def forward_gpu(self, x: Array, w: Array, b: Array | None = None) -> Array:
        from . import gpu_conv
        return gpu_conv.conv_forward(self, x, w, b)

    def backward_gpu(self, gy: Array) -> tuple:
        from . import gpu_conv
        return gpu_conv.conv_backward(self, gy)

    # ---- CPU: the reference or one of the cache-blocked algorithms --------------------------
    def forward_cpu(self, x: Array, w: Array, b: Array | None = None) -> Array:
        from ..cpu import conv as kernels
        algo = self.algorithm
        if algo == "auto":
            algo = kernels.choose_conv_algorithm(self.k, self.stride, self.pads, x.shape[1], self.out_hw,
                                                 w.shape[0], self.dilation, self.groups)
        elif algo != "reference" and not kernels.applicable(algo, self.k, self.stride, self.pads,
                                                            self.dilation, self.groups):
            raise ValueError(f"{self.who}: algorithm {algo!r} cannot compute kernel {self.k}, stride "
                             f"{self.stride}, padding {self.pads}, dilation {self.dilation}, groups {self.groups}")
        self.chosen = algo
        if algo == "reference":
            return self.forward_reference(x, w, b)
        o, g = w.shape[0], self.groups
        return kernels.FORWARD[algo](self, x, w.reshape(g, o // g, -1), b)  # weight (G, O/G, C/G*kh*kw)

    def backward_cpu(self, gy: Array) -> tuple:
        if self.chosen == "reference":
            return self.backward_reference(gy)
        from ..cpu import conv as kernels
        gx, gw = kernels.BACKWARD[self.chosen](self, gy, self.needs_grad[0], self.needs_grad[1])
        return self._with_bias(gy, gx, gw.reshape(self.w.shape) if gw is not None else None)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Padding = 0, dilation: Any = 1,
           groups: int = 1, algorithm: str = "auto") -> Tensor:
    """(N, C, H, W) * weight (O, C/groups, kh, kw) [+ bias (O,)] -> (N, O, oh, ow); PyTorch's F.conv2d.

    `algorithm` ("auto", "reference", "pointwise", "wide", "strided", "winograd") picks the CPU body;
    every choice computes the same result.
    """
    fn = Conv2dFn(stride, padding, dilation, groups, algorithm=algorithm)
    return fn(x, weight) if bias is None else fn(x, weight, bias)
