"""Every kernels/*.cu file compiled by NVRTC (the compiler CuPy uses at run time, no GPU needed) with
the loader's options for sm_75, sm_80 and sm_90, and by nvcc where installed; ptxas' resource report
must show no spills, registers x threads <= 65,536 and static shared memory <= 48 KiB."""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minicnn.cuda import nvrtc
from minicnn.cuda.loader import CUPY_ADDED_OPTIONS, NVRTC_OPTIONS
from minicnn.cuda.signature import parse_signatures
from minicnn.cuda.sources import kernel_names, source_path

ARCHS = ("sm_75", "sm_80", "sm_90")
NAMES = kernel_names()


def options(arch: str, *extra: str) -> tuple[str, ...]:
    return (*NVRTC_OPTIONS, *CUPY_ADDED_OPTIONS, f"-arch={arch}", "--ptxas-options=-v", *extra)


@pytest.fixture(scope="module")
def reports() -> dict:
    """(name, arch) -> NVRTC log, compiled in parallel (NVRTC releases the GIL through ctypes)."""
    if not nvrtc.available():
        if sys.platform == "darwin":
            pytest.skip("NVRTC has no macOS build")
        pytest.fail("libnvrtc is missing: pip install -e '.[test]' installs nvidia-cuda-nvrtc-cu12; "
                    "these tests must run, not skip")
    jobs = [(n, a) for n in NAMES for a in ARCHS]

    def one(job):
        name, arch = job
        return job, nvrtc.compile_cubin(source_path(name).read_text(), f"{name}.cu", options(arch))[1]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, jobs))


@pytest.mark.parametrize("name", NAMES)
def test_nvrtc_resources(reports, name):
    source = source_path(name).read_text()
    entries = set(parse_signatures(source))
    bounds = nvrtc.launch_bounds(source)
    assert entries and set(bounds) == entries, f"{name}.cu: every entry point needs __launch_bounds__"
    assert all(e.endswith(("_f32", "_f64")) for e in entries)
    assert {e[:-4] for e in entries if e.endswith("_f32")} == {e[:-4] for e in entries if e.endswith("_f64")}
    problems = []
    for arch in ARCHS:
        res = nvrtc.parse_resources(reports[name, arch])
        assert set(res) == entries, f"{name}.cu {arch}: report covers {sorted(res)}, expected {sorted(entries)}"
        for r in res.values():
            assert r.arch == arch
            problems += nvrtc.resource_problems(r, bounds[r.kernel])
    assert not problems, "\n".join(problems)


def test_sources_follow_the_rules():
    for name in NAMES:
        text = source_path(name).read_text()
        assert "#include" not in text, f"{name}.cu: NVRTC has no host headers"
        assert "extern __shared__" not in text, f"{name}.cu: shared memory sizes must be compile-time"
        assert text.startswith("//"), f"{name}.cu must open with its comment block"
        for word in ("__shfl", "atomicCAS", "__syncwarp"):
            assert word not in text, f"{name}.cu uses {word}, which the CPU harness does not implement"


def test_resource_check_catches_spills():
    """The limits can fail: conv3x3 squeezed into 24 registers must spill, and the check must say so."""
    if not nvrtc.available():
        pytest.skip("covered by the failure in test_nvrtc_resources")
    _, log = nvrtc.compile_cubin(source_path("conv3x3").read_text(), "conv3x3.cu",
                                options("sm_80", "--maxrregcount=24"))
    problems = [p for r in nvrtc.parse_resources(log).values() for p in nvrtc.resource_problems(r, 256)]
    assert any("spills" in p for p in problems)
    fat = nvrtc.Resources("k", "sm_80", 255, 50000, 0, 0, 0)
    assert len(nvrtc.resource_problems(fat, 1024)) == 2


def test_nvrtc_reports_errors():
    if not nvrtc.available():
        pytest.skip("covered by the failure in test_nvrtc_resources")
    with pytest.raises(nvrtc.NvrtcError, match="undefined"):
        source = 'extern "C" __global__ void k(float* y) { y[0] = undefined_thing; }'
        nvrtc.compile_cubin(source, "bad.cu", options("sm_80"))


@pytest.mark.skipif(nvrtc.nvcc_path() is None, reason="nvcc not installed")
def test_nvcc_compiles_every_kernel(tmp_path: Path):
    nvcc = str(nvrtc.nvcc_path())

    def one(name: str) -> tuple[str, subprocess.CompletedProcess]:
        cmd = [nvcc, "-cubin", "-arch=sm_90", *NVRTC_OPTIONS, *CUPY_ADDED_OPTIONS, "-Xptxas", "-v",
               "-o", str(tmp_path / f"{name}.cubin"), str(source_path(name))]
        return name, subprocess.run(cmd, capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, NAMES))
    for name, proc in results:
        assert proc.returncode == 0, f"nvcc {name}.cu:\n{proc.stderr}"
        bounds = nvrtc.launch_bounds(source_path(name).read_text())
        res = nvrtc.parse_resources(proc.stderr + proc.stdout)
        assert set(res) == set(bounds)
        problems = [p for r in res.values() for p in nvrtc.resource_problems(r, bounds[r.kernel])]
        assert not problems, "\n".join(problems)
