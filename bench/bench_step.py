"""The pneumonia CNN: training step and inference, minicnn vs PyTorch's CPU build, each in its own process.

    /work/venv/bin/python bench/bench_step.py --tree /work/main \\
        --python torch=/work/venv-bench/bin/python [--sizes 64 180] [--batch 16] \\
        [--infer-size 64] [--infer-batch 64] [--repeats 7] [--threads 2] \\
        [--json out.json] [--compare before.json] [--label after]
    /work/venv/bin/python bench/bench_step.py --profile [--sizes 180]   # cProfile minicnn's step

Network: conv3x3(16) relu, conv3x3(16) relu, maxpool2; for f in 32, 64, 128, 256:
separable3x3(f) relu, separable3x3(f) relu, batchnorm, maxpool2 (dropout 0.2 after the 128
and 256 blocks); flatten; dense blocks (512, p=0.7), (128, 0.5), (64, 0.3) of
linear-relu-batchnorm1d-dropout; linear(1). Both frameworks build it from `LAYERS` and get
the same weights, batch-norm running statistics and batch from the parent process.

Training step: zero_grad, forward, BCE-with-logits loss, backward, Adam(lr=1e-3). Checked
before timing: logits, loss and every parameter gradient in training mode with dropout off
(dropout masks differ between frameworks), against PyTorch's float64 result (float32 rounding
alone moves PyTorch's own gradients by up to 1e-2 at 180 px; see harness.Case). Inference:
eval mode, no autograd; logits checked against PyTorch's float32 ones.
"""
from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

from harness import Arrays, Case, Workload, add_harness_args, parse_args, run_benchmark

FRAMEWORKS = ("minicnn", "torch")


def layers(size: int) -> list[tuple]:
    """The network as (kind, *sizes) tuples, framework-neutral."""
    out: list[tuple] = [("conv", 1, 16), ("relu",), ("conv", 16, 16), ("relu",), ("pool",)]
    side, cin = size // 2, 16
    for f in (32, 64, 128, 256):
        out += [("sep", cin, f), ("relu",), ("sep", f, f), ("relu",), ("bn2d", f), ("pool",)]
        if f >= 128:
            out.append(("dropout", 0.2))
        side, cin = side // 2, f
    out.append(("flatten",))
    fin = 256 * side * side
    for fout, p in ((512, 0.7), (128, 0.5), (64, 0.3)):
        out += [("linear", fin, fout), ("relu",), ("bn1d", fout), ("dropout", p)]
        fin = fout
    out.append(("linear", fin, 1))
    return out


def param_shapes(layer: tuple) -> list[tuple[int, ...]]:
    """Shapes of a layer's parameters, then its running statistics, in a fixed order."""
    kind = layer[0]
    if kind == "conv":
        return [(layer[2], layer[1], 3, 3), (layer[2],)]
    if kind == "sep":  # depthwise weight, pointwise weight, pointwise bias
        return [(layer[1], 1, 3, 3), (layer[2], layer[1], 1, 1), (layer[2],)]
    if kind == "linear":
        return [(layer[2], layer[1]), (layer[2],)]
    if kind in ("bn2d", "bn1d"):  # weight, bias, running mean, running var
        return [(layer[1],)] * 4
    return []


def forward_flops(size: int, batch: int) -> tuple[float, float]:
    """Multiply-add FLOPs of the conv and linear layers: (forward, first layer's input gradient)."""
    total, side, first = 0.0, size, 0.0
    for layer in layers(size):
        if layer[0] == "conv":
            total += 2 * batch * layer[1] * layer[2] * 9 * side * side
            first = first or 2 * batch * layer[1] * layer[2] * 9 * side * side
        elif layer[0] == "sep":
            total += 2 * batch * layer[1] * (9 + layer[2]) * side * side
        elif layer[0] == "linear":
            total += 2 * batch * layer[1] * layer[2]
        elif layer[0] == "pool":
            side //= 2
    return total, first


def make_inputs(size: int, batch: int) -> Callable[[Any], Arrays]:
    def make(rng: Any) -> Arrays:
        import numpy as np

        out = {"x": rng.standard_normal((batch, 1, size, size), dtype=np.float32),
                   "y": (rng.random((batch, 1)) < 0.5).astype(np.float32)}
        i = 0
        for layer in layers(size):
            shapes = param_shapes(layer)
            for j, shape in enumerate(shapes):
                if layer[0].startswith("bn"):  # weight ~1, bias ~0, mean ~0, var ~1
                    base = (1.0, 0.0, 0.0, 1.0)[j]
                    a = base + 0.1 * rng.standard_normal(shape) if j != 3 else rng.uniform(0.5, 1.5, shape)
                else:  # PyTorch's default: uniform in +-1/sqrt(fan_in); depthwise taps see 9 inputs
                    fan_in = {"conv": layer[1] * 9, "linear": layer[1], "sep": layer[1] if j else 9}[layer[0]]
                    bound = 1 / np.sqrt(fan_in)
                    a = rng.uniform(-bound, bound, shape)
                out[f"p{i:03d}"] = a.astype(np.float32)
                i += 1
        return out
    return make


def plain_layer(nn: Any, layer: tuple, dropout: bool) -> Any:
    """A parameter-free layer from `nn` (minicnn.nn and torch.nn spell these alike)."""
    if layer[0] == "relu":
        return nn.ReLU()
    if layer[0] == "pool":
        return nn.MaxPool2d(2)
    if layer[0] == "flatten":
        return nn.Flatten()
    return nn.Dropout(layer[1] if dropout else 0.0)


def build_minicnn(size: int, arrays: Arrays, dropout: bool) -> tuple[Any, list[Any]]:
    """minicnn model with the parent's weights; also its parameters in `param_shapes` order."""
    from minicnn import nn

    mods: list[Any] = []
    params: list[Any] = []
    i = 0
    m: Any
    ps: list[Any]
    for layer in layers(size):
        kind = layer[0]
        if kind == "conv":
            m = nn.Conv2d(layer[1], layer[2], 3, padding=1)
            ps = [m.weight, m.bias]
        elif kind == "sep":
            m = nn.SeparableConv2d(layer[1], layer[2], 3, padding="same")
            ps = [m.depthwise.weight, m.pointwise.weight, m.pointwise.bias]
        elif kind == "linear":
            m = nn.Linear(layer[1], layer[2])
            ps = [m.weight, m.bias]
        elif kind in ("bn2d", "bn1d"):
            m = (nn.BatchNorm2d if kind == "bn2d" else nn.BatchNorm1d)(layer[1])
            ps = [m.weight, m.bias]
            m.running_mean.data[...] = arrays[f"p{i + 2:03d}"]
            m.running_var.data[...] = arrays[f"p{i + 3:03d}"]
        else:
            m = plain_layer(nn, layer, dropout)
            ps = []
        for p in ps:
            assert p.shape == arrays[f"p{i:03d}"].shape, (layer, p.shape, arrays[f"p{i:03d}"].shape)
            p.data[...] = arrays[f"p{i:03d}"]
            i += 1
        i += 2 if kind.startswith("bn") else 0
        mods.append(m)
        params += ps
    return nn.Sequential(*mods), params


def build_torch(size: int, arrays: Arrays, dropout: bool) -> tuple[Any, list[Any]]:
    """The same network in torch.nn (separable = depthwise groups=C conv then 1x1 conv)."""
    import torch
    from torch import nn

    mods: list[Any] = []
    params: list[Any] = []
    i = 0
    ps: list[Any]
    for layer in layers(size):
        kind = layer[0]
        if kind == "conv":
            m: Any = nn.Conv2d(layer[1], layer[2], 3, padding=1)
            ps = [m.weight, m.bias]
        elif kind == "sep":
            m = nn.Sequential(nn.Conv2d(layer[1], layer[1], 3, padding=1, groups=layer[1], bias=False),
                              nn.Conv2d(layer[1], layer[2], 1))
            ps = [m[0].weight, m[1].weight, m[1].bias]
        elif kind == "linear":
            m = nn.Linear(layer[1], layer[2])
            ps = [m.weight, m.bias]
        elif kind in ("bn2d", "bn1d"):
            m = (nn.BatchNorm2d if kind == "bn2d" else nn.BatchNorm1d)(layer[1])
            ps = [m.weight, m.bias]
            m.running_mean.copy_(torch.from_numpy(arrays[f"p{i + 2:03d}"]))
            m.running_var.copy_(torch.from_numpy(arrays[f"p{i + 3:03d}"]))
        else:
            m = plain_layer(nn, layer, dropout)
            ps = []
        with torch.no_grad():
            for p in ps:
                p.copy_(torch.from_numpy(arrays[f"p{i:03d}"]))
                i += 1
        i += 2 if kind.startswith("bn") else 0
        mods.append(m)
        params += ps
    return nn.Sequential(*mods), params


