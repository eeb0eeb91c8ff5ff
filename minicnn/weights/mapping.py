"""`load_pretrained`: put a weights file (safetensors, PyTorch, minicnn) into a model.

    model = minicnn.models.resnet50(in_channels=1)
    report = load_pretrained(model, "resnet50-0676ba61.pth", exclude=["fc."])
    model.fc = nn.Linear(2048, 1)

What it does, in order:
1. reads the file by its content (safetensors, torch zip or legacy pickle, minicnn `save`);
2. unwraps a training checkpoint ({"state_dict": ...}, {"model_state_dict": ...},
   {"model": ...}) and a DataParallel "module." prefix;
3. renames old torchvision DenseNet keys ('denselayer1.norm.1.weight' -> 'norm1.weight');
4. drops keys starting with an `exclude` prefix (a head you will replace);
5. checks names: strict=True refuses missing or unexpected keys (a missing
   `num_batches_tracked`, absent from pre-2018 files, is never an error: the model keeps its own);
6. checks every shape, naming the key and both shapes; the one adaptation is the first conv
   of a model built with in_channels=1: an RGB kernel (O, 3, kh, kw) is summed over its input
   channels to (O, 1, kh, kw), so a gray image x gives what the RGB image (x, x, x) gave;
7. converts dtypes: floating tensors (float16, bfloat16, float64) to the model's float dtype.
"""
from __future__ import annotations

import os
import re
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from ..autograd import Tensor
from ..nn.module import Module
from .errors import WeightsError
from .safetensors import read_safetensors
from .torch_pickle import read_torch

PathLike = Union[str, "os.PathLike[str]"]
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")

# Old torchvision checkpoints (e.g. densenet161-8d451a50.pth, the tutorial's) spell 'norm.1'
# where the current names say 'norm1'.
_OLD_DENSE_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))"
                            r"\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def rename_legacy_densenet_key(key: str) -> str:
    """'...denselayer3.norm.1.weight' -> '...denselayer3.norm1.weight'; other keys unchanged."""
    m = _OLD_DENSE_KEY.match(key)
    return m.group(1) + m.group(2) if m else key


@dataclass
class LoadReport:
    """What load_pretrained did: keys loaded, missing, unexpected, excluded, and adaptations."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        for what in ("missing", "unexpected", "excluded"):
            keys = getattr(self, what)
            if keys:
                lines.append(f"{what} ({len(keys)}): {', '.join(keys)}")
        return "\n".join(lines + self.notes)


def read_weights(path: PathLike) -> Any:
    """The contents of a weights file, whatever its format (detected from its first bytes)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(9)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as e:
            raise WeightsError(f"{path}: corrupt zip file ({e})") from None
        if "__minicnn_manifest__.npy" in names:
            from ..serialization import load
            return load(path)
        return read_torch(path)
    if head[:1] == b"\x80":
        return read_torch(path)
    if len(head) >= 9 and head[8:9] == b"{":
        return read_safetensors(path)
    raise WeightsError(f"{path}: unknown weights format (first bytes {head!r}); expected .safetensors, "
                       f"a PyTorch .pth/.pt or a minicnn checkpoint")


def _is_array_dict(d: Any) -> bool:
    return isinstance(d, dict) and bool(d) and all(isinstance(v, (np.ndarray, Tensor)) for v in d.values())


def extract_state_dict(obj: Any, source: str = "weights") -> OrderedDict[str, np.ndarray]:
    """The {name: array} inside a checkpoint, with any 'module.' prefix removed."""
    if isinstance(obj, Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and not _is_array_dict(obj):
        for k in WRAPPER_KEYS:
            if k in obj and _is_array_dict(obj[k]):
                obj = obj[k]
                break
    if not _is_array_dict(obj):
        found = sorted(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
        raise WeightsError(f"{source}: no state dict found (expected name -> tensor, or one under "
                           f"{'/'.join(WRAPPER_KEYS)}; found {found})")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    strip = all(k.startswith("module.") for k in obj)
    for k, v in obj.items():
        out[k[len("module."):] if strip else k] = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
    return out


def load_pretrained(model: Module, weights: Any, strict: bool = True, exclude: Sequence[str] = ()) -> LoadReport:
    """Load a weights file (path) or state dict into `model` in place; returns a LoadReport.

    strict=True raises on missing or unexpected keys; strict=False loads what matches and
    reports the rest. Shape mismatches always raise (use `exclude` for a replaced head).
    """
    source = os.fspath(weights) if isinstance(weights, (str, os.PathLike)) else "state dict"
    state = extract_state_dict(read_weights(weights) if source != "state dict" else weights, source)
    report = LoadReport()
    renamed: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in state.items():
        new = rename_legacy_densenet_key(k)
        if any(new.startswith(p) for p in exclude):
            report.excluded.append(new)
        else:
            renamed[new] = v
    if len(renamed) + len(report.excluded) != len(state):
        raise WeightsError(f"{source}: two keys map to the same name after renaming")

    own: dict[str, Tensor] = dict(model.named_parameters())
    own.update(model.named_buffers())
    excluded_own = [k for k in own if any(k.startswith(p) for p in exclude)]
    report.missing = [k for k in own if k not in renamed and k not in excluded_own
                      and not k.endswith("num_batches_tracked")]
    report.unexpected = [k for k in renamed if k not in own]
    if strict and (report.missing or report.unexpected):
        raise WeightsError(f"{source}: does not match {type(model).__name__} (strict=True):\n"
                           f"  missing from the file ({len(report.missing)}): {report.missing[:20]}\n"
                           f"  not in the model ({len(report.unexpected)}): {report.unexpected[:20]}\n"
                           f"  pass strict=False to load the rest, or exclude=[prefix, ...] for a replaced head")

    first_conv = next((k for k, p in model.named_parameters() if p.ndim == 4), None)
    ready: OrderedDict[str, np.ndarray] = OrderedDict()
    bad = []
    for k, v in renamed.items():
        if k not in own:
            continue
        t = own[k]
        if k == first_conv and v.ndim == 4 and v.shape[1] == 3 and t.shape[1] == 1 and v.shape[0] == t.shape[0] \
                and v.shape[2:] == tuple(t.shape[2:]):
            v = v.sum(axis=1, keepdims=True, dtype=np.float64)  # (O, 3, kh, kw) -> (O, 1, kh, kw)
            report.notes.append(f"{k}: RGB kernel {tuple(renamed[k].shape)} summed over its input channels "
                                f"to {tuple(v.shape)} for in_channels=1")
        if tuple(v.shape) != tuple(t.shape):
            bad.append(f"  {k}: file has shape {tuple(v.shape)}, model has {tuple(t.shape)}")
            continue
        model_dt = np.dtype(str(t.dtype))
        if np.issubdtype(model_dt, np.floating):
            if not np.issubdtype(v.dtype, np.floating):
                bad.append(f"  {k}: file has dtype {v.dtype}, model expects floating point")
                continue
            v = v.astype(model_dt)
        ready[k] = v
    if bad:
        raise WeightsError(f"{source}: shape mismatch loading into {type(model).__name__}:\n" + "\n".join(bad))
    model.load_state_dict(ready, strict=False)
    report.loaded = list(ready)
    return report

