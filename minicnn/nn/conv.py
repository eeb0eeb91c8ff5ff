"""Convolution layers: `Conv2d`, `DepthwiseConv2d`, `SeparableConv2d` (NCHW, PyTorch weight layouts).

Weights from other frameworks map 1:1 after a transpose:
- PyTorch Conv2d weight (out, in/groups, kh, kw): as is.
- Keras Conv2D kernel (kh, kw, in, out): kernel.transpose(3, 2, 0, 1).
- Keras DepthwiseConv2D / SeparableConv2D depthwise_kernel (kh, kw, C, m): output channel c*m + k
  reads input channel c, so depthwise.weight = k.transpose(2, 3, 0, 1).reshape(C*m, 1, kh, kw).
- Keras SeparableConv2D pointwise_kernel (1, 1, C*m, out): pointwise.weight = k.transpose(3, 2, 0, 1).
`SeparableConv2d.load_keras_weights` does the last two.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..ops.conv import Conv2dFn
from ..ops.depthwise import DepthwiseConv2dFn
from ..ops.geometry import pair
from . import init
from .module import Module
from .parameter import Parameter


def _check_padding(padding: Any, who: str) -> Any:
    """Validate padding at construction, so a typo fails when the model is built, not run."""
    if isinstance(padding, str):
        if padding.lower() not in ("same", "valid"):
            raise ValueError(f"{who}: padding must be an int, a pair, 'same' or 'valid'; got {padding!r}")
        return padding.lower()
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        return tuple(pair(tuple(p), "padding", who, 0) for p in padding)
    return pair(padding, "padding", who, 0)


def _window_repr(stride: tuple, padding: Any, dilation: tuple) -> str:
    """The non-default window arguments, PyTorch style."""
    out = ""
    if stride != (1, 1):
        out += f", stride={stride}"
    if padding not in ((0, 0), "valid"):
        out += f", padding={padding!r}"
    if dilation != (1, 1):
        out += f", dilation={dilation}"
    return out


class Conv2d(Module):
    """(N, in_channels, H, W) -> (N, out_channels, oh, ow); weight (out, in/groups, kh, kw), bias (out,).

    padding: int, (ph, pw), ((top, bottom), (left, right)), 'valid', or 'same' (TensorFlow's rule,
    also for even kernels and stride > 1: the odd extra pixel of padding goes bottom/right).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        who = f"Conv2d({in_channels}, {out_channels})"
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c > 0
                   for c in (in_channels, out_channels)):
            raise ValueError(f"{who}: in_channels and out_channels must be positive ints")
        if not isinstance(groups, int) or groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{who}: in_channels and out_channels must both be divisible by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size", who)
        self.stride, self.dilation = pair(stride, "stride", who), pair(dilation, "dilation", who)
        self.padding = _check_padding(padding, who)
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups) + self.kernel_size, dtype=np.float32))
        self.bias = Parameter(np.zeros(out_channels, dtype=np.float32)) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        fn = Conv2dFn(self.stride, self.padding, self.dilation, self.groups, who=repr(self))
        return fn(x, self.weight) if self.bias is None else fn(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += _window_repr(self.stride, self.padding, self.dilation)
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")


class DepthwiseConv2d(Module):
    """Each of the `channels` inputs filtered by its own `depth_multiplier` kernels:
    (N, C, H, W) -> (N, C*m, oh, ow); weight (C*m, 1, kh, kw) = PyTorch Conv2d(groups=C)."""

    def __init__(self, channels: int, kernel_size: Any, depth_multiplier: int = 1, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, bias: bool = True):
        super().__init__()
        who = f"DepthwiseConv2d({channels})"
        if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
            raise ValueError(f"{who}: depth_multiplier must be a positive int, got {depth_multiplier!r}")
        self.channels, self.depth_multiplier = channels, depth_multiplier
        self.kernel_size = pair(kernel_size, "kernel_size", who)
        self.stride, self.dilation = pair(stride, "stride", who), pair(dilation, "dilation", who)
        self.padding = _check_padding(padding, who)
        self.weight = Parameter(np.zeros((channels * depth_multiplier, 1) + self.kernel_size, dtype=np.float32))
        self.bias = Parameter(np.zeros(channels * depth_multiplier, dtype=np.float32)) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 4 and x.shape[1] != self.channels:
            raise ValueError(f"{self!r}: expected input with {self.channels} channels, got shape {tuple(x.shape)}")
        fn = DepthwiseConv2dFn(self.stride, self.padding, self.dilation, who=repr(self))
        return fn(x, self.weight) if self.bias is None else fn(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        s = f"{self.channels}, kernel_size={self.kernel_size}"
        if self.depth_multiplier != 1:
            s += f", depth_multiplier={self.depth_multiplier}"
        s += _window_repr(self.stride, self.padding, self.dilation)
        return s + (", bias=False" if self.bias is None else "")


class SeparableConv2d(Module):
    """Keras SeparableConv2D: depthwise kh x kw (no bias) then 1x1 pointwise conv with bias.

    Parameters: `depthwise.weight` (C*m, 1, kh, kw), `pointwise.weight` (out, C*m, 1, 1),
    `pointwise.bias` (out,). See `load_keras_weights` for the mapping from Keras kernels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, depth_multiplier: int = 1, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depthwise = DepthwiseConv2d(in_channels, kernel_size, depth_multiplier, stride, padding, dilation,
                                         bias=False)
        self.pointwise = Conv2d(in_channels * depth_multiplier, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        who = f"SeparableConv2d({self.extra_repr()})"
        if x.ndim == 4 and x.shape[1] != self.in_channels:
            raise ValueError(f"{who}: expected input with {self.in_channels} channels, got shape {tuple(x.shape)}")
        try:
            h = self.depthwise(x)  # (N, C*m, oh, ow)
        except ValueError as e:  # name the layer the user wrote, not only its inner part
            raise ValueError(f"{who}.depthwise: {e}") from e
        return self.pointwise(h)  # (N, out, oh, ow)

    def load_keras_weights(self, depthwise_kernel: Any, pointwise_kernel: Any, bias: Any | None = None) -> None:
        """Copy Keras weights in: depthwise_kernel (kh, kw, C, m), pointwise_kernel (1, 1, C*m, out), bias (out,)."""
        dk, pk = np.asarray(depthwise_kernel), np.asarray(pointwise_kernel)
        kh, kw, c, m = dk.shape
        state = {"depthwise.weight": dk.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw),  # (C*m, 1, kh, kw)
                 "pointwise.weight": pk.transpose(3, 2, 0, 1)}                            # (out, C*m, 1, 1)
        if bias is not None:
            state["pointwise.bias"] = np.asarray(bias)
        self.load_state_dict(state, strict=bias is not None or self.pointwise.bias is None)

    def extra_repr(self) -> str:
        d = self.depthwise
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={d.kernel_size}"
        s += _window_repr(d.stride, d.padding, d.dilation)
        if d.depth_multiplier != 1:
            s += f", depth_multiplier={d.depth_multiplier}"
        return s + (", bias=False" if self.pointwise.bias is None else "")
