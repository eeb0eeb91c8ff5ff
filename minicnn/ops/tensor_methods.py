"""Tensor's operators and method forms, attached by the op library (DeZero's setup_variable).

`minicnn.autograd` defines the engine without importing any op; importing `minicnn.ops`
calls `install_tensor_methods()`, which gives `Tensor` its `+`, `@`, `x[i]`, `.sum()` ...
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any

from ..autograd import Tensor
from . import activations as A
from . import elementwise as E
from . import reductions as R
from . import shapes as S


def _shape_arg(args: tuple) -> Any:
    """reshape(2, 3) and reshape((2, 3)) alike."""
    return args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


# PyTorch's return type of max(dim) / min(dim): a pair with .values and .indices
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _check_dim(who: str, t: Tensor, d: Any) -> int:
    if not isinstance(d, int) or isinstance(d, bool):
        raise TypeError(f"{who}: dims must be ints, got {d!r}")
    if not -max(t.ndim, 1) <= d < max(t.ndim, 1):
        raise IndexError(f"{who}: dim {d} is out of range for a {t.ndim}-D tensor of shape {tuple(t.shape)} "
                         f"(valid: {-t.ndim}..{t.ndim - 1})")
    return d % max(t.ndim, 1)


def _transpose(self: Tensor, *dims: Any) -> Tensor:
    """PyTorch's transpose(dim0, dim1): swap two dims (NumPy's full permutation is `permute`)."""
    if len(dims) != 2:
        raise TypeError(f"Tensor.transpose(dim0, dim1) swaps two dims (PyTorch), got {len(dims)} argument(s) "
                        f"{dims!r} for a tensor of shape {tuple(self.shape)}; use permute(...) for a full "
                        f"permutation and .T to reverse all dims")
    d0, d1 = (_check_dim(f"transpose{dims}", self, d) for d in dims)
    order = list(range(self.ndim))
    order[d0], order[d1] = order[d1], order[d0]
    return S.permute(self, tuple(order))


def _permute(self: Tensor, *dims: Any) -> Tensor:
    """Reorder every dim: permute(2, 0, 1) or permute((2, 0, 1))."""
    d = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    who = f"permute{d}"
    if len(d) != self.ndim or sorted(_check_dim(who, self, a) for a in d) != list(range(self.ndim)):
        raise ValueError(f"{who}: needs a permutation of all {self.ndim} dims of a tensor of shape "
                         f"{tuple(self.shape)}")
    return S.permute(self, d)


def _extreme(use_min: bool) -> Any:
    name = "min" if use_min else "max"

    def method(self: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Any:
        if isinstance(dim, Tensor):  # PyTorch's max(other): elementwise
            return E.minimum(self, dim) if use_min else E.maximum(self, dim)
        ax, kd = R.resolve_dims(name, dim, keepdim, axis, keepdims)
        values = R.Max(ax, kd, use_min=use_min)(self)
        if dim is None:  # NumPy's axis= (or the whole tensor): the values only
            return values
        d = _check_dim(name, self, dim)
        idx = self.data.argmin(axis=d) if use_min else self.data.argmax(axis=d)
        return ValuesIndices(values, Tensor(idx.reshape(values.shape)))
    method.__doc__ = (f"PyTorch's {name}: no dim -> the {name}imum; {name}(dim, keepdim) -> (values, indices); "
                      f"NumPy's {name}(axis=..., keepdims=...) -> values.")
    return method


def _arg(use_min: bool) -> Any:
    def method(self: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        ax, kd = R.resolve_dims("argmin" if use_min else "argmax", dim, keepdim, axis, keepdims)
        f = self.data.argmin if use_min else self.data.argmax
        return Tensor(f(axis=ax, keepdims=kd) if ax is not None else f(axis=None))
    return method


def _amax(use_min: bool) -> Any:
    def method(self: Tensor, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:
        ax, kd = R.resolve_dims("amin" if use_min else "amax", dim, keepdim, axis, keepdims)
        return R.Max(ax, kd, use_min=use_min)(self)
    return method


def _softmax(log: bool) -> Any:
    def method(self: Tensor, dim: Any = None, *, axis: Any = None) -> Tensor:
        ax, _ = R.resolve_dims("log_softmax" if log else "softmax", dim, None, axis, None)
        if ax is None:
            raise TypeError(f"{'log_softmax' if log else 'softmax'}: give dim (PyTorch has no default)")
        return A.log_softmax(self, ax) if log else A.softmax(self, ax)
    return method


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
        "sum": R.sum,
        "mean": R.mean,
        "max": _extreme(False),
        "min": _extreme(True),
        "amax": _amax(False),
        "amin": _amax(True),
        "argmax": _arg(False),
        "argmin": _arg(True),
        "var": R.var,
        "std": R.std,
        "softmax": _softmax(False),
        "log_softmax": _softmax(True),
        "reshape": lambda self, *shape: S.reshape(self, _shape_arg(shape)),
        "view": lambda self, *shape: S.reshape(self, _shape_arg(shape)),
        "transpose": _transpose,
        "permute": _permute,
        "flatten": lambda self, start_dim=0, end_dim=-1: S.flatten(self, start_dim, end_dim),
        "relu": lambda self: A.relu(self),
        "sigmoid": lambda self: A.sigmoid(self),
        "tanh": lambda self: A.tanh(self),
        "T": property(lambda self: S.reverse_dims(self)),
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
