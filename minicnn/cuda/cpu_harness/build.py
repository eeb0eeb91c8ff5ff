"""Compile one .cu file for the CPU harness into a cached shared library (keyed by content hash)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from ..signature import Signature, parse_signatures

HEADER = Path(__file__).with_name("cuda_cpu.h")
# -fno-gnu-unique: template statics (our __shared__ arrays) must stay private to each library;
# -O1 keeps the build near 2-3 s per file while the fibers still run fast enough.
CXXFLAGS = ("-std=c++20", "-O1", "-fPIC", "-shared", "-fno-gnu-unique", "-fvisibility=hidden",
            "-Wall", "-Wno-unused-function", "-Wno-unused-variable")


def compiler() -> str:
    """The C++ compiler to use ($CXX or g++)."""
    return os.environ.get("CXX", "g++")


def compiler_available() -> bool:
    """True when the C++ compiler can be found on PATH."""
    return shutil.which(compiler()) is not None


@cache
def _compiler_version() -> str:
    return subprocess.run([compiler(), "--version"], capture_output=True, text=True, check=True).stdout


def cache_dir() -> Path:
    """$MINICNN_CUDA_CPU_CACHE, else a per-user folder under the system temp dir."""
    env = os.environ.get("MINICNN_CUDA_CPU_CACHE")
    d = Path(env) if env else Path(tempfile.gettempdir()) / f"minicnn-cuda-cpu-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def launcher_name(kernel: str) -> str:
    return f"cucpu_launch_{kernel}"


def wrapper_source(cu_path: Path, sigs: dict[str, Signature]) -> str:
    """A translation unit that includes the header and the unmodified .cu file, plus one launcher
    per entry point taking (grid, block, shuffle, seed, void** args) like cuLaunchKernel."""
    lines = [f'#include "{HEADER}"', f'#include "{cu_path.resolve()}"', ""]
    for name, sig in sigs.items():
        call = ", ".join(f"*({p.ctype}*)a[{i}]" for i, p in enumerate(sig.params))
        lines += [
            f'extern "C" __attribute__((visibility("default"))) int {launcher_name(name)}(',
            "    unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,",
            "    int shuffle, unsigned long long seed, void** a) {",
            f"  return cucpu::launch(dim3(gx, gy, gz), dim3(bx, by, bz), shuffle, seed, [&]() {{ {name}({call}); }});",
            "}",
        ]
    return "\n".join(lines) + "\n"


def build_library(cu_path: Path) -> tuple[Path, dict[str, Signature]]:
    """Compile `cu_path` (cached by the hash of everything that goes into the build); returns (.so, signatures)."""
    cu_path = Path(cu_path)
    source = cu_path.read_text()
    sigs = parse_signatures(source)
    if not sigs:
        raise ValueError(f"{cu_path}: no extern \"C\" __global__ entry points found")
    wrapper = wrapper_source(cu_path, sigs)
    key = hashlib.sha256("\0".join([HEADER.read_text(), source, wrapper, " ".join(CXXFLAGS),
                                    _compiler_version()]).encode()).hexdigest()[:20]
    out = cache_dir() / f"{cu_path.stem}-{key}.so"
    if out.exists():
        return out, sigs
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        src = Path(tmp) / f"{cu_path.stem}_cpu.cpp"
        src.write_text(wrapper)
        so = Path(tmp) / out.name
        proc = subprocess.run([compiler(), *CXXFLAGS, "-o", str(so), str(src)],
                              check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"CPU build of {cu_path} failed:\n{proc.stderr[-6000:]}")
        os.replace(so, out)  # atomic: a concurrent build of the same key writes the same bytes
    return out, sigs
