"""`fit`, `evaluate`, `predict_proba`: the training loop, Keras' conveniences on PyTorch's pieces."""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..autograd import Tensor, no_grad
from ..backend import normalize_device, to_device
from ..data.loader import DataLoader
from ..metrics import MetricTracker
from ..nn.losses import sample_weights_from_class_weight
from ..nn.module import Module
from .callbacks import Callback, LRSchedulerCallback, NaNGuard, NonFiniteLossError, non_finite_error

REPORTED = ("loss", "accuracy", "precision", "recall", "auc")


def _leaf_modules(model: Module) -> list:
    return [m for m in model.modules() if not any(True for _ in m.children())]


def outputs_are_probabilities(model: Module) -> bool:
    """True if the model ends in Sigmoid/Softmax (Keras style), False if it returns logits."""
    flag = getattr(model, "output_is_probability", None)
    if flag is not None:
        return bool(flag)
    leaves = _leaf_modules(model)
    return bool(leaves) and type(leaves[-1]).__name__ in ("Sigmoid", "Softmax")


def to_probabilities(out: Any, model: Module) -> np.ndarray:
    """Model outputs -> P(positive) (N,) for one output, class probabilities (N, C) otherwise."""
    a = np.asarray(to_device(out.data if isinstance(out, Tensor) else out, "cpu"), dtype=np.float64)
    probs = outputs_are_probabilities(model)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
        return a if probs else 1 / (1 + np.exp(-a))
    if a.ndim == 1:
        return a if probs else 1 / (1 + np.exp(-a))
    if probs:
        return a
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _target_for(out: Tensor, y: np.ndarray, loss_fn: Any) -> Any:
    """Labels (N,) -> what the loss expects: (N, 1) floats for one output, class indices otherwise."""
    if out.ndim == 2 and out.shape[1] == 1:
        return y.reshape(-1, 1).astype(out.data.dtype if hasattr(out.data, "dtype") else np.float32)
    return y.astype(np.int64)


def _split_batch(batch: Any) -> tuple:
    if isinstance(batch, dict):
        return batch["image"], batch["label"]
    x, y = batch[0], batch[1]
    return x, y


class Trainer:
    """The state `fit` shares with callbacks."""

    def __init__(self, model, optimizer, scheduler=None):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.epoch = 0
        self.batch = 0
        self.stop_training = False
        self.history: dict[str, list] = {}


class History(dict):
    """Per-epoch logs: history['loss'], history['val_accuracy'], ...; `.history` as in Keras."""

    @property
    def history(self) -> dict:
        return self

    interrupted = False


def _run_epoch_eval(model, loader, loss_fn, device, class_weight, desc=None, verbose=False,
                    split: str = "evaluation", epoch: int = 0, tracker=None) -> dict:
    tracker = MetricTracker() if tracker is None else tracker
    model.eval()
    with no_grad():
        it = tqdm(loader, desc=desc, leave=False, disable=not verbose, dynamic_ncols=True)
        for b, batch in enumerate(it):
            x, y = _split_batch(batch)
            y = np.asarray(to_device(y, "cpu")).reshape(-1)
            out = model(Tensor(to_device(x, device)))
            loss = None
            if loss_fn is not None:
                sw = sample_weights_from_class_weight(y, class_weight)
                tgt = _target_for(out, y, loss_fn)
                kw = {} if sw is None else {"sample_weight": to_device(sw, device)}
                loss = float(loss_fn(out, to_device(tgt, device), **kw).item())
            prob = to_probabilities(out, model)
            if not np.isfinite(prob).all():
                bad = prob[~np.isfinite(prob)].flat[0]
                raise non_finite_error("the model output", bad, split, epoch, b + 1, "")
            if loss is not None and not np.isfinite(loss):
                raise non_finite_error("the loss", loss, split, epoch, b + 1, "")
            tracker.update(y, prob, loss=loss)
    return tracker.compute()


def evaluate(model: Module, loader: Iterable, loss_fn: Any = None, device: str = "cpu",
             class_weight: dict | None = None, verbose: bool = False, split: str = "evaluation") -> dict:
    """Metrics of `model` in eval mode over a loader of (images, labels) batches.

    NaN/Inf in the outputs raises NonFiniteLossError naming `split` and the batch."""
    return _run_epoch_eval(model, loader, loss_fn, device, class_weight, "evaluate", verbose, split)


def _buffers(model: Module) -> list:
    """(buffer, copy of its array) for every buffer: cheap, taken before each training batch."""
    return [(b, b.data.copy()) for _, b in model.named_buffers()]


def _all_finite(model: Module) -> bool:
    return all(bool(np.isfinite(to_device(t.data, "cpu")).all())
               for t in list(model.parameters()) + [b for _, b in model.named_buffers()])


