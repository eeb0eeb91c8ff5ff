"""`minicnn.nn.functional` (import as F): the stateless forms of every layer, from `minicnn.ops`."""
from __future__ import annotations

from ..ops import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, batch_norm,  # noqa: F401
                   binary_cross_entropy, binary_cross_entropy_with_logits, concatenate, conv2d, cross_entropy,
                   depthwise_conv2d, dropout, flatten, global_avg_pool2d, leaky_relu, linear, log_softmax,
                   max_pool2d, mse_loss, nll_loss, pad, relu, separable_conv2d, sigmoid, softmax, tanh)
