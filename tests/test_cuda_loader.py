"""The loader without a GPU: lazy CuPy import, one clear error per missing piece, argument conversion
by kernel signature and compile-once caching (against a stand-in `cupy` module), and the wheel's files."""
from __future__ import annotations

import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minicnn.cuda as mc
from minicnn.cuda import launches as L
from minicnn.cuda import loader

ROOT = Path(__file__).resolve().parents[1]


def run_py(code: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    paths = [str(p) for p in (extra_path, ROOT) if p is not None]
    env = {"PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)


def test_import_does_not_import_cupy(tmp_path):
    """A `cupy` that explodes on import must not be touched by importing minicnn.cuda or asking is_available."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise RuntimeError('cupy was imported')\n")
    proc = run_py("import sys, minicnn.cuda as mc; assert 'cupy' not in sys.modules; print('ok')", tmp_path)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr
    proc = run_py("import minicnn.cuda as mc; print(mc.is_available())", tmp_path)
    assert proc.stdout.strip() == "False", proc.stderr     # a broken CuPy is 'not available', not a crash


def _fake_cupy(device_count=1, error: Exception | None = None):
    cp = types.ModuleType("cupy")

    class ndarray(np.ndarray):
        pass

    def get_device_count():
        if error is not None:
            raise error
        return device_count

    calls: dict = {"modules": 0, "launches": []}

    class RawModule:
        def __init__(self, code, options):
            calls["modules"] += 1
            calls["options"] = options

        def get_function(self, name):
            return lambda grid, block, args: calls["launches"].append((name, grid, block, args))

    class Device:
        def __init__(self, i=0):
            self.attributes = {"MultiProcessorCount": 132}

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    cp.ndarray = ndarray
    cp.RawModule = RawModule
    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count, getDevice=lambda: 0),
                                    Device=Device)
    cp.calls = calls
    return cp


@pytest.mark.parametrize("error,count,expect", [
    (None, 0, "no GPU is visible"),
    (RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient"), 1, "driver is missing"),
    (RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"), 1, "no GPU is visible"),
])
def test_one_clear_error_per_missing_piece(monkeypatch, error, count, expect):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count, error))
    assert not mc.is_available()
    with pytest.raises(mc.CudaUnavailable, match=expect):
        mc.require()


def test_missing_cupy_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)          # makes `import cupy` raise ImportError
    with pytest.raises(mc.CudaUnavailable, match=r"pip install 'minicnn\[gpu\]'"):
        mc.require()


def test_launch_converts_arguments_by_signature(monkeypatch):
    cp = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setattr(loader, "_MODULES", {})
    m = mc.module("bias_act")
    assert mc.module("bias_act") is m and cp.calls["modules"] == 1        # compiled once per process and device
    assert cp.calls["options"] == loader.NVRTC_OPTIONS
    assert m.grid_cap == 132 * loader.BLOCKS_PER_SM
    x = np.zeros((2, 3, 5), np.float32).view(cp.ndarray)
    b = np.zeros(3, np.float32).view(cp.ndarray)
    L.bias_act(m, x, b, x, "relu")
    name, grid, block, args = cp.calls["launches"][-1]
    assert name == "bias_act_f32" and block == (256,) and grid == (1,)
    assert [type(a) for a in args[3:]] == [np.int32, np.int32, np.int64, np.int32]   # N, C, inner, act
    with pytest.raises(TypeError, match="needs dtype float32"):
        L.bias_act(m, x, np.zeros(3).view(cp.ndarray), x)
    with pytest.raises(TypeError, match="needs an array"):
        m.launch("bias_act_f32", 1, 256, [np.zeros(3, np.float32), b, x, 2, 3, 5, 1])  # a NumPy array is not on the GPU
    with pytest.raises(KeyError, match="no kernel"):
        m.launch("nope", 1, 256, [])


def test_launch_code_is_shared_with_the_cpu_harness():
    from minicnn.cuda.cpu_harness import CpuModule
    assert callable(CpuModule.launch) and callable(mc.GpuModule.launch)
    assert set(mc.kernel_names()) >= {"im2col", "col2im", "depthwise_conv", "maxpool", "avgpool", "batchnorm_stats",
                                      "batchnorm_apply", "bias_act", "adam", "conv3x3"}


@pytest.mark.slow
def test_wheel_ships_kernel_sources(tmp_path):
    """`pip wheel .` (not an editable install) must contain kernels/*.cu as minicnn/kernels/*.cu."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for d in ("minicnn", "kernels"):
        shutil.copytree(ROOT / d, src / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "out"),
                           str(src)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "out").glob("minicnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for cu in (ROOT / "kernels").glob("*.cu"):
        assert f"minicnn/kernels/{cu.name}" in names, f"{cu.name} missing from {wheel.name}"
    assert "minicnn/kernels/README.md" in names
    assert "minicnn/cuda/cpu_harness/cuda_cpu.h" in names
