"""`DistributedSampler`: each rank a disjoint, seeded shard of every epoch, all of equal length."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np


class DistributedSampler:
    """Indices of one rank's share of `dataset` for the current epoch.

    Every rank draws the same permutation from (seed, epoch), pads it by repeating its head
    until it divides by the number of ranks, and takes every `num_replicas`-th index from
    position `rank`. So the shards are disjoint apart from the padding (at most
    num_replicas - 1 repeats), and every rank takes the same number of steps, which the
    gradient all-reduce needs. drop_last=True drops the tail instead of padding.

    Use it as `DataLoader(ds, sampler=DistributedSampler(ds), ...)`: the loader calls
    `sample()` once per epoch, which advances the epoch; `set_epoch` sets it (resuming).
    The seed must be the same on every rank.
    """

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .comm import world
            w = world()
            num_replicas = w.size if num_replicas is None else num_replicas
            rank = w.rank if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: need 0 <= rank < num_replicas, got rank={rank}, "
                             f"num_replicas={num_replicas}")
        self.n = dataset if isinstance(dataset, int) else len(dataset)
        if self.n < 1:
            raise ValueError("DistributedSampler: the dataset is empty")
        self.num_replicas, self.rank, self.shuffle = int(num_replicas), int(rank), shuffle
        self.seed, self.drop_last, self.epoch = int(seed), drop_last, 0
        if drop_last and self.n < self.num_replicas:
            raise ValueError(f"DistributedSampler: drop_last with {self.n} samples and {self.num_replicas} ranks "
                             f"leaves every rank empty")
        self.num_samples = self.n // self.num_replicas if drop_last else math.ceil(self.n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Make the next `sample()` draw the shard of `epoch` (identically on every rank)."""
        self.epoch = int(epoch)

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's dataset indices of `epoch` (num_samples,) int64, without advancing the epoch."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        if self.total_size > self.n:  # pad by wrapping around (tile in case n < num_replicas)
            order = np.concatenate([order, np.resize(order, self.total_size - self.n)])
        order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def sample(self, rng: Any = None) -> np.ndarray:
        """The DataLoader's sampler protocol: this epoch's shard; then advance to the next epoch.

        `rng` (the loader's generator) is ignored: the loaders of different ranks may be seeded
        differently (e.g. for augmentation), but the permutation must agree.
        """
        out = self.indices(self.epoch)
        self.epoch += 1
        return out

    def __iter__(self) -> Iterator[int]:
        return iter(self.sample().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler(n={self.n}, rank={self.rank}/{self.num_replicas}, shuffle={self.shuffle}, "
                f"seed={self.seed}, epoch={self.epoch})")
