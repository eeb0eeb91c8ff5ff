"""Model zoo on the CPU: forward+backward time and peak memory per model and input size.

    PYTHONPATH=. /work/venv/bin/python bench/bench_models.py [--models resnet18 ...] [--sizes 64 224]
        [--repeats 2] [--densenet-check]

Every (model, size) runs in a fresh subprocess, so its peak RSS (the kernel's high-water mark,
ru_maxrss) is that configuration's alone: parameters, gradients, SGD momentum buffers and the
activations of one training step. Each run builds the model (train mode), then does `repeats`
steps of forward, loss, backward and an SGD(momentum 0.9) update; the time reported is forward +
backward only, the fastest and the first step. Batch: 8 at 64 px; at 224 px 2 (1 for VGG).
--densenet-check adds the issue's memory target: DenseNet-121 at 224x224, batch 8, one training
step, with the memory-efficient dense layers and without.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ZOO = ["vgg19", "vgg19_bn", "resnet18", "resnet50", "densenet121", "densenet161",
       "simple_cnn", "tiny_cnn", "reduced_inception"]
CT = {"simple_cnn", "tiny_cnn", "reduced_inception"}


def batch_for(name: str, size: int) -> int:
    if size <= 64:
        return 8
    return 1 if name.startswith("vgg") else 2


def run_one(name: str, size: int, batch: int, repeats: int, efficient: bool) -> dict:
    """Build, then time `repeats` training steps; runs inside the child process."""
    import numpy as np

    import minicnn
    from minicnn import models, optim

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if name in CT:
        model = getattr(models, name)(input_size=size, in_channels=1)
        cin = 1
    elif name.startswith("densenet"):
        model = getattr(models, name)(num_classes=2, memory_efficient=efficient)
        cin = 3
    else:
        model = getattr(models, name)(num_classes=2)
        cin = 3
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = minicnn.tensor(np.random.default_rng(0).standard_normal((batch, cin, size, size)).astype(np.float32))
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        opt.zero_grad()
        t0 = time.perf_counter()
        y = model(x)
        loss = (y * y).mean()
        loss.backward()
        times.append(time.perf_counter() - t0)
        opt.step()
        del y, loss
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"model": name, "size": size, "batch": batch, "params": model.num_parameters(),
            "efficient": efficient, "first_s": times[0], "best_s": min(times),
            "rss_start_mb": rss0 / 1024, "rss_built_mb": rss_built / 1024, "peak_rss_mb": peak / 1024}


def spawn(name: str, size: int, batch: int, repeats: int, efficient: bool = True) -> dict:
    cmd = [sys.executable, __file__, "--child", name, str(size), str(batch), str(repeats), str(int(efficient))]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
    if out.returncode != 0:
        return {"model": name, "size": size, "batch": batch, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=ZOO)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--densenet-check", action="store_true")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        name, size, batch, repeats, eff = a.child
        print(json.dumps(run_one(name, int(size), int(batch), int(repeats), bool(int(eff)))))
        return
    import numpy as np
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f} at start")
    print(f"{'model':18s} {'size':>4s} {'batch':>5s} {'params':>12s} {'fwd+bwd best s':>15s} {'first s':>8s} "
          f"{'RSS built MB':>12s} {'peak RSS MB':>11s}")
    jobs = [(m, s, batch_for(m, s), True) for s in a.sizes for m in a.models]
    if a.densenet_check:
        jobs += [("densenet121", 224, 8, True), ("densenet121", 224, 8, False)]
    t_all = time.perf_counter()
    for name, size, batch, eff in jobs:
        r = spawn(name, size, batch, 1 if (name, size, batch) == ("densenet121", 224, 8) else a.repeats, eff)
        label = name + ("" if eff else " (plain)")
        if "error" in r:
            print(f"{label:18s} {size:4d} {batch:5d}  FAILED: {r['error']}")
            continue
        print(f"{label:18s} {size:4d} {batch:5d} {r['params']:12,d} {r['best_s']:15.3f} {r['first_s']:8.3f} "
              f"{r['rss_built_mb']:12.0f} {r['peak_rss_mb']:11.0f}", flush=True)
    print(f"total {time.perf_counter() - t_all:.0f} s, load {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
