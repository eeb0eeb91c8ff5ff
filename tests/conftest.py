import os
from pathlib import Path

import numpy as np
import pytest

import minicnn


@pytest.fixture(autouse=True)
def _seed():
    minicnn.manual_seed(0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def data_dir():
    """$MINICNN_DATA_DIR if it exists, else None (real-data tests skip)."""
    d = os.environ.get("MINICNN_DATA_DIR")
    return Path(d) if d and Path(d).is_dir() else None
