"""Transfer-learning glue: freeze a backbone, train a new head, then fine-tune everything.

    model.classifier = nn.Linear(2208, 2)
    opt = optim.Adam(model.parameters(), lr=1e-3)                  # every parameter, frozen ones too
    sched = optim.lr_scheduler.StepLR(opt, 4, 0.1)
    phases = FreezeThenFinetune(model, head=model.classifier, head_epochs=10, finetune_lr=1e-4)
    fit(model, ..., optimizer=opt, scheduler=sched, epochs=20, callbacks=[phases])

The two phases run inside one `fit`, so one checkpoint (`state.npz`) resumes either phase
exactly and the history covers both. Also: parameter counts (trainable / frozen), finding
an image-folder dataset (`find_data_folder`), and balancing a class with augmented copies of
its own images (`with_augmented_copies`).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset import ConcatDataset, Subset, get_targets
from ..data.errors import DataError
from ..nn.module import Module
from .callbacks import Callback


def parameter_counts(model: Module) -> tuple[int, int]:
    """(trainable, frozen) numbers of parameter elements of `model`."""
    trainable = frozen = 0
    for p in model.parameters():
        if p.requires_grad:
            trainable += int(p.size)
        else:
            frozen += int(p.size)
    return trainable, frozen


def freeze_all_but(model: Module, *heads: Module) -> tuple[int, int]:
    """Freeze every parameter of `model` except those of `heads`; returns (trainable, frozen) counts."""
    if not heads:
        raise ValueError("freeze_all_but: name at least one head module to keep trainable")
    own = {id(p) for p in model.parameters()}
    for h in heads:
        if not {id(p) for p in h.parameters()} <= own:
            raise ValueError(f"freeze_all_but: {type(h).__name__} is not part of {type(model).__name__}")
    model.requires_grad_(False)
    for h in heads:
        h.requires_grad_(True)
    return parameter_counts(model)


class FreezeThenFinetune(Callback):
    """Phase 1 (epochs < head_epochs): only `head` trains, at the optimizer's own lr and schedule.
    Phase 2 (from epoch head_epochs on): every parameter trains at `finetune_lr`.

    At the switch the optimizer forgets its moments (as a new optimizer would) and each
    parameter group's lr becomes `finetune_lr`; a scheduler given here restarts its count, so a
    StepLR(step 4) decays 4 epochs into phase 2, not 4 epochs into the run. On a resumed run the
    phase is taken from the epoch, and the restored optimizer and scheduler are left as saved.
    Give the optimizer every parameter of the model: frozen ones have no gradient and are skipped.
    """

    def __init__(self, model: Module, head: Module | Sequence[Module], head_epochs: int, finetune_lr: float,
                 scheduler: Any = None, verbose: bool = True):
        if int(head_epochs) != head_epochs or head_epochs < 0:
            raise ValueError(f"FreezeThenFinetune: head_epochs must be an integer >= 0, got {head_epochs}")
        if not finetune_lr > 0:
            raise ValueError(f"FreezeThenFinetune: finetune_lr must be > 0, got {finetune_lr}")
        self.model = model
        self.heads = [head] if isinstance(head, Module) else list(head)
        self.head_epochs, self.finetune_lr = int(head_epochs), float(finetune_lr)
        self.scheduler, self.verbose = scheduler, verbose
        self.phase: int | None = None

    def phase_of(self, epoch: int) -> int:
        """1 while the head trains alone, 2 once everything trains (0-based epoch)."""
        return 1 if epoch < self.head_epochs else 2

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        phase = self.phase_of(epoch)
        if phase == self.phase:
            return
        if phase == 1:
            trainable, frozen = freeze_all_but(self.model, *self.heads)
        else:
            self.model.requires_grad_(True)
            trainable, frozen = parameter_counts(self.model)
            if epoch == self.head_epochs:  # the switch itself (a run resumed later keeps its saved state)
                self.start_finetuning(trainer.optimizer)
        self.phase = phase
        if self.verbose:
            what = "new head only, backbone frozen" if phase == 1 else f"everything, lr {self.finetune_lr:g}"
            print(f"phase {phase} ({what}): {trainable:,} trainable / {frozen:,} frozen parameters", flush=True)

    def start_finetuning(self, optimizer: Any) -> None:
        """Fresh optimizer moments, lr = finetune_lr in every group, the scheduler's count back to 0."""
        optimizer.state = {}
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = self.finetune_lr
        if self.scheduler is not None:
            self.scheduler.base_lrs = [self.finetune_lr] * len(optimizer.param_groups)
            self.scheduler.last_epoch = 0
            self.scheduler._last_lr = [self.finetune_lr] * len(optimizer.param_groups)


def with_augmented_copies(dataset: Any, label: int, transform: Callable | None,
                          copy_transforms: Sequence[Callable]) -> ConcatDataset:
    """Every item of `dataset` through `transform`, then one extra copy of each class-`label` item per
    entry of `copy_transforms`, that copy through its own transform.

    Balances a minority class the way the DenseNet tutorial does (two extra augmented copies of
    every NORMAL X-ray). Random transforms draw anew each time an item is read, so a copy is a
    fresh augmented view every epoch, never a fixed duplicate.
    """
    members = np.flatnonzero(get_targets(dataset) == label).tolist()
    if not members:
        raise ValueError(f"with_augmented_copies: no item of class {label} among {len(dataset)} items")
    originals = Subset(dataset, range(len(dataset)), transform=transform)
    return ConcatDataset([originals] + [Subset(dataset, members, transform=t) for t in copy_transforms])


def find_data_folder(data: str | os.PathLike | None, name: str, roots: Sequence[str | os.PathLike] = (),
                     splits: Sequence[str] = ("train", "test")) -> Path:
    """The dataset folder to read: `data` when given, else the first `<root>/<name>` holding every split
    folder, trying $MINICNN_DATA_DIR, ~/.cache/minicnn, then `roots`. DataError naming every place tried."""
    if data is not None:
        path = Path(data).expanduser()
        if not path.is_dir():
            raise DataError(f"--data {path}: {'not a folder' if path.exists() else 'does not exist'} "
                            f"(expected a folder with {' and '.join(s + '/' for s in splits)})")
        return path
    env = os.environ.get("MINICNN_DATA_DIR")
    candidates = ([Path(env) / name] if env else []) + [Path.home() / ".cache" / "minicnn" / name]
    candidates += [Path(r) / name for r in roots]
    for c in candidates:
        if all((c / s).is_dir() for s in splits):
            return c
    raise DataError(f"no {name} folder found (looked in {', '.join(str(c) for c in candidates)}); pass --data "
                    f"path/to/folder with {' and '.join(s + '/' for s in splits)} holding one sub-folder per class, "
                    f"or set MINICNN_DATA_DIR to the folder that contains {name}/")
