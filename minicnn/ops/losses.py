"""Loss functions (PyTorch names and reductions) with class and per-sample weights.

Class weights, Keras style: `class_weight={0: w0, 1: w1}` becomes per-sample weights
w[y_i] through `sample_weights_from_class_weight`, passed as `loss(input, target, sample_weight=...)`.
Keras' reduction then divides the weighted sum by the batch size, which is what
`sample_weight` does here; PyTorch's `CrossEntropyLoss(weight=...)` divides by the sum of
the weights instead, and that is what its `weight` argument does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Function, Tensor, as_tensor
from ..backend import Array, get_array_module
from .activations import log_softmax, sigmoid_parts


def _reduce(loss: Tensor, reduction: str, sample_weight: Any = None) -> Tensor:
    if sample_weight is not None:
        sw = as_tensor(sample_weight, loss)
        if sw.ndim == 1 and loss.ndim > 1:  # one weight per sample, broadcast over the rest
            sw = sw.reshape((-1,) + (1,) * (loss.ndim - 1))
        loss = loss * sw.detach().to(dtype=loss.dtype)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_same_shape(name: str, input: Tensor, target: Tensor) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{name}: input shape {tuple(input.shape)} and target shape {tuple(target.shape)} "
                         f"differ (for a 1-output model use target.reshape(-1, 1) or output.reshape(-1))")


class BCEWithLogitsFn(Function):
    """Elementwise binary cross-entropy on logits x, stable for any |x|:
    l = (1 - y) x + c softplus(-x), c = 1 + (pos_weight - 1) y."""

    def __init__(self, pos_weight: Any = None):
        self.pw = pos_weight

    def forward(self, x: Array, y: Array) -> Array:
        xp = get_array_module(x)
        self.x, self.y = x, y
        sp = xp.logaddexp(0, -x)  # softplus(-x) = log(1 + exp(-x)) without overflow
        self.c = 1 if self.pw is None else 1 + (self.pw - 1) * y
        return (1 - y) * x + self.c * sp

    def backward(self, gy: Array) -> Any:
        # dl/dx = (1 - y) - c sigmoid(-x) = (1 - y) sigmoid(x) - pw y sigmoid(-x): the second form
        # never subtracts, so it keeps relative accuracy in both confident tails (e.g. 4e-18 at
        # x = -40, y = 0, where 1 - sigmoid(40) is 0)
        s_pos, s_neg = sigmoid_parts(self.x)[0], sigmoid_parts(-self.x)[0]
        pw = 1 if self.pw is None else self.pw
        return gy * ((1 - self.y) * s_pos - pw * self.y * s_neg), None


class BCEFn(Function):
    """Elementwise binary cross-entropy on probabilities; logs clamped at -100 like PyTorch."""

    def forward(self, p: Array, y: Array) -> Array:
        xp = get_array_module(p)
        self.p, self.y = p, y
        with np.errstate(divide="ignore"):  # log(0) = -inf is clamped just below
            logp = xp.maximum(xp.log(p), -100)
            log1mp = xp.maximum(xp.log1p(-p), -100)
        return -(y * logp + (1 - y) * log1mp)

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        p = self.p
        return gy * (p - self.y) / xp.maximum((1 - p) * p, p.dtype.type(1e-12)), None


def _elementwise_weight(who: str, loss: Tensor, weight: Any) -> Tensor:
    """PyTorch's `weight=` on the BCE losses: rescales each element's loss, broadcast NumPy-style
    (aligned on the *last* axes) to the input's shape; the mean still divides by the element count."""
    if weight is None:
        return loss
    xp = get_array_module(loss.data)
    w = xp.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=loss.dtype)
    try:
        shape = np.broadcast_shapes(tuple(w.shape), tuple(loss.shape))
    except ValueError:
        shape = None
    if shape != tuple(loss.shape):
        raise ValueError(f"{who}: weight of shape {tuple(w.shape)} does not broadcast to the input's shape "
                         f"{tuple(loss.shape)} (PyTorch aligns it on the last axes; for one weight per "
                         f"sample of an (N, k) input use shape (N, 1), or sample_weight=)")
    return loss * Tensor(w)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None, *, reduction: str = "mean",
                                     pos_weight: Any = None, sample_weight: Any = None) -> Tensor:
    """BCE on logits; input and target the same shape, e.g. (N, 1).

    `weight` is PyTorch's per-element rescaling (broadcast on the last axes, mean over elements);
    `sample_weight` is Keras' per-sample weight (shape (N,), broadcast over the first axis).
    """
    target = as_tensor(target, input).to(dtype=input.dtype)
    _check_same_shape("BCEWithLogitsLoss", input, target)
    pw = None
    if pos_weight is not None:
        xp = get_array_module(input.data)
        pw = xp.asarray(pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight, dtype=input.dtype)
    loss = _elementwise_weight("BCEWithLogitsLoss", BCEWithLogitsFn(pw)(input, target.detach()), weight)
    return _reduce(loss, reduction, sample_weight)


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None, *, reduction: str = "mean",
                         sample_weight: Any = None) -> Tensor:
    """BCE on probabilities in [0, 1]; input and target the same shape; `weight` as in PyTorch."""
    target = as_tensor(target, input).to(dtype=input.dtype)
    _check_same_shape("BCELoss", input, target)
    p = input.data
    if p.size and (float(p.min()) < 0 or float(p.max()) > 1):
        raise ValueError(f"BCELoss: input must be probabilities in [0, 1]; got values in "
                         f"[{float(p.min()):.4g}, {float(p.max()):.4g}] (use BCEWithLogitsLoss on raw outputs)")
    return _reduce(_elementwise_weight("BCELoss", BCEFn()(input, target.detach()), weight), reduction, sample_weight)


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """PyTorch's negative log-likelihood: log-probabilities (N, C) or (N, C, d1, ...), class
    indices (N,) or (N, d1, ...); loss_i = -weight[t_i] * input[i, t_i], 0 where t_i == ignore_index.
    'mean' divides by the sum of the weights of the targets that are not ignored."""
    if input.ndim < 2:
        raise ValueError(f"NLLLoss: expected input of shape (N, C) or (N, C, d1, ...), got {tuple(input.shape)}")
    xp = get_array_module(input.data)
    c = input.shape[1]
    t = target.data if isinstance(target, Tensor) else xp.asarray(target)
    if tuple(t.shape) != (input.shape[0],) + tuple(input.shape[2:]):
        raise ValueError(f"NLLLoss: target shape {tuple(t.shape)} does not match input {tuple(input.shape)} "
                         f"(expected {(input.shape[0],) + tuple(input.shape[2:])})")
    if not np.issubdtype(np.dtype(str(t.dtype)), np.integer):
        raise TypeError(f"NLLLoss: targets must be integer class indices, got dtype {t.dtype}")
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= c))
    if bool(bad.any()):
        raise ValueError(f"NLLLoss: target classes must be in [0, {c - 1}] or ignore_index={ignore_index}; "
                         f"got {int(t[bad].reshape(-1)[0])}")
    w = xp.ones(c, dtype=input.dtype) if weight is None else xp.asarray(
        weight.data if isinstance(weight, Tensor) else weight, dtype=input.dtype)
    if w.shape != (c,):
        raise ValueError(f"NLLLoss: weight must have shape ({c},), got {tuple(w.shape)}")
    tc = xp.where(keep, t, 0)
    onehot = (xp.arange(c).reshape((1, c) + (1,) * (t.ndim - 1)) == xp.expand_dims(tc, 1))
    sel = onehot * (w.reshape((1, c) + (1,) * (t.ndim - 1)) * xp.expand_dims(keep, 1))  # (N, C, ...)
    per = -(input * Tensor(sel.astype(input.dtype))).sum(axis=1)  # (N, d1, ...)
    if reduction == "mean":
        return per.sum() / Tensor(xp.asarray(w[tc][keep].sum(), dtype=input.dtype))
    return _reduce(per, reduction)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, label_smoothing: float = 0.0,
                  reduction: str = "mean", sample_weight: Any = None) -> Tensor:
    """Softmax cross-entropy: logits (N, C) and class indices (N,) or class probabilities (N, C)."""
    if input.ndim != 2:
        raise ValueError(f"CrossEntropyLoss: expected logits of shape (N, C), got {tuple(input.shape)}")
    n, c = input.shape
    xp = get_array_module(input.data)
    t = target.data if isinstance(target, Tensor) else xp.asarray(target)
    if t.ndim == 1:
        if t.shape[0] != n:
            raise ValueError(f"CrossEntropyLoss: {n} logits rows but {t.shape[0]} targets")
        if not np.issubdtype(np.dtype(str(t.dtype)), np.integer):
            raise TypeError(f"CrossEntropyLoss: class-index targets must be integers, got dtype {t.dtype}")
        if t.size and (int(t.min()) < 0 or int(t.max()) >= c):
            raise ValueError(f"CrossEntropyLoss: target classes must be in [0, {c - 1}], got range "
                             f"[{int(t.min())}, {int(t.max())}]")
        probs = xp.zeros((n, c), dtype=input.dtype)
        probs[xp.arange(n), t] = 1
        hard = True
    elif t.shape == (n, c):
        probs, hard = t.astype(input.dtype), False
    else:
        raise ValueError(f"CrossEntropyLoss: target must be (N,) class indices or (N, C) probabilities; "
                         f"got {tuple(t.shape)} for logits {tuple(input.shape)}")
    if label_smoothing:
        probs = probs * (1 - label_smoothing) + label_smoothing / c
    logp = log_softmax(input, dim=1)                                 # (N, C)
    if weight is not None:
        w = xp.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=input.dtype)
        if w.shape != (c,):
            raise ValueError(f"CrossEntropyLoss: weight must have shape ({c},), got {tuple(w.shape)}")
        per = -(logp * Tensor(probs * w)).sum(axis=1)                    # (N,)
        if reduction == "mean" and sample_weight is None and hard:
            # PyTorch: with class-index targets the mean is weighted by the targets' class weights
            return per.sum() / Tensor(xp.asarray(w[t].sum(), dtype=input.dtype))
    else:
        per = -(logp * Tensor(probs)).sum(axis=1)
    return _reduce(per, reduction, sample_weight)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean", sample_weight: Any = None) -> Tensor:
    target = as_tensor(target, input).to(dtype=input.dtype)
    _check_same_shape("MSELoss", input, target)
    d = input - target.detach()
    return _reduce(d * d, reduction, sample_weight)


def sample_weights_from_class_weight(targets: Any, class_weight: dict | None) -> np.ndarray | None:
    """Keras' class_weight {class: w} -> one weight per sample, shape (N,)."""
    if class_weight is None:
        return None
    t = targets.data if isinstance(targets, Tensor) else targets
    xp = get_array_module(t)
    t = xp.asarray(t).reshape(-1).astype("int64")
    n_cls = max(int(k) for k in class_weight) + 1
    table = np.ones(max(n_cls, int(t.max()) + 1 if t.size else 1), dtype=np.float32)
    for k, w in class_weight.items():
        table[int(k)] = float(w)
    return xp.asarray(table)[t]
