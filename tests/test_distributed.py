"""minicnn.distributed in one process: sampler, init without a launcher, the DDP mechanics over a
simulated world, SyncBatchNorm against BatchNorm, rank-0-only writes, fit(distributed=True).

The multi-process proofs (equivalence with one big batch, fail-fast abort) run under mpiexec
in test_distributed_mpi.py.
"""
from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn import distributed as dist
from minicnn import nn, optim
from minicnn.distributed import comm as dcomm


class TwinWorld(dist.Communicator):
    """A simulated world of `size` ranks all holding this rank's data: sums are size * x."""

    backend = "twin"

    def __init__(self, size: int = 2, rank: int = 0):
        super().__init__()
        self.size, self.rank = size, rank
        self.calls: list = []

    def allreduce_(self, buf):
        self.calls.append(("allreduce", buf.size))
        buf *= self.size
        return buf

    def iallreduce_(self, buf):
        self.calls.append(("iallreduce", buf.size))
        buf *= self.size
        return dcomm.Request()

    def allgather(self, a):
        return np.stack([np.asarray(a)] * self.size)

    def allgather_object(self, obj):
        return [obj] * self.size

    def allreduce_scalar(self, x, op="sum"):
        return float(x) * (self.size if op == "sum" else 1)


@pytest.fixture
def fresh_world(monkeypatch):
    """Forget any initialised world; restore it afterwards."""
    monkeypatch.setattr(dcomm, "_world", None)
    for k in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "PMIX_RANK", "PMIX_SIZE",
              "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(k, raising=False)
    yield


# ---- the sampler ----------------------------------------------------------------------------
@pytest.mark.parametrize("n,p", [(1, 1), (10, 1), (10, 3), (17, 4), (2, 3), (100, 7)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_sampler_shards_disjoint_padded_equal(n, p, shuffle):
    shards = [dist.DistributedSampler(n, p, r, shuffle=shuffle, seed=5).indices(3) for r in range(p)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n // p)
    flat = np.concatenate(shards)
    assert set(flat.tolist()) == set(range(n))
    assert len(flat) - n == (-n) % p                       # only the padding repeats
    if not shuffle:
        assert shards[0][0] == 0 and (p == 1 or shards[1][0] == 1)


def test_sampler_drop_last_and_epochs():
    shards = [dist.DistributedSampler(17, 4, r, drop_last=True, seed=1).indices(0) for r in range(4)]
    flat = np.concatenate(shards)
    assert len(flat) == 16 and len(set(flat.tolist())) == 16
    s = dist.DistributedSampler(50, 2, 1, seed=9)
    e0, e1 = s.sample(), s.sample()                       # sample() advances the epoch, like the loader
    assert not np.array_equal(e0, e1)
    s.set_epoch(0)
    assert np.array_equal(s.sample(), e0)
    assert np.array_equal(dist.DistributedSampler(50, 2, 1, seed=9).indices(1), e1)  # same seed, same shard
    assert not np.array_equal(dist.DistributedSampler(50, 2, 1, seed=10).indices(0), e0)


def test_sampler_errors_and_loader():
    with pytest.raises(ValueError, match="rank"):
        dist.DistributedSampler(10, 2, 2)
    with pytest.raises(ValueError, match="empty"):
        dist.DistributedSampler(0, 1, 0)
    from minicnn.data import DataLoader
    ds = [(np.full((1, 2, 2), i, np.float32), i % 2) for i in range(9)]
    s = dist.DistributedSampler(ds, 2, 1, seed=0)
    loader = DataLoader(ds, batch_size=2, sampler=s)
    seen = [int(v) for x, _ in loader for v in x[:, 0, 0, 0]]
    assert seen == s.indices(0).tolist() and len(loader) == 3


# ---- init without a launcher or without mpi4py ----------------------------------------------------
def test_init_single_process_needs_no_mpi(fresh_world, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "mpi4py", None)       # as if not installed
    w = dist.init()
    assert (w.rank, w.size, w.backend) == (0, 1, "self") and dist.is_main_process()
    assert dist.init() is w
    buf = np.arange(3.0)
    assert w.allreduce_(buf) is buf and np.array_equal(buf, np.arange(3.0))


def test_launcher_env_and_missing_mpi4py(fresh_world, monkeypatch):
    import sys
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("PMI_SIZE", "4")
    assert dist.launcher_env() == (1, 4)
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(RuntimeError, match=r"rank 1 of 4.*minicnn\[distributed\]"):
        dist.init()


# ---- DistributedDataParallel mechanics --------------------------------------------------------------
def net(bn: bool = False) -> nn.Module:
    minicnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), *( [nn.BatchNorm2d(3)] if bn else []), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 3 * 3, 4), nn.ReLU(), nn.Linear(4, 1))


