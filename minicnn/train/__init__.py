"""Training: `fit`, `evaluate`, `predict_proba`, callbacks and resumable checkpoints."""
from .callbacks import (  # noqa: F401
    Callback,
    EarlyStopping,
    GradientClipping,
    LRSchedulerCallback,
    ModelCheckpoint,
    NaNGuard,
    NonFiniteLossError,
)
from .checkpoint import load_training_state, save_training_state  # noqa: F401
from .loop import History, evaluate, fit, outputs_are_probabilities, predict, predict_proba  # noqa: F401
