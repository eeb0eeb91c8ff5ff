"""Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay."""
from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """PyTorch's SGD: g += wd*p; b = mu*b + (1-dampening)*g (b = g at first); p -= lr*(g + mu*b or b)."""

    def __init__(self, params: ParamsT, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if not group["momentum"] >= 0.0:
            raise ValueError(f"SGD: invalid momentum={group['momentum']}; it must be >= 0")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"SGD: invalid weight_decay={group['weight_decay']}; it must be >= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening = 0; got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, p: Tensor, grad: Any, state: dict, group: dict) -> None:
        mu, wd = group["momentum"], group["weight_decay"]
        if wd != 0:
            grad = grad + wd * p.data
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= mu
                buf += (1.0 - group["dampening"]) * grad
            grad = grad + mu * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad
