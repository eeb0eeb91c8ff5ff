"""Grad-CAM (Selvaraju et al., 2017): where in the image did the evidence for a class come from?

For a convolutional layer with feature maps A_k (N, K, h, w) and a class score y:
    w_k = mean over (h, w) of dy/dA_k          (how much channel k matters)
    cam = relu(sum_k w_k * A_k)                 (where the helpful channels fire)
then the (h, w) map is resized to the input and scaled to [0, 1] per image.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import Tensor, enable_grad, no_grad
from .backend import to_device
from .nn.activation import LogSoftmax, Sigmoid, Softmax
from .nn.container import ModuleList, Sequential
from .nn.module import Module


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (N, h, w) to (N, H, W) bilinearly, sampling at pixel centres (align_corners=False)."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"resize_bilinear: maps must be (N, h, w), got shape {maps.shape}")

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # output pixel centre i + 0.5 sits at input position (i + 0.5) * n_in / n_out
        src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = axis(maps.shape[1], size[0])
    x0, x1, fx = axis(maps.shape[2], size[1])
    fy, fx = fy[:, None], fx[None, :]                     # (H, 1), (1, W)
    top = maps[:, y0][:, :, x0] * (1 - fx) + maps[:, y0][:, :, x1] * fx   # (N, H, W)
    bottom = maps[:, y1][:, :, x0] * (1 - fx) + maps[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bottom * fy


MIN_MAP_SIZE = 7  # a coarser map cannot say where: at 1x1 the normalised map is constant


def _outputs_by_layer(model: Module) -> tuple[list[tuple[str, Module, Any, Any]], list[Any]]:
    """Hook every submodule; the list fills with (name, module, first input, output) in completion order."""
    names: dict[int, tuple[str, Module]] = {}
    for name, m in model.named_modules():
        if m is not model:
            names.setdefault(id(m), (name, m))
    record: list[tuple[str, Module, Any, Any]] = []

    def hook(module: Module, args: tuple, output: Any) -> None:
        record.append((names[id(module)][0], module, args[0] if args else None, output))

    return record, [m.register_forward_hook(hook) for _, m in names.values()]


def _is_map(t: Any) -> bool:
    return isinstance(t, Tensor) and t.ndim == 4


def _is_conv(m: Module) -> bool:
    """A convolution or a block built of them (not a plain Sequential/ModuleList holding several)."""
    return not isinstance(m, (Sequential, ModuleList)) and any(p.ndim == 4 for p in m.parameters())


def pick_target(record: list[tuple[str, Module, Any, Any]], min_size: int = MIN_MAP_SIZE) -> str:
    """The name of the last convolutional layer to finish whose feature map is at least min_size x min_size.

    `record` is (name, module, input, output) per call, from one forward pass (see grad_cam).
    Convolutions (modules holding a 4-d weight, e.g. Conv2d, SeparableConv2d, a residual
    block) only: a batch norm's output is shifted by its running mean, so sum_k w_k A_k is
    often negative everywhere and the rectified map blank. With no map that large, the last
    of the largest; with no convolution at all, any layer with a 4-d output.
    """
    maps = [(name, min(out.shape[2:])) for name, m, _, out in record if _is_map(out) and _is_conv(m)]
    maps = maps or [(name, min(out.shape[2:])) for name, _, _, out in record if _is_map(out)]
    if not maps:
        raise ValueError("grad_cam: the model produced no 4-d feature maps (N, K, h, w); pass target_layer")
    big = [name for name, side in maps if side >= min_size]
    if big:
        return big[-1]
    largest = max(side for _, side in maps)
    return [name for name, side in maps if side == largest][-1]


def default_target(model: Module, x: Any, min_size: int = MIN_MAP_SIZE) -> str:
    """The name of the layer grad_cam explains by default for inputs like x (N, C, H, W) (see pick_target)."""
    modes = {m: m.training for m in model.modules()}
    record, handles = _outputs_by_layer(model)
    try:
        with no_grad():
            model.eval()(x if isinstance(x, Tensor) else Tensor(x))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            object.__setattr__(m, "training", mode)
    return pick_target(record, min_size)


def _resolve(model: Module, target_layer: Module | str | None) -> Module | None:
    if target_layer is None or isinstance(target_layer, Module):
        return target_layer
    layers = dict(model.named_modules())
    if target_layer not in layers or not target_layer:
        some = ", ".join(n for n in list(layers)[1:12])
        raise ValueError(f"grad_cam: the model has no layer named {target_layer!r} (names look like: {some}, ...)")
    return layers[target_layer]


def _last_leaf(model: Module) -> Module | None:
    leaves = [m for m in model.modules() if not m._modules]
    return leaves[-1] if leaves else None


def grad_cam(model: Module, x: Any, target_layer: Module | str | None = None, class_idx: Any = None,
             min_size: int = MIN_MAP_SIZE) -> np.ndarray:
    """Grad-CAM heat maps (N, H, W) in [0, 1] for a batch x (N, C, H, W), from a layer's output (N, K, h, w).

    target_layer: a submodule, its name in `model.named_modules()` (e.g. "features.3"), or
    None for the last layer whose feature map is at least min_size x min_size (`pick_target`).
    The score explained is the class logit: for a model ending in Sigmoid/Softmax the input
    of that final layer is used, so saturated probabilities do not zero the gradient. With one
    output, class_idx None or 1 explains the positive class and 0 the negative one (the
    negated logit). With C outputs, class_idx is an int or (N,) ints; default the argmax.
    The model runs in eval mode; its modes, `requires_grad` flags and `.grad`s are left as found.
    """
    data = x.data if isinstance(x, Tensor) else x
    if getattr(data, "ndim", 0) != 4:
        raise ValueError(f"grad_cam: x must be a batch (N, C, H, W), got shape {getattr(data, 'shape', None)}")
    if not np.issubdtype(np.dtype(str(data.dtype)), np.floating):
        raise TypeError(f"grad_cam: x must be floating point (normalised like the training data), got {data.dtype}")
    n, (height, width) = data.shape[0], data.shape[2:]
    target = _resolve(model, target_layer)

    modes = {m: m.training for m in model.modules()}
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    head = _last_leaf(model)
    head = head if isinstance(head, (Sigmoid, Softmax, LogSoftmax)) and head is not target else None
    record, handles = _outputs_by_layer(model)
    try:
        model.eval()
        for p in params:  # gradients w.r.t. the weights are not needed, and must not be disturbed
            p.requires_grad = False
        with enable_grad():
            out = model(Tensor(data, requires_grad=True))
        for h in handles:
            h.remove()
        if target is None:
            name = pick_target(record, min_size)
            target = dict(model.named_modules())[name]
        feats = [o for _, m, _, o in record if m is target]
        if not feats:
            raise ValueError(f"grad_cam: target_layer {type(target).__name__} was not called by the model")
        last = [(i, o) for _, m, i, o in record if m is head]
        if last and last[-1][1] is out:
            out = last[-1][0]  # the logits that went into the final activation
        acts = feats[-1]  # a layer used twice: explain its last use
        if not _is_map(acts):
            raise ValueError(f"grad_cam: target_layer must output feature maps (N, K, h, w), got shape "
                             f"{getattr(acts, 'shape', None)}")
        acts.retain_grad()
        out.backward(_score_gradient(out, class_idx, n))
        a, g = acts.numpy().astype(np.float64), acts.grad.numpy().astype(np.float64)
    finally:
        for h in handles:
            h.remove()
        for p, f in zip(params, flags):
            p.requires_grad = f
        for m, mode in modes.items():
            object.__setattr__(m, "training", mode)

    weights = g.mean(axis=(2, 3))                                   # (N, K)
    cam = np.maximum(np.einsum("nk,nkhw->nhw", weights, a), 0.0)    # (N, h, w)
    cam = resize_bilinear(cam, (height, width))                     # (N, H, W)
    lo, hi = cam.min(axis=(1, 2), keepdims=True), cam.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    cam = np.divide(cam - lo, span, out=np.zeros_like(cam), where=span > 0)  # flat map -> zeros
    return cam.astype(np.float32)


def _score_gradient(out: Tensor, class_idx: Any, n: int) -> Any:
    """d(score)/d(out) as an array like out (N, C): a one-hot (or +-1 for a single logit) per sample."""
    logits = out.numpy()
    if logits.ndim == 1:
        logits = logits[:, None]
    if logits.ndim != 2 or logits.shape[0] != n:
        raise ValueError(f"grad_cam: model output must be (N,) or (N, C) with N={n}, got shape {out.shape}")
    c = logits.shape[1]
    grad = np.zeros_like(logits)
    if c == 1:
        idx = np.ones(n, dtype=np.int64) if class_idx is None else np.broadcast_to(np.asarray(class_idx), (n,))
        if np.any((idx != 0) & (idx != 1)):
            raise ValueError(f"grad_cam: a one-output model has classes 0 and 1, got class_idx={class_idx}")
        grad[:, 0] = np.where(idx == 1, 1.0, -1.0)  # class 0's evidence is the negated logit
    else:
        idx = logits.argmax(axis=1) if class_idx is None else np.broadcast_to(np.asarray(class_idx), (n,))
        if np.any((idx < 0) | (idx >= c)):
            raise ValueError(f"grad_cam: class_idx {class_idx} out of range for {c} outputs")
        grad[np.arange(n), idx] = 1.0
    return to_device(grad.reshape(out.shape), out.device).astype(out.data.dtype)  # onto out's device
