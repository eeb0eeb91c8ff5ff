"""Images/s through ImageFolder -> Resize(224) -> RandomAffine -> flip -> ToArray -> DataLoader(batch 32).

    MINICNN_DATA_DIR=/path/to/data PYTHONPATH=. python bench/bench_data.py [--images 640] \
        [--workers 0 1 2] [--step-ms 0] [--threads 2]

--step-ms S makes the consumer wait S ms per batch (time.sleep, which releases the GIL, like
a training step waiting on the GPU): it shows how much loading the worker threads hide.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

from harness import add_common_args, parse_args


def pipeline() -> Any:
    from minicnn.data import transforms as T

    return T.Compose([T.Resize(224), T.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                      T.RandomHorizontalFlip(), T.ToArray()])


def images_per_second(dataset, workers: int, batch_size: int, repeats: int, step_ms: float) -> float:
    """Best of `repeats` full passes (the first pass also warms the OS file cache)."""
    from minicnn.data import DataLoader

    best = 0.0
    for _ in range(repeats):
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, seed=0, num_workers=workers)
        start, n = time.perf_counter(), 0
        for _images, labels in loader:
            n += len(labels)
            if step_ms:
                time.sleep(step_ms / 1000)
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.path.join(os.environ.get("MINICNN_DATA_DIR", "../shared/data"),
                                                  "chest_xray_224", "train"))
    p.add_argument("--images", type=int, default=640)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--step-ms", type=float, default=0.0, help="simulated training step per batch (ms)")
    add_common_args(p)
    args = parse_args(p)  # thread counts into the environment before NumPy is imported
    import numpy as np
    import PIL

    from minicnn.data import ImageFolder, Subset

    folder = ImageFolder(args.root, transform=pipeline())
    picked = np.random.default_rng(0).choice(len(folder), size=min(args.images, len(folder)), replace=False)
    dataset = Subset(folder, picked)
    print(f"python {platform.python_version()}, numpy {np.__version__}, pillow {PIL.__version__}, "
          f"{os.cpu_count()} CPUs, {args.threads} BLAS threads; {len(dataset)} images from {args.root}; "
          f"step {args.step_ms} ms/batch")
    for w in args.workers:
        rate = images_per_second(dataset, w, args.batch_size, args.repeats, args.step_ms)
        print(f"num_workers={w}: {rate:7.0f} images/s")


if __name__ == "__main__":
    main()
