"""`summary(model, (C, H, W))`: a Keras-style table of layers, output shapes, parameters and MACs.

One dummy batch runs through the model with forward hooks on every submodule. A row is a
module that called no other module (a leaf of the call tree, e.g. `3.0.depthwise`) or one
that owns parameters its children do not; each parameter is counted in exactly one row,
the deepest called module that holds it.

MACs (multiply-accumulates) are per sample, for layers whose weight has two or more
dimensions with output units first (Conv2d, DepthwiseConv2d, Linear): one MAC per weight
element that reaches each output position, i.e. prod(weight.shape[1:]) per output
element. Biases, batch norm, pooling and activations are not counted. A layer can
report its own count with a method `macs(args, output) -> int`.

This module imports no layer and not `Module` itself (`Module.summary` imports it), so it
works on anything with `named_modules()`, `parameters()` and the forward-hook methods.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import Tensor, no_grad
from ..backend import to_device


@dataclass
class LayerRow:
    """One row of the table: a module call, its output shape (batch as None) and its own counts."""

    name: str
    type: str
    output_shape: str
    params: int = 0
    trainable: int = 0
    macs: int = 0
    depth: int = 0


@dataclass
class ModelSummary:
    """What `summary` prints: the rows and the whole model's totals (`str()` gives the table)."""

    input_shape: tuple
    rows: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    buffer_elements: int = 0
    uncalled: list[str] = field(default_factory=list)

    @property
    def frozen_params(self) -> int:
        """Parameters with requires_grad=False (e.g. a frozen backbone)."""
        return self.total_params - self.trainable_params

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def __str__(self) -> str:
        w = max([len(f"{r.name} ({r.type})") for r in self.rows] + [20]) + 2
        width = w + 26 + 14 + 11 + 16
        line, double = "-" * width, "=" * width
        out = [line, f"{'Layer (type)':<{w}}{'Output Shape':<26}{'Param #':>14}{'Trainable':>11}{'MACs':>16}", double]
        for r in self.rows:
            train = "-" if r.params == 0 else "yes" if r.trainable == r.params else "no" if r.trainable == 0 else "part"
            label = f"{r.name} ({r.type})"
            out.append(f"{label:<{w}}{r.output_shape:<26}{r.params:>14,}{train:>11}{r.macs:>16,}")
        out += [double,
                f"Input shape: {(None,) + tuple(self.input_shape)}",
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Frozen params: {self.frozen_params:,} (requires_grad=False)",
                f"Buffers: {self.buffer_elements:,} values (e.g. batch-norm running statistics; not trained)",
                f"Total MACs: {self.total_macs:,} per sample (conv and linear weights; see minicnn.nn.summary)"]
        if self.uncalled:
            out.append(f"Not called by forward (parameters counted in the totals only): {', '.join(self.uncalled)}")
        out.append(line)
        return "\n".join(out)


def _shape_text(output: Any) -> str:
    if isinstance(output, Tensor):
        return str((None,) + tuple(output.shape[1:]))
    if isinstance(output, (tuple, list)):
        return "[" + ", ".join(_shape_text(o) for o in output) + "]"
    return type(output).__name__


def layer_macs(module: Any, args: tuple, output: Any) -> int:
    """Multiply-accumulates per sample of one call (the rule in the module docstring)."""
    own = getattr(module, "macs", None)
    if callable(own):
        return int(own(args, output))
    weight = getattr(module, "weight", None)
    if not isinstance(output, Tensor) or not isinstance(weight, Tensor) or weight.ndim < 2 or output.ndim < 2:
        return 0
    units = weight.shape[0]
    if units not in (output.shape[1], output.shape[-1]):  # not an (out, ...) weight applied per position
        return 0
    per_sample = output.size // max(output.shape[0], 1)
    return per_sample * math.prod(weight.shape[1:])


def summarize(model: Any, input_shape: Sequence[int] | None = None, batch_size: int = 1) -> ModelSummary:
    """Run zeros (batch_size, *input_shape) through the model in eval mode and collect a ModelSummary."""
    shape: tuple[int, ...] = tuple(input_shape or getattr(model, "input_shape", None) or ())
    if not shape:
        raise ValueError(f"summary: pass input_shape=(C, H, W); {type(model).__name__} does not record one")
    names: dict[int, str] = {}  # a module registered under two names (shared) keeps the first
    for name, m in model.named_modules():
        if m is not model:
            names.setdefault(id(m), name)
    stack: list[list[Any]] = []       # frames of the modules now inside forward: [row, called_a_child]
    calls: list[tuple[Any, LayerRow, list[Any]]] = []   # (module, row, frame) in call order
    handles = []

    def pre_hook(module: Any, args: tuple) -> None:
        if stack:
            stack[-1][1] = True
        row = LayerRow(names[id(module)], type(module).__name__, "", depth=len(stack))
        frame = [row, False]
        stack.append(frame)
        calls.append((module, row, frame))

    def hook(module: Any, args: tuple, output: Any) -> None:
        row, called_a_child = stack.pop()
        row.output_shape = _shape_text(output)
        row.macs = 0 if called_a_child else layer_macs(module, args, output)  # children count their own

    hooked = {id(m): m for m in model.modules() if m is not model}  # each module once, even if shared
    for m in hooked.values():
        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(hook))
    modes = {id(m): (m, m.training) for m in model.modules()}
    params = list(model.parameters())
    device = params[0].device if params else "cpu"
    try:
        model.eval()
        with no_grad():
            model(Tensor(to_device(np.zeros((batch_size,) + shape, dtype=np.float32), device)))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.values():
            object.__setattr__(m, "training", mode)

    first_call: dict[int, LayerRow] = {}
    for module, row, _ in calls:
        first_call.setdefault(id(module), row)
    # each parameter belongs to the deepest called module holding it, counted at its first call;
    # parameters of modules forward never called are in the totals and the "not called" line only
    missed = {i: n for i, n in names.items() if i not in first_call and any(True for _ in hooked[i].parameters())}
    outer = {i: n for i, n in missed.items() if not any(n.startswith(o + ".") for o in missed.values())}
    idle = {id(p) for i in outer for p in hooked[i].parameters()}
    owner: dict[int, LayerRow] = {}
    for module, _, _ in sorted(calls, key=lambda c: -c[1].depth):
        for p in module.parameters():
            owner.setdefault(id(p), first_call[id(module)])
    for p in {id(p): p for p in params}.values():
        holder = owner.get(id(p))
        if holder is not None and id(p) not in idle:
            holder.params += p.size
            holder.trainable += p.size if p.requires_grad else 0
    result = ModelSummary(shape)
    result.rows = [row for _, row, frame in calls if not frame[1] or row.params]
    result.total_params = sum(p.size for p in params)
    result.trainable_params = sum(p.size for p in params if p.requires_grad)
    result.buffer_elements = sum(b.size for _, b in model.named_buffers())
    result.uncalled = list(outer.values())
    return result


def summary(model: Any, input_shape: Sequence[int] | None = None, batch_size: int = 1,
            print_fn: Callable[[str], Any] | None = print) -> str:
    """Print (with print_fn; None for silence) and return the summary table of a model."""
    text = str(summarize(model, input_shape, batch_size))
    if print_fn is not None:
        print_fn(text)
    return text
