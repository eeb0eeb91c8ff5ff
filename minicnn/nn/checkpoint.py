"""`checkpoint`: trade compute for memory by recomputing a segment's activations in backward.

The segment runs under `no_grad()` in forward, so none of its intermediate arrays are kept;
only its inputs (usually alive anyway) and its output are. Backward re-runs the segment with
gradients on, backpropagates through that fresh graph and drops it again. DenseNet uses this
for the concat + BatchNorm + ReLU + 1x1 conv of every dense layer, whose input grows with
depth (memory quadratic in depth otherwise, linear with it).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .module import Module


class CheckpointFn(Function):
    """Inputs: the segment's n tensors, then its parameters (listed so gradients reach them)."""

    def __init__(self, fn: Callable[..., Tensor], n_inputs: int, modules: Sequence[Module]):
        self.fn, self.n, self.modules = fn, n_inputs, list(modules)

    def forward(self, *arrays: Any) -> Any:
        with no_grad():
            return self.fn(*[Tensor(a) for a in arrays[:self.n]]).data

    def backward(self, gy: Any) -> tuple:
        assert self.inputs is not None
        xs = [Tensor(t.data, requires_grad=need) for t, need in zip(self.inputs[:self.n], self.needs_grad)]
        params = self.inputs[self.n:]
        # The recompute must not count twice in running statistics (BatchNorm in training mode):
        # snapshot every buffer and write it back in place, where the layers hold it.
        saved = [(b, b.data.copy()) for m in self.modules for _, b in m.named_buffers()]
        # Parameters are shared leaves: collect this segment's gradient separately and hand it to
        # the outer engine, which accumulates it like any other Function's.
        old_grads = [p.grad for p in params]
        for p in params:
            p.grad = None
        try:
            with enable_grad():
                y = self.fn(*xs)
            if y.requires_grad:
                y.backward(gy)
            gxs = [x.grad.data if x.grad is not None else None for x in xs]
            gps = [p.grad.data if p.grad is not None else None for p in params]
        finally:
            for p, g in zip(params, old_grads):
                p.grad = g
            for b, data in saved:
                b.data[...] = data
        return tuple(gxs + gps)


def checkpoint(fn: Callable[..., Tensor], *inputs: Tensor, modules: Sequence[Module] = ()) -> Tensor:
    """fn(*inputs) without keeping its intermediates; `modules` are those fn calls (for their
    parameters and buffers). fn must be deterministic (no dropout): backward runs it again."""
    params: list[Tensor] = []
    seen: set[int] = set()
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    if not is_grad_enabled() or not any(t.requires_grad for t in list(inputs) + params):
        return fn(*inputs)
    return CheckpointFn(fn, len(inputs), modules)(*inputs, *params)
