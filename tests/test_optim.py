"""Optimizers against hand-computed updates from the documented PyTorch formulas."""
import math

import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.autograd import Tensor
from minicnn.nn.parameter import Parameter
from minicnn.optim import SGD, Adam, AdamW, Optimizer

GRADS = [np.array([0.5, -1.0]), np.array([-0.2, 0.4]), np.array([0.1, 0.3]), np.array([2.0, -0.7])]


def param(values, dtype=np.float64):
    return Parameter(np.array(values, dtype=dtype))


def run(opt, p, grads):
    """Apply one step per fixed gradient; returns the parameter after each step."""
    out = []
    for g in grads:
        p.grad = Tensor(np.array(g, dtype=p.data.dtype))
        opt.step()
        out.append(p.data.copy())
    return out


# ---- SGD ---------------------------------------------------------------------------------
def test_sgd_plain_and_momentum_literal_values():
    p = param([1.0])
    run(SGD([p], lr=0.1), p, [[1.0], [1.0]])
    assert p.data[0] == pytest.approx(0.8)

    p = param([1.0])
    after = run(SGD([p], lr=0.1, momentum=0.9), p, [[1.0], [1.0]])
    # b1 = g = 1 -> p = 0.9;  b2 = 0.9*1 + 1 = 1.9 -> p = 0.9 - 0.19
    assert after[0][0] == pytest.approx(0.9) and after[1][0] == pytest.approx(0.71)


def test_sgd_nesterov_literal_values():
    p = param([1.0])
    after = run(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [[1.0], [1.0]])
    # step 1: b = 1, g + mu*b = 1.9 -> 0.81;  step 2: b = 1.9, g + mu*b = 2.71 -> 0.539
    assert after[0][0] == pytest.approx(0.81) and after[1][0] == pytest.approx(0.539)


def test_sgd_momentum_dampening_weight_decay_follow_formula():
    lr, mu, tau, wd = 0.1, 0.9, 0.3, 0.05
    p = param([1.0, -2.0])
    got = run(SGD([p], lr=lr, momentum=mu, dampening=tau, weight_decay=wd), p, GRADS)
    theta, b = np.array([1.0, -2.0]), None
    for t, g in enumerate(GRADS):
        g = g + wd * theta
        b = g if t == 0 else mu * b + (1 - tau) * g  # no dampening on the first step
        theta = theta - lr * b
        np.testing.assert_allclose(got[t], theta, rtol=1e-14)


# ---- Adam / AdamW ------------------------------------------------------------------------
def test_adam_first_step_is_lr_times_sign_thanks_to_bias_correction():
    # m̂ = g and v̂ = g² on step 1, so the step is lr*g/|g| whatever |g| is;
    # without bias correction it would be lr*0.1g/sqrt(0.001g²) ≈ 3.16*lr.
    p = param([1.0, 1.0, 1.0])
    run(Adam([p], lr=0.1), p, [[5.0, -0.01, 300.0]])
    np.testing.assert_allclose(p.data, [0.9, 1.1, 0.9], rtol=1e-7)


