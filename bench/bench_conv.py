"""minicnn's convolution-family ops against PyTorch's CPU build, each in its own process.

    /work/venv/bin/python bench/bench_conv.py --tree /work/main \\
        --python torch=/work/venv-bench/bin/python [--repeats 9] [--threads 2] [--only conv3x3] \\
        [--json out.json] [--compare before.json] [--label after]

Forward + backward, float32, same seeded inputs and output gradient for both frameworks;
outputs and input gradients are checked against PyTorch before timing (see harness.py).
The script runs in minicnn's interpreter but imports neither minicnn nor torch itself.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from harness import Arrays, Case, Workload, add_harness_args, parse_args, run_benchmark

FRAMEWORKS = ("minicnn", "torch")  # under test first, reference last


def fwd_bwd_case(framework: str, arrays: Arrays, names: list[str], op: Callable[..., Any]) -> Case:
    """Time y = op(*inputs) then y.backward(gy); check y and the gradient of every input."""
    if framework == "minicnn":
        import minicnn

        ts = [minicnn.tensor(arrays[n], requires_grad=True) for n in names]
        gy: Any = minicnn.tensor(arrays["gy"])

        def to_np(t: Any) -> Any:
            return t.data
    else:
        import torch

        ts = [torch.from_numpy(arrays[n].copy()).requires_grad_() for n in names]
        gy = torch.from_numpy(arrays["gy"])

        def to_np(t: Any) -> Any:
            return t.detach().numpy()

    def run() -> Any:
        for t in ts:
            t.grad = None
        y = op(*ts)
        y.backward(gy)
        return y

    def check() -> Arrays:
        y = run()
        return {"y": to_np(y), **{f"grad_{n}": to_np(t.grad) for n, t in zip(names, ts)}}

    return Case(run, check)


def functional(framework: str) -> Any:
    """The framework's functional namespace (minicnn.nn.functional or torch.nn.functional)."""
    if framework == "minicnn":
        import minicnn.nn.functional

        return minicnn.nn.functional
    import torch.nn.functional

    return torch.nn.functional


def conv3x3(n: int, c: int, o: int, hw: int) -> Workload:
    def make(rng: Any) -> Arrays:
        return {"x": rng.standard_normal((n, c, hw, hw), dtype="float32"),
                    "w": (0.1 * rng.standard_normal((o, c, 3, 3))).astype("float32"),
                    "b": rng.standard_normal(o, dtype="float32"),
                    "gy": rng.standard_normal((n, o, hw, hw), dtype="float32")}

    def setup(fw: str) -> Callable[[Arrays], Case]:
        def build(a: Arrays) -> Case:
            F = functional(fw)
            return fwd_bwd_case(fw, a, ["x", "w", "b"], lambda x, w, b: F.conv2d(x, w, b, padding=1))
        return build

    return Workload(f"conv3x3 N{n} C{c}->{o} {hw}x{hw}", make, {fw: setup(fw) for fw in FRAMEWORKS},
                    flops=3 * 2 * n * o * c * 9 * hw * hw, target=1.3,
                    note="FLOPs: forward, input gradient and weight gradient products")


def separable(n: int, c: int, o: int, hw: int) -> Workload:
    def make(rng: Any) -> Arrays:
        return {"x": rng.standard_normal((n, c, hw, hw), dtype="float32"),
                    "dw": (0.3 * rng.standard_normal((c, 1, 3, 3))).astype("float32"),
                    "pw": (0.1 * rng.standard_normal((o, c, 1, 1))).astype("float32"),
                    "b": rng.standard_normal(o, dtype="float32"),
                    "gy": rng.standard_normal((n, o, hw, hw), dtype="float32")}

    def setup(fw: str) -> Callable[[Arrays], Case]:
        def build(a: Arrays) -> Case:
            F = functional(fw)
            if fw == "minicnn":
                def op(x: Any, dw: Any, pw: Any, b: Any) -> Any:
                    return F.separable_conv2d(x, dw, pw, b, padding=1)
            else:  # PyTorch has no separable op: depthwise (groups=C) then 1x1
                def op(x: Any, dw: Any, pw: Any, b: Any) -> Any:
                    return F.conv2d(F.conv2d(x, dw, None, padding=1, groups=c), pw, b)
            return fwd_bwd_case(fw, a, ["x", "dw", "pw", "b"], op)
        return build

    return Workload(f"separable3x3 N{n} C{c}->{o} {hw}x{hw}", make, {fw: setup(fw) for fw in FRAMEWORKS},
                    flops=3 * 2 * n * c * hw * hw * (9 + o), target=1.5,
                    note="FLOPs: depthwise + pointwise, forward and both gradients")


def maxpool(shape: tuple[int, int, int, int]) -> Workload:
    n, c, h, w = shape

    def make(rng: Any) -> Arrays:
        return {"x": rng.standard_normal(shape, dtype="float32"),
                    "gy": rng.standard_normal((n, c, h // 2, w // 2), dtype="float32")}

    def setup(fw: str) -> Callable[[Arrays], Case]:
        def build(a: Arrays) -> Case:
            F = functional(fw)
            return fwd_bwd_case(fw, a, ["x"], lambda x: F.max_pool2d(x, 2))
        return build

    size = n * c * h * w
    return Workload(f"maxpool2x2 {shape}", make, {fw: setup(fw) for fw in FRAMEWORKS},
                    bytes=4 * (size + size / 4 + size / 4 + size), target=1.0,
                    note="bytes: read x, write y, read gy, write gx")


def batchnorm(shape: tuple[int, int, int, int]) -> Workload:
    c = shape[1]

    def make(rng: Any) -> Arrays:
        return {"x": rng.standard_normal(shape, dtype="float32"),
                    "w": (1 + 0.1 * rng.standard_normal(c)).astype("float32"),
                    "b": rng.standard_normal(c, dtype="float32"),
                    "gy": rng.standard_normal(shape, dtype="float32")}

    def setup(fw: str) -> Callable[[Arrays], Case]:
        def build(a: Arrays) -> Case:
            F = functional(fw)
            if fw == "minicnn":
                import numpy as np

                def stats() -> tuple[Any, Any]:
                    return np.zeros(c, np.float32), np.ones(c, np.float32)
            else:
                import torch

                def stats() -> tuple[Any, Any]:
                    return torch.zeros(c), torch.ones(c)
            # fresh running statistics per call: training mode updates them in place
            return fwd_bwd_case(fw, a, ["x", "w", "b"], lambda x, w, b: F.batch_norm(x, *stats(), w, b, True))
        return build

    size = shape[0] * c * shape[2] * shape[3]
    return Workload(f"batchnorm2d train {shape}", make, {fw: setup(fw) for fw in FRAMEWORKS},
                    bytes=4 * 5 * size, target=1.0,
                    note="bytes: read x, write y; read gy and x, write gx")


def workloads(options: dict) -> list[Workload]:
    """The benchmarked ops; `options` is unused (kept for the harness's interface)."""
    return [conv3x3(16, 32, 64, 64), conv3x3(16, 64, 128, 32), conv3x3(64, 1, 16, 28),
            separable(16, 64, 128, 45), maxpool((16, 64, 90, 90)), batchnorm((16, 64, 90, 90))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_harness_args(p, FRAMEWORKS)
    args = parse_args(p)
    run_benchmark(__file__, workloads({}), {}, args, "Convolution-family ops, forward + backward, float32")


if __name__ == "__main__":
    main()
