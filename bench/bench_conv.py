"""Time minicnn's convolution-family ops against PyTorch's CPU build on the same inputs.

    .venv-bench/bin/python bench/bench_conv.py [--repeats 9] [--threads 2] [--only conv3x3]

Forward + backward (unless noted), float32, medians over interleaved repeats; PyTorch runs
with the same thread count as NumPy's BLAS. torch is imported for comparison only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--only", default="", help="run workloads whose name contains this")
    return p.parse_args()


ARGS = parse() if __name__ == "__main__" else None
if ARGS is not None:  # BLAS reads its thread count when NumPy is first imported
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from minicnn.autograd import Tensor  # noqa: E402
from minicnn.nn.functional import batch_norm, conv2d, max_pool2d, separable_conv2d  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the comparison is optional
    torch = None


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def sgemm_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Float32 matmul throughput of NumPy's BLAS: the machine's practical peak."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    return 2 * n ** 3 / (median_ms(lambda: a @ b, repeats) / 1e3) / 1e9


def workloads(rng: np.random.Generator) -> list[dict]:
    """name, numpy inputs, minicnn fn, torch fn (same argument order), target ratio."""
    def arr(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    out = []
    for n, c, o, hw in [(16, 32, 64, 64), (16, 64, 128, 32), (64, 1, 16, 28)]:
        out.append(dict(name=f"conv3x3 N{n} C{c}->{o} {hw}x{hw}", target=1.5,
                        inputs=[arr(n, c, hw, hw), arr(o, c, 3, 3, scale=0.1), arr(o)],
                        mini=lambda x, w, b: conv2d(x, w, b, padding=1),
                        torch=lambda x, w, b: TF.conv2d(x, w, b, padding=1)))
    out.append(dict(name="separable3x3 N16 C64->128 45x45", target=1.0,
                    inputs=[arr(16, 64, 45, 45), arr(64, 1, 3, 3, scale=0.3), arr(128, 64, 1, 1, scale=0.1), arr(128)],
                    mini=lambda x, dw, pw, b: separable_conv2d(x, dw, pw, b, padding=1),
                    torch=lambda x, dw, pw, b: TF.conv2d(TF.conv2d(x, dw, None, padding=1, groups=64), pw, b)))
    out.append(dict(name="maxpool2x2 (16,64,90,90)", target=1.0, inputs=[arr(16, 64, 90, 90)],
                    mini=lambda x: max_pool2d(x, 2), torch=lambda x: TF.max_pool2d(x, 2)))
    out.append(dict(name="batchnorm2d train (16,64,90,90)", target=1.0,
                    inputs=[arr(16, 64, 90, 90), 1 + arr(64, scale=0.1), arr(64)],
                    mini=lambda x, w, b: batch_norm(x, np.zeros(64, np.float32), np.ones(64, np.float32), w, b, True),
                    torch=lambda x, w, b: TF.batch_norm(x, torch.zeros(64), torch.ones(64), w, b, True)))
    return out


def step(fn, tensors, gy, backward_fn):
    for t in tensors:
        t.grad = None
    y = fn(*tensors)
    backward_fn(y, gy)
    return y


def run_one(w: dict, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    mini_t = [Tensor(a, requires_grad=True) for a in w["inputs"]]
    y = w["mini"](*mini_t)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    mini = lambda: step(w["mini"], mini_t, gy, lambda y, g: y.backward(g))  # noqa: E731
    res = dict(name=w["name"], target=w["target"], mini=None, torch=None, err=None)
    if torch is not None:
        torch_t = [torch.from_numpy(a.copy()).requires_grad_() for a in w["inputs"]]
        gyt = torch.from_numpy(gy)
        tfn = lambda: step(w["torch"], torch_t, gyt, lambda y, g: y.backward(g))  # noqa: E731
        ym, yt = mini().data, tfn().detach().numpy()
        scale = max(1.0, float(np.abs(yt).max()))
        res["err"] = max([float(np.abs(ym - yt).max()) / scale] +
                         [float(np.abs(m.grad.data - t.grad.numpy()).max()) / max(1.0, float(t.grad.abs().max()))
                          for m, t in zip(mini_t, torch_t)])
        tfn(), mini()  # warm up both
        tm, tt = [], []
        for _ in range(repeats):  # interleaved, so drift in machine speed hits both alike
            tm.append(median_ms(mini, 1))
            tt.append(median_ms(tfn, 1))
        res["mini"], res["torch"] = float(np.median(tm)), float(np.median(tt))
    else:
        mini()
        res["mini"] = median_ms(mini, repeats)
    return res


def main() -> None:
    args = ARGS
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"threads={args.threads}  numpy {np.__version__}  torch {torch.__version__ if torch else '(not installed)'}"
          f"  python {sys.version.split()[0]}")
    print(f"BLAS sgemm 4096^3 float32: {sgemm_gflops():.0f} GFLOP/s")
    rows = [run_one(w, args.repeats) for w in workloads(np.random.default_rng(0)) if args.only in w["name"]]
    print("\n| workload (fwd+bwd, float32) | minicnn ms | torch ms | ratio | target | met | max rel diff |")
    print("|---|---:|---:|---:|---:|:-:|---:|")
    for r in rows:
        if r["torch"] is None:
            print(f"| {r['name']} | {r['mini']:.1f} | - | - | <= {r['target']} | - | - |")
            continue
        ratio = r["mini"] / r["torch"]
        print(f"| {r['name']} | {r['mini']:.1f} | {r['torch']:.1f} | {ratio:.2f} | <= {r['target']} | "
              f"{'yes' if ratio <= r['target'] else 'NO'} | {r['err']:.1e} |")


if __name__ == "__main__":
    main()
