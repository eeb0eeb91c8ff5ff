"""One seeded generator per backend, for parameter init and dropout, so `manual_seed` makes
runs repeatable.

The CPU generator is a NumPy `Generator`. The GPU one (`cupy.random.default_rng`) is created
on first use, so a script that never touches the GPU never imports CuPy; its seed is drawn
from the CPU generator at that moment, which makes it follow `manual_seed`. CuPy's
generators do not expose their state, so checkpoints hold the CPU state only, and both
`get_state` and `set_state` drop the GPU generator: in the saving run and in a run resumed
from the checkpoint alike, it is next recreated from the same point of the CPU stream, so a
resumed run continues with exactly the draws the uninterrupted one makes.
Augmentation does not draw from here: its per-sample host generators live in `minicnn.data.rng`.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

_rng = np.random.default_rng(0)
_gpu_rng: Any | None = None  # created by generator_for(cupy)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed minicnn's generators (weights init, dropout masks) on every backend."""
    global _rng, _gpu_rng
    _rng, _gpu_rng = np.random.default_rng(seed), None
    return _rng


def get_rng() -> np.random.Generator:
    """The CPU (NumPy) generator."""
    return _rng


def generator_for(xp: ModuleType) -> Any:
    """The generator of backend `xp` (numpy or cupy): its draws land on that backend directly."""
    global _gpu_rng
    if xp is np:
        return _rng
    if _gpu_rng is None:
        _gpu_rng = xp.random.default_rng(int(_rng.integers(2 ** 63)))
    return _gpu_rng


def get_state() -> dict:
    """The CPU generator's state as plain data (for checkpoints); restarts the GPU stream (module note)."""
    global _gpu_rng
    _gpu_rng = None
    return dict(_rng.bit_generator.state)


def set_state(state: dict) -> None:
    """Restore what `get_state` returned; the GPU generator is reseeded from it on next use."""
    global _gpu_rng
    _rng.bit_generator.state = state
    _gpu_rng = None
