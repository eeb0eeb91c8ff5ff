"""Finite-difference gradient checking, public so students can check their own ops."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .autograd import Tensor, no_grad
from .backend import get_array_module


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with central differences."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0, mode: str = "elementwise",
              directions: int = 3) -> bool:
    """Compare backward() with float64 central differences for every input that requires grad.

    The output y is reduced to L = sum(v * y) with a fixed random v, so one backward pass
    gives dL/dx for all inputs. mode="elementwise" perturbs each element by +-eps (exact
    but one pair of forward passes per element: small inputs only). mode="directional"
    draws `directions` random directions u per input and compares <dL/dx, u> with
    (L(x + eps u) - L(x - eps u)) / 2 eps: two forward passes per direction whatever the
    size, so inputs large enough to take the fast paths can be checked too.
    Returns True or raises GradcheckError naming the input (or direction) and both values.
    """
    if mode not in ("elementwise", "directional"):
        raise ValueError(f"gradcheck: mode must be 'elementwise' or 'directional', got {mode!r}")
    inputs = list(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i, t in enumerate(checked):
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs (finite differences in float32 are noise); "
                            f"input {i} has dtype {t.dtype}")
    rng = np.random.default_rng(seed)
    y = fn(*inputs)
    xp = get_array_module(y.data)
    v = xp.asarray(rng.standard_normal(y.shape))

    for t in checked:
        t.grad = None
    (y * Tensor(v)).sum().backward()
    analytic = [t.grad.data.copy() if t.grad is not None else xp.zeros_like(t.data) for t in checked]

    def loss() -> float:
        with no_grad():
            return float((fn(*inputs).data * v).sum())

    if mode == "directional":
        return _directional(checked, analytic, loss, rng, xp, eps, atol, rtol, directions)

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


def _directional(checked: list, analytic: list, loss: Callable[[], float], rng: np.random.Generator, xp: object,
                 eps: float, atol: float, rtol: float, directions: int) -> bool:
    """<dL/dx, u> against the central difference along u, for `directions` random u per input.

    Inputs are perturbed one at a time, so a small input (a bias) is judged against its own
    directional derivative, not drowned in a big one's.
    """
    for k, (t, ga) in enumerate(zip(checked, analytic)):
        x0 = t.data.copy()
        for d in range(directions):
            u = xp.asarray(rng.standard_normal(t.shape))  # type: ignore[attr-defined]
            predicted = float((ga * u).sum())
            try:
                t.data[...] = x0 + eps * u
                up = loss()
                t.data[...] = x0 - eps * u
                down = loss()
            finally:
                t.data[...] = x0
            numeric = (up - down) / (2 * eps)
            if abs(predicted - numeric) > atol + rtol * abs(numeric):
                name = t.name or f"checked input {k}"
                raise GradcheckError(f"directional gradcheck failed for {name} (shape {t.shape}) along random "
                                     f"direction {d}: analytic <grad, u> {predicted:.10g} vs numeric {numeric:.10g}")
    return True