def test_adam_follows_formula_with_l2_weight_decay():
    lr, b1, b2, eps, wd = 0.01, 0.8, 0.95, 1e-6, 0.1
    p = param([1.0, -2.0])
    got = run(Adam([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd), p, GRADS)
    theta, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(GRADS, start=1):
        g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(got[t - 1], theta, rtol=1e-12)


def test_adam_amsgrad_uses_running_max_of_second_moment():
    lr, b1, b2, eps = 0.01, 0.9, 0.99, 1e-8
    grads = [np.array([3.0]), np.array([0.1]), np.array([0.1]), np.array([-0.2])]
    p = param([0.0])
    got = run(Adam([p], lr=lr, betas=(b1, b2), eps=eps, amsgrad=True), p, grads)
    theta, m, v, vmax = np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        vmax = np.maximum(vmax, v)
        theta = theta - lr * (m / (1 - b1 ** t)) / (np.sqrt(vmax / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(got[t - 1], theta, rtol=1e-12)
    plain = param([0.0])
    assert not np.allclose(run(Adam([plain], lr=lr, betas=(b1, b2)), plain, grads)[-1], got[-1])


def test_adamw_decay_is_decoupled_and_differs_from_adam_l2():
    # One step, g = 1, lr = 0.1, wd = 0.1 from p = 1:
    #   AdamW: p = 1*(1 - 0.01) - 0.1 = 0.89;  Adam+L2: g' = 1.1, step = lr*sign -> 0.9
    pw, pa = param([1.0]), param([1.0])
    run(AdamW([pw], lr=0.1, weight_decay=0.1), pw, [[1.0]])
    run(Adam([pa], lr=0.1, weight_decay=0.1), pa, [[1.0]])
    assert pw.data[0] == pytest.approx(0.89, abs=1e-7)
    assert pa.data[0] == pytest.approx(0.9, abs=1e-7)


def test_adamw_follows_formula():
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.2
    p = param([1.0, -2.0])
    got = run(AdamW([p], lr=lr, weight_decay=wd), p, GRADS)
    theta, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(GRADS, start=1):
        theta = theta - lr * wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        theta = theta - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(got[t - 1], theta, rtol=1e-12)


def test_float32_parameters_and_state_stay_float32():
    p = param([1.0, 2.0], dtype=np.float32)
    opt = Adam([p], lr=0.1)
    run(opt, p, [[0.5, 0.5]])
    assert p.data.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[id(p)].values() if isinstance(v, np.ndarray))


# ---- groups, zero_grad, skipping ---------------------------------------------------------
def test_param_groups_have_their_own_options():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.01, "momentum": 0.5}], lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["momentum"] == 0.5
    for _ in range(2):
        a.grad, b.grad = Tensor(np.ones(1)), Tensor(np.ones(1))
        opt.step()
    assert a.data[0] == pytest.approx(0.8)
    assert b.data[0] == pytest.approx(1 - 0.01 - 0.01 * 1.5)


def test_add_param_group_and_duplicate_parameters():
    a, b = param([1.0]), param([2.0])
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="more than once"):
        SGD([a, a], lr=0.1)


def test_parameters_without_grad_are_skipped():
    a, b = param([1.0]), param([1.0])
    opt = Adam([a, b], lr=0.1)
    a.grad = Tensor(np.ones(1))
    opt.step()
    assert b.data[0] == 1.0 and id(b) not in opt.state
    assert a.data[0] != 1.0


def test_zero_grad_none_or_fresh_zeros():
    a, b = param([1.0, 2.0]), param([3.0, 4.0])
    shared = np.ones(2)
    a.grad, b.grad = Tensor(shared), Tensor(shared)  # backward can hand two leaves one array
    opt = SGD([a, b], lr=0.1)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.data, 0.0)
    assert a.grad.data is not b.grad.data and shared[0] == 1.0
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_step_does_not_modify_shared_gradient_arrays():
    a, b = param([1.0, 2.0]), param([3.0, 4.0])
    shared = np.array([1.0, -1.0])
    a.grad, b.grad = Tensor(shared), Tensor(shared)
    for opt in (SGD([a, b], lr=0.1, momentum=0.9), Adam([a, b], weight_decay=0.1)):
        opt.step()
        opt.step()
        np.testing.assert_array_equal(shared, [1.0, -1.0])


# ---- argument validation -----------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda p: SGD(p, lr=-0.1), "learning rate"),
    (lambda p: SGD(p, lr=0.1, momentum=-1), "momentum"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: Adam(p, lr=float("nan")), "learning rate"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), "betas"),
    (lambda p: Adam(p, betas=(-0.1, 0.9)), "betas"),
    (lambda p: AdamW(p, weight_decay=-1), "weight_decay"),
    (lambda p: Adam([{"params": p, "lr": -1.0}]), "learning rate"),
])
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make([param([1.0])])


