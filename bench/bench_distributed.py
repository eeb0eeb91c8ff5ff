"""Data-parallel training cost: time per step and the share spent in gradient all-reduce, plus an
alpha-beta model of all-reduce fitted on this machine and a projection to many hosts.

    mpiexec -n 1 python bench/bench_distributed.py --model pneumonia --steps 4
    mpiexec -n 2 python bench/bench_distributed.py --model pneumonia --steps 4
    mpiexec -n 2 python bench/bench_distributed.py --model resnet18 --steps 3
    mpiexec -n 2 python bench/bench_distributed.py --allreduce          # latency/bandwidth fit
    python bench/bench_distributed.py --project STEP_S:GRAD_MB[:BUCKETS] ...  # scaling on paper

Per rank: batch --batch (weak scaling: the global batch grows with the ranks). The ranks of
one host split its cores (BLAS and minicnn threads = cores // ranks). 'comm' is the time the
training thread spends in communication calls (bucket copies, starting and waiting for the
non-blocking all-reduces): the part of the all-reduce that backward did not hide.

resnet18: minicnn.models has no ResNet-18 in this tree, so a local stand-in is built here
(BasicBlock ResNet-18: conv7x7/2 + maxpool, 2-2-2-2 blocks of 64-128-256-512, 11.2M params).
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["pneumonia", "resnet18"], default="pneumonia")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8, help="images per rank and step")
    p.add_argument("--steps", type=int, default=4, help="timed steps (after one warm-up step)")
    p.add_argument("--bucket-mb", type=float, default=4.0)
    p.add_argument("--allreduce", action="store_true", help="fit all-reduce time = alpha + beta * bytes")
    p.add_argument("--project", nargs="*", metavar="STEP_S:GRAD_MB[:BUCKETS]",
                   help="print the scaling projection for these measured (step seconds, gradient MB)")
    return p.parse_args()


ARGS = parse() if __name__ == "__main__" else None
if ARGS is not None:  # BLAS reads its thread count when NumPy is first imported: split the cores
    size = int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1")))
    cores = len(os.sched_getaffinity(0))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(max(1, cores // size)))
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import minicnn  # noqa: E402
from minicnn import distributed as dist  # noqa: E402
from minicnn import nn, optim  # noqa: E402


# ---- a ResNet-18 stand-in ----------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(self.b1(self.c1(x)).relu()))
        return (y + (x if self.down is None else self.down(x))).relu()


def resnet18(in_channels: int = 1, outputs: int = 1) -> nn.Module:
    """(N, C, S, S) -> (N, outputs) logits; He et al. 2016's ResNet-18 layout."""
    layers: list = [nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                    nn.MaxPool2d(3, stride=2, padding=1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(512, outputs)]
    return nn.Sequential(*layers)


def build(name: str, size: int) -> nn.Module:
    if name == "resnet18":
        return resnet18()
    from minicnn.models import pneumonia_cnn
    return pneumonia_cnn(size, in_channels=1, sigmoid=False, bn_momentum=0.1)


# ---- measurements --------------------------------------------------------------------------------
def time_steps(comm) -> None:
    minicnn.manual_seed(0)
    model = dist.DistributedDataParallel(build(ARGS.model, ARGS.size), comm, bucket_mb=ARGS.bucket_mb)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(comm.rank)
    x = rng.normal(size=(ARGS.batch, 1, ARGS.size, ARGS.size)).astype(np.float32)
    y = (rng.random((ARGS.batch, 1)) < 0.5).astype(np.float32)
    grad_mb = sum(p.data.nbytes for p in model.parameters()) / 2**20
    times, comms = [], []
    for step in range(ARGS.steps + 1):
        comm.barrier()
        model.comm_seconds = 0.0
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(minicnn.Tensor(x)), y).backward()
        opt.step()
        if step:  # the first step warms caches and workspaces
            times.append(time.perf_counter() - t0)
            comms.append(model.comm_seconds)
    # the raw cost of one blocking all-reduce of the whole gradient, for comparison
    flat = np.zeros(int(grad_mb * 2**20 / 4), np.float32)
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(3):
        comm.allreduce_(flat)
    raw = (time.perf_counter() - t0) / 3
    step_s, comm_s = float(np.median(times)), float(np.median(comms))
    worst = comm.allreduce_scalar(step_s, "max")
    if comm.rank == 0:
        print(f"{ARGS.model} {ARGS.size}px, {comm.size} rank(s) x batch {ARGS.batch}, {len(model.buckets)} buckets of "
              f"<= {ARGS.bucket_mb} MB, gradient {grad_mb:.2f} MB, threads/rank {minicnn.get_num_threads()}, "
              f"BLAS {os.environ['OPENBLAS_NUM_THREADS']}")
        print(f"  step {worst * 1e3:.0f} ms (slowest rank; median of {len(times)}),"
              f" {comm.size * ARGS.batch / worst:.1f} img/s;"
              f" comm {comm_s * 1e3:.1f} ms = {100 * comm_s / step_s:.1f}% of the step;"
              f" one blocking all-reduce of the whole gradient {raw * 1e3:.1f} ms")


