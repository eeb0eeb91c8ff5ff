"""The tutorial's pneumonia CNN: builds at every supported size, Keras defaults (summary(): test_summary.py)."""
import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.models import pneumonia_cnn


@pytest.mark.parametrize("size,side", [(28, 1), (64, 2), (180, 5), (224, 7)])
def test_builds_and_runs_at_each_size(size, side):
    model = pneumonia_cnn(size).eval()
    first_dense = [m for m in model.modules() if isinstance(m, nn.Linear)][0]
    assert first_dense.in_features == 256 * side * side
    with minicnn.no_grad():
        y = model(minicnn.tensor(np.random.rand(2, 1, size, size).astype(np.float32)))
    assert y.shape == (2, 1) and ((y.data > 0) & (y.data < 1)).all()


def test_28px_drops_only_the_last_pool():
    pools = [m for m in pneumonia_cnn(28).modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 4
    assert len([m for m in pneumonia_cnn(64).modules() if isinstance(m, nn.MaxPool2d)]) == 5


def test_keras_defaults():
    model = pneumonia_cnn(64)
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert len(bns) == 7 and all(b.eps == 1e-3 and abs(b.momentum - 0.01) < 1e-12 for b in bns)
    dense = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert all((d.bias.data == 0).all() for d in dense)  # glorot-uniform weights, zero biases
    w = dense[0].weight.data
    assert np.abs(w).max() <= np.sqrt(6 / (w.shape[0] + w.shape[1]))
    assert isinstance(list(model.modules())[-1], nn.Sigmoid)
    assert not isinstance(list(pneumonia_cnn(64, sigmoid=False).modules())[-1], nn.Sigmoid)


def test_too_small_input():
    with pytest.raises(ValueError, match="input_size must be >= 8"):
        pneumonia_cnn(4)
