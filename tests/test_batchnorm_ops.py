"""batch_norm op and BatchNorm1d/2d layers: statistics, running stats, eval mode, fused backward."""
import numpy as np
import pytest
from test_conv_ops import check_vs_reference

from minicnn.autograd import Tensor, no_grad
from minicnn.gradcheck import gradcheck
from minicnn.nn.batchnorm import BatchNorm1d, BatchNorm2d
from minicnn.ops import batch_norm, batch_norm_naive

SHAPES = [(4, 3, 5, 6), (1, 2, 3, 5), (5, 3), (3, 2, 4)]  # 2-D, batch 1, (N, C), (N, C, L)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_naive_and_gradcheck(shape, training, affine, rng):
    c = shape[1]
    x = rng.standard_normal(shape) * 3 + 2
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)

    def fast(x, *wb, rm=None, rv=None):
        return batch_norm(x, rm, rv, *wb, training=training, momentum=0.2, eps=1e-3)

    def ref(x, *wb, rm=None, rv=None):
        return batch_norm_naive(x, rm, rv, *wb, training=training, momentum=0.2, eps=1e-3)

    arrays = [x, w, b] if affine else [x]
    rms = [rm.copy(), rm.copy()], [rv.copy(), rv.copy()]
    check_vs_reference(lambda *t: fast(*t, rm=rms[0][0], rv=rms[1][0]),
                       lambda *t: ref(*t, rm=rms[0][1], rv=rms[1][1]), arrays, rng)
    np.testing.assert_allclose(rms[0][0], rms[0][1], atol=1e-12)  # running stats updated identically
    np.testing.assert_allclose(rms[1][0], rms[1][1], atol=1e-12)
    assert gradcheck(lambda *t: fast(*t, rm=rm.copy(), rv=rv.copy()), [Tensor(a, requires_grad=True) for a in arrays])


def test_statistics_are_per_channel_not_per_pixel(rng):
    """Each channel is normalised over (N, H, W): per-pixel normalisation (over N only) would
    leave the per-channel spatial pattern different and the per-pixel means zero."""
    x = rng.standard_normal((8, 3, 4, 5)) + np.arange(20.0).reshape(1, 1, 4, 5)  # a strong spatial trend
    y = batch_norm(x, training=True).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)
    assert np.abs(y.mean(axis=0)).max() > 0.5  # the spatial trend survives


def test_running_stats_unbiased_and_momentum(rng):
    bn = BatchNorm2d(3, momentum=0.1)
    x = rng.standard_normal((4, 3, 2, 3)).astype(np.float32) * 2 + 1
    bn(Tensor(x))
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * var, rtol=1e-5)
    assert int(bn.num_batches_tracked.data) == 1
    assert bn.running_mean.dtype == np.float32


def test_momentum_none_is_cumulative_average(rng):
    bn = BatchNorm1d(2, momentum=None)
    xs = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(3)]
    for x in xs:
        bn(Tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([x.mean(axis=0) for x in xs], axis=0), rtol=1e-5)


def test_eval_uses_running_stats_and_does_not_update(rng):
    bn = BatchNorm2d(2, eps=1e-3)
    bn.running_mean.data[...] = [1.0, -2.0]
    bn.running_var.data[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 1.0]
    bn.bias.data[...] = [0.5, 0.0]
    bn.eval()
    x = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    with no_grad():
        y = bn(Tensor(x)).data
    expected = (x - np.array([1, -2.0]).reshape(1, 2, 1, 1)) / np.sqrt(np.array([4, 0.25]).reshape(1, 2, 1, 1) + 1e-3)
    expected = expected * np.array([2, 1.0]).reshape(1, 2, 1, 1) + np.array([0.5, 0]).reshape(1, 2, 1, 1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bn.running_mean.data, [1.0, -2.0])
    assert int(bn.num_batches_tracked.data) == 0


def test_no_running_stats_uses_batch_stats_in_eval(rng):
    bn = BatchNorm2d(2, track_running_stats=False).eval()
    y = bn(Tensor(rng.standard_normal((4, 2, 3, 3)).astype(np.float32) + 5)).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert "running_mean" not in bn.state_dict()


def test_buffers_in_state_dict_and_load(rng):
    bn = BatchNorm2d(3)
    bn(Tensor(rng.standard_normal((2, 3, 4, 4)).astype(np.float32)))
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    other = BatchNorm2d(3)
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other.running_var.data, bn.running_var.data)


def test_batchnorm1d_dense_and_sequence_inputs(rng):
    for shape in [(5, 4), (5, 4, 7)]:
        bn = BatchNorm1d(4)
        x = Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
        y = bn(x)
        axes = (0,) if len(shape) == 2 else (0, 2)
        np.testing.assert_allclose(y.data.mean(axis=axes), 0, atol=1e-5)
        y.sum().backward()
        assert x.grad.shape == shape


@pytest.mark.parametrize("layer,shape,msg", [
    (BatchNorm2d(3), (2, 4, 5, 5), "BatchNorm2d(3"),
    (BatchNorm2d(3), (2, 3, 5), "(N, C, H, W)"),
    (BatchNorm1d(3), (2, 3, 5, 5), "(N, C) or (N, C, L)"),
    (BatchNorm1d(3), (2, 5), "C=3")])
def test_bad_input_names_layer_and_shape(layer, shape, msg):
    with pytest.raises(ValueError, match=r"got shape \(" + ", ".join(map(str, shape))) as e:
        layer(Tensor(np.zeros(shape, dtype=np.float32)))
    assert msg in str(e.value)


def test_training_with_one_value_per_channel_is_refused():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3)(Tensor(np.zeros((1, 3), dtype=np.float32)))
