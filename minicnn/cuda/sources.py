"""Where the CUDA sources live: package `minicnn.kernels` in a wheel, the top-level `kernels/` in a checkout."""
from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from .signature import Signature, parse_signatures


def kernels_dir() -> Path:
    """The folder holding kernels/*.cu (installed package data first, then the source checkout)."""
    spec = importlib.util.find_spec("minicnn.kernels")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if any(Path(loc).glob("*.cu")):
                return Path(loc)
    here = Path(__file__).resolve().parents[2] / "kernels"
    if any(here.glob("*.cu")):
        return here
    raise FileNotFoundError(f"minicnn: no CUDA sources found (looked for package minicnn.kernels and {here}); "
                            "reinstall minicnn so that its kernels/*.cu files are included")


def kernel_names() -> list[str]:
    """Stems of every kernels/*.cu file, sorted."""
    return sorted(p.stem for p in kernels_dir().glob("*.cu"))


def source_path(name: str) -> Path:
    """Path of kernels/<name>.cu; a clear error listing the known files otherwise."""
    path = kernels_dir() / f"{name}.cu"
    if not path.is_file():
        raise FileNotFoundError(f"minicnn: no kernel file {name}.cu in {kernels_dir()}; known: {kernel_names()}")
    return path


@cache
def read_source(path: Path) -> tuple[str, dict[str, Signature]]:
    """(source text, entry-point signatures) of one .cu file."""
    text = path.read_text()
    return text, parse_signatures(text)
