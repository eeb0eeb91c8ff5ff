"""Directional gradient checks (float64) on inputs large enough to take every CPU fast path:
each conv algorithm, depthwise with several channel blocks, both max-pooling paths with
threads, batch norm with several channel blocks per sample, blocked ReLU."""
import numpy as np
import pytest

from minicnn.autograd import Function, Tensor
from minicnn.cpu import tuning
from minicnn.cpu.conv import choose_conv_algorithm
from minicnn.gradcheck import GradcheckError, gradcheck
from minicnn.ops import batch_norm, conv2d, depthwise_conv2d, max_pool2d, relu


def leaves(rng, *shapes):
    return [Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


def test_directional_mode_catches_a_wrong_gradient(rng):
    class Wrong(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, gy):
            return gy * self.x * 2.002  # 0.1 % off: the check must notice on a big input
    x = leaves(rng, (64, 64))
    with pytest.raises(GradcheckError, match="directional gradcheck failed"):
        gradcheck(lambda t: Wrong()(t), x, mode="directional", rtol=1e-4)
    assert gradcheck(lambda t: t * t, x, mode="directional", rtol=1e-6)


@pytest.mark.parametrize("algorithm,kw,x_shape,k", [
    ("pointwise", dict(), (3, 16, 20, 20), 1),
    ("wide", dict(padding=1), (2, 16, 24, 24), 3),
    ("wide", dict(padding="same", dilation=2, groups=2), (2, 8, 21, 17), 3),
    ("strided", dict(stride=2, padding="same"), (3, 8, 23, 19), 3),
    ("strided", dict(padding=1), (5, 4, 9, 8), 3),
    ("reference", dict(stride=(2, 1), padding=2), (2, 6, 17, 15), 5),
])
def test_conv_algorithms_directional(algorithm, kw, x_shape, k, rng):
    o, g = 12, kw.get("groups", 1)
    x, w, b = leaves(rng, x_shape, (o, x_shape[1] // g, k, k), (o,))
    assert gradcheck(lambda *t: conv2d(*t, **kw, algorithm=algorithm), [x, w, b], mode="directional", rtol=1e-6)


def test_auto_rule_reaches_wide_on_the_big_input(rng):
    """(2, 16, 24, 24) with a 3x3 'same' kernel is above WIDE_MIN_WORK: "auto" takes the wide path."""
    assert 16 * 9 * 24 * 24 >= tuning.WIDE_MIN_WORK
    assert choose_conv_algorithm((3, 3), (1, 1), (1, 1, 1, 1), 16, (24, 24)) == "wide"
    x, w = leaves(rng, (2, 16, 24, 24), (8, 16, 3, 3))
    assert gradcheck(lambda *t: conv2d(*t, padding=1), [x, w], mode="directional", rtol=1e-6)


@pytest.mark.parametrize("kw", [dict(padding="same"), dict(stride=2, padding=1), dict(padding=2, dilation=2)])
def test_depthwise_several_channel_blocks_directional(kw, rng):
    x, w, b = leaves(rng, (2, 20, 32, 32), (40, 1, 3, 3), (40,))
    per_channel = 9 * 2 * 32 * 34 * 8           # taps * m * span * itemsize (stride 1, padded width 34)
    assert tuning.DEPTHWISE_BLOCK_BYTES // per_channel < 20  # so the channels come in several blocks
    assert gradcheck(lambda *t: depthwise_conv2d(*t, **kw), [x, w, b], mode="directional", rtol=1e-6)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), (3, 1, "same")])
def test_max_pool_paths_directional(k, s, p, rng):
    shape = (4, 8, 64, 64)                       # > MIN_WORK elements: split over threads
    assert np.prod(shape) >= tuning.MIN_WORK
    n = int(np.prod(shape))
    x = Tensor(rng.permutation(n).reshape(shape) / n, requires_grad=True)  # distinct values 1/n apart
    # a step of eps * |u| (< 1e-7) never reorders two values, so no window changes its winner
    assert gradcheck(lambda t: max_pool2d(t, k, s, p), [x], mode="directional", eps=1e-8, rtol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_blocks_directional(training, rng):
    shape = (2, 7, 256, 256)                     # blocks of 4 channels: two per sample, one short
    assert tuning.BN_BLOCK_ELEMS // (256 * 256) == 4
    x, w, b = leaves(rng, shape, (7,), (7,))
    x.data *= 3
    x.data += 5
    rm, rv = np.zeros(7), np.ones(7)
    assert gradcheck(lambda *t: batch_norm(t[0], rm.copy(), rv.copy(), t[1], t[2], training=training),
                     [x, w, b], mode="directional", rtol=1e-6)


def test_relu_blocked_directional(rng):
    a = rng.standard_normal((3, 5, 101, 67))
    x = Tensor(np.sign(a) * (0.1 + np.abs(a)), requires_grad=True)  # away from the kink at 0
    assert x.data.size > 3 * tuning.BLOCK
    assert gradcheck(relu, [x], mode="directional", rtol=1e-6)
