"""Scenarios run on every rank under `mpiexec -n N python tests/distributed/mpi_worker.py NAME [args]`.

Driven by tests/test_distributed_mpi.py, which checks the exit status and output. Each scenario
asserts on every rank and prints `OK <name> rank <r>` at the end; any failure aborts all ranks.
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import minicnn
from minicnn import distributed as dist
from minicnn import nn, optim

comm = dist.init()
R, P = comm.rank, comm.size
PER_RANK = 8


def small_net(bn: bool) -> nn.Module:
    """A conv net with (optionally) 2-D and 1-D batch norm; same weights for the same seed."""
    minicnn.manual_seed(0)
    # no bias right before a batch norm: its true gradient is 0, so its computed gradient is pure
    # rounding noise, which Adam scales up to full-size steps (differently in each summation order)
    layers = [nn.Conv2d(1, 4, 3, padding=1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(4, momentum=0.1))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 6, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm1d(6))
    layers += [nn.ReLU(), nn.Linear(6, 1)]
    return nn.Sequential(*layers)


def toy_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    x = rng.normal(0.5, 1.0, (n, 1, 6, 6)).astype(np.float32)
    y = (x[:, 0, :3].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    return x, y


class ArrayDataset:
    """(image, label) pairs from two arrays, for the DataLoader."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def global_order(sampler_n: int, epoch: int) -> np.ndarray:
    """The single-process visiting order equal to P ranks' shards: step k = every rank's k-th batch."""
    shards = np.stack([dist.DistributedSampler(sampler_n, P, r, seed=7).indices(epoch) for r in range(P)])
    steps = shards.shape[1] // PER_RANK
    return shards[:, :steps * PER_RANK].reshape(P, steps, PER_RANK).transpose(1, 0, 2).reshape(-1)


def max_diff(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) for k in a)


def equivalence(bn: bool, device: str = "cpu") -> None:
    """P ranks x batch 8 with DDP (and SyncBatchNorm) == 1 process x batch 8P, after several Adam steps.

    device='cuda' runs the ranks on GPUs (NCCL), the reference on the CPU (UNTESTED: no GPU so far).
    """
    from minicnn.backend import to_device
    steps = 4
    x, y = toy_data(PER_RANK * P * steps)
    loss_fn = nn.BCEWithLogitsLoss()
    # reference: one process, the global batches, plain BatchNorm
    ref = small_net(bn)
    opt = optim.Adam(ref.parameters(), lr=1e-2)
    order = global_order(len(x), 0)
    for k in range(steps):
        idx = order[k * PER_RANK * P:(k + 1) * PER_RANK * P]
        opt.zero_grad()
        loss_fn(ref(minicnn.Tensor(x[idx])), y[idx].reshape(-1, 1).astype(np.float32)).backward()
        opt.step()
    # distributed: this rank's shard, DDP, SyncBatchNorm; rank-dependent init that DDP must overwrite
    model = small_net(bn)
    if R:
        for p in model.parameters():
            p.data += 0.5
    if bn:
        dist.SyncBatchNorm.convert(model)
        assert isinstance(model[1], dist.SyncBatchNorm) and isinstance(model[6], dist.SyncBatchNorm), model
    model.to(device)
    ddp = dist.DistributedDataParallel(model, bucket_mb=0.0005)   # tiny buckets: several in flight
    assert len(ddp.buckets) > 1, ddp.buckets
    opt = optim.Adam(ddp.parameters(), lr=1e-2)
    mine = dist.DistributedSampler(len(x), seed=7).indices(0)
    for k in range(steps):
        idx = mine[k * PER_RANK:(k + 1) * PER_RANK]
        opt.zero_grad()
        out = ddp(minicnn.Tensor(to_device(x[idx], device)))
        loss_fn(out, to_device(y[idx].reshape(-1, 1).astype(np.float32), device)).backward()
        opt.step()
    d = max_diff(ref.state_dict(), model.state_dict())
    assert d < 2e-5, f"rank {R}: distributed and single-process parameters differ by {d:.3g}"
    dist.check_in_sync(model, atol=0.0)
    if device != "cpu":
        print(f"rank {R}: max |distributed on {device} - single on cpu| = {d:.2e}")
        return
    # optimizer states identical on every rank
    states = [np.concatenate([opt.state[id(p)][k].ravel() for p in model.parameters()])
              for k in ("exp_avg", "exp_avg_sq")]
    for s in states:
        allst = comm.allgather(s)
        assert np.array_equal(allst[0], allst[R]), f"rank {R}: Adam state differs from rank 0's"
    print(f"rank {R}: max |distributed - single| = {d:.2e}")