def test_empty_or_wrong_params_raise():
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    model = nn.Linear(2, 1)
    params = model.parameters()
    SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD(params, lr=0.1)  # the generator is exhausted
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(param([1.0]), lr=0.1)
    with pytest.raises(TypeError, match="not a set"):
        SGD({param([1.0])}, lr=0.1)
    with pytest.raises(TypeError, match="not a Parameter"):
        SGD([np.zeros(2)], lr=0.1)


# ---- state_dict ----------------------------------------------------------------------------
def make_pair():
    return param([1.0, -2.0]), param([[0.5, 0.25], [0.0, 3.0]])


GRADS2 = [np.array([[0.3, -0.1], [0.2, 0.05]]) * k for k in (1.0, -0.5, 2.0, 0.7, -1.3, 0.4)]


@pytest.mark.parametrize("make_opt", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.01, amsgrad=True),
    lambda ps: AdamW(ps, lr=0.02),
])
def test_state_dict_round_trip_continues_like_uninterrupted_run(make_opt, tmp_path):
    def steps(opt, ps, grads):
        for g in grads:
            ps[0].grad, ps[1].grad = Tensor(g[0]), Tensor(g)
            opt.step()

    full = make_pair()
    opt = make_opt(list(full))
    steps(opt, full, GRADS2)

    first = make_pair()
    opt1 = make_opt(list(first))
    steps(opt1, first, GRADS2[:3])
    minicnn.serialization.save({"opt": opt1.state_dict(), "params": [p.data for p in first]}, tmp_path / "ck.npz")
    opt1.step()  # later changes must not leak into the checkpoint

    ck = minicnn.serialization.load(tmp_path / "ck.npz")
    resumed = (param(ck["params"][0]), param(ck["params"][1]))
    opt2 = make_opt(list(resumed))
    opt2.load_state_dict(ck["opt"])
    steps(opt2, resumed, GRADS2[3:])
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_keyed_by_parameter_index():
    a, b = make_pair()
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5}])
    b.grad = Tensor(np.ones((2, 2)))
    opt.step()
    sd = opt.state_dict()
    assert list(sd["state"]) == [1] and sd["state"][1]["step"] == 1
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5
    opt.step()  # the state_dict is a snapshot, not a view of live state
    assert sd["state"][1]["step"] == 1
    np.testing.assert_allclose(sd["state"][1]["exp_avg"], 0.1)


def test_load_state_dict_rejects_mismatches():
    a, b = make_pair()
    opt = Adam([a, b])
    a.grad, b.grad = Tensor(np.ones(2)), Tensor(np.ones((2, 2)))
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="1 parameters in the checkpoint but 2 here"):
        opt.load_state_dict({"state": {}, "param_groups": [dict(sd["param_groups"][0], params=[0])]})
    with pytest.raises(ValueError, match="1 parameter groups, this optimizer has 2"):
        Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    swapped = Adam([b, a])  # same count, shapes swapped
    with pytest.raises(ValueError, match=r"exp_avg.*shape \(2,\).*shape \(2, 2\)"):
        swapped.load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"lr": 1})


# ---- on a real model --------------------------------------------------------------------
@pytest.mark.parametrize("make_opt", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.05),
                                      lambda ps: AdamW(ps, lr=0.05)])
def test_optimizers_fit_a_linear_regression(make_opt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    minicnn.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = make_opt(model.parameters())
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn(model(Tensor(x)), Tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-2 * losses[0] and math.isfinite(losses[-1])


def test_optimizer_base_needs_update_rule():
    p = param([1.0])
    p.grad = Tensor(np.ones(1))
    with pytest.raises(NotImplementedError):
        Optimizer([p], {"lr": 0.1}).step()
