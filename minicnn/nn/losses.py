"""Loss layers (PyTorch names and reductions); the functional losses are in `minicnn.ops.losses`."""
from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from ..ops.losses import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
    sample_weights_from_class_weight,
)
from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities (after a Sigmoid); `weight` rescales each element (PyTorch)."""

    def __init__(self, weight: Any = None, *, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Tensor, target: Any, sample_weight: Any = None) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction, sample_weight=sample_weight)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one stable op; pos_weight scales positive targets,
    `weight` rescales each element (PyTorch's argument order: weight first, the rest by keyword)."""

    def __init__(self, weight: Any = None, *, reduction: str = "mean", pos_weight: Any = None):
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input: Tensor, target: Any, sample_weight: Any = None) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                pos_weight=self.pos_weight, sample_weight=sample_weight)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (after LogSoftmax); class `weight`, `ignore_index`."""

    def __init__(self, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class CrossEntropyLoss(_Loss):
    """log_softmax + negative log-likelihood with optional class `weight` and label smoothing."""

    def __init__(self, weight: Any = None, label_smoothing: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.weight, self.label_smoothing = weight, label_smoothing

    def forward(self, input: Tensor, target: Any, sample_weight: Any = None) -> Tensor:
        return cross_entropy(input, target, self.weight, self.label_smoothing, self.reduction, sample_weight)


class MSELoss(_Loss):
    def forward(self, input: Tensor, target: Any, sample_weight: Any = None) -> Tensor:
        return mse_loss(input, target, self.reduction, sample_weight)
