"""Losses: values against hand formulas, gradient checks, class weights, bad input."""
import numpy as np
import pytest

from minicnn import Tensor, gradcheck, nn
from minicnn.nn import functional as F


def sig(x):
    return 1 / (1 + np.exp(-x))


def test_bce_with_logits_value_and_stability(rng):
    x = rng.standard_normal((6, 1)) * 3
    y = (rng.random((6, 1)) > 0.5).astype(float)
    ref = -(y * np.log(sig(x)) + (1 - y) * np.log(1 - sig(x)))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(Tensor(x), y, reduction="none").data, ref, rtol=1e-10)
    big = F.binary_cross_entropy_with_logits(Tensor(np.array([[1000.0], [-1000.0]])), np.array([[0.0], [1.0]]),
                                             reduction="none")
    np.testing.assert_allclose(big.data, [[1000.0], [1000.0]])


def test_bce_with_logits_pos_weight(rng):
    x = rng.standard_normal((5, 2))
    y = (rng.random((5, 2)) > 0.5).astype(float)
    pw = np.array([3.0, 0.5])
    ref = -(pw * y * np.log(sig(x)) + (1 - y) * np.log(1 - sig(x)))
    out = nn.BCEWithLogitsLoss(pos_weight=pw, reduction="none")(Tensor(x), y)
    np.testing.assert_allclose(out.data, ref, rtol=1e-10)
    xt = Tensor(x, requires_grad=True)
    assert gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw), [xt])


def test_bce_probabilities(rng):
    p = rng.uniform(0.05, 0.95, (4, 3))
    y = (rng.random((4, 3)) > 0.5).astype(float)
    ref = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    assert abs(nn.BCELoss()(Tensor(p), y).item() - ref) < 1e-12
    assert gradcheck(lambda p: F.binary_cross_entropy(p, y, reduction="sum"), [Tensor(p, requires_grad=True)])
    clamp = nn.BCELoss(reduction="none")(Tensor(np.array([0.0, 1.0])), np.array([1.0, 0.0]))
    np.testing.assert_allclose(clamp.data, [100.0, 100.0])  # log clamped at -100, no inf
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*BCEWithLogitsLoss"):
        nn.BCELoss()(Tensor(np.array([1.5])), np.array([1.0]))


def test_bce_shape_mismatch_message():
    with pytest.raises(ValueError, match=r"input shape \(4, 1\) and target shape \(4,\)"):
        nn.BCEWithLogitsLoss()(Tensor(np.zeros((4, 1))), np.zeros(4))


def test_class_weight_keras_semantics(rng):
    x = rng.standard_normal((6, 1))
    y = np.array([[0], [1], [1], [0], [1], [1]], dtype=float)
    cw = {0: 1.5, 1: 0.75}
    sw = nn.sample_weights_from_class_weight(y, cw)
    np.testing.assert_allclose(sw, [1.5, 0.75, 0.75, 1.5, 0.75, 0.75])
    per = -(y * np.log(sig(x)) + (1 - y) * np.log(1 - sig(x)))[:, 0]
    keras = (per * sw).sum() / len(per)  # Keras divides by the batch size
    assert abs(nn.BCEWithLogitsLoss()(Tensor(x), y, sample_weight=sw).item() - keras) < 1e-12
    xt = Tensor(x, requires_grad=True)
    assert gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, y, sample_weight=sw), [xt])


def log_softmax(x):
    m = x.max(1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))


def test_cross_entropy_values(rng):
    x = rng.standard_normal((5, 3))
    t = np.array([0, 2, 1, 2, 2])
    lp = log_softmax(x)
    assert abs(nn.CrossEntropyLoss()(Tensor(x), t).item() - (-lp[np.arange(5), t].mean())) < 1e-12
    w = np.array([0.2, 1.0, 3.0])
    ref = -(w[t] * lp[np.arange(5), t]).sum() / w[t].sum()  # PyTorch's weighted mean
    assert abs(nn.CrossEntropyLoss(weight=w)(Tensor(x), t).item() - ref) < 1e-12
    eps = 0.1
    smooth = -((1 - eps) * lp[np.arange(5), t] + eps / 3 * lp.sum(1)).mean()
    assert abs(nn.CrossEntropyLoss(label_smoothing=eps)(Tensor(x), t).item() - smooth) < 1e-12
    probs = rng.dirichlet(np.ones(3), 5)
    assert abs(F.cross_entropy(Tensor(x), probs).item() - (-(probs * lp).sum(1).mean())) < 1e-12


@pytest.mark.parametrize("kw", [{}, {"weight": np.array([0.2, 1.0, 3.0])}, {"label_smoothing": 0.2},
                                {"reduction": "sum"}, {"sample_weight": np.array([1.0, 2.0, 0.5, 1.0])}])
def test_cross_entropy_gradcheck(rng, kw):
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = np.array([2, 0, 1, 1])
    assert gradcheck(lambda x: F.cross_entropy(x, t, **kw), [x])


def test_cross_entropy_bad_targets():
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target classes must be in \[0, 2\].*\[0, 3\]"):
        nn.CrossEntropyLoss()(x, np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        nn.CrossEntropyLoss()(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="2 logits rows but 3 targets"):
        nn.CrossEntropyLoss()(x, np.array([0, 1, 1]))


def test_mse(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert abs(nn.MSELoss()(Tensor(a), b).item() - ((a - b) ** 2).mean()) < 1e-12
    assert gradcheck(lambda a: F.mse_loss(a, b, reduction="sum"), [Tensor(a, requires_grad=True)])
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
