"""fit/evaluate: MLP on two spirals, checkpoints, resume == uninterrupted, NaN guard, callbacks."""
import os

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim
from minicnn.train import (
    EarlyStopping,
    GradientClipping,
    ModelCheckpoint,
    NonFiniteLossError,
    evaluate,
    fit,
    predict,
    predict_proba,
)


def spirals(n=400, seed=0):
    r = np.random.default_rng(seed)
    t = np.sqrt(r.random(n)) * 3 * np.pi
    cls = r.integers(0, 2, n)
    ang = t + np.pi * cls
    x = np.stack([t * np.cos(ang), t * np.sin(ang)], 1) / (3 * np.pi) + r.normal(0, 0.02, (n, 2))
    return x.astype(np.float32), cls.astype(np.int64)


def batches(x, y, bs, seed=None):
    idx = np.arange(len(x)) if seed is None else np.random.default_rng(seed).permutation(len(x))
    return [(x[idx[i:i + bs]], y[idx[i:i + bs]]) for i in range(0, len(x), bs)]


class Shuffled:
    """A tiny loader that reshuffles per epoch from (seed, epoch), like minicnn.data.DataLoader."""

    def __init__(self, x, y, bs=32, seed=0):
        self.x, self.y, self.bs, self.seed, self.epoch = x, y, bs, seed, 0

    def set_epoch(self, e):
        self.epoch = e

    def __iter__(self):
        return iter(batches(self.x, self.y, self.bs, seed=self.seed * 1000 + self.epoch))

    def __len__(self):
        return -(-len(self.x) // self.bs)


def mlp():
    return nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 1))


def test_mlp_learns_two_spirals():
    x, y = spirals(600)
    minicnn.manual_seed(0)
    model = mlp()
    opt = optim.Adam(model.parameters(), lr=0.01)
    fit(model, Shuffled(x, y), loss_fn=nn.BCEWithLogitsLoss(), optimizer=opt, epochs=60, verbose=0)
    xt, yt = spirals(400, seed=1)
    acc = (predict(model, xt) == yt).mean()
    assert acc > 0.95, acc


def run(tmp_path, epochs, resume=None, ck="state.npz"):
    x, y = spirals(256)
    minicnn.manual_seed(7)
    model = mlp()
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    best = ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_loss", verbose=False)
    h = fit(model, Shuffled(x, y), batches(x, y, 64), loss_fn=nn.BCEWithLogitsLoss(), optimizer=opt,
            epochs=epochs, scheduler=sched, callbacks=[best], checkpoint=str(tmp_path / ck), resume=resume,
            verbose=0)
    return model, h


def test_resume_equals_uninterrupted(tmp_path):
    (tmp_path / "a").mkdir()
    full_model, full = run(tmp_path / "a", 5)
    (tmp_path / "b").mkdir()
    run(tmp_path / "b", 3)  # "interrupted" after 3 epochs
    model, resumed = run(tmp_path / "b", 5, resume=str(tmp_path / "b" / "state.npz"))
    assert len(resumed["loss"]) == 5
    np.testing.assert_array_equal(resumed["loss"], full["loss"])
    np.testing.assert_array_equal(resumed["lr"], full["lr"])
    for p, q in zip(model.parameters(), full_model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_determinism_same_seed(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    _, h1 = run(tmp_path / "a", 2)
    _, h2 = run(tmp_path / "b", 2)
    assert h1["loss"] == h2["loss"]


def test_checkpoint_restores_best(tmp_path):
    x, y = spirals(128)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.05)
    ck = ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_accuracy", restore_best_weights=True, verbose=False)
    h = fit(model, batches(x, y, 32), batches(x, y, 64), loss_fn=nn.BCEWithLogitsLoss(), optimizer=opt, epochs=4,
            callbacks=[ck], verbose=0)
    assert os.path.exists(tmp_path / "best.npz")
    assert ck.best == max(h["val_accuracy"])
    # after restoring, evaluating gives the best epoch's accuracy back
    assert abs(evaluate(model, batches(x, y, 64))["accuracy"] - ck.best) < 1e-9


def test_early_stopping():
    x, y = spirals(64)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.0)  # nothing improves
    h = fit(model, batches(x, y, 32), batches(x, y, 32), loss_fn=nn.BCEWithLogitsLoss(), optimizer=opt, epochs=20,
            callbacks=[EarlyStopping(patience=2, verbose=False)], verbose=0)
    assert len(h["loss"]) == 3


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_nan_guard_names_epoch_and_batch(tmp_path):
    x, y = spirals(64)
    x[40] = np.nan  # batch 2 of 32-sized batches
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 2"):
        fit(model, batches(x, y, 32), loss_fn=nn.BCEWithLogitsLoss(), optimizer=opt, epochs=1, verbose=0)


def test_gradient_clipping_and_class_weight():
    x, y = spirals(64)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    h = fit(model, batches(x, y, 32), loss_fn=nn.BCEWithLogitsLoss(), optimizer=opt, epochs=1, verbose=0,
            class_weight={0: 2.0, 1: 0.5}, callbacks=[GradientClipping(max_norm=0.01)])
    assert np.isfinite(h["loss"][0])
    with pytest.raises(ValueError, match="exactly one"):
        GradientClipping()


def test_multiclass_fit_and_predict_proba():
    r = np.random.default_rng(0)
    x = r.standard_normal((150, 2)).astype(np.float32)
    y = (np.arctan2(x[:, 1], x[:, 0]) // (2 * np.pi / 3) % 3).astype(np.int64)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
    fit(model, batches(x, y, 25), loss_fn=nn.CrossEntropyLoss(), optimizer=optim.Adam(model.parameters(), 0.05),
        epochs=30, verbose=0)
    p = predict_proba(model, x)
    assert p.shape == (150, 3) and np.allclose(p.sum(1), 1)
    assert (p.argmax(1) == y).mean() > 0.9


def test_monitor_missing_metric_is_clear():
    x, y = spirals(32)
    model = mlp()
    with pytest.raises(KeyError, match="'val_loss' is not in the epoch logs.*val_loader"):
        fit(model, batches(x, y, 32), loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.SGD(model.parameters(), 0.1),
            epochs=1, verbose=0, callbacks=[EarlyStopping()])


def test_ctrl_c_stops_cleanly_and_keeps_last_checkpoint(tmp_path):
    from minicnn.train import Callback

    class InterruptAt(Callback):
        def on_batch_end(self, trainer, batch, loss):
            if trainer.epoch == 1 and batch == 1:
                raise KeyboardInterrupt

    x, y = spirals(128)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.05)
    ck = tmp_path / "state.npz"
    with pytest.raises(KeyboardInterrupt) as e:  # re-raised, so a script can exit with status 130
        fit(model, batches(x, y, 32), loss_fn=nn.BCEWithLogitsLoss(), optimizer=opt, epochs=3, verbose=0,
            callbacks=[InterruptAt()], checkpoint=str(ck))
    h = e.value.history
    assert h.interrupted and len(h["loss"]) == 1  # epoch 1 finished, epoch 2 was cut
    state = minicnn.load(str(ck))
    assert state["epoch"] == 1 and len(state["history"]["loss"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]  # no temp files left behind
