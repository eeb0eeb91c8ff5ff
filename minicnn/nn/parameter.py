"""`Parameter`: a Tensor that a Module registers as learnable."""
from __future__ import annotations

from typing import Any

from ..autograd import Tensor


class Parameter(Tensor):
    """A leaf Tensor with requires_grad=True by default, collected by `Module.parameters()`."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
