"""Convolution family on NumPy/CuPy: conv2d, depthwise/separable conv, pooling, batch norm.

Each fast op has a `*_naive` loop twin (in `naive.py`) that the tests compare it against.
"""
from .batchnorm import BatchNormFn, batch_norm
from .conv2d import Conv2dFn, conv2d
from .depthwise import DepthwiseConv2dFn, depthwise_conv2d, separable_conv2d
from .im2col import col2im, im2col
from .naive import (adaptive_avg_pool2d_naive, avg_pool2d_naive, batch_norm_naive, col2im_naive, conv2d_naive,
                    depthwise_conv2d_naive, im2col_naive, max_pool2d_naive)
from .pooling import (AdaptiveAvgPool2dFn, AvgPool2dFn, GlobalAvgPool2dFn, MaxPool2dFn, adaptive_avg_pool2d,
                      avg_pool2d, global_avg_pool2d, max_pool2d)
from . import parallel  # noqa: F401
from .shapes import same_padding

__all__ = [
    "conv2d", "depthwise_conv2d", "separable_conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "global_avg_pool2d", "batch_norm", "im2col", "col2im", "same_padding",
    "conv2d_naive", "depthwise_conv2d_naive", "max_pool2d_naive", "avg_pool2d_naive", "adaptive_avg_pool2d_naive",
    "batch_norm_naive", "im2col_naive", "col2im_naive",
    "Conv2dFn", "DepthwiseConv2dFn", "MaxPool2dFn", "AvgPool2dFn", "AdaptiveAvgPool2dFn", "GlobalAvgPool2dFn",
    "BatchNormFn",
]