def train_case(fw: str, size: int, arrays: Arrays) -> Case:
    if fw == "minicnn":
        import minicnn
        from minicnn import nn, optim

        build, tensor, to_np = build_minicnn, minicnn.tensor, (lambda t: t.data)
        loss_fn: Any = nn.BCEWithLogitsLoss()
        adam: Any = optim.Adam
    else:
        import torch

        build, tensor, to_np = build_torch, torch.from_numpy, (lambda t: t.detach().numpy())
        loss_fn, adam = torch.nn.BCEWithLogitsLoss(), torch.optim.Adam
    x, y = tensor(arrays["x"]), tensor(arrays["y"])
    model, _ = build(size, arrays, True)
    opt = adam(model.parameters(), lr=1e-3)

    def run() -> Any:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    def check(double: bool = False) -> Arrays:
        cmodel, params = build(size, arrays, False)  # a separate copy: no dropout, same weights
        cx, cy = x, y
        if double:  # torch only: the float64 truth that both float32 results are measured against
            cmodel, cx, cy = cmodel.double(), x.double(), y.double()
        logits = cmodel(cx)
        loss = loss_fn(logits, cy)
        loss.backward()
        return {"logits": to_np(logits), "loss": to_np(loss),
                **{f"grad_p{i:03d}": to_np(p.grad) for i, p in enumerate(params)}}

    return Case(run, check, (lambda: check(double=True)) if fw == "torch" else None)


def infer_case(fw: str, size: int, arrays: Arrays) -> Case:
    if fw == "minicnn":
        import minicnn

        model, _ = build_minicnn(size, arrays, True)
        x, no_grad, to_np = minicnn.tensor(arrays["x"]), minicnn.no_grad, (lambda t: t.data)
    else:
        import torch

        model, _ = build_torch(size, arrays, True)
        x, no_grad, to_np = torch.from_numpy(arrays["x"]), torch.no_grad, (lambda t: t.numpy())
    model.eval()

    def run() -> Any:
        with no_grad():
            return model(x)

    return Case(run, lambda: {"logits": to_np(run())})


def workloads(options: dict) -> list[Workload]:
    """Training steps at each of options['sizes'] (batch options['batch']), then inference."""
    out = []
    for size in options["sizes"]:
        fwd, first_dx = forward_flops(size, options["batch"])
        out.append(Workload(f"train step 1x{size}x{size} batch {options['batch']}", make_inputs(size, options["batch"]),
                            {fw: functools.partial(train_case, fw, size) for fw in FRAMEWORKS},
                            tolerance=1e-3, flops=3 * fwd - first_dx, target=1.5,
                            note="FLOPs: conv and linear products only, forward and gradients"))
    size, batch = options["infer_size"], options["infer_batch"]
    if size:
        out.append(Workload(f"inference 1x{size}x{size} batch {batch}", make_inputs(size, batch),
                            {fw: functools.partial(infer_case, fw, size) for fw in FRAMEWORKS},
                            tolerance=1e-4, flops=forward_flops(size, batch)[0], target=1.2,
                            note="FLOPs: conv and linear products, forward only"))
    return out


def profile(args: argparse.Namespace, options: dict) -> None:
    """cProfile three minicnn training steps per size, in this process (no comparison)."""
    import cProfile
    import pstats
    import sys

    import numpy as np

    sys.path.insert(0, args.tree)
    for wl in workloads(dict(options, infer_size=0)):
        case = wl.setups["minicnn"](wl.make_inputs(np.random.default_rng(0)))
        case.run()

        def three_steps(c: Case = case) -> None:
            for _ in range(3):
                c.run()

        prof = cProfile.Profile()
        prof.runcall(three_steps)
        print(f"\n--- cProfile, 3 minicnn steps: {wl.name} ---")
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_harness_args(p, FRAMEWORKS)
    p.set_defaults(repeats=7)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 180])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--infer-size", type=int, default=64, help="0 skips the inference workload")
    p.add_argument("--infer-batch", type=int, default=64)
    p.add_argument("--profile", action="store_true", help="cProfile minicnn's step in this process instead")
    args = parse_args(p)
    options = {"sizes": args.sizes, "batch": args.batch, "infer_size": args.infer_size, "infer_batch": args.infer_batch}
    if args.profile:
        profile(args, options)
        return
    run_benchmark(__file__, workloads(options), options, args, "Pneumonia CNN: training step and inference, float32")


if __name__ == "__main__":
    main()
