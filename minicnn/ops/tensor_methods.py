"""Tensor's operators and method forms, attached by the op library (DeZero's setup_variable).

`minicnn.autograd` defines the engine without importing any op; importing `minicnn.ops`
calls `install_tensor_methods()`, which gives `Tensor` its `+`, `@`, `x[i]`, `.sum()` ...
"""
from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from . import activations as A
from . import elementwise as E
from . import reductions as R
from . import shapes as S


def _shape_arg(args: tuple) -> Any:
    """reshape(2, 3) and reshape((2, 3)) alike."""
    return args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _transpose(self: Tensor, *axes: Any) -> Tensor:
    return S.transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))


def install_tensor_methods() -> None:
    """Attach the operator and method forms of the ops to `Tensor` (idempotent)."""
    methods = {
        "__add__": lambda self, other: E.add(self, other),
        "__radd__": lambda self, other: E.add(other, self),
        "__sub__": lambda self, other: E.sub(self, other),
        "__rsub__": lambda self, other: E.sub(other, self),
        "__mul__": lambda self, other: E.mul(self, other),
        "__rmul__": lambda self, other: E.mul(other, self),
        "__truediv__": lambda self, other: E.div(self, other),
        "__rtruediv__": lambda self, other: E.div(other, self),
        "__neg__": lambda self: E.neg(self),
        "__pow__": lambda self, p: E.pow(self, p),
        "__matmul__": lambda self, other: E.matmul(self, other),
        "__rmatmul__": lambda self, other: E.matmul(other, self),
        "__getitem__": lambda self, index: S.getitem(self, index),
        "__abs__": lambda self: E.abs(self),
        "exp": lambda self: E.exp(self),
        "log": lambda self: E.log(self),
        "sqrt": lambda self: E.sqrt(self),
        "abs": lambda self: E.abs(self),
        "clip": lambda self, min=None, max=None: E.clip(self, min, max),
        "clamp": lambda self, min=None, max=None: E.clip(self, min, max),
        "sum": lambda self, axis=None, keepdims=False: R.sum(self, axis, keepdims),
        "mean": lambda self, axis=None, keepdims=False: R.mean(self, axis, keepdims),
        "max": lambda self, axis=None, keepdims=False: R.max(self, axis, keepdims),
        "min": lambda self, axis=None, keepdims=False: R.min(self, axis, keepdims),
        "var": lambda self, axis=None, keepdims=False, ddof=0: R.var(self, axis, keepdims, ddof),
        "reshape": lambda self, *shape: S.reshape(self, _shape_arg(shape)),
        "view": lambda self, *shape: S.reshape(self, _shape_arg(shape)),
        "transpose": _transpose,
        "permute": _transpose,
        "flatten": lambda self, start_dim=0, end_dim=-1: S.flatten(self, start_dim, end_dim),
        "relu": lambda self: A.relu(self),
        "sigmoid": lambda self: A.sigmoid(self),
        "tanh": lambda self: A.tanh(self),
        "T": property(lambda self: S.transpose(self, None)),
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
