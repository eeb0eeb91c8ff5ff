"""Keras/torchsummary-style table: layer, output shape, parameter count."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..autograd import Tensor, no_grad
from ..nn.module import Module


def summary(model: Module, input_shape: Optional[Sequence[int]] = None, batch_size: int = 1,
            print_fn=print) -> str:
    """Run a dummy (batch, *input_shape) batch and tabulate each leaf layer's output shape."""
    shape = tuple(input_shape or getattr(model, "input_shape", ()))
    if not shape:
        raise ValueError("summary: pass input_shape=(C, H, W) (the model does not record one)")
    rows: list[tuple[str, str, int]] = []
    depth = [0]          # modules currently inside forward
    nested = [False]     # did a patched module run inside the current one?
    patched = []
    for name, m in model.named_modules():
        if m is model:
            continue

        def hook(*args, _m=m, _name=name, _fwd=m.forward, **kw):
            # a row for each module that calls no other module: the leaves of the call tree,
            # so composite layers (SeparableConv2d) show once, with all their parameters
            nested[0] = False
            depth[0] += 1
            try:
                out = _fwd(*args, **kw)
            finally:
                depth[0] -= 1
            if not nested[0]:
                rows.append((f"{_name} ({type(_m).__name__})", str((None,) + tuple(out.shape[1:])),
                             _m.num_parameters()))
            nested[0] = True  # tells the caller (if any) that it is not a leaf
            return out

        object.__setattr__(m, "forward", hook)
        patched.append(m)
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(Tensor(np.zeros((batch_size,) + shape, dtype=np.float32)))
    finally:
        for m in patched:
            del m.__dict__["forward"]
        model.train(was_training)
    total = model.num_parameters()
    trainable = model.num_parameters(trainable_only=True)
    w = max([len(r[0]) for r in rows] + [20]) + 2
    line = "-" * (w + 40)
    out = [line, f"{'Layer (type)':<{w}}{'Output Shape':<26}{'Param #':>12}", "=" * (w + 40)]
    out += [f"{n:<{w}}{s:<26}{p:>12,}" for n, s, p in rows]
    out += ["=" * (w + 40), f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", line]
    text = "\n".join(out)
    if print_fn is not None:
        print_fn(text)
    return text
