"""Module system, Linear, Dropout, activations, init and their bad-input errors."""
import math

import numpy as np
import pytest

from minicnn import Tensor, gradcheck, nn
from minicnn.nn import functional as F


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 5)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(5, 2, bias=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_linear_gradcheck(rng):
    layer = nn.Linear(4, 3).double()
    x = Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), [x, layer.weight, layer.bias])
    x3 = Tensor(rng.standard_normal((2, 5, 4)), requires_grad=True)  # extra leading dims
    assert gradcheck(lambda x, w: F.linear(x, w), [x3, layer.weight])


def test_linear_matches_formula_and_layout(rng):
    layer = nn.Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-6)
    bound = 1 / math.sqrt(4)  # PyTorch default init bounds
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound


def test_linear_wrong_shape_error():
    with pytest.raises(ValueError, match=r"Linear\(in_features=3.*expected input \(\.\.\., 3\), got shape \(2, 4\)"):
        nn.Linear(3, 2)(Tensor(np.zeros((2, 4), np.float32)))


def test_module_registration_and_state_dict():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight"]
    assert m.num_parameters() == 3 * 5 + 5 + 5 * 2
    sd = m.state_dict()
    m2 = TwoLayer()
    m2.load_state_dict(sd)
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    sd["fc1.weight"][:] = 0  # state_dict is a copy, not a view
    assert np.abs(m.fc1.weight.data).sum() > 0
    assert "(fc1): Linear(in_features=3, out_features=5, bias=True)" in repr(m)


def test_load_state_dict_errors():
    m = TwoLayer()
    sd = m.state_dict()
    bad = dict(sd)
    del bad["fc1.bias"]
    bad["extra.weight"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys: \['fc1.bias'\].*\n.*unexpected keys: \['extra.weight'\]"):
        m.load_state_dict(bad)
    missing, unexpected = m.load_state_dict(bad, strict=False)
    assert missing == ["fc1.bias"] and unexpected == ["extra.weight"]
    wrong = dict(sd)
    wrong["fc2.weight"] = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"fc2.weight: checkpoint has shape \(5, 2\), model has \(2, 5\)"):
        m.load_state_dict(wrong)


def test_train_eval_freeze_zero_grad():
    m = TwoLayer()
    m.eval()
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    m.fc1.requires_grad_(False)
    out = m(Tensor(np.ones((2, 3), np.float32))).sum()
    out.backward()
    assert m.fc1.weight.grad is None and m.fc2.weight.grad is not None
    m.zero_grad()
    assert m.fc2.weight.grad is None


def test_sequential_and_modulelist():
    seq = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid())
    assert len(seq) == 4 and isinstance(seq[1], nn.Tanh)
    y = seq(Tensor(np.zeros((3, 2), np.float32)))
    assert y.shape == (3, 1)
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(list(ml.parameters())) == 6


def test_flatten():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert nn.Flatten()(x).shape == (2, 12)


def test_dropout_train_and_eval():
    x = Tensor(np.ones((200, 500), np.float32))
    d = nn.Dropout(0.3)
    y = d(x).data
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_dropout_gradient_uses_same_mask(rng):
    x = Tensor(rng.standard_normal((4, 6)), requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, (y.data != 0) * 2.0)


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.2), nn.Sigmoid(), nn.Tanh(),
                                   nn.Softmax(dim=1), nn.LogSoftmax(dim=1)])
def test_activation_layers(rng, layer):
    x = Tensor(rng.standard_normal((3, 4)) + 0.05, requires_grad=True)
    assert gradcheck(layer, [x])


def test_init_statistics():
    w = nn.Parameter(np.zeros((200, 300), np.float32))
    nn.init.xavier_uniform_(w)
    a = math.sqrt(6 / 500)
    assert np.abs(w.data).max() <= a and abs(w.data.std() - a / math.sqrt(3)) < 0.01 * a
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2 / 300)) < 0.03 * math.sqrt(2 / 300)
    nn.init.constant_(w, 0.25)
    assert (w.data == 0.25).all() and w.dtype == np.float32
    conv_w = nn.Parameter(np.zeros((8, 4, 3, 3), np.float32))
    assert nn.init._fans(conv_w) == (36, 72)
    m = nn.init.keras_init_(TwoLayer())
    assert (m.fc1.bias.data == 0).all()


def test_module_to_double():
    m = TwoLayer().double()
    assert all(p.dtype == np.float64 for p in m.parameters())
