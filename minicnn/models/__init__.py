"""Ready-made CNNs of the chest X-ray tutorials, built from minicnn.nn layers."""
from .pneumonia import pneumonia_cnn  # noqa: F401
