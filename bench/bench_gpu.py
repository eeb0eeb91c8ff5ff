"""GPU benchmark of minicnn's kernels (CUDA-event timing after warm-up) against the machine's copy
bandwidth, im2col + cuBLAS and, where torch is importable, PyTorch + cuDNN; then the full float32
training step of bench/bench_step.py's network at 180x180, batch 32 (minicnn on CuPy vs PyTorch +
cuDNN). Writes one JSON file.

    python bench/bench_gpu.py --out results.json [--quick]

Needs CuPy and a GPU. torch is optional and used only here, for comparison (never by minicnn).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import minicnn.cuda as mc
from minicnn.cuda import launches as L

PEAK_HBM = 4.8e12   # H200 data-sheet bandwidth, for the roofline column only


def timed(cp: Any, fn: Callable[[], Any], warmup: int = 3, reps: int = 20) -> float:
    """Median seconds per call of fn, CUDA events around each call, after warm-up."""
    for _ in range(warmup):
        fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b) / 1e3)
    return float(np.median(times))


def train_step(cp: Any, torch: Any, batch: int, size: int, reps: int = 10) -> dict:
    """Median ms of one float32 training step on the GPU, minicnn vs PyTorch + cuDNN (same network and
    weights as bench/bench_step.py), CUDA events around each step after warm-up."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_step  # the network definition shared with the CPU benchmark

    import minicnn
    from minicnn import nn
    from minicnn.autograd import Tensor
    from minicnn.optim import Adam

    minicnn.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, size, size)).astype(np.float32)
    y = (rng.random((batch, 1)) < 0.5).astype(np.float32)
    model = bench_step.build(nn, size, lambda i, o: nn.SeparableConv2d(i, o, 3, padding="same"))
    host_weights = [p.data.copy() for p in model.parameters()]
    model.to("cuda")
    opt, loss_fn = Adam(model.parameters(), lr=1e-3), nn.BCEWithLogitsLoss()
    xm, ym = Tensor(x).to("cuda"), Tensor(y).to("cuda")

    def step_m() -> None:
        opt.zero_grad()
        loss_fn(model(xm), ym).backward()
        opt.step()

    out: dict[str, Any] = {"batch": batch, "size": size, "dtype": "float32",
                           "minicnn_ms": timed(cp, step_m, warmup=3, reps=reps) * 1e3}
    print(f"train step {batch}x1x{size}x{size}: minicnn {out['minicnn_ms']:.2f} ms", flush=True)
    if torch is not None:
        torch.backends.cudnn.benchmark = True
        bench_step.torch = torch
        tmodel = bench_step.build(torch.nn, size, bench_step.torch_separable).cuda()
        with torch.no_grad():
            for w, q in zip(host_weights, tmodel.parameters()):
                q.copy_(torch.from_numpy(w))
        topt, tloss = torch.optim.Adam(tmodel.parameters(), lr=1e-3), torch.nn.BCEWithLogitsLoss()
        xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

        def step_t() -> None:
            topt.zero_grad()
            tloss(tmodel(xt), yt).backward()
            topt.step()

        def timed_torch() -> float:
            for _ in range(3):
                step_t()
            torch.cuda.synchronize()
            ts = []
            for _ in range(reps):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                step_t()
                b.record()
                b.synchronize()
                ts.append(a.elapsed_time(b))
            return float(np.median(ts))
        out["torch_cudnn_ms"] = timed_torch()
        out["ratio"] = out["minicnn_ms"] / out["torch_cudnn_ms"]
        out["target_ratio"] = 1.5
        print(f"train step: torch+cuDNN {out['torch_cudnn_ms']:.2f} ms, ratio {out['ratio']:.2f} (target <= 1.5)",
              flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="smaller shapes (smoke run)")
    args = ap.parse_args()
    cp = mc.require()
    try:
        import torch  # type: ignore[import-not-found]  # comparison only
        has_torch = torch.cuda.is_available()
    except Exception:  # noqa: BLE001 -- any failure just means no comparison
        torch, has_torch = None, False
    dev = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(dev.id)
    res: dict[str, Any] = {"device": props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
                           "cupy": cp.__version__, "torch": getattr(torch, "__version__", None),
                           "python": platform.python_version(), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "kernels": {}}
    f32 = cp.float32
    n, c, hw = (8, 32, 90) if args.quick else (32, 32, 180)

    # copy bandwidth: the ceiling for memory-bound kernels
    src = cp.ones(256 * 2**20 // 4, f32)
    dst = cp.empty_like(src)
    t = timed(cp, lambda: cp.copyto(dst, src))
    res["copy_bandwidth_GBps"] = 2 * src.nbytes / t / 1e9

    def record(name: str, seconds: float, nbytes: float, flops: float = 0.0, **extra: Any) -> None:
        gbps = nbytes / seconds / 1e9
        res["kernels"][name] = {"ms": seconds * 1e3, "bytes": nbytes, "flops": flops,
                                "GBps": gbps, "fraction_of_copy": gbps / res["copy_bandwidth_GBps"],
                                "roofline_ms_h200": nbytes / PEAK_HBM * 1e3, **extra}
        print(f"{name:28s} {seconds * 1e3:8.3f} ms  {nbytes / seconds / 1e9:8.1f} GB/s", flush=True)

    x = cp.random.standard_normal((n, c, hw, hw), dtype=f32)
    y = cp.empty_like(x)
    P = x.size * 4
    b = cp.zeros(c, f32)
    m = mc.module("bias_act")
    record("bias_act_relu", timed(cp, lambda: L.bias_act(m, x, b, y, "relu")), 2 * P)
    mean, var = cp.empty(c, cp.float64), cp.empty(c, cp.float64)    # batch-norm statistics are float64
    ms = mc.module("batchnorm_stats")
    record("bn_stats", timed(cp, lambda: L.bn_stats(ms, x, mean, var)), P)
    ma = mc.module("batchnorm_apply")
    g, bb = cp.ones(c, f32), cp.zeros(c, f32)
    record("bn_forward", timed(cp, lambda: L.bn_forward(ma, x, mean, var, g, bb, y, 1e-5)), 2 * P)
    dx, dg, db = cp.empty_like(x), cp.empty(c, f32), cp.empty(c, f32)
    record("bn_backward", timed(cp, lambda: L.bn_backward(ma, x, y, mean, var, g, dx, dg, db, 1e-5)), 5 * P)
    mp = mc.module("maxpool")
    yo = cp.empty((n, c, hw // 2, hw // 2), f32)
    idx = cp.empty(yo.shape, cp.int64)
    record("maxpool_forward_2x2", timed(cp, lambda: L.maxpool_forward(mp, x, yo, idx, (2, 2), (2, 2), (0, 0))),
           P + yo.size * 12)
    record("maxpool_backward_2x2", timed(cp, lambda: L.maxpool_backward(mp, yo, idx, dx, (2, 2), (2, 2), (0, 0))),
           P + yo.size * 12)
    pa = cp.random.standard_normal(4_000_000, dtype=f32)
    ga, m1, v1 = cp.random.standard_normal(pa.size, dtype=f32), cp.zeros_like(pa), cp.zeros_like(pa)
    madam = mc.module("adam")
    record("adam_4M", timed(cp, lambda: L.adam(madam, pa, ga, m1, v1, 1, 1e-3, (0.9, 0.999), 1e-8, 0.0, False)),
           7 * pa.nbytes)

    # depthwise 3x3 forward + backward vs cuDNN
    cd = 64
    xd = cp.random.standard_normal((n, cd, hw // 2, hw // 2), dtype=f32)
    wd = cp.random.standard_normal((cd, 1, 3, 3), dtype=f32)
    yd, dxd, dwd = cp.empty_like(xd), cp.empty_like(xd), cp.empty_like(wd)
    mdw = mc.module("depthwise_conv")

    def dw_step() -> None:
        L.depthwise_forward(mdw, xd, wd, yd, (1, 1), (1, 1), (1, 1))
        L.depthwise_input_grad(mdw, yd, wd, dxd, (1, 1), (1, 1), (1, 1))
        L.depthwise_weight_grad(mdw, xd, yd, dwd, (1, 1), (1, 1), (1, 1))

    extra: dict[str, Any] = {}
    if has_torch:
        tx = torch.randn(xd.shape, device="cuda", requires_grad=True)
        tw = torch.randn(wd.shape, device="cuda", requires_grad=True)

        def torch_dw() -> None:
            out = torch.nn.functional.conv2d(tx, tw, padding=1, groups=cd)
            out.backward(out)
        extra["cudnn_ms"] = timed(cp, torch_dw) * 1e3
    record("depthwise3x3_fwd_bwd", timed(cp, dw_step), 7 * xd.nbytes, 6 * xd.size * 9, **extra)

    # direct 3x3 conv vs im2col + cuBLAS (and cuDNN)
    def conv_case(ci: int, co: int, h: int) -> None:
        xc = cp.random.standard_normal((n, ci, h, h), dtype=f32)
        wc = cp.random.standard_normal((co, ci, 3, 3), dtype=f32)
        yc = cp.empty((n, co, h, h), f32)
        cols = cp.empty((n, ci * 9, h * h), f32)
        m3, mi = mc.module("conv3x3"), mc.module("im2col")

        def gemm() -> None:
            L.im2col(mi, xc, cols, (3, 3), (1, 1), (1, 1), (1, 1), (h, h))
            cp.matmul(wc.reshape(co, ci * 9), cols, out=yc.reshape(n, co, h * h))

        extra = {"im2col_cublas_ms": timed(cp, gemm) * 1e3}
        if has_torch:
            tx = torch.randn(xc.shape, device="cuda")
            tw = torch.randn(wc.shape, device="cuda")
            extra["cudnn_ms"] = timed(cp, lambda: torch.nn.functional.conv2d(tx, tw, padding=1)) * 1e3
        flops = 2.0 * n * co * h * h * ci * 9
        record(f"conv3x3_direct_C{ci}", timed(cp, lambda: L.conv3x3(m3, xc, wc, yc, (1, 1), (1, 1))),
               xc.nbytes + wc.nbytes + yc.nbytes, flops, **extra)

    for width in (32, 64, 128):
        conv_case(width, width, hw // 2)

    # the full training step (forward, BCE loss, backward, Adam) of bench/bench_step.py's network
    try:
        res["train_step"] = train_step(cp, torch if has_torch else None, batch=8 if args.quick else 32,
                                       size=64 if args.quick else 180)
    except Exception as e:  # noqa: BLE001 -- keep the kernel numbers even if the step fails
        res["train_step"] = {"error": f"{type(e).__name__}: {e}"}
        print(f"train step failed: {type(e).__name__}: {e}", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2))
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
