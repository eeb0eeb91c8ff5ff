"""The one error type of the weight readers: what is wrong and with which file."""
from __future__ import annotations


class WeightsError(ValueError):
    """A weights file is malformed, truncated, tampered with or asks for something forbidden."""
