"""Adam (L2 penalty added to the gradient) and AdamW (weight decay decoupled from the gradient)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..backend import get_array_module
from .optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    """Adam (Kingma & Ba): m, v running moments of g and g², bias-corrected; p -= lr*m̂/(sqrt(v̂)+eps)."""

    decoupled = False  # AdamW sets True: decay p directly instead of adding wd*p to the gradient

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        name = type(self).__name__
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: invalid betas={tuple(betas)}; need two values in [0, 1)")
        if not group["eps"] >= 0.0:
            raise ValueError(f"{name}: invalid eps={group['eps']}; it must be >= 0")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"{name}: invalid weight_decay={group['weight_decay']}; it must be >= 0")

    def _update(self, p: Tensor, grad: Any, state: dict, group: dict) -> None:
        xp = get_array_module(p.data)
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        if xp is not np and not group["amsgrad"] and p.data.flags.c_contiguous:
            # the GPU body: one fused kernel pass over p, g, m, v (kernels/adam.cu), same formula and order
            from ..cuda import launches
            from ..ops.gpu import contiguous, kernels
            launches.adam(kernels(xp, "adam"), p.data, contiguous(xp, grad), state["exp_avg"], state["exp_avg_sq"],
                          t, lr, (beta1, beta2), eps, wd, self.decoupled)
            return

        if wd != 0 and self.decoupled:
            p.data *= 1.0 - lr * wd
        elif wd != 0:
            grad = grad + wd * p.data

        bias1, bias2 = 1.0 - beta1 ** t, 1.0 - beta2 ** t
        arrays = [p.data, grad, state["exp_avg"], state["exp_avg_sq"]]
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:  # switched on after training started; max(0, v) = v as v >= 0
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
            arrays.append(state["max_exp_avg_sq"])

        def run(a: int, z: Any) -> None:
            """Update elements [a, z) of the flat arrays (all for z=None) in place, in PyTorch's order:
            m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; p -= (lr/bias1) * m / (sqrt(v)/sqrt(bias2) + eps)."""
            pd, g, m, v, *vmax = flat if z is None else [f[a:z] for f in flat]
            tmp, denom = xp.empty_like(m), xp.empty_like(m)
            m *= beta1
            m += xp.multiply(g, 1.0 - beta1, out=tmp)
            v *= beta2
            xp.multiply(g, 1.0 - beta2, out=tmp)
            v += xp.multiply(tmp, g, out=tmp)
            if vmax:
                v = xp.maximum(vmax[0], v, out=vmax[0])
            xp.sqrt(v, out=denom)
            denom /= bias2 ** 0.5
            denom += eps
            xp.multiply(m, lr / bias1, out=tmp)
            tmp /= denom
            pd -= tmp

        if xp is np and all(a.flags.c_contiguous and a.shape == p.data.shape for a in arrays):
            # the CPU body: all passes over a cache-sized block at once, blocks over threads
            from ..cpu.threads import parallel_blocks
            flat = [a.reshape(-1) for a in arrays]         # views, so run() updates the state in place
            parallel_blocks(run, p.data.size)
        else:
            flat = arrays
            run(0, None)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr*wd before the Adam step."""

    decoupled = True

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