def grads_of(model, x):
    model.zero_grad()
    model(minicnn.Tensor(x)).sum().backward()
    return [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]


def test_ddp_world_of_one_is_transparent(rng):
    x = rng.normal(size=(4, 2, 5, 5)).astype(np.float32)
    plain, wrapped = net(), dist.DistributedDataParallel(net(), dist.Communicator())
    assert list(wrapped.state_dict()) == list(plain.state_dict())
    for a, b in zip(grads_of(plain, x), grads_of(wrapped, x)):
        np.testing.assert_array_equal(a, b)
    wrapped.module.output_is_probability = False
    assert wrapped.output_is_probability is False          # the wrapped model's attributes show through


def test_ddp_averages_in_ordered_buckets(rng):
    x = rng.normal(size=(4, 2, 5, 5)).astype(np.float32)
    world = TwinWorld(2)
    ref = grads_of(net(), x)
    model = net()
    ddp = dist.DistributedDataParallel(model, world, bucket_mb=100 * 4 / 2**20)  # ~100 floats per bucket
    assert len(ddp.buckets) >= 3
    # buckets hold the parameters in reverse order (the order backward finishes them)
    order = [id(p) for b in ddp.buckets for p in b.params]
    assert order == [id(p) for p in list(model.parameters())[::-1]]
    got = grads_of(ddp, x)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b, a, rtol=1e-6)          # the sum of two identical ranks over 2
    sizes = [n for kind, n in world.calls if kind == "iallreduce"]
    assert sizes == [b.offsets[-1] for b in ddp.buckets]     # one all-reduce per bucket, in order
    # an unrelated backward does not trigger any communication
    world.calls.clear()
    (minicnn.Tensor(np.ones(3), requires_grad=True) * 2).sum().backward()
    assert world.calls == []


def test_ddp_unused_parameters():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x):
            return self.a(x)

    x = minicnn.Tensor(np.ones((2, 3), np.float32))
    for find, expect_none in ((False, False), (True, True)):
        m = TwoHeads()
        ddp = dist.DistributedDataParallel(m, TwinWorld(2), find_unused_parameters=find)
        ddp(x).sum().backward()
        assert (m.b.weight.grad is None) == expect_none
        if not expect_none:
            assert not np.any(m.b.weight.grad.numpy())
        assert m.a.weight.grad is not None


def test_ddp_shared_parameter_grad_complete(rng):
    lin = nn.Linear(3, 3)
    seen = []

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, x):
            return self.lin(self.lin(x))

    ref_model = Twice()
    x = minicnn.Tensor(rng.normal(size=(2, 3)).astype(np.float32))
    ref_model(x).sum().backward()
    ref = lin.weight.grad.numpy().copy()
    lin.zero_grad()
    ddp = dist.DistributedDataParallel(Twice(), TwinWorld(2))
    orig = ddp.leaf_ready
    ddp.leaf_ready = lambda t: (seen.append(id(t)), orig(t))  # type: ignore[method-assign]
    ddp(x).sum().backward()
    assert seen.count(id(lin.weight)) == 1                   # reported once, after both uses
    np.testing.assert_allclose(lin.weight.grad.numpy(), ref, rtol=1e-6)


# ---- SyncBatchNorm ------------------------------------------------------------------------------
def test_syncbn_alone_equals_batchnorm(rng):
    x = rng.normal(2.0, 3.0, size=(5, 3, 4, 3)).astype(np.float32)
    bn, sbn = nn.BatchNorm2d(3), dist.SyncBatchNorm(3, comm=dist.Communicator())   # a world of one
    for m in (bn, sbn):
        m.weight.data[:] = [1.5, -0.5, 2.0]
    ya, yb = bn(minicnn.Tensor(x)), sbn(minicnn.Tensor(x))
    np.testing.assert_allclose(yb.numpy(), ya.numpy(), atol=1e-5)
    # the sync op itself (a world of 2 identical ranks) against BatchNorm, forward and backward
    xa, xb = minicnn.Tensor(x, requires_grad=True), minicnn.Tensor(x, requires_grad=True)
    g = rng.normal(size=x.shape).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    ya = minicnn.nn.functional.batch_norm(xa, rm.copy(), rv.copy(), training=True)
    yb = dist.SyncBatchNormFn(TwinWorld(2), rm, rv)(xb)
    np.testing.assert_allclose(yb.numpy(), ya.numpy(), atol=1e-5)
    (ya * minicnn.Tensor(g)).sum().backward()
    (yb * minicnn.Tensor(g)).sum().backward()
    # two identical ranks: the global batch is x twice, whose statistics and gradient are x's
    np.testing.assert_allclose(xb.grad.numpy(), xa.grad.numpy(), atol=1e-5)
    per_channel = np.concatenate([x, x]).transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * per_channel.var(axis=1, ddof=1), rtol=1e-5)  # unbiased over 2N


