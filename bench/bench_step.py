"""Time one full training step (forward, BCE loss, backward, Adam) of the pneumonia CNN,
minicnn vs PyTorch's CPU build, same architecture, weights, batch and thread count.

    .venv-bench/bin/python bench/bench_step.py [--sizes 64 180] [--batch 16] [--repeats 7] [--profile]

Network: conv3x3(16) relu, conv3x3(16) relu, maxpool2; for f in 32, 64, 128, 256:
separable3x3(f) relu, separable3x3(f) relu, batchnorm, maxpool2 (dropout 0.2 after the 128
and 256 blocks); flatten; dense blocks (512, p=0.7), (128, 0.5), (64, 0.3) of
linear-relu-batchnorm1d-dropout; linear(1). torch is imported for comparison only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 180])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--profile", action="store_true", help="cProfile minicnn's step, top 25 by own time")
    return p.parse_args()


ARGS = parse() if __name__ == "__main__" else None
if ARGS is not None:  # BLAS reads its thread count when NumPy is first imported
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import minicnn  # noqa: E402
from minicnn import nn  # noqa: E402
from minicnn.autograd import Tensor  # noqa: E402
from minicnn.optim import Adam  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def build(lib, size: int, separable):
    """The benchmark network from library `lib` (minicnn.nn or torch.nn)."""
    layers = [lib.Conv2d(1, 16, 3, padding=1), lib.ReLU(), lib.Conv2d(16, 16, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2)]
    side, cin = size // 2, 16
    for f in (32, 64, 128, 256):
        layers += [separable(cin, f), lib.ReLU(), separable(f, f), lib.ReLU(), lib.BatchNorm2d(f), lib.MaxPool2d(2)]
        if f >= 128:
            layers.append(lib.Dropout(0.2))
        side, cin = side // 2, f
    layers.append(lib.Flatten())
    fin = 256 * side * side
    for fout, p in ((512, 0.7), (128, 0.5), (64, 0.3)):
        layers += [lib.Linear(fin, fout), lib.ReLU(), lib.BatchNorm1d(fout), lib.Dropout(p)]
        fin = fout
    layers.append(lib.Linear(fin, 1))
    return lib.Sequential(*layers)


def torch_separable(cin: int, cout: int):
    return torch.nn.Sequential(torch.nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                               torch.nn.Conv2d(cin, cout, 1))


def minicnn_step(model, opt, loss_fn, x, y):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


def torch_step(model, opt, loss_fn, x, y):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


def run(size: int, args: argparse.Namespace) -> dict:
    minicnn.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 1, size, size)).astype(np.float32)
    y = (rng.random((args.batch, 1)) < 0.5).astype(np.float32)
    model = build(nn, size, lambda i, o: nn.SeparableConv2d(i, o, 3, padding="same"))
    opt, loss_fn = Adam(model.parameters(), lr=1e-3), nn.BCEWithLogitsLoss()
    xm, ym = Tensor(x), Tensor(y)
    step_m = lambda: minicnn_step(model, opt, loss_fn, xm, ym)  # noqa: E731
    res = dict(size=size, mini=None, torch=None, loss_diff=None)
    if torch is not None:
        tmodel = build(torch.nn, size, torch_separable)
        with torch.no_grad():  # same weights, so the eval-mode losses must agree
            for (n, p), q in zip(model.named_parameters(), tmodel.parameters()):
                assert tuple(p.shape) == tuple(q.shape), (n, p.shape, q.shape)
                q.copy_(torch.from_numpy(p.data))
        model.eval(), tmodel.eval()
        lm = float(loss_fn(model(xm), ym).data)
        with torch.no_grad():
            lt = float(torch.nn.BCEWithLogitsLoss()(tmodel(torch.from_numpy(x)), torch.from_numpy(y)))
        res["loss_diff"] = abs(lm - lt)
        model.train(), tmodel.train()
        topt, tloss = torch.optim.Adam(tmodel.parameters(), lr=1e-3), torch.nn.BCEWithLogitsLoss()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        step_t = lambda: torch_step(tmodel, topt, tloss, xt, yt)  # noqa: E731
        step_m(), step_t()  # warm-up
        tm, tt = [], []
        for _ in range(args.repeats):  # interleaved, so machine-speed drift hits both alike
            t0 = time.perf_counter(); step_m(); tm.append(time.perf_counter() - t0)  # noqa: E702
            t0 = time.perf_counter(); step_t(); tt.append(time.perf_counter() - t0)  # noqa: E702
        res["mini"], res["torch"] = 1e3 * float(np.median(tm)), 1e3 * float(np.median(tt))
    else:
        step_m()
        tm = []
        for _ in range(args.repeats):
            t0 = time.perf_counter(); step_m(); tm.append(time.perf_counter() - t0)  # noqa: E702
        res["mini"] = 1e3 * float(np.median(tm))
    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(lambda: [step_m() for _ in range(3)])
        print(f"\n--- cProfile, 3 minicnn steps at {size}x{size} ---")
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return res


def main() -> None:
    args = ARGS
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"threads={args.threads}  batch={args.batch}  numpy {np.__version__}  "
          f"torch {torch.__version__ if torch else '(not installed)'}  python {sys.version.split()[0]}")
    rows = [run(s, args) for s in args.sizes]
    print("\n| training step (fwd+loss+bwd+Adam), batch %d | minicnn ms | torch ms | ratio | target | met | eval-loss diff |" % args.batch)
    print("|---|---:|---:|---:|---:|:-:|---:|")
    for r in rows:
        name = f"1x{r['size']}x{r['size']}"
        if r["torch"] is None:
            print(f"| {name} | {r['mini']:.0f} | - | - | <= 1.0 | - | - |")
            continue
        ratio = r["mini"] / r["torch"]
        print(f"| {name} | {r['mini']:.0f} | {r['torch']:.0f} | {ratio:.2f} | <= 1.0 | {'yes' if ratio <= 1.0 else 'NO'} "
              f"| {r['loss_diff']:.1e} |")


if __name__ == "__main__":
    main()
