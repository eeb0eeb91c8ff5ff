"""Finite-difference gradient checking, public so students can check their own ops."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .autograd import Tensor, no_grad
from .backend import get_array_module


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with central differences."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> bool:
    """Compare backward() with float64 central differences for every input that requires grad.

    The output y is reduced to L = sum(v * y) with a fixed random v, so one backward pass
    gives dL/dx for all inputs; the numeric estimate perturbs each element by +-eps.
    Returns True or raises GradcheckError naming the input, the worst index and both values.
    """
    inputs = list(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i, t in enumerate(checked):
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs (finite differences in float32 are noise); "
                            f"input {i} has dtype {t.dtype}")
    y = fn(*inputs)
    xp = get_array_module(y.data)
    v = xp.asarray(np.random.default_rng(seed).standard_normal(y.shape))

    for t in checked:
        t.grad = None
    (y * Tensor(v)).sum().backward()
    analytic = [t.grad.data.copy() if t.grad is not None else xp.zeros_like(t.data) for t in checked]

    def loss() -> float:
        with no_grad():
            return float((fn(*inputs).data * v).sum())

    for k, (t, ga) in enumerate(zip(checked, analytic)):
        gn = xp.zeros_like(t.data)
        flat, gflat = t.data.reshape(-1), gn.reshape(-1)  # views: perturb in place
        for j in range(flat.size):
            old = flat[j].item()
            flat[j] = old + eps
            up = loss()
            flat[j] = old - eps
            down = loss()
            flat[j] = old
            gflat[j] = (up - down) / (2 * eps)
        err = abs(ga - gn) - (atol + rtol * abs(gn))
        if (err > 0).any():
            idx = np.unravel_index(int(err.argmax()), t.shape)
            name = t.name or f"input {inputs.index(t) if t in [x for x in inputs] else k}"
            raise GradcheckError(f"gradcheck failed for {name} (shape {t.shape}) at index {idx}: "
                                 f"analytic {float(ga[idx]):.8g} vs numeric {float(gn[idx]):.8g}")
    return True
