"""The backend seam: dispatch by array module, BackendError without a GPU body, per-backend RNG,
releasable scratch. (The GPU bodies are run against the loop references in test_gpu_bodies.py.)"""
import types

import numpy as np
import pytest

import minicnn
from minicnn import backend
from minicnn import random as mrandom
from minicnn.autograd import Function, Tensor
from minicnn.backend import BackendError
from minicnn.ops import dropout
from minicnn.ops.naive import MaxPool2dNaiveFn


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
    monkeypatch.setattr(backend, "_override", mod)
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


# The GPU bodies themselves (kernels + cuBLAS) are executed on the CPU against these loop
# references, with gradchecks, in tests/test_gpu_bodies.py (through the CPU stand-in of CuPy).


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
