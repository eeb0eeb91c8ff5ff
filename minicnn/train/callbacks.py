"""Keras-style callbacks for `fit`: checkpoints, early stopping, LR schedules, clipping, NaN guard.

A callback overrides any of the hooks below; `trainer` is the running `Trainer`
(model, optimizer, epoch, batch, history, stop_training).
"""
from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np


class Callback:
    def on_train_begin(self, trainer: Any) -> None: ...
    def on_epoch_begin(self, trainer: Any, epoch: int) -> None: ...
    def on_batch_end(self, trainer: Any, batch: int, loss: float) -> None: ...
    def on_after_backward(self, trainer: Any) -> None: ...
    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict) -> None: ...
    def on_train_end(self, trainer: Any) -> None: ...

    def state_dict(self) -> dict:
        """What a resumed run needs to continue exactly (best value so far, counters)."""
        return {}

    def load_state_dict(self, state: dict) -> None: ...


def _better(mode: str, monitor: str) -> str:
    if mode == "auto":
        return "min" if "loss" in monitor else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


class _Monitor(Callback):
    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0):
        self.monitor, self.mode, self.min_delta = monitor, _better(mode, monitor), abs(min_delta)
        self.best = math.inf if self.mode == "min" else -math.inf

    def _value(self, logs: dict) -> float | None:
        if self.monitor not in logs:
            raise KeyError(f"{type(self).__name__}: monitored metric {self.monitor!r} is not in the epoch logs "
                           f"{sorted(logs)} (did you pass a val_loader?)")
        v = float(logs[self.monitor])
        return None if math.isnan(v) else v

    def _improved(self, v: float | None) -> bool:
        if v is None:
            return False
        return v < self.best - self.min_delta if self.mode == "min" else v > self.best + self.min_delta

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])


class ModelCheckpoint(_Monitor):
    """Save the model's weights whenever `monitor` improves (atomically; a crash never leaves half a file).

    restore_best_weights=True loads the best weights back into the model when training ends.
    start_epoch: epochs (zero-based) before it are not considered at all (e.g. 4 for a tutorial's
    `if epoch > 3 and val_acc > best`).
    """

    def __init__(self, path: str, monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = True, restore_best_weights: bool = False, verbose: bool = True,
                 start_epoch: int = 0):
        super().__init__(monitor, mode)
        self.path, self.save_best_only, self.start_epoch = str(path), save_best_only, int(start_epoch)
        self.restore_best_weights, self.verbose = restore_best_weights, verbose
        self.best_epoch: int | None = None

    def on_train_begin(self, trainer: Any) -> None:
        if self.restore_best_weights and self.best_epoch is not None and not os.path.isfile(self.path):
            raise FileNotFoundError(
                f"ModelCheckpoint: the resumed run's best weights (epoch {self.best_epoch + 1}, "
                f"{self.monitor}={self.best:.4f}) should be in {self.path}, which is missing; put the file back, "
                f"or start a new run (the training state alone cannot restore the best weights)")

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict) -> None:
        from ..serialization import save
        if epoch < self.start_epoch:
            return
        v = self._value(logs)
        improved = self._improved(v)
        if improved or not self.save_best_only:
            if improved and self.verbose:
                print(f"  {self.monitor} improved from {self.best:.4f} to {v:.4f}; saving {self.path}")
            save(trainer.model.state_dict(), self.path)
            if improved and v is not None:  # only once the file is complete: an interrupted save keeps the old
                self.best, self.best_epoch = v, epoch

    def on_train_end(self, trainer: Any) -> None:
        from ..serialization import load
        if self.restore_best_weights and self.best_epoch is not None:
            if not os.path.isfile(self.path):
                warnings.warn(f"ModelCheckpoint: {self.path} has disappeared; keeping the last weights instead "
                              f"of the best (epoch {self.best_epoch + 1})", stacklevel=2)
                return
            trainer.model.load_state_dict(load(self.path))
            if self.verbose:
                print(f"  restored the best weights (epoch {self.best_epoch + 1}, {self.monitor}={self.best:.4f})")

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": -1 if self.best_epoch is None else self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])
        self.best_epoch = None if int(state["best_epoch"]) < 0 else int(state["best_epoch"])


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, mode: str = "auto", min_delta: float = 0.0,
                 verbose: bool = True):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.wait, self.verbose = patience, 0, verbose

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict) -> None:
        v = self._value(logs)
        if v is not None and self._improved(v):
            self.best, self.wait = v, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            if self.verbose:
                print(f"  early stopping: {self.monitor} has not improved for {self.patience} epochs "
                      f"(best {self.best:.4f})")

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])


