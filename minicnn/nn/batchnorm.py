"""`BatchNorm1d` / `BatchNorm2d`: per-channel normalisation with running statistics (PyTorch API).

From Keras: BatchNormalization(momentum=0.99, epsilon=1e-3) is BatchNorm2d(C, eps=1e-3,
momentum=0.01), since PyTorch's momentum weighs the *new* batch (1 - Keras momentum).
Keras gamma, beta, moving_mean, moving_variance map to weight, bias, running_mean, running_var.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..ops.normalization import BatchNormFn
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    ndims: tuple[int, ...] = ()
    layout = ""
    # buffers when track_running_stats, else None
    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
            self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def _running_state(self, x: Tensor) -> tuple[Any, Any, float]:
        """Check x's layout; in training, count the batch. Returns (running_mean, running_var, momentum)."""
        if x.ndim not in self.ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input {self.layout} with C={self.num_features}, "
                             f"got shape {tuple(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        rm = rv = None
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            if self.training:
                self.num_batches_tracked.data += 1
                if self.momentum is None:  # cumulative moving average, as in PyTorch
                    momentum = 1.0 / float(self.num_batches_tracked.data)
            rm, rv = self.running_mean.data, self.running_var.data
        return rm, rv, momentum

    def forward(self, x: Tensor) -> Tensor:
        rm, rv, momentum = self._running_state(x)
        # without running stats, eval mode normalises with the batch statistics too
        use_batch_stats = self.training or not self.track_running_stats
        fn = BatchNormFn(rm, rv, use_batch_stats, momentum, self.eps, who=repr(self))
        return fn(x, self.weight, self.bias) if self.affine else fn(x)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Normalise (N, C) or (N, C, L) per channel C (after a Linear layer, or over a sequence)."""
    ndims, layout = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Normalise (N, C, H, W) per channel over N, H and W."""
    ndims, layout = (4,), "(N, C, H, W)"
