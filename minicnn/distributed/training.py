"""What `fit(..., distributed=True)` adds to the training loop, kept out of the loop itself.

- the model is wrapped in DistributedDataParallel (unless it already is);
- the train loader must shard with a DistributedSampler, whose epoch follows fit's;
- each batch's loss is averaged over ranks (so NaN checks agree and every rank sees one number);
- epoch metrics are computed from every rank's labels and scores (gathered), not rank 0's shard;
- only rank 0 prints and writes files (`minicnn.save` is a no-op elsewhere inside fit);
- at the end rank 0's weights are broadcast (e.g. after ModelCheckpoint restored the best ones).
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ..metrics import MetricTracker
from ..nn import Module
from .comm import Communicator, rank0_writes, world
from .ddp import DistributedDataParallel
from .sampler import DistributedSampler


class GatheredMetricTracker(MetricTracker):
    """A MetricTracker whose `compute()` covers every rank's batches (labels and scores gathered)."""

    def __init__(self, comm: Communicator, num_classes: int | None = None, threshold: float = 0.5):
        super().__init__(num_classes, threshold)
        self.comm = comm

    def compute(self) -> dict:
        if self.comm.size > 1:
            mine = (self._y, self._p, self._loss_sum, self._loss_n)
            everyone = self.comm.allgather_object(mine)        # small: labels and scores, not images
            self._y = [y for part in everyone for y in part[0]]
            self._p = [p for part in everyone for p in part[1]]
            self._loss_sum = float(sum(part[2] for part in everyone))
            self._loss_n = int(sum(part[3] for part in everyone))
        return super().compute()


class FitSupport:
    """The distributed side of one `fit` call (see the module docstring)."""

    def __init__(self, model: Module, train_loader: Any, verbose: int, comm: Communicator | None = None):
        self.comm = comm if comm is not None else world()
        sampler = getattr(train_loader, "sampler", None)
        if self.comm.size > 1 and not isinstance(sampler, DistributedSampler):
            raise ValueError(f"fit(distributed=True) on {self.comm.size} ranks: the train loader must shard the data, "
                             f"e.g. DataLoader(ds, batch_size=..., sampler=DistributedSampler(ds, seed=...)); "
                             f"it has sampler={sampler!r}, so every rank would train on the whole dataset")
        self.sampler = sampler
        self.model = model if isinstance(model, DistributedDataParallel) else DistributedDataParallel(model, self.comm)
        self.verbose = verbose if self.comm.rank == 0 else 0
        self._writes = contextlib.ExitStack()
        self._writes.enter_context(rank0_writes())   # until close(): minicnn.save writes on rank 0 only

    def epoch_begin(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def batch_loss(self, loss: float) -> float:
        """The loss averaged over ranks (NaN anywhere gives NaN everywhere, so all ranks stop together)."""
        return self.comm.allreduce_scalar(loss) / self.comm.size

    def tracker(self, threshold: float = 0.5) -> MetricTracker:
        return GatheredMetricTracker(self.comm, threshold=threshold)

    def val_tracker(self, val_loader: Any) -> MetricTracker | None:
        """Gather validation results when the val loader is sharded too; an unsharded one agrees already."""
        if isinstance(getattr(val_loader, "sampler", None), DistributedSampler):
            return GatheredMetricTracker(self.comm)
        return None

    def close(self) -> None:
        self._writes.close()

    def train_end(self) -> None:
        self.model.sync_state()


def check_in_sync(model: Module, comm: Communicator | None = None, atol: float = 0.0) -> float:
    """Largest difference of any parameter or buffer from rank 0's; raises if above `atol`."""
    comm = comm if comm is not None else world()
    worst = 0.0
    for a in model.state_dict().values():
        a = np.ascontiguousarray(a)
        ref = comm.bcast_(a.copy(), root=0)
        if a.size:
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - ref.astype(np.float64)))))
    worst = comm.allreduce_scalar(worst, "max")
    if worst > atol:
        raise AssertionError(f"rank {comm.rank}: replicas differ by up to {worst:.3g} (> atol {atol})")
    return worst
