"""`minicnn.nn.functional` (import as F): the stateless forms of every layer."""
from __future__ import annotations

from ..ops import (concatenate, flatten, leaky_relu, log_softmax, pad, relu, sigmoid,  # noqa: F401
                   softmax, tanh)
from .dropout import dropout  # noqa: F401
from .linear import linear  # noqa: F401
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                     cross_entropy, mse_loss)

from ..conv import (adaptive_avg_pool2d, avg_pool2d, batch_norm, conv2d,  # noqa: F401
                    depthwise_conv2d, global_avg_pool2d, max_pool2d, separable_conv2d)