def predict_proba(model: Module, data: Any, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """P(positive) (N,) for one-output models, class probabilities (N, C) otherwise.

    `data` is an (N, C, H, W) array or a loader yielding (images, labels) batches."""
    model.eval()
    outs = []
    with no_grad():
        if isinstance(data, (np.ndarray, Tensor)) or hasattr(data, "__cuda_array_interface__"):
            arr = data.data if isinstance(data, Tensor) else data
            for i in range(0, len(arr), batch_size):
                outs.append(to_probabilities(model(Tensor(to_device(arr[i:i + batch_size], device))), model))
        else:
            for batch in data:
                x, _ = _split_batch(batch)
                outs.append(to_probabilities(model(Tensor(to_device(x, device))), model))
    return np.concatenate(outs) if outs else np.zeros(0)


def predict(model: Module, data: Any, threshold: float = 0.5, **kw) -> np.ndarray:
    """Class labels (N,): P >= threshold for one-output models, argmax otherwise."""
    p = predict_proba(model, data, **kw)
    return (p >= threshold).astype(np.int64) if p.ndim == 1 else p.argmax(axis=1)


def _format_logs(logs: dict) -> str:
    parts = []
    for key in list(REPORTED) + ["val_" + k for k in REPORTED]:
        if key in logs and not (isinstance(logs[key], float) and math.isnan(logs[key])):
            parts.append(f"{key}: {logs[key]:.4f}")
    return " - ".join(parts)


def _feed_on_device(loaders: Iterable, device: str) -> list:
    """Let minicnn DataLoaders that deliver host arrays copy batches to `device` in their worker
    threads for the duration of fit (the copies then overlap the step); returns those changed."""
    if normalize_device(device) == "cpu":
        return []
    fed = []
    for loader in loaders:
        if isinstance(loader, DataLoader) and loader.device is None and loader.num_workers > 0:
            loader.device = device
            fed.append(loader)
    return fed


def fit(model: Module, train_loader: Iterable, val_loader: Iterable | None = None, *, loss_fn: Any,
        optimizer: Any, epochs: int = 1, scheduler: Any = None, scheduler_interval: str | None = None,
        class_weight: dict | None = None, callbacks: Sequence[Callback] = (), device: str = "cpu",
        checkpoint: str | None = None, resume: str | None = None, verbose: int = 1,
        threshold: float = 0.5, distributed: bool = False) -> History:
    """Train for `epochs`, evaluating on `val_loader` after each; returns the History.

    loss_fn(output, target[, sample_weight]) gets (N, 1) float targets for one-output
    models and class indices otherwise; `class_weight={0: w0, 1: w1}` weights each sample
    as Keras does. `scheduler` is stepped per batch for OneCycleLR, per epoch otherwise.
    `checkpoint=PATH` writes the full training state (model, optimizer, scheduler, epoch,
    RNG, callbacks, history) atomically after every epoch; `resume=PATH` continues from it
    exactly.

    What is never lost: NaN/Inf in the training loss puts the model back to its state before
    that batch (batch-norm statistics included) and raises NonFiniteLossError naming split,
    epoch and batch; NaN/Inf on the validation data first completes the epoch (its metrics
    recorded as NaN, its checkpoint written), then raises. Ctrl-C keeps the last complete
    epoch in `checkpoint`, says how to resume and re-raises KeyboardInterrupt (with the
    History as its `.history`) so the caller can exit with status 130.
    `distributed=True` trains data-parallel on every rank of an `mpiexec` job (the train loader
    needs a `minicnn.distributed.DistributedSampler`; see minicnn/distributed/training.py).
    """
    from .checkpoint import load_training_state, save_training_state

    cbs: list[Callback] = [NaNGuard()]
    if scheduler is not None:
        cbs.append(LRSchedulerCallback(scheduler, scheduler_interval))
    cbs += list(callbacks)
    trainer = Trainer(model, optimizer, scheduler)
    history = History()
    start = 0
    if resume:
        start, past = load_training_state(resume, model, optimizer, scheduler, cbs)
        history.update({k: list(v) for k, v in past.items()})
        if verbose:
            print(f"resumed from {resume}: continuing at epoch {start + 1}/{epochs}")
    trainer.history = history
    model.to(device)  # 'cuda' without a usable GPU: CudaUnavailable saying what is missing
    fed = _feed_on_device((train_loader, val_loader), device)
    saved = start  # complete epochs in `checkpoint`, as far as this run knows

    def on_disk() -> str:
        if checkpoint and saved:
            return f"{checkpoint} holds the first {saved} epoch(s): continue with fit(..., resume={checkpoint!r})"
        return "no epoch was saved" + ("" if checkpoint else " (no checkpoint was requested)")

    dist = None
    if distributed:
        from ..distributed.training import FitSupport
        dist = FitSupport(model, train_loader, verbose)
        model, verbose = dist.model, dist.verbose
        trainer.model = model

    for cb in cbs:
        cb.on_train_begin(trainer)
    try:
        for epoch in range(start, epochs):
            trainer.epoch = epoch
            for cb in cbs:
                cb.on_epoch_begin(trainer, epoch)
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)
            if dist is not None:
                dist.epoch_begin(epoch)
            model.train()
            good_state = model.state_dict()  # host copies: the fallback if a NaN reached the weights
            tracker = MetricTracker(threshold=threshold) if dist is None else dist.tracker(threshold)
            t0, seen, run_loss, run_correct = time.perf_counter(), 0, 0.0, 0
            bar = tqdm(train_loader, desc=f"Epoch {epoch + 1}/{epochs}", leave=False,
                       disable=verbose < 1, dynamic_ncols=True, mininterval=0.5)
            for b, batch in enumerate(bar):
                trainer.batch = b
                x, y = _split_batch(batch)
                y = np.asarray(to_device(y, "cpu")).reshape(-1)
                before = _buffers(model)  # the forward pass updates batch-norm running statistics
                out = model(Tensor(to_device(x, device)))
                target = to_device(_target_for(out, y, loss_fn), device)
                sw = sample_weights_from_class_weight(y, class_weight)
                loss = loss_fn(out, target) if sw is None else loss_fn(out, target, sample_weight=to_device(sw, device))
                lv = float(loss.item()) if dist is None else dist.batch_loss(float(loss.item()))
                if np.isfinite(lv):
                    optimizer.zero_grad()
                    loss.backward()
                    for cb in cbs:
                        cb.on_after_backward(trainer)
                    optimizer.step()
                else:  # keep the last good state in memory: undo this batch's statistics
                    for buf, old in before:
                        buf.data = old
                    if not _all_finite(model):
                        model.load_state_dict(good_state)
                    bar.close()
                for cb in cbs:
                    cb.on_batch_end(trainer, b, lv)
                prob = to_probabilities(out, model)
                tracker.update(y, prob, loss=lv)
                pred = (prob >= threshold) if prob.ndim == 1 else prob.argmax(axis=1)
                seen += len(y)
                run_loss += lv * len(y)
                run_correct += int((pred == y).sum())
                bar.set_postfix(loss=f"{run_loss / seen:.4f}", acc=f"{run_correct / seen:.3f}",
                                img_s=f"{seen / (time.perf_counter() - t0):.0f}", refresh=False)
            bar.close()
            logs = tracker.compute()
            bad_val: NonFiniteLossError | None = None
            if val_loader is not None:
                try:
                    val = _run_epoch_eval(model, val_loader, loss_fn, device, class_weight,
                                          split="validation", epoch=epoch + 1,
                                          tracker=None if dist is None else dist.val_tracker(val_loader))
                except NonFiniteLossError as e:  # finish the epoch (the training part is good), then stop
                    bad_val, val = e, {k: math.nan for k in logs}
                logs.update({"val_" + k: v for k, v in val.items()})
            secs = time.perf_counter() - t0
            logs["lr"] = float(optimizer.param_groups[0]["lr"])
            logs["seconds"] = secs
            for k, v in logs.items():
                if isinstance(v, (int, float)):
                    history.setdefault(k, []).append(float(v))
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs} - {secs:.0f}s - {seen / secs:.0f} img/s - "
                      f"{_format_logs(logs)} - lr: {logs['lr']:.3g}")
            for cb in cbs:
                cb.on_epoch_end(trainer, epoch, logs)
            if checkpoint:
                save_training_state(checkpoint, model, optimizer, scheduler, cbs, epoch + 1, history)
                saved = epoch + 1
            if bad_val is not None:
                raise NonFiniteLossError(f"{bad_val} Epoch {epoch + 1}'s training is kept; {on_disk()}.",
                                         bad_val.split, bad_val.epoch, bad_val.batch) from None
            if trainer.stop_training:
                break
    except KeyboardInterrupt as e:
        history.interrupted = True
        print(f"\ninterrupted at epoch {trainer.epoch + 1}, batch {trainer.batch + 1}; {on_disk()}", flush=True)
        e.history = history  # type: ignore[attr-defined]
        raise
    except NonFiniteLossError as e:
        e.history = history  # type: ignore[attr-defined]
        raise
    finally:
        for loader in fed:
            loader.device = None
        if dist is not None:
            dist.close()
    for cb in cbs:
        cb.on_train_end(trainer)
    if dist is not None:
        dist.train_end()
    return history
