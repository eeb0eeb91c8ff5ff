"""Pretrained weights without a framework: safetensors, PyTorch checkpoints, name mapping."""
from .errors import WeightsError  # noqa: F401
from .mapping import LoadReport, extract_state_dict, load_pretrained, read_weights  # noqa: F401
from .safetensors import read_safetensors, write_safetensors  # noqa: F401
from .torch_pickle import read_torch  # noqa: F401