def fit_allreduce(comm) -> None:
    sizes = [2**k for k in range(3, 26, 2)]  # 8 B .. 32 MB
    rows = []
    for nbytes in sizes:
        buf = np.ones(nbytes // 4, np.float32)
        reps = max(2, min(100, int(4e6 // nbytes)))
        comm.allreduce_(buf)
        best = float("inf")
        for _ in range(5):  # the best of 5 trials: the machine is shared, other jobs only add time
            comm.barrier()
            t0 = time.perf_counter()
            for _ in range(reps):
                comm.allreduce_(buf)
            best = min(best, comm.allreduce_scalar((time.perf_counter() - t0) / reps, "max"))
        rows.append((nbytes, best))
    if comm.rank == 0:
        n = np.array([r[0] for r in rows], float)
        t = np.array([r[1] for r in rows])
        # two regimes, fitted separately: latency from messages <= 8 KB (eager protocol), the
        # per-byte cost from the slope over messages >= 1 MB (rendezvous, bandwidth-bound)
        alpha = float(np.median(t[n <= 8192]))
        big = n >= 2**20
        beta = float(np.polyfit(n[big], t[big], 1)[0])
        print(f"all-reduce on {comm.size} ranks (MPI float32 sum, in place):")
        for nb, dt in rows:
            print(f"  {nb:>10d} B  {dt * 1e6:10.1f} us  {nb / dt / 1e9:7.3f} GB/s algorithm bandwidth")
        print(f"  fit t = alpha + beta * n: alpha = {alpha * 1e6:.1f} us, beta = {beta * 1e9:.3f} ns/B "
              f"(= {1 / beta / 1e9:.2f} GB/s)")


def project(specs: list[str]) -> None:
    """Weak-scaling efficiency T / (T + T_allreduce) with the ring all-reduce model, no overlap."""
    nets = {"10 Gbit/s": (10e9 / 8, 50e-6), "100 Gbit/s": (100e9 / 8, 10e-6)}
    print("ring all-reduce: T_ar = 2 (p-1)/p * n / B + 2 (p-1) * alpha * buckets;  efficiency = T / (T + T_ar)")
    for spec in specs:
        parts = spec.split(":")
        step, mb = float(parts[0]), float(parts[1])
        buckets = int(parts[2]) if len(parts) > 2 else 1
        n = mb * 2**20
        print(f"step {step * 1e3:.0f} ms, gradient {mb:.1f} MB, {buckets} buckets")
        for name, (bw, alpha) in nets.items():
            cells = []
            for p in (4, 8, 16, 64):
                t_ar = 2 * (p - 1) / p * n / bw + 2 * (p - 1) * alpha * buckets
                cells.append(f"p={p}: {100 * step / (step + t_ar):.0f}% ({t_ar * 1e3:.0f} ms)")
            print(f"  {name} (alpha {alpha * 1e6:.0f} us): " + ", ".join(cells))


if __name__ == "__main__":
    if ARGS.project:
        project(ARGS.project)
        sys.exit(0)
    world = dist.init()
    if ARGS.allreduce:
        fit_allreduce(world)
    else:
        time_steps(world)
