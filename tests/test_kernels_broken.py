"""The CPU harness can fail: each tests/kernels_broken/*.cu is a real kernel with one planted bug
(missing barrier, off-by-one bound, divergent barrier, forgotten store), run through the same
launch code and check as the real kernel, which must pass the same check."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cuda_refs import maxpool_ref, out_size, windows

from minicnn.cuda import launches as L
from minicnn.cuda.cpu_harness import (
    CpuModule,
    HarnessError,
    OutOfBoundsWrite,
    compiler_available,
)
from minicnn.cuda.sources import source_path

pytestmark = pytest.mark.skipif(not compiler_available(), reason="no C++ compiler (g++) to build the CPU harness")
BROKEN = Path(__file__).parent / "kernels_broken"


def run_depthwise(m: CpuModule) -> bool:
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 19, 18)), rng.standard_normal((3, 1, 3, 3))
    y = np.full((2, 3, 19, 18), np.nan)
    L.depthwise_forward(m, x, w, y, (1, 1), (1, 1), (1, 1))
    return np.allclose(y, np.einsum("ncijyx,cij->ncyx", windows(x, (3, 3), (1, 1), (1, 1), (1, 1)), w[:, 0]))


def run_bias_grad(m: CpuModule) -> bool:
    dy = np.random.default_rng(4).standard_normal((3, 5, 7, 9))
    db = np.full(5, np.nan)
    L.bias_grad(m, dy, db)
    return np.allclose(db, dy.sum(axis=(0, 2, 3)))


def run_maxpool_backward(m: CpuModule) -> bool:
    x = np.random.default_rng(5).standard_normal((2, 3, 11, 14))
    y, idx = maxpool_ref(x, (3, 3), (2, 2), (1, 1))
    dx = np.full(x.shape, np.nan)
    L.maxpool_backward(m, np.ones_like(y), idx, dx, (3, 3), (2, 2), (1, 1))
    want = np.zeros(x.size)
    np.add.at(want.reshape(2 * 3, -1), (np.arange(6)[:, None], idx.reshape(6, -1)), 1.0)
    return np.allclose(dx.ravel(), want)


def run_bn_stats(m: CpuModule) -> bool:
    x = np.random.default_rng(6).standard_normal((3, 5, 9, 11))
    mean, var = np.full(5, np.nan), np.full(5, np.nan)
    L.bn_stats(m, x, mean, var)
    return np.allclose(mean, x.mean(axis=(0, 2, 3))) and np.allclose(var, x.var(axis=(0, 2, 3)))


def run_conv3x3(m: CpuModule) -> bool:
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 11, 10, 9)), rng.standard_normal((19, 11, 3, 3))
    y = np.full((2, 19, out_size(10, 3, 1, 1), out_size(9, 3, 1, 1)), np.nan)
    L.conv3x3(m, x, w, y, (1, 1), (1, 1))
    return np.allclose(y, np.einsum("ncijyx,ocij->noyx", windows(x, (3, 3), (1, 1), (1, 1), (1, 1)), w))


CASES: list[tuple[str, str, Callable[[CpuModule], bool], type]] = [
    # (broken fixture, real kernel, check, how the harness must catch it)
    ("depthwise_missing_sync.cu", "depthwise_conv", run_depthwise, AssertionError),
    ("bias_grad_missing_sync.cu", "bias_act", run_bias_grad, AssertionError),
    ("maxpool_off_by_one.cu", "maxpool", run_maxpool_backward, OutOfBoundsWrite),
    ("bn_stats_divergent_barrier.cu", "batchnorm_stats", run_bn_stats, HarnessError),
    ("conv3x3_forgotten_store.cu", "conv3x3", run_conv3x3, AssertionError),
]


@pytest.mark.parametrize("fixture,real,check,caught_as", CASES, ids=[c[0] for c in CASES])
def test_broken_kernel_is_caught(fixture, real, check, caught_as):
    for shuffle in (False, True):                          # the real kernel passes in both orders
        assert check(CpuModule(source_path(real), grid_cap=3, shuffle=shuffle)), f"{real}.cu failed its own check"
    caught = []
    for shuffle in (False, True):
        m = CpuModule(BROKEN / fixture, grid_cap=3, shuffle=shuffle)
        try:
            ok = check(m)
        except HarnessError as e:
            caught.append(type(e))
            continue
        if not ok:
            caught.append(AssertionError)
    assert caught, f"{fixture}: the harness did not catch the planted bug in either thread order"
    assert all(issubclass(c, caught_as) for c in caught), \
        f"{fixture}: caught as {caught}, expected {caught_as.__name__}"


def test_out_of_bounds_message_names_the_argument():
    m = CpuModule(BROKEN / "maxpool_off_by_one.cu", grid_cap=3)
    with pytest.raises(OutOfBoundsWrite, match=r"after argument 'dx'"):
        run_maxpool_backward(m)


def test_divergent_barrier_message_names_the_line():
    m = CpuModule(BROKEN / "bn_stats_divergent_barrier.cu", grid_cap=3)
    with pytest.raises(HarnessError, match=r"divergent __syncthreads: .*bn_stats_divergent_barrier\.cu:\d+"):
        run_bn_stats(m)


def test_wrong_dtype_and_arity_are_rejected():
    m = CpuModule(source_path("bias_act"), grid_cap=3)
    x = np.zeros((2, 3, 4), np.float64)
    with pytest.raises(TypeError, match="'bias'.*float32"):
        m.launch("bias_act_f32", 1, 256, [x.astype(np.float32), np.zeros(3), x.astype(np.float32), 2, 3, 4, 1])
    with pytest.raises(TypeError, match="expected 7 arguments"):
        m.launch("bias_act_f64", 1, 256, [x, np.zeros(3), x])
