"""Pooling layers over (N, C, H, W): `MaxPool2d`, `AvgPool2d`, `AdaptiveAvg/MaxPool2d`, `GlobalAvgPool2d`."""
from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from ..ops.geometry import pair
from ..ops.pooling import AdaptiveAvgPool2dFn, AdaptiveMaxPool2dFn, AvgPool2dFn, GlobalAvgPool2dFn, MaxPool2dFn
from .conv import _check_padding
from .module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False):
        super().__init__()
        who = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", who)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", who)
        self.padding = _check_padding(padding, who)
        self.ceil_mode = bool(ceil_mode)

    def extra_repr(self) -> str:
        extra = ", ceil_mode=True" if self.ceil_mode else ""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}{extra}"


class MaxPool2d(_Pool2d):
    """Window maximum; stride defaults to kernel_size; padding int/pair or 'same' (pads with -inf,
    e.g. the Inception branch's 3x3 stride-1 'same' max-pool keeps H x W)."""

    def forward(self, x: Tensor) -> Tensor:
        return MaxPool2dFn(self.kernel_size, self.stride, self.padding, who=repr(self), ceil_mode=self.ceil_mode)(x)


class AvgPool2d(_Pool2d):
    """Window mean. count_include_pad: None means PyTorch's True for numeric padding and Keras'
    False (divide by the real pixels only) for padding='same'."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool | None = None):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return AvgPool2dFn(self.kernel_size, self.stride, self.padding, self.count_include_pad, who=repr(self),
                           ceil_mode=self.ceil_mode)(x)


class AdaptiveAvgPool2d(Module):
    """(N, C, H, W) -> (N, C, *output_size) whatever H, W (PyTorch's bins); None keeps that axis."""

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size
        AdaptiveAvgPool2dFn(output_size, who=repr(self))  # validate now

    def forward(self, x: Tensor) -> Tensor:
        return AdaptiveAvgPool2dFn(self.output_size, who=repr(self))(x)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """(N, C, H, W) -> (N, C, *output_size): max over PyTorch's adaptive bins."""

    def forward(self, x: Tensor) -> Tensor:
        return AdaptiveMaxPool2dFn(self.output_size, who=repr(self))(x)


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C) mean over H, W (Keras GlobalAveragePooling2D); keepdims -> (N, C, 1, 1)."""

    def __init__(self, keepdims: bool = False):
        super().__init__()
        self.keepdims = keepdims

    def forward(self, x: Tensor) -> Tensor:
        y = GlobalAvgPool2dFn(who=repr(self))(x)
        return y.reshape(y.shape + (1, 1)) if self.keepdims else y

    def extra_repr(self) -> str:
        return "keepdims=True" if self.keepdims else ""
