"""`Dropout` layer: inverted dropout in training, identity in eval (the op is `minicnn.ops.dropout`)."""
from __future__ import annotations

from ..autograd import Tensor
from ..ops.dropout import dropout
from .module import Module


class Dropout(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
