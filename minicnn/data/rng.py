"""Per-sample random generators, so augmentation is reproducible whatever the worker count.

Every random transform takes an optional `rng` (a `numpy.random.Generator`). When it is
omitted the transform uses the generator installed for the current thread by `sample_rng`,
which the DataLoader does around each `dataset[index]`, seeded from (seed, epoch, index).
Outside a loader the fallback is a module-wide generator (reseed it with `seed_transforms`).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_local = threading.local()
_fallback = np.random.default_rng()


def make_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on (seed, *keys): distinct keys give independent streams."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in keys)))


@contextmanager
def sample_rng(rng: np.random.Generator) -> Iterator[np.random.Generator]:
    """Make `rng` the default generator of random transforms in this thread, for the block."""
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield rng
    finally:
        _local.rng = previous


def get_rng(rng: np.random.Generator | None = None) -> np.random.Generator:
    """`rng` if given, else the generator installed by `sample_rng`, else the module fallback."""
    if rng is not None:
        return rng
    current = getattr(_local, "rng", None)
    return current if current is not None else _fallback


def seed_transforms(seed: int) -> None:
    """Reseed the fallback generator used by transforms called outside a DataLoader."""
    global _fallback
    _fallback = np.random.default_rng(seed)
