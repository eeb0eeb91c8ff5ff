"""LR schedules against their closed forms (PyTorch's documented values)."""
import math

import numpy as np
import pytest

from minicnn import serialization
from minicnn.nn.parameter import Parameter
from minicnn.optim import SGD, Adam, Optimizer
from minicnn.optim.lr_scheduler import (CosineAnnealingLR, LRScheduler, MultiStepLR, OneCycleLR,
                                        ReduceLROnPlateau, StepLR)


def sgd(lr=0.5, **kw):
    return SGD([Parameter(np.zeros(2))], lr=lr, **kw)


def lrs_over(sched, n):
    """lr at steps 0..n-1 (step 0 is set by the constructor)."""
    out = [sched.get_last_lr()[0]]
    for _ in range(n - 1):
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def test_step_lr_closed_form():
    opt = sgd(0.5)
    got = lrs_over(StepLR(opt, step_size=3, gamma=0.5), 10)
    np.testing.assert_allclose(got, [0.5 * 0.5 ** (t // 3) for t in range(10)])
    assert opt.param_groups[0]["lr"] == got[-1]


def test_multistep_lr_literal():
    got = lrs_over(MultiStepLR(sgd(1.0), milestones=[5, 2], gamma=0.1), 7)
    np.testing.assert_allclose(got, [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_annealing_closed_form_and_endpoints():
    base, eta_min, T = 0.5, 0.01, 10
    got = lrs_over(CosineAnnealingLR(sgd(base), T_max=T, eta_min=eta_min), 11)
    want = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(11)]
    np.testing.assert_allclose(got, want)
    assert got[0] == pytest.approx(base) and got[5] == pytest.approx((base + eta_min) / 2)
    assert got[10] == pytest.approx(eta_min)


def test_schedules_apply_to_every_group_from_its_own_base():
    ps = [Parameter(np.zeros(1)), Parameter(np.zeros(1))]
    opt = SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01}], lr=1.0)
    s = StepLR(opt, step_size=1, gamma=0.5)
    s.step()
    s.step()
    assert s.get_last_lr() == pytest.approx([0.25, 0.0025])
    assert s.last_epoch == 2


# ---- OneCycleLR ------------------------------------------------------------------------
def test_one_cycle_phase_values_with_sgd_momentum():
    opt = sgd(0.123, momentum=0.9)
    s = OneCycleLR(opt, max_lr=1.0, total_steps=100)  # phase 1 ends at step 0.3*100 - 1 = 29
    lr, mom = [], []
    for t in range(100):
        lr.append(opt.param_groups[0]["lr"])
        mom.append(opt.param_groups[0]["momentum"])
        if t < 99:
            s.step()
    assert lr[0] == pytest.approx(1.0 / 25) and mom[0] == pytest.approx(0.95)
    assert lr[29] == pytest.approx(1.0) and mom[29] == pytest.approx(0.85)
    # halfway through phase 2 (29..99): cosine midpoint of max_lr and min_lr
    min_lr = 1.0 / 25 / 1e4
    assert lr[64] == pytest.approx((1.0 + min_lr) / 2) and mom[64] == pytest.approx(0.9)
    assert lr[99] == pytest.approx(min_lr) and mom[99] == pytest.approx(0.95)
    pct = 10 / 29
    assert lr[10] == pytest.approx(1.0 + (0.04 - 1.0) / 2 * (math.cos(math.pi * pct) + 1))
    s.step()  # the step after the last batch, as a per-batch loop takes it (PyTorch allows it too)
    assert opt.param_groups[0]["lr"] == pytest.approx(min_lr)
    with pytest.raises(ValueError, match="tried to step 101 times; the schedule has total_steps=100"):
        s.step()


def test_one_cycle_linear_three_phase_and_adam_beta1():
    opt = Adam([Parameter(np.zeros(1))], betas=(0.9, 0.99))
    s = OneCycleLR(opt, max_lr=0.1, epochs=10, steps_per_epoch=10, anneal_strategy="linear",
                   three_phase=True, base_momentum=0.8, max_momentum=0.9)
    got = lrs_over(s, 100)
    init, lo = 0.1 / 25, 0.1 / 25 / 1e4
    # phases end at steps 29, 58 and 99
    assert got[0] == pytest.approx(init) and got[29] == pytest.approx(0.1)
    assert got[10] == pytest.approx(init + (0.1 - init) * 10 / 29)
    assert got[58] == pytest.approx(init) and got[99] == pytest.approx(lo)
    assert got[40] == pytest.approx(0.1 + (init - 0.1) * 11 / 29)
    b1, b2 = opt.param_groups[0]["betas"]
    assert b1 == pytest.approx(0.9) and b2 == 0.99
    # at step 99 the momentum is max_momentum; check phase 1's end too
    s2 = OneCycleLR(Adam([Parameter(np.zeros(1))]), max_lr=0.1, total_steps=100, base_momentum=0.8)
    for _ in range(29):
        s2.step()
    assert s2.optimizer.param_groups[0]["betas"][0] == pytest.approx(0.8)


def test_one_cycle_argument_errors():
    with pytest.raises(ValueError, match="total_steps, or both epochs"):
        OneCycleLR(sgd(), max_lr=1.0)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(sgd(), max_lr=1.0, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr has 2 values"):
        OneCycleLR(sgd(), max_lr=[1.0, 2.0], total_steps=10)

    class Plain(Optimizer):
        def _update(self, p, grad, state, group):
            p.data -= group["lr"] * grad

    with pytest.raises(ValueError, match="momentum or betas"):
        OneCycleLR(Plain([Parameter(np.zeros(1))], {"lr": 0.1}), max_lr=1.0, total_steps=10)
    OneCycleLR(Plain([Parameter(np.zeros(1))], {"lr": 0.1}), max_lr=1.0, total_steps=10, cycle_momentum=False)


# ---- ReduceLROnPlateau ------------------------------------------------------------------
def test_plateau_patience_and_cooldown():
    opt = sgd(1.0)
    s = ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=2)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95,   # 3rd bad epoch > patience 2: cut to 0.5
               0.95, 0.95,                   # cooldown: bad epochs ignored
               0.95, 0.95, 0.95,             # three more bad epochs: cut to 0.25
               0.5]                          # improvement
    want = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    got = []
    for m in metrics:
        s.step(m)
        got.append(s.get_last_lr()[0])
    assert got == pytest.approx(want)
    assert s.best == 0.5 and s.last_epoch == len(metrics)


