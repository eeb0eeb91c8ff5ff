"""One seeded generator for parameter init and dropout, so `manual_seed` makes runs repeatable."""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed minicnn's global generator (weights init, dropout masks)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng() -> np.random.Generator:
    return _rng


def get_state() -> dict:
    """The generator's state as plain data (for checkpoints)."""
    return _rng.bit_generator.state


def set_state(state: dict) -> None:
    _rng.bit_generator.state = state