def test_syncbn_gradcheck_float64(rng):
    x = minicnn.Tensor(rng.normal(1.0, 2.0, size=(3, 2, 3, 1)), requires_grad=True)
    w = minicnn.Tensor(rng.normal(size=2), requires_grad=True)
    b = minicnn.Tensor(rng.normal(size=2), requires_grad=True)
    assert minicnn.gradcheck(lambda x, w, b: dist.SyncBatchNormFn(dist.Communicator(), None, None)(x, w, b),
                             [x, w, b], atol=1e-6)


def test_syncbn_convert_keeps_order_and_shares():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2),
                          nn.BatchNorm1d(2))
    bn2 = model[1]
    dist.SyncBatchNorm.convert(model)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "SyncBatchNorm", "ReLU", "Flatten", "Linear", "SyncBatchNorm"]
    assert model[1].weight is bn2.weight and model[1].running_mean is bn2.running_mean
    assert list(model.state_dict()) == list(net_keys(model))


def net_keys(model):
    return [k for k, _ in model.named_parameters()] + [k for k, _ in model.named_buffers()]


# ---- only rank 0 writes; fit(distributed=True) ---------------------------------------------------
def test_rank0_writes(fresh_world, monkeypatch, tmp_path):
    monkeypatch.setattr(dcomm, "_world", TwinWorld(2, rank=1))
    with dist.rank0_writes():
        minicnn.save({"a": np.zeros(2)}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
    minicnn.save({"a": np.zeros(2)}, tmp_path / "x.npz")     # outside fit: every rank writes if asked
    assert (tmp_path / "x.npz").exists()


def _toy():
    r = np.random.default_rng(0)
    x = r.normal(size=(24, 2, 5, 5)).astype(np.float32)
    y = (x[:, 0].mean(axis=(1, 2)) > 0).astype(np.int64)
    return [(x[i], int(y[i])) for i in range(len(x))]


def test_fit_distributed_world_of_one_equals_fit(fresh_world):
    from minicnn.data import DataLoader
    from minicnn.train import fit
    ds = _toy()
    hs, states = [], []
    for distributed in (False, True):
        model = net(bn=True)
        loader = DataLoader(ds, batch_size=8, sampler=dist.DistributedSampler(ds, seed=1))
        hs.append(fit(model, loader, loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.Adam(model.parameters()),
                      epochs=2, verbose=0, distributed=distributed))
        states.append(model.state_dict())
    assert hs[0]["loss"] == hs[1]["loss"]
    for k in states[0]:
        np.testing.assert_array_equal(states[0][k], states[1][k])


def test_fit_distributed_needs_a_sharding_loader(fresh_world, monkeypatch):
    from minicnn.data import DataLoader
    from minicnn.train import fit
    monkeypatch.setattr(dcomm, "_world", TwinWorld(2))
    model = net()
    with pytest.raises(ValueError, match="DistributedSampler"):
        fit(model, DataLoader(_toy(), batch_size=8), loss_fn=nn.BCEWithLogitsLoss(),
            optimizer=optim.Adam(model.parameters()), verbose=0, distributed=True)


@pytest.mark.gpu
def test_nccl_communicator_on_gpus():
    """UNTESTED here: needs CuPy, 2 GPUs and mpiexec; runs the equivalence scenario with CuPy arrays."""
    if not minicnn.gpu_available():
        pytest.skip("no CUDA GPU (the NCCL path is written but untested without one)")
    import cupy
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("the NCCL test needs 2 GPUs")
    from test_distributed_mpi import run_scenario
    rc, out, _ = run_scenario("equivalence_gpu", 2)
    assert rc == 0, out
