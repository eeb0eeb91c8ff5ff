"""`SyncBatchNorm`: batch normalisation with statistics over the whole global batch (all ranks).

Forward: each rank reduces its shard to per-channel (count, mean, M2 = sum of squared
deviations from that mean) in float64, the ranks exchange these 3*C numbers, and each combines
them with the pairwise-merge formula of Chan, Golub and LeVeque (1979):
    mean = sum(n_r * mean_r) / N,   M2 = sum(M2_r) + sum(n_r * (mean_r - mean)^2).
Unlike summing x and x^2 over ranks, this never subtracts two large nearly equal numbers.
Backward: the closed-form batch-norm gradient needs sum(gy) and sum(gy * (x - mean)) over
the global batch: one all-reduce of 2*C float64 values. The gradients of weight and bias are
left as this rank's share; DistributedDataParallel's averaging completes them.
"""
from __future__ import annotations

from typing import Any

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..nn import BatchNorm1d, BatchNorm2d, Module
from .comm import Communicator, world
from .nccl import comm_for


class SyncBatchNormFn(Function):
    """Training-mode batch norm of (N, C, ...) with mean and biased variance over every rank's batch."""

    def __init__(self, comm: Communicator, running_mean: Any | None, running_var: Any | None,
                 momentum: float = 0.1, eps: float = 1e-5, who: str = "SyncBatchNorm"):
        self.comm, self.rm, self.rv = comm, running_mean, running_var
        self.momentum, self.eps, self.who = momentum, eps, who

    def forward(self, x, weight=None, bias=None):
        xp = get_array_module(x)
        if x.ndim < 2:
            raise ValueError(f"{self.who}: expected input (N, C, ...), got shape {x.shape}")
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, -1)                                   # (N, C, L)
        m = n * x3.shape[2]
        stats = xp.zeros((3, c), dtype=xp.float64)                 # count, mean, M2 of this shard
        if m > 0:
            shift = x3[0, :, :1].astype(xp.float64)                # (C, 1): keeps the sums small
            d = x3.astype(xp.float64) - shift                      # (N, C, L)
            s1 = d.sum(axis=(0, 2))
            s2 = (d * d).sum(axis=(0, 2))
            stats[0] = m
            stats[1] = shift[:, 0] + s1 / m
            stats[2] = xp.maximum(s2 - s1 * s1 / m, 0.0)
        allst = comm_for(stats, self.comm).allgather(stats)        # (ranks, 3, C)
        counts, means, m2s = allst[:, 0], allst[:, 1], allst[:, 2]
        total = float(counts[:, 0].sum())
        if total < 2:
            raise ValueError(f"{self.who}: training needs more than 1 value per channel over all ranks, "
                             f"got {int(total)} (this rank's input shape {x.shape})")
        mean = (counts * means).sum(axis=0) / total                # (C,)
        var = (m2s.sum(axis=0) + (counts * (means - mean) ** 2).sum(axis=0)) / total
        if self.rm is not None and self.rv is not None:
            mom = self.momentum
            self.rm[...] = ((1 - mom) * self.rm + mom * mean).astype(self.rm.dtype)
            self.rv[...] = ((1 - mom) * self.rv + mom * var * (total / (total - 1))).astype(self.rv.dtype)
        invstd = 1.0 / xp.sqrt(var + self.eps)
        self.x3, self.x_shape, self.total = x3, x.shape, total
        self.mean, self.invstd = mean, invstd                      # float64 (C,)
        self.gamma = weight.astype(xp.float64) if weight is not None else xp.ones(c)
        self.affine = weight is not None
        scale = self.gamma * invstd
        # (x - hi) * scale + (bias - lo * scale), hi = the mean rounded to x's dtype, lo the rest:
        # x - hi is exact near the mean, so large-mean data does not cancel (issue 10)
        hi = mean.astype(x.dtype)
        shift = (bias.astype(xp.float64) if bias is not None else 0.0) - (mean - hi) * scale
        y = (x3 - hi[:, None]) * scale.astype(x.dtype)[:, None] + shift.astype(x.dtype)[:, None]
        return y.reshape(x.shape)

    def backward(self, gy):
        xp = get_array_module(gy)
        x3, n, c = self.x3, self.x_shape[0], self.x_shape[1]
        g3 = gy.reshape(n, c, -1)                                  # (N, C, L)
        xc = x3.astype(xp.float64) - self.mean[:, None]            # x - global mean
        local = xp.stack([g3.sum(axis=(0, 2), dtype=xp.float64),
                          (g3 * xc).sum(axis=(0, 2))])             # (2, C): sum gy, sum gy * (x - mean)
        glob = comm_for(local, self.comm).allreduce_(local.copy())
        sg, sgx = glob[0], glob[1]
        gx = None
        if self.needs_grad[0]:
            k = self.gamma * self.invstd                           # (C,)
            # gx = k * (gy - (sum gy + xhat * sum(gy * xhat)) / M), xhat = (x - mean) * invstd
            gx = k[:, None] * (g3 - (sg[:, None] + xc * (sgx * self.invstd ** 2)[:, None]) / self.total)
            gx = gx.astype(gy.dtype).reshape(self.x_shape)
        if not self.affine:
            return gx
        ggamma = (local[1] * self.invstd).astype(gy.dtype)         # this rank's sum(gy * xhat)
        gbeta = local[0].astype(gy.dtype)
        return (gx, ggamma if self.needs_grad[1] else None, gbeta if self.needs_grad[2] else None)


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm over (N, C), (N, C, L) or (N, C, H, W) whose training statistics span all ranks.

    Eval mode (and a world of one process) is exactly BatchNorm. Build one directly or turn every
    BatchNorm of a model into one with `SyncBatchNorm.convert(model)`.
    """

    ndims, layout = (2, 3, 4), "(N, C), (N, C, L) or (N, C, H, W)"  # type: ignore[assignment]
    comm: Communicator | None

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, comm: Communicator | None = None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        object.__setattr__(self, "comm", comm)

    def forward(self, x: Tensor) -> Tensor:
        comm = self.comm if self.comm is not None else world()
        if not self.training or comm.size == 1:
            return super().forward(x)
        rm, rv, momentum = self._running_state(x)
        fn = SyncBatchNormFn(comm, rm, rv, momentum, self.eps, who=repr(self))
        return fn(x, self.weight, self.bias) if self.affine else fn(x)

    @classmethod
    def convert(cls, module: Module, comm: Communicator | None = None) -> Module:
        """Replace every BatchNorm1d/2d inside `module` (in place, sharing parameters and buffers)."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d)) and not isinstance(module, cls):
            return cls._from(module, comm)
        for m in list(module.modules()):
            for name, child in list(m.named_children()):
                if isinstance(child, (BatchNorm1d, BatchNorm2d)) and not isinstance(child, cls):
                    new = cls._from(child, comm)
                    # not setattr: Module.__setattr__ re-inserts the name last, which reorders a Sequential
                    m._modules[name] = new
                    object.__setattr__(m, name, new)
        return module

    @classmethod
    def _from(cls, bn: Any, comm: Communicator | None) -> SyncBatchNorm:
        new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, comm)
        if bn.affine:
            new.weight, new.bias = bn.weight, bn.bias
        if bn.track_running_stats:
            for b in ("running_mean", "running_var", "num_batches_tracked"):
                new.register_buffer(b, getattr(bn, b))
        new.train(bn.training)
        return new
