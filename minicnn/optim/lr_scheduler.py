"""Learning-rate schedules: each sets every group's 'lr' from a closed form of the step count.

Call `scheduler.step()` after `optimizer.step()`: once per epoch for StepLR, MultiStepLR and
CosineAnnealingLR, once per batch for OneCycleLR, and with the validation metric for
ReduceLROnPlateau. Values match PyTorch's documented formulas.
"""
from __future__ import annotations

import bisect
import copy
import math
import warnings
from typing import Any, Sequence, Union

from .optimizer import Optimizer


def _check_optimizer(sched: str, optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{sched} needs a minicnn.optim.Optimizer, got {type(optimizer).__name__}")


def _per_group(sched: str, name: str, value: Union[float, Sequence[float]], n: int) -> list[float]:
    """Broadcast one value to n parameter groups, or check a list has n entries."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{sched}: {name} has {len(value)} values but the optimizer has {n} parameter groups")
        return [float(v) for v in value]
    return [float(value)] * n


class LRScheduler:
    """Base class: `get_lr()` gives each group's lr at `last_epoch`; `step()` advances it by one."""

    # Settings that fix the schedule's length (CosineAnnealingLR.T_max, ...): load_state_dict keeps
    # this object's values, so a resumed run can be lengthened by building the scheduler anew.
    length_keys: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer) -> None:
        _check_optimizer(type(self).__name__, optimizer)
        self.optimizer = optimizer
        # 'initial_lr' survives in the optimizer's state_dict, so a resumed run keeps the original base.
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()  # as in PyTorch: after construction last_epoch == 0 and lr is the schedule's value at 0

    def get_lr(self) -> list[float]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_lr()")

    def step(self) -> None:
        """Advance one step (epoch or batch) and write the new learning rates into the optimizer."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the latest `step()`, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer, as plain numbers, strings and lists (saveable)."""
        return {k: copy.deepcopy(v) for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a `state_dict()` of the same scheduler class.

        The schedule's length (`length_keys`, e.g. CosineAnnealingLR's T_max) is the one this
        scheduler was built with: resuming a 10-epoch run with CosineAnnealingLR(opt, T_max=20)
        continues on the 20-epoch cosine from the saved step (with a warning), instead of running
        past the end of the old one at lr = eta_min."""
        name = type(self).__name__
        own = set(self.state_dict())
        if not isinstance(state_dict, dict) or set(state_dict) != own:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict: expected keys {sorted(own)}, got {got} "
                             f"(a state_dict from another scheduler class?)")
        if len(state_dict["base_lrs"]) != len(self.optimizer.param_groups):
            raise ValueError(f"{name}.load_state_dict: the checkpoint has {len(state_dict['base_lrs'])} parameter "
                             f"groups, the optimizer has {len(self.optimizer.param_groups)}")
        kept = {k: copy.deepcopy(getattr(self, k)) for k in self.length_keys}
        self.__dict__.update(copy.deepcopy(state_dict))
        changed = {k: state_dict[k] for k, v in kept.items() if state_dict[k] != v}
        if changed:
            self.__dict__.update(kept)
            for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
                group["lr"] = lr  # the new schedule's value at the saved step
            self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
            what = ", ".join(f"{k}={changed[k]!r} -> {kept[k]!r}" for k in changed if k != "phases")
            warnings.warn(f"{name}: resumed at step {self.last_epoch} with a new schedule length ({what}); "
                          f"lr is now {self._last_lr[0]:.4g}", stacklevel=2)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        passed = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    length_keys = ("T_max",)

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be > 0, got {T_max}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base - self.eta_min) * (1.0 + cos) / 2.0 for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """1cycle (Smith & Topin): lr warms up from max_lr/div_factor to max_lr, then anneals to
    initial_lr/final_div_factor; momentum (SGD's momentum or Adam's beta1) moves the opposite way.

    Phases end at step pct_start*total_steps - 1 and total_steps - 1 (three_phase adds a
    symmetric return to initial_lr ending at 2*pct_start*total_steps - 2). Step once per batch.
    """

    length_keys = ("total_steps", "phases")

    def __init__(self, optimizer: Optimizer, max_lr: Union[float, Sequence[float]], total_steps: int = None,
                 epochs: int = None, steps_per_epoch: int = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False) -> None:
        _check_optimizer("OneCycleLR", optimizer)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            if epochs <= 0 or steps_per_epoch <= 0:
                raise ValueError(f"OneCycleLR: epochs and steps_per_epoch must be positive, got "
                                 f"epochs={epochs}, steps_per_epoch={steps_per_epoch}")
            total_steps = epochs * steps_per_epoch
        if int(total_steps) != total_steps or total_steps <= 0:
            raise ValueError(f"OneCycleLR: total_steps must be a positive integer, got {total_steps}")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = int(total_steps), anneal_strategy
        self.cycle_momentum = bool(cycle_momentum)

        groups = optimizer.param_groups
        max_lrs = _per_group("OneCycleLR", "max_lr", max_lr, len(groups))
        for group, top in zip(groups, max_lrs):
            group["initial_lr"] = top / div_factor
            group["max_lr"] = top
            group["min_lr"] = group["initial_lr"] / final_div_factor

        self.use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum:
            if not self.use_beta1 and "momentum" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas; "
                                 f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            bases = _per_group("OneCycleLR", "base_momentum", base_momentum, len(groups))
            maxes = _per_group("OneCycleLR", "max_momentum", max_momentum, len(groups))
            for group, lo, hi in zip(groups, bases, maxes):
                group["base_momentum"], group["max_momentum"] = lo, hi
                self._set_momentum(group, hi)

        up = float(pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        # Each phase: (end step, lr key at start, lr key at end, momentum key at start, at end).
        if three_phase:
            self.phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (2 * up, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                           (last, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self.phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (last, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        self.phases = [list(p) for p in self.phases]  # lists, so state_dict round-trips unchanged
        super().__init__(optimizer)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)
        return (end - start) * pct + start

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        # As in PyTorch, the step after the last batch (t == total_steps) is allowed: a loop that
        # steps after every batch ends there. Its lr (min_lr) is never used; one more step is an error.
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {t} times; the schedule has total_steps="
                             f"{self.total_steps}")
        t = min(t, self.total_steps - 1)
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
            if t <= end or i == len(self.phases) - 1:
                # A phase can have zero length (pct_start*total_steps == 1): it is then already over.
                pct = (t - start) / (end - start) if end > start else 1.0
                break
            start = end
        lrs = []
        for group in self.optimizer.param_groups:
            lrs.append(self._anneal(group[lr0], group[lr1], pct))
            if self.cycle_momentum:
                self._set_momentum(group, self._anneal(group[m0], group[m1], pct))
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply lr by `factor` after `patience` steps without improvement of the metric passed to step()."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: Union[float, Sequence[float]] = 0.0, eps: float = 1e-8) -> None:
        _check_optimizer("ReduceLROnPlateau", optimizer)
        if not factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.eps = int(cooldown), float(eps)
        self.min_lrs = _per_group("ReduceLROnPlateau", "min_lr", min_lr, len(optimizer.param_groups))
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = list(self.base_lrs)

    def is_better(self, value: float) -> bool:
        """Whether `value` beats `best` by more than the threshold."""
        if self.mode == "min":
            bar = self.best * (1.0 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return value < bar
        bar = self.best * (1.0 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return value > bar

    def step(self, metric: float) -> None:  # type: ignore[override]
        """Record this epoch's metric (e.g. validation loss); cut lr when it has plateaued."""
        value = float(metric)
        self.last_epoch += 1
        if self.is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:  # bad epochs right after a cut do not count
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, floor)
                if group["lr"] - new > self.eps:  # ignore changes too small to matter
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
