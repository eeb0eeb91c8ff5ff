"""The backend seam: dispatch by array module, BackendError without a GPU body, the GPU bodies
(run here on NumPy arrays) against the loop references, per-backend RNG, releasable scratch."""
import types

import numpy as np
import pytest

import minicnn
from minicnn import backend, random as mrandom
from minicnn.autograd import Function, Tensor
from minicnn.backend import BackendError
from minicnn.gradcheck import gradcheck
from minicnn.ops import (BatchNormFn, Conv2dFn, DepthwiseConv2dFn, MaxPool2dFn, ReLU, batch_norm_naive,
                         conv2d_naive, depthwise_conv2d_naive, dropout, max_pool2d_naive)
from minicnn.ops.naive import MaxPool2dNaiveFn
from test_conv_ops import check_vs_reference


class FakeDeviceArray(np.ndarray):
    """Stands in for a cupy.ndarray: a distinct array type that a fake array module claims."""


def fake_cupy(monkeypatch, draws):
    """Install a fake CuPy whose arrays are FakeDeviceArray and whose generator records draws."""
    class Gen:
        def __init__(self, seed):
            self.inner = np.random.default_rng(seed)

        def random(self, shape, dtype=np.float64):
            draws.append(shape)
            return self.inner.random(shape, dtype=dtype).view(FakeDeviceArray)

    mod = types.SimpleNamespace(ndarray=FakeDeviceArray, float32=np.float32, float64=np.float64,
                                asarray=lambda a, dtype=None: np.asarray(a, dtype=dtype).view(FakeDeviceArray),
                                random=types.SimpleNamespace(default_rng=Gen), __name__="fakecupy")
    monkeypatch.setattr(backend, "cp", mod)
    monkeypatch.setattr(mrandom, "_gpu_rng", None)
    return mod


def on_device(a):
    return np.asarray(a).view(FakeDeviceArray)


class CpuOnly(Function):
    calls = 0

    def forward_cpu(self, x):
        CpuOnly.calls += 1
        return x * 2

    def backward_cpu(self, gy):
        return gy * 2


def test_dispatch_by_array_module(monkeypatch):
    cp = fake_cupy(monkeypatch, [])
    assert backend.get_array_module(on_device(np.ones(2))) is cp
    assert backend.get_array_module(np.ones(2)) is np
    assert np.array_equal(CpuOnly().forward(np.ones(3)), [2, 2, 2])


def test_missing_gpu_body_raises_naming_the_op_and_never_runs_the_cpu_body(monkeypatch):
    fake_cupy(monkeypatch, [])
    CpuOnly.calls = 0
    with pytest.raises(BackendError, match=r"CpuOnly: the GPU path of this op does not exist yet"):
        CpuOnly().forward(on_device(np.ones(3)))
    with pytest.raises(BackendError, match="CpuOnly.*backward_gpu"):
        CpuOnly().backward(on_device(np.ones(3)))
    assert CpuOnly.calls == 0  # no silent host round trip
    with pytest.raises(BackendError, match="MaxPool2dNaiveFn"):  # the loop references are CPU-only
        MaxPool2dNaiveFn(2, None, 0).forward(on_device(np.ones((1, 1, 4, 4))))
    assert issubclass(BackendError, NotImplementedError)


def gpu_body(cls):
    """The op with its GPU bodies in the CPU slots, so they run (and are tested) on NumPy arrays."""
    return type(f"{cls.__name__}OnGpuBody", (cls,), {"forward_cpu": cls.forward_gpu, "backward_cpu": cls.backward_gpu})


@pytest.mark.parametrize("kw", [dict(stride=1, padding=1), dict(stride=2, padding="same", dilation=1),
                                dict(stride=(1, 2), padding=0, dilation=2), dict(stride=1, padding=0, groups=2)])
def test_conv_gpu_body_is_the_reference(kw, rng):
    x, w, b = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 4 // kw.get("groups", 1), 3, 3)), rng.standard_normal(6)
    fast = lambda *t: gpu_body(Conv2dFn)(**kw)(*t)  # noqa: E731
    check_vs_reference(fast, lambda *t: conv2d_naive(*t, **kw), [x, w, b], rng)
    assert gradcheck(fast, [Tensor(a, requires_grad=True) for a in (x, w, b)])


