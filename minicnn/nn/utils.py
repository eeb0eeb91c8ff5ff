"""Gradient clipping, applied between `loss.backward()` and `optimizer.step()`."""
from __future__ import annotations

import math
from collections.abc import Iterable

from ..autograd import Tensor
from ..backend import get_array_module

ParamsArg = Tensor | Iterable[Tensor]


def _with_grads(parameters: ParamsArg) -> list[tuple[Tensor, Tensor]]:
    """(parameter, gradient) for the parameters (one Tensor or an iterable) that currently have a gradient."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [(p, p.grad) for p in params if p.grad is not None]


def clip_grad_value_(parameters: ParamsArg, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p, g in _with_grads(parameters):
        # Rebind instead of clipping in place: backward may share one gradient array between parameters.
        p.grad = Tensor(get_array_module(g.data).clip(g.data, -clip_value, clip_value))


def clip_grad_norm_(parameters: ParamsArg, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so their joint p-norm is at most max_norm; returns the norm before.

    The joint norm treats all gradients as one long vector: ||(||g_1||, ..., ||g_n||)||_p.
    norm_type may be float('inf') (largest absolute element).
    """
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 (or inf), got {norm_type}")
    pairs = _with_grads(parameters)
    if not pairs:
        return 0.0
    grads = [g.data for _, g in pairs]
    xp = get_array_module(grads[0])
    if math.isinf(norm_type):
        per_param = xp.stack([xp.abs(g).max() if g.size else xp.zeros((), g.dtype) for g in grads])
        total = float(per_param.max())
    else:
        per_param = xp.stack([(xp.abs(g) ** norm_type).sum() for g in grads])
        total = float(per_param.sum()) ** (1.0 / norm_type)  # one device-to-host sync for all parameters
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total {norm_type}-norm of the gradients is {total}; "
                           f"pass error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)  # the epsilon keeps a zero norm from dividing by zero
    if coef < 1.0:
        for p, g in pairs:
            p.grad = Tensor(g.data * coef)
    return total