class LRSchedulerCallback(Callback):
    """Step a scheduler per batch (OneCycleLR) or per epoch; ReduceLROnPlateau gets `monitor`."""

    def __init__(self, scheduler: Any, interval: str | None = None, monitor: str = "val_loss"):
        name = type(scheduler).__name__
        self.scheduler, self.monitor = scheduler, monitor
        self.interval = interval or ("batch" if name in ("OneCycleLR", "CyclicLR") else "epoch")
        if self.interval not in ("batch", "epoch"):
            raise ValueError(f"interval must be 'batch' or 'epoch', got {self.interval!r}")
        self.plateau = name == "ReduceLROnPlateau"

    def on_batch_end(self, trainer: Any, batch: int, loss: float) -> None:
        if self.interval == "batch":
            self.scheduler.step()

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict) -> None:
        if self.interval != "epoch":
            return
        if self.plateau:
            key = self.monitor if self.monitor in logs else "loss"
            self.scheduler.step(float(logs[key]))
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return {}  # the scheduler itself is checkpointed by the trainer


class GradientClipping(Callback):
    """Clip gradients after backward: by global norm (max_norm) or by value (clip_value)."""

    def __init__(self, max_norm: float | None = None, clip_value: float | None = None):
        if (max_norm is None) == (clip_value is None):
            raise ValueError("GradientClipping needs exactly one of max_norm or clip_value")
        self.max_norm, self.clip_value = max_norm, clip_value

    def on_after_backward(self, trainer: Any) -> None:
        from ..nn.utils import clip_grad_norm_, clip_grad_value_
        params = trainer.model.parameters()
        if self.max_norm is not None:
            clip_grad_norm_(params, self.max_norm)
        elif self.clip_value is not None:  # __init__ made sure exactly one of the two is set
            clip_grad_value_(params, self.clip_value)


class NonFiniteLossError(FloatingPointError):
    """The loss or the model's output became NaN or Inf; `split`, `epoch` (1-based) and `batch` (1-based) say where."""

    def __init__(self, message: str, split: str = "train", epoch: int = 0, batch: int = 0):
        super().__init__(message)
        self.split, self.epoch, self.batch = split, epoch, batch


def non_finite_error(what: str, value: Any, split: str, epoch: int, batch: int, saved: str) -> NonFiniteLossError:
    """The one-line report for NaN/Inf, naming split, epoch and batch."""
    hint = ("check the inputs of that batch for NaN/Inf" if split != "train" else
            "try a lower learning rate, gradient clipping (GradientClipping(max_norm=1.0)), or check the inputs "
            "of that batch for NaN/Inf")
    where = f"at epoch {epoch}, batch {batch}" if epoch else f"at batch {batch}"
    return NonFiniteLossError(f"{what} is {value} on the {split} data {where}: stopped; {hint}. {saved}",
                              split, epoch, batch)


class NaNGuard(Callback):
    """Stop with a clear message naming the split, epoch and batch where the loss became NaN/Inf.

    `fit` has already put the model back to its state before that batch (batch-norm running
    statistics included) when this fires; checkpoints on disk are untouched."""

    def on_batch_end(self, trainer: Any, batch: int, loss: float) -> None:
        if not np.isfinite(loss):
            raise non_finite_error("loss", loss, "train", trainer.epoch + 1, batch + 1,
                                   "The model in memory is as it was before that batch; the checkpoints on disk "
                                   "are untouched.")