def test_plateau_threshold_modes_max_mode_and_min_lr():
    s = ReduceLROnPlateau(sgd(1.0), patience=0, threshold=1e-2)  # rel: must beat best*(1 - 0.01)
    s.step(1.0)
    s.step(0.995)  # 0.5% better is not enough: bad epoch -> cut
    assert s.get_last_lr()[0] == pytest.approx(0.1)
    s = ReduceLROnPlateau(sgd(1.0), patience=0, threshold=0.1, threshold_mode="abs")
    s.step(1.0)
    s.step(0.85)  # beats 1.0 - 0.1
    assert s.get_last_lr()[0] == 1.0
    s = ReduceLROnPlateau(sgd(1.0), mode="max", patience=0, min_lr=0.3, factor=0.5)
    for acc in [0.5, 0.6, 0.6, 0.6, 0.6]:
        s.step(acc)
    assert s.get_last_lr()[0] == pytest.approx(0.3)  # 1 -> 0.5 -> floor 0.3
    s = ReduceLROnPlateau(sgd(1e-8), patience=0, eps=1e-8)
    s.step(1.0)
    s.step(2.0)
    assert s.get_last_lr()[0] == 1e-8  # change below eps is ignored
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(sgd(), factor=1.0)


# ---- state and errors -------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda o: StepLR(o, step_size=2, gamma=0.5),
    lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.01),
    lambda o: OneCycleLR(o, max_lr=1.0, total_steps=12, three_phase=True),
])
def test_scheduler_state_round_trip_through_checkpoint(make, tmp_path):
    opt = sgd(0.5, momentum=0.9)
    s = make(opt)
    full = lrs_over(s, 12)

    opt1 = sgd(0.5, momentum=0.9)
    s1 = make(opt1)
    for _ in range(5):
        s1.step()
    serialization.save({"opt": opt1.state_dict(), "sched": s1.state_dict()}, tmp_path / "s.npz")
    ck = serialization.load(tmp_path / "s.npz")
    opt2 = sgd(0.5, momentum=0.9)
    s2 = make(opt2)
    opt2.load_state_dict(ck["opt"])
    s2.load_state_dict(ck["sched"])
    assert s2.get_last_lr()[0] == full[5]
    rest = []
    for _ in range(6):
        s2.step()
        rest.append(s2.get_last_lr()[0])
    assert rest == full[6:]
    assert opt2.param_groups[0]["momentum"] == opt.param_groups[0]["momentum"]


def test_plateau_state_round_trip():
    s = ReduceLROnPlateau(sgd(1.0), patience=1)
    for m in [1.0, 2.0]:
        s.step(m)
    s2 = ReduceLROnPlateau(sgd(1.0), patience=1)
    s2.load_state_dict(s.state_dict())
    assert s2.num_bad_epochs == 1 and s2.best == 1.0
    s2.step(3.0)
    assert s2.get_last_lr()[0] == pytest.approx(0.1)


def test_scheduler_errors():
    with pytest.raises(TypeError, match="Optimizer"):
        StepLR(object(), step_size=1)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(sgd(), step_size=0)
    with pytest.raises(ValueError, match="another scheduler class"):
        StepLR(sgd(), step_size=2).load_state_dict(CosineAnnealingLR(sgd(), T_max=3).state_dict())
    with pytest.raises(NotImplementedError):
        LRScheduler(sgd())