@pytest.mark.parametrize("kw", [dict(stride=1, padding="same"), dict(stride=2, padding=1), dict(dilation=2, padding=0)])
@pytest.mark.parametrize("m", [1, 2])
def test_depthwise_gpu_body_matches_naive(kw, m, rng):
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((3 * m, 1, 3, 3)), rng.standard_normal(3 * m)
    fast = lambda *t: gpu_body(DepthwiseConv2dFn)(**kw)(*t)  # noqa: E731
    check_vs_reference(fast, lambda *t: depthwise_conv2d_naive(*t, **kw), [x, w, b], rng)
    assert gradcheck(fast, [Tensor(a, requires_grad=True) for a in (x, w, b)])


@pytest.mark.parametrize("case", [(2, None, 0), (3, 2, 1), (3, 1, "same"), ((2, 3), (1, 2), "same")])
def test_max_pool_gpu_body_matches_naive(case, rng):
    k, s, p = case
    x = rng.permutation(2 * 3 * 8 * 7).reshape(2, 3, 8, 7) / 7.0
    fast = lambda t: gpu_body(MaxPool2dFn)(k, s, p)(t)  # noqa: E731
    check_vs_reference(fast, lambda t: max_pool2d_naive(t, k, s, p), [x], rng)
    assert gradcheck(fast, [Tensor(x, requires_grad=True)])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gpu_body_matches_naive(training, rng):
    x, w, b = rng.standard_normal((4, 3, 5, 6)) * 2 + 3, rng.standard_normal(3), rng.standard_normal(3)
    stats = [(np.full(3, 0.5), np.full(3, 2.0)) for _ in range(2)]

    def fast(x, w, b):
        return gpu_body(BatchNormFn)(*stats[0], training)(x, w, b)

    def ref(x, w, b):
        return batch_norm_naive(x, *stats[1], w, b, training=training)
    check_vs_reference(fast, ref, [x, w, b], rng)
    np.testing.assert_allclose(stats[0][0], stats[1][0], atol=1e-12)
    assert gradcheck(lambda *t: gpu_body(BatchNormFn)(np.zeros(3), np.ones(3), training)(*t),
                     [Tensor(a, requires_grad=True) for a in (x, w, b)])


def test_relu_gpu_body(rng):
    x = rng.standard_normal((3, 4))
    f = gpu_body(ReLU)()
    assert np.array_equal(f.forward(x), np.maximum(x, 0))
    assert np.array_equal(f.backward(np.ones_like(x)), (x > 0).astype(float))


# ---- random numbers ----------------------------------------------------------------------
def test_dropout_draws_its_mask_on_the_inputs_backend(monkeypatch):
    draws = []
    fake_cupy(monkeypatch, draws)
    minicnn.manual_seed(3)
    x = on_device(np.ones((4, 5), dtype=np.float32))
    host_before = mrandom.get_rng().bit_generator.state
    y = dropout(Tensor(x), 0.5)
    assert draws == [(4, 5)] and isinstance(y.data, FakeDeviceArray) and y.dtype == np.float32
    host_after_first = mrandom.get_rng().bit_generator.state
    assert host_after_first != host_before  # the GPU generator was seeded once from the host stream
    dropout(Tensor(x), 0.5)
    assert mrandom.get_rng().bit_generator.state == host_after_first  # later masks: no host draws
    assert set(np.unique(np.asarray(y.data))) <= {0.0, 2.0}


def test_gpu_generator_follows_manual_seed_and_set_state(monkeypatch):
    fake_cupy(monkeypatch, [])
    x = on_device(np.ones(1000))

    def mask():
        return np.asarray(dropout(Tensor(x), 0.5).data)
    minicnn.manual_seed(7)
    a = mask()
    minicnn.manual_seed(7)
    assert np.array_equal(a, mask())
    state = mrandom.get_state()  # a checkpoint mid-run
    after_save = [mask(), mask()]
    mrandom.set_state(state)      # resume from it
    assert all(np.array_equal(m, mask()) for m in after_save)  # the same GPU draws as the saving run


def test_cpu_dropout_stream_is_the_seeded_host_generator():
    minicnn.manual_seed(5)
    a = dropout(Tensor(np.ones(50)), 0.3).data
    minicnn.manual_seed(5)
    assert np.array_equal(a, dropout(Tensor(np.ones(50)), 0.3).data)


def test_workspace_release_is_per_backend():
    from minicnn.cpu import workspace
    workspace.release()
    buf = workspace.scratch("test", (10, 10), np.float64, np)
    assert buf.shape == (10, 10)
    assert workspace.release(types.SimpleNamespace(__name__="cupy")) == 0  # other backend: untouched
    assert workspace.release(np) == 800
    assert workspace.release() == 0