def fit_equivalence() -> None:
    """fit(distributed=True) == fit on one process over the same global batches; only rank 0 writes."""
    from minicnn.data import DataLoader
    from minicnn.train import Callback, fit
    x, y = toy_data(PER_RANK * P * 3 + 3)       # not divisible: the sampler pads
    epochs = 2
    tmp = comm.bcast_object(tempfile.mkdtemp() if R == 0 else None)

    class SaveEveryRank(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            minicnn.save({"w": np.zeros(1)}, os.path.join(tmp, f"rank{R}.npz"))

    model = dist.SyncBatchNorm.convert(small_net(True))
    sampler = dist.DistributedSampler(len(x), seed=7)
    loader = DataLoader(ArrayDataset(x, y), batch_size=PER_RANK, sampler=sampler)
    hist = fit(model, loader, DataLoader(ArrayDataset(x, y), batch_size=16), loss_fn=nn.BCEWithLogitsLoss(),
               optimizer=optim.Adam(model.parameters(), lr=1e-2), epochs=epochs, verbose=0, distributed=True,
               checkpoint=os.path.join(tmp, "state.npz"), callbacks=[SaveEveryRank()])
    comm.barrier()
    files = sorted(os.listdir(tmp))
    assert files == ["rank0.npz", "state.npz"], f"rank {R}: files written {files}"
    everyone = comm.allgather_object(dict(hist))
    for k in everyone[0]:
        if k != "seconds":
            assert np.allclose(everyone[0][k], everyone[R][k], equal_nan=True), f"rank {R}: history[{k}] differs"

    class Interleaved:                               # the single-process order equal to the ranks' shards
        def __len__(self):
            return sampler.num_samples * P

        def __init__(self):
            self.epoch = 0

        def sample(self, rng):
            n = sampler.num_samples
            shards = np.stack([dist.DistributedSampler(len(x), P, r, seed=7).indices(self.epoch) for r in range(P)])
            self.epoch += 1
            return shards.reshape(P, -1, PER_RANK).transpose(1, 0, 2).reshape(-1)[:n * P] if n % PER_RANK == 0 \
                else np.concatenate([shards[:, :n // PER_RANK * PER_RANK].reshape(P, -1, PER_RANK)
                                     .transpose(1, 0, 2).reshape(-1), shards[:, n // PER_RANK * PER_RANK:].reshape(-1)])

    ref = small_net(True)
    ref_loader = DataLoader(ArrayDataset(x, y), batch_size=PER_RANK * P, sampler=Interleaved())
    ref_hist = fit(ref, ref_loader, None, loss_fn=nn.BCEWithLogitsLoss(),
                   optimizer=optim.Adam(ref.parameters(), lr=1e-2), epochs=epochs, verbose=0)
    d = max_diff(ref.state_dict(), model.state_dict())
    assert d < 2e-5, f"rank {R}: fit(distributed) and single-process fit differ by {d:.3g}"
    assert abs(ref_hist["loss"][-1] - hist["loss"][-1]) < 1e-5, (ref_hist["loss"], hist["loss"])
    print(f"rank {R}: fit max |distributed - single| = {d:.2e}; loss {hist['loss']}")


def syncbn_gradcheck() -> None:
    """float64: SyncBatchNormFn on unequal shards == BatchNormFn on the concatenation; finite differences."""
    rng = np.random.default_rng(5)
    c = 3
    counts = [2 + r for r in range(P)]                      # unequal shards, odd shapes
    xs = [rng.normal(3.0, 2.0, (n, c, 2, 3)) for n in counts]
    ws = [rng.normal(size=(n, c, 2, 3)) for n in counts]    # loss = sum_r <w_r, y_r>
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    x_all, w_all = np.concatenate(xs), np.concatenate(ws)
    a, b = sum(counts[:R]), sum(counts[:R + 1])

    # the reference: plain batch norm on the whole batch, one process
    ref_rm, ref_rv = np.zeros(c), np.ones(c)
    xt = minicnn.Tensor(x_all, requires_grad=True)
    gt, bt = minicnn.Tensor(gamma, requires_grad=True), minicnn.Tensor(beta, requires_grad=True)
    yref = nn.functional.batch_norm(xt, ref_rm, ref_rv, gt, bt, training=True, momentum=0.1, eps=1e-5)
    (yref * minicnn.Tensor(w_all)).sum().backward()

    rm, rv = np.zeros(c), np.ones(c)
    xr = minicnn.Tensor(xs[R], requires_grad=True)
    gr, br = minicnn.Tensor(gamma, requires_grad=True), minicnn.Tensor(beta, requires_grad=True)
    y = dist.SyncBatchNormFn(comm, rm, rv, 0.1, 1e-5)(xr, gr, br)
    (y * minicnn.Tensor(ws[R])).sum().backward()
    assert np.allclose(y.data, yref.data[a:b], atol=1e-12), "forward differs"
    assert np.allclose(rm, ref_rm, atol=1e-12) and np.allclose(rv, ref_rv, atol=1e-12), "running stats differ"
    assert np.allclose(xr.grad.data, xt.grad.data[a:b], atol=1e-10), "input gradient differs"
    gsum = comm.allreduce_(np.concatenate([gr.grad.data, br.grad.data]))
    assert np.allclose(gsum, np.concatenate([gt.grad.data, bt.grad.data]), atol=1e-10), "weight/bias grads differ"

    # central finite differences of the global loss, every element of every rank's input in turn
    def global_loss(xl: np.ndarray, g: np.ndarray, bb: np.ndarray) -> float:
        sync_bn = dist.SyncBatchNormFn(comm, None, None, 0.1, 1e-5)
        yy = sync_bn(minicnn.Tensor(xl), minicnn.Tensor(g), minicnn.Tensor(bb))
        return comm.allreduce_scalar(float((yy.data * ws[R]).sum()))

    h, worst = 1e-6, 0.0
    for owner in range(P):
        for i in range(xs[owner].size):
            xp_, xm_ = xs[R].copy(), xs[R].copy()
            if owner == R:
                xp_.reshape(-1)[i] += h
                xm_.reshape(-1)[i] -= h
            fd = (global_loss(xp_, gamma, beta) - global_loss(xm_, gamma, beta)) / (2 * h)
            if owner == R:
                worst = max(worst, abs(fd - xr.grad.data.reshape(-1)[i]))
    for which in range(2 * c):
        g2, b2 = gamma.copy(), beta.copy()
        tgt = g2 if which < c else b2
        tgt[which % c] += h
        fp = global_loss(xs[R], g2, b2)
        tgt[which % c] -= 2 * h
        fd = (fp - global_loss(xs[R], g2, b2)) / (2 * h)
        worst = max(worst, abs(fd - gsum[which]))
    assert worst < 1e-6, f"rank {R}: finite differences disagree by {worst:.3g}"

    # numerically careful statistics: a large mean and a tiny spread in float32
    big = (1e4 + 1e-2 * rng.normal(size=(4, 2, 5))).astype(np.float32)
    allbig = comm.allgather(big).reshape(-1, 2, 5).astype(np.float64)
    rm2, rv2 = np.zeros(2, np.float32), np.ones(2, np.float32)
    dist.SyncBatchNormFn(comm, rm2, rv2, 1.0, 1e-5)(minicnn.Tensor(big))
    true_var = allbig.transpose(1, 0, 2).reshape(2, -1).var(axis=1, ddof=1)
    rel = float(np.max(np.abs(rv2 - true_var) / true_var))
    assert rel < 1e-3, f"rank {R}: variance of large-mean data off by {rel:.3g} relative"
    print(f"rank {R}: syncbn finite-difference error {worst:.2e}, large-mean variance rel. error {rel:.2e}")


def sampler_check() -> None:
    """Real ranks: shards of equal length, disjoint apart from the padding, covering the dataset."""
    for n in (1, P - 1 or 1, 17, 100):
        for shuffle in (True, False):
            s = dist.DistributedSampler(n, shuffle=shuffle, seed=3)
            s.set_epoch(2)
            mine = s.sample()
            allsh = comm.allgather_object(mine.tolist())
            assert len({len(a) for a in allsh}) == 1, "unequal shard lengths"
            flat = [i for a in allsh for i in a]
            assert set(flat) == set(range(n)), "shards do not cover the dataset"
            assert len(flat) - len(set(flat)) == (-n) % P, "more repeats than the padding needs"


def raise_on_last_rank() -> None:
    """The last rank fails inside fit at its second batch while the others wait in an all-reduce."""
    from minicnn.data import DataLoader
    from minicnn.train import Callback, fit
    x, y = toy_data(PER_RANK * P * 4)

    class Boom(Callback):
        def on_after_backward(self, trainer):
            if R == P - 1 and trainer.batch == 1:
                raise RuntimeError(f"boom from rank {R}")

    model = small_net(False)
    loader = DataLoader(ArrayDataset(x, y), batch_size=PER_RANK, sampler=dist.DistributedSampler(len(x)))
    fit(model, loader, loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.Adam(model.parameters()), epochs=50,
        verbose=0, distributed=True, callbacks=[Boom()])
    raise AssertionError("not reached: the failing rank aborts the job")


if __name__ == "__main__":
    name = sys.argv[1]
    {"equivalence": lambda: equivalence(False), "equivalence_bn": lambda: equivalence(True),
     "fit": fit_equivalence, "syncbn": syncbn_gradcheck, "sampler": sampler_check,
     "raise": raise_on_last_rank,
     "equivalence_gpu": lambda: equivalence(True, "cuda")}[name]()
    comm.barrier()
    print(f"OK {name} rank {R}", flush=True)
