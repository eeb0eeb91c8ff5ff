"""The CPU harness can fail: each case plants one bug (missing barrier, off-by-one bound, divergent
barrier, forgotten store) into the CURRENT kernels/<name>.cu by an exact text replacement at test
time, runs the mutant through the same launch code and check as the real kernel, which must pass."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

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
from minicnn.cuda.cpu_harness.build import cache_dir
from minicnn.cuda.sources import source_path

pytestmark = pytest.mark.skipif(not compiler_available(), reason="no C++ compiler (g++) to build the CPU harness")


class Mutation(NamedTuple):
    """One planted bug: replace `find` (must occur exactly once) in kernels/<kernel>.cu by `replace`."""
    name: str
    kernel: str
    find: str
    replace: str
    bug: str


MUTATIONS: dict[str, Mutation] = {m.name: m for m in [
    Mutation("depthwise_missing_sync", "depthwise_conv",
             "wt[k] = w[(long long)c * kh * kw + k];\n"
             "        __syncthreads();\n"
             "        const long long oy = by * DW_TILE + ty, ox = bx * DW_TILE + tx;\n",
             "wt[k] = w[(long long)c * kh * kw + k];\n"
             "        const long long oy = by * DW_TILE + ty, ox = bx * DW_TILE + tx;\n",
             "the forward kernel reads the staged patch without __syncthreads() after staging it"),
    Mutation("bias_grad_missing_sync", "bias_act",
             "if (t < half) part[t] += part[t + half];\n"
             "            __syncthreads();\n",
             "if (t < half) part[t] += part[t + half];\n",
             "bias_grad's tree reduction has no __syncthreads() between levels"),
    Mutation("maxpool_off_by_one", "maxpool",
             "e < total; e += step) {\n"
             "        const long long q = e / W, nc = q / H;",
             "e <= total; e += step) {\n"
             "        const long long q = e / W, nc = q / H;",
             "the backward loop runs to e <= total, one element past the end of dx"),
    Mutation("bn_stats_divergent_barrier", "batchnorm_stats",
             "                    sk[t] = kk;\n"
             "                }\n"
             "            }\n"
             "            __syncthreads();\n"
             "        }\n",
             "                    sk[t] = kk;\n"
             "                }\n"
             "                __syncthreads();\n"
             "            }\n"
             "        }\n",
             "the tree's __syncthreads() sits inside `if (t < half)`, so only some threads reach it"),
    Mutation("conv3x3_forgotten_store", "conv3x3",
             "for (int r = 0; r < C3_R; ++r) {\n"
             "                const long long oc = oc0 + grp * C3_R + r;",
             "for (int r = 0; r < C3_R - 1; ++r) {\n"
             "                const long long oc = oc0 + grp * C3_R + r;",
             "each thread stores only 3 of its 4 output channels"),
]}


def mutant_source(mut: Mutation) -> str:
    """kernels/<kernel>.cu as it is now, with the one planted bug; fails loudly if the kernel drifted."""
    real = source_path(mut.kernel)
    text = real.read_text()
    count = text.count(mut.find)
    assert count == 1, (f"mutation {mut.name!r}: the text to replace occurs {count} times in {real} "
                        f"(expected exactly once); update MUTATIONS in {Path(__file__).name} "
                        f"to follow the kernel edit:\n{mut.find}")
    return text.replace(mut.find, mut.replace)


def mutant_path(mut: Mutation) -> Path:
    """The mutant written as <cache>/mutants/<hash>/<kernel>.cu: the kernel's own file name (so
    harness messages read like the real kernel's), a stable path so the built library is cached."""
    text = mutant_source(mut)
    d = cache_dir() / "mutants" / hashlib.sha256(text.encode()).hexdigest()[:20]
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{mut.kernel}.cu"
    if not path.is_file() or path.read_text() != text:
        tmp = d / f".{mut.kernel}.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)  # atomic: a concurrent writer writes the same bytes
    return path


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


CASES: list[tuple[str, Callable[[CpuModule], bool], type]] = [
    # (mutation, check, how the harness must catch it)
    ("depthwise_missing_sync", run_depthwise, AssertionError),
    ("bias_grad_missing_sync", run_bias_grad, AssertionError),
    ("maxpool_off_by_one", run_maxpool_backward, OutOfBoundsWrite),
    ("bn_stats_divergent_barrier", run_bn_stats, HarnessError),
    ("conv3x3_forgotten_store", run_conv3x3, AssertionError),
]


def test_every_mutation_has_a_case():
    assert sorted(c[0] for c in CASES) == sorted(MUTATIONS)


@pytest.mark.parametrize("name,check,caught_as", CASES, ids=[c[0] for c in CASES])
def test_broken_kernel_is_caught(name, check, caught_as):
    mut = MUTATIONS[name]
    for shuffle in (False, True):                          # the real kernel passes in both orders
        assert check(CpuModule(source_path(mut.kernel), grid_cap=3, shuffle=shuffle)), \
            f"{mut.kernel}.cu failed its own check"
    path = mutant_path(mut)
    caught = []
    for shuffle in (False, True):
        m = CpuModule(path, grid_cap=3, shuffle=shuffle)
        try:
            ok = check(m)
        except HarnessError as e:
            caught.append(type(e))
            continue
        if not ok:
            caught.append(AssertionError)
    assert caught, f"{name} ({mut.bug}): the harness did not catch the planted bug in either thread order"
    assert all(issubclass(c, caught_as) for c in caught), \
        f"{name} ({mut.bug}): caught as {caught}, expected {caught_as.__name__}"


def test_out_of_bounds_message_names_the_argument():
    m = CpuModule(mutant_path(MUTATIONS["maxpool_off_by_one"]), grid_cap=3)
    with pytest.raises(OutOfBoundsWrite, match=r"after argument 'dx'"):
        run_maxpool_backward(m)


def test_divergent_barrier_message_names_the_line():
    mut = MUTATIONS["bn_stats_divergent_barrier"]
    path = mutant_path(mut)
    with pytest.raises(HarnessError, match=r"divergent __syncthreads: .*batchnorm_stats\.cu:\d+") as info:
        run_bn_stats(CpuModule(path, grid_cap=3))
    # the reported line is the moved barrier (the one inside `if (t < half)`)
    text = path.read_text()
    want = text[:text.index(mut.replace) + mut.replace.index("__syncthreads")].count("\n") + 1
    assert f"batchnorm_stats.cu:{want}" in str(info.value), str(info.value)


def test_wrong_dtype_and_arity_are_rejected():
    m = CpuModule(source_path("bias_act"), grid_cap=3)
    x = np.zeros((2, 3, 4), np.float64)
    with pytest.raises(TypeError, match="'bias'.*float32"):
        m.launch("bias_act_f32", 1, 256, [x.astype(np.float32), np.zeros(3), x.astype(np.float32), 2, 3, 4, 1])
    with pytest.raises(TypeError, match="expected 7 arguments"):
        m.launch("bias_act_f64", 1, 256, [x, np.zeros(3), x])
