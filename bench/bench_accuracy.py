"""Float32 accuracy of the pneumonia CNN's gradients, minicnn vs PyTorch (issue 10).

For each framework, one training-mode step (forward, BCE loss, backward) runs twice from the
same float64 weights and inputs: once in float64 (the reference) and once in float32. The
figure per parameter is the relative error ||g32 - g64|| / ||g64||; the float32 and float64
runs of one framework see bit-identical inputs and weights (float32-representable values).

    python bench/bench_accuracy.py [--size 180] [--batch 16] [--seeds 0 1 2 3] [--torch-python PATH]
                                   [--minicnn-root OLD_CHECKOUT]

A near-tie (a ReLU input within 1e-5 of the layer's rms of zero, or a 2x2 max-pool window
whose top two values are that close) can flip between float32 and float64 and then moves
every earlier layer's gradient by ~1/sqrt(layer size) (~1e-3): a coin toss per seed in any
framework. The table counts them per seed (in minicnn's float64 run) so such seeds can be
told apart from a real loss of accuracy.

Each framework runs in its own process: this script writes the weights and batch to a
temporary .npz, computes minicnn's errors in a subprocess with /work/venv's python (or this
interpreter), and PyTorch's with --torch-python (default /work/venv-bench/bin/python), which
imports torch; minicnn never does. Dropout is switched off (eval) in both, so both runs of a
framework see the same network; batch norm stays in training mode (batch statistics).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=180)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--minicnn-root", default=ROOT, help="tree whose minicnn to measure (e.g. an older checkout)")
    p.add_argument("--torch-python", default="/work/venv-bench/bin/python")
    p.add_argument("--minicnn-python", default=sys.executable)
    p.add_argument("--worker", choices=["minicnn", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--npz", help=argparse.SUPPRESS)
    return p.parse_args()


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b), 1e-300))


# ---- the batch and weights (minicnn builds them, float32-representable) --------------------
def make_inputs(size: int, batch: int, seed: int, path: str) -> None:
    sys.path.insert(0, ROOT)
    from minicnn.models import pneumonia_cnn
    from minicnn.random import manual_seed

    manual_seed(seed)
    model = pneumonia_cnn(size)
    rng = np.random.default_rng(seed)
    # x-ray-like inputs: non-negative, smooth-ish, mean ~0.5
    x = rng.random((batch, 1, size, size)).astype(np.float32)
    y = (rng.random((batch, 1)) < 0.5).astype(np.float32)
    state = {k: np.asarray(v, dtype=np.float32) for k, v in model.state_dict().items() if "num_batches" not in k}
    np.savez(path, x=x, y=y, **{"w:" + k: v for k, v in state.items()})


def load(path: str) -> tuple[np.ndarray, np.ndarray, dict]:
    with np.load(path, allow_pickle=False) as f:
        return f["x"], f["y"], {k[2:]: f[k] for k in f.files if k.startswith("w:")}


NEAR = 1e-5  # a ReLU input or max-pool runner-up this close (relative to the layer's rms) is a near-tie


def near_ties(model: Any, nn: Any) -> tuple[list, Any]:
    """Forward hooks counting near-ties in a float64 run: ReLU inputs with |x| < NEAR * rms, and
    2x2 max-pool windows whose two largest values differ by less than NEAR * rms. Float32
    rounding (~1e-6 relative) can flip those discretely, which moves a whole layer's gradient
    by ~1/sqrt(size): a coin toss per seed, in every framework, not a loss of accuracy."""
    count = [0]

    def relu(mod: Any, args: tuple, out: Any) -> None:
        a = args[0].data
        count[0] += int((np.abs(a) < NEAR * np.sqrt((a * a).mean())).sum())

    def pool(mod: Any, args: tuple, out: Any) -> None:
        a = args[0].data
        n, c, h, w = a.shape
        win = a[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
        top = np.sort(win.reshape(n, c, h // 2, w // 2, 4), axis=-1)
        tol = NEAR * np.sqrt((a * a).mean())
        # windows of post-ReLU zeros tie harmlessly: the gradient dies at the ReLU either way
        count[0] += int(((top[..., -1] - top[..., -2] < tol) & (top[..., -1] > tol)).sum())
    handles = [m.register_forward_hook(relu if isinstance(m, nn.ReLU) else pool) for m in model.modules()
               if isinstance(m, (nn.ReLU, nn.MaxPool2d))]
    return handles, count


# ---- workers ----------------------------------------------------------------------------
def minicnn_errors(path: str) -> dict:
    from minicnn import Tensor, nn
    from minicnn.models import pneumonia_cnn

    x, y, state = load(path)
    grads = {}
    ties = [0]
    for dt in (np.float64, np.float32):
        model = pneumonia_cnn(x.shape[-1])
        model.load_state_dict({k: v.astype(dt) for k, v in state.items()}, strict=False)
        model.to(dtype=dt).train()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        if dt == np.float64:
            handles, ties = near_ties(model, nn)
        loss = nn.BCELoss()(model(Tensor(x.astype(dt))), Tensor(y.astype(dt)))
        for h in handles:
            h.remove()
        handles = []
        loss.backward()
        grads[dt] = {k: p.grad.data.astype(np.float64) for k, p in model.named_parameters()}
    out = {k: rel(grads[np.float32][k], grads[np.float64][k]) for k in grads[np.float64]}
    out["near_ties"] = ties[0]
    return out


def torch_errors(path: str) -> dict:
    import torch
    from torch import nn as tnn

    class Separable(tnn.Module):
        def __init__(self, cin: int, cout: int):
            super().__init__()
            self.depthwise = tnn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
            self.pointwise = tnn.Conv2d(cin, cout, 1)

        def forward(self, t):
            return self.pointwise(self.depthwise(t))

    def build(size: int) -> tnn.Sequential:
        layers: list = [tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(), tnn.Conv2d(16, 16, 3, padding=1), tnn.ReLU(),
                        tnn.MaxPool2d(2)]
        side, cin = size // 2, 16
        for f in (32, 64, 128, 256):
            layers.append(tnn.Sequential(Separable(cin, f), tnn.ReLU(), Separable(f, f), tnn.ReLU(),
                                         tnn.BatchNorm2d(f, eps=1e-3, momentum=0.01), tnn.MaxPool2d(2)))
            side //= 2
            if f >= 128:
                layers.append(tnn.Dropout(0.2))
            cin = f

        def dense(a: int, b: int, p: float) -> tnn.Sequential:
            return tnn.Sequential(tnn.Linear(a, b), tnn.ReLU(), tnn.BatchNorm1d(b, eps=1e-3, momentum=0.01),
                                  tnn.Dropout(p))
        layers += [tnn.Flatten(), dense(256 * side * side, 512, 0.7), dense(512, 128, 0.5), dense(128, 64, 0.3),
                   tnn.Linear(64, 1), tnn.Sigmoid()]
        return tnn.Sequential(*layers)

    x, y, state = load(path)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    grads = {}
    for dt in (torch.float64, torch.float32):
        model = build(x.shape[-1])
        missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
        assert not unexpected and all("num_batches" in k for k in missing), (missing, unexpected)
        model.to(dt).train()
        for m in model.modules():
            if isinstance(m, tnn.Dropout):
                m.eval()
        loss = tnn.BCELoss()(model(torch.from_numpy(x).to(dt)), torch.from_numpy(y).to(dt))
        loss.backward()
        grads[dt] = {k: p.grad.detach().numpy().astype(np.float64) for k, p in model.named_parameters()}
    return {k: rel(grads[torch.float32][k], grads[torch.float64][k]) for k in grads[torch.float64]}


def run_worker(python: str, worker: str, path: str, root: str = ROOT) -> dict:
    out = subprocess.run([python, os.path.abspath(__file__), "--worker", worker, "--npz", path],
                         capture_output=True, text=True, check=False, cwd=root,
                         env=dict(os.environ, PYTHONPATH=root))
    if out.returncode:
        raise SystemExit(f"{worker} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse()
    if args.worker:
        print(json.dumps(minicnn_errors(args.npz) if args.worker == "minicnn" else torch_errors(args.npz)))
        return
    print(f"pneumonia CNN {args.size}x{args.size}, batch {args.batch}, training mode (dropout off): relative "
          f"gradient error ||g32 - g64|| / ||g64|| per parameter tensor")
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "batch.npz")
            make_inputs(args.size, args.batch, seed, path)
            mine = run_worker(args.minicnn_python, "minicnn", path, args.minicnn_root)
            theirs = run_worker(args.torch_python, "torch", path)
        ties = mine.pop("near_ties")
        if seed == args.seeds[0]:
            print(f"\nseed {seed} ({ties} near-ties), per parameter:")
            print(f"| {'parameter':24s} | {'minicnn':>9s} | {'PyTorch':>9s} |")
            print(f"|{'-' * 26}|{'-' * 11}|{'-' * 11}|")
            for k in mine:
                print(f"| {k:24s} | {mine[k]:9.2e} | {theirs[k]:9.2e} |")
        rows.append((seed, ties, np.median(list(mine.values())), max(mine.values()),
                     np.median(list(theirs.values())), max(theirs.values())))
    print("\n| seed | near-ties | minicnn median | minicnn max | PyTorch median | PyTorch max |")
    print("|------|-----------|----------------|-------------|----------------|-------------|")
    for seed, ties, mm, mx, tm, tx in rows:
        print(f"| {seed} | {ties} | {mm:.2e} | {mx:.2e} | {tm:.2e} | {tx:.2e} |")


if __name__ == "__main__":
    main()
