"""Full training state on disk: model, optimizer, scheduler, epoch, RNG, callbacks, history."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import random as mrandom
from ..serialization import CheckpointError, load, save

FORMAT = "minicnn-training-state/1"


def save_training_state(path: str, model: Any, optimizer: Any, scheduler: Any, callbacks: Sequence[Any],
                        epoch: int, history: dict) -> None:
    """Write everything needed to continue after `epoch` completed epochs (atomic write)."""
    save({
        "format": FORMAT,
        "epoch": int(epoch),
        "model": dict(model.state_dict()),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": mrandom.get_state(),
        "callbacks": [cb.state_dict() for cb in callbacks],
        "history": {k: list(v) for k, v in history.items()},
    }, path)


def load_training_state(path: str, model: Any, optimizer: Any, scheduler: Any | None,
                        callbacks: Sequence[Any]) -> tuple[int, dict]:
    """Restore what `save_training_state` wrote; returns (epochs done, history so far)."""
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"cannot resume from {path}: it is not a minicnn training-state checkpoint "
                              f"(written by fit(checkpoint=...))")
    try:  # a state from another model, optimizer or scheduler: say which file and what differs
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"cannot resume from {path}: it was saved by a different setup ({e}); resume with "
                              f"the same model, optimizer and scheduler, or start a new run") from e
    mrandom.set_state(state["rng"])
    saved_cbs = state["callbacks"]
    if len(saved_cbs) != len(callbacks):
        raise CheckpointError(f"cannot resume from {path}: saved with {len(saved_cbs)} callbacks, resuming with "
                              f"{len(callbacks)}; pass the same callbacks (and scheduler) as the interrupted run")
    for cb, s in zip(callbacks, saved_cbs):
        if s:
            cb.load_state_dict(s)
    return int(state["epoch"]), state["history"]
