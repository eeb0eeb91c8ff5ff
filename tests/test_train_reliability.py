"""Issue 11, items 5, 6, 7, 9 (library side): NaN reports and last good state, Ctrl-C during a
checkpoint save, stale temp files, ENOSPC, damaged manifests, optimizer type, schedule length."""
import errno
import json
import math
import os
import time

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim, serialization
from minicnn.jsonio import json_safe, write_json
from minicnn.serialization import CheckpointError
from minicnn.train import Callback, ModelCheckpoint, NonFiniteLossError, evaluate, fit


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def loader(x, y, bs=16):
    return [(x[i:i + bs], y[i:i + bs]) for i in range(0, len(x), bs)]


def bn_model():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))


def test_nan_in_training_data_keeps_batchnorm_stats_and_weights():
    x, y = data()
    x[40] = np.nan  # batch 3
    model = bn_model()
    seen = {}

    class Snap(Callback):
        def on_batch_end(self, trainer, batch, loss):
            if batch == 1:
                seen.update(trainer.model.state_dict())

    with pytest.raises(NonFiniteLossError, match="loss is nan on the train data at epoch 1, batch 3") as e:
        fit(model, loader(x, y), loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.SGD(model.parameters(), 0.1),
            epochs=2, verbose=0, callbacks=[Snap()])
    assert (e.value.split, e.value.epoch, e.value.batch) == ("train", 1, 3)
    now = model.state_dict()
    assert all(np.isfinite(v).all() for v in now.values())  # running_mean/var were NaN before the fix
    for k in now:  # exactly the state after batch 2: the bad batch left no trace
        np.testing.assert_array_equal(now[k], seen[k], err_msg=k)


def test_non_finite_weights_fall_back_to_the_epoch_start():
    x, y = data()
    model = bn_model()
    start = model.state_dict()

    class InfGradient(Callback):  # a finite loss with an infinite gradient: the step ruins the weights
        def on_after_backward(self, trainer):
            if trainer.batch == 1:
                p = next(iter(trainer.model.parameters()))
                p.grad.data[...] = np.inf

    with pytest.raises(NonFiniteLossError, match="batch 3"):
        fit(model, loader(x, y), loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.SGD(model.parameters(), 0.1),
            epochs=1, verbose=0, callbacks=[InfGradient()])
    now = model.state_dict()
    for k in now:
        np.testing.assert_array_equal(now[k], start[k], err_msg=k)


def test_nan_in_validation_data_keeps_the_epoch_on_disk(tmp_path):
    x, y = data()
    xv, yv = data(48, seed=1)
    xv[20] = np.inf  # validation batch 2
    model = bn_model()
    ck = tmp_path / "state.npz"
    with pytest.raises(NonFiniteLossError, match=r"on the validation data at epoch 1, batch 2.*holds the first 1 "
                                                 r"epoch") as e:
        fit(model, loader(x, y), loader(xv, yv), loss_fn=nn.BCEWithLogitsLoss(), epochs=3, verbose=0,
            optimizer=optim.SGD(model.parameters(), 0.1), checkpoint=str(ck),
            callbacks=[ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_auc", verbose=False)])
    assert e.value.split == "validation" and e.value.batch == 2
    state = minicnn.load(str(ck))
    assert state["epoch"] == 1 and math.isnan(state["history"]["val_loss"][0])
    assert len(e.value.history["loss"]) == 1
    assert all(np.isfinite(v).all() for v in model.state_dict().values())


def test_evaluate_names_split_and_batch():
    x, y = data(32)
    x[20] = np.nan
    model = bn_model().eval()
    with pytest.raises(NonFiniteLossError, match="on the test data at batch 2"):
        evaluate(model, loader(x, y), split="test")


# ---- item 6: Ctrl-C during the best-weights save --------------------------------------------------
def test_ctrl_c_while_saving_best_weights(tmp_path, monkeypatch):
    x, y = data()
    model = bn_model()
    best = ModelCheckpoint(str(tmp_path / "best.npz"), monitor="loss", restore_best_weights=True, verbose=False)
    real = serialization._write_npz
    calls = {"n": 0}

    def interrupted(f, arrays):
        if not any(k.startswith("model/") for k in arrays):  # best.npz: weights only, no training state
            calls["n"] += 1
            if calls["n"] == 2:  # the save at the end of epoch 2
                f.write(b"partial")
                raise KeyboardInterrupt
        return real(f, arrays)

    monkeypatch.setattr(serialization, "_write_npz", interrupted)
    with pytest.raises(KeyboardInterrupt) as e:  # was: FileNotFoundError from the restore
        fit(model, loader(x, y), loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.SGD(model.parameters(), 0.1),
            epochs=3, verbose=0, callbacks=[best], checkpoint=str(tmp_path / "state.npz"))
    assert e.value.history.interrupted
    assert best.best_epoch == 0  # the interrupted save did not count as the new best
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "state.npz"]  # no temp file
    minicnn.load(str(tmp_path / "best.npz"))  # epoch 1's best weights, intact
    best.on_train_end(type("T", (), {"model": model})())  # the restore works


def test_missing_best_file_on_resume_fails_up_front(tmp_path):
    x, y = data()

    def run(epochs, resume):
        model = bn_model()
        seen = []

        class Count(Callback):
            def on_batch_end(self, trainer, batch, loss):
                seen.append(batch)

        fit(model, loader(x, y), loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.SGD(model.parameters(), 0.1),
            epochs=epochs, verbose=0, checkpoint=str(tmp_path / "state.npz"),
            resume=str(tmp_path / "state.npz") if resume else None,
            callbacks=[ModelCheckpoint(str(tmp_path / "best.npz"), monitor="loss", restore_best_weights=True,
                                       verbose=False), Count()])
        return seen

    run(2, False)
    os.remove(tmp_path / "best.npz")
    with pytest.raises(FileNotFoundError, match=r"best weights \(epoch \d.*best\.npz, which is missing"):
        run(4, True)


# ---- item 7 and 9: saves ------------------------------------------------------------------------------
def test_save_removes_its_own_stale_temp_files_only(tmp_path):
    target = tmp_path / "best.npz"
    stale = tmp_path / ".best.npz.k3j_9x0a.tmp"  # what a killed save leaves behind
    fresh = tmp_path / ".best.npz.zzzzzzzz.tmp"  # a concurrent save, still being written
    other = tmp_path / ".state.npz.k3j_9x0a.tmp"  # another checkpoint's temp
    odd = tmp_path / ".best.npz.mine.tmp"  # not our pattern
    for p in (stale, fresh, other, odd):
        p.write_bytes(b"x" * 100)
    old = time.time() - 3600
    for p in (stale, other, odd):
        os.utime(p, (old, old))
    os.utime(fresh, (time.time() + 60, time.time() + 60))
    minicnn.save({"w": np.ones(3)}, target)
    assert not stale.exists() and fresh.exists() and other.exists() and odd.exists()
    assert minicnn.load(target)["w"].tolist() == [1, 1, 1]


def test_killed_save_leftover_is_cleaned_by_the_next_save(tmp_path, monkeypatch):
    target = tmp_path / "state.npz"
    minicnn.save({"w": np.zeros(2)}, target)
    monkeypatch.setattr(os, "remove", lambda p: None)  # like SIGKILL: the cleanup never runs
    monkeypatch.setattr(serialization, "_write_npz", lambda f, a: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        minicnn.save({"w": np.ones(2)}, target)
    monkeypatch.undo()
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1
    past = time.time() - 10
    os.utime(left[0], (past, past))
    minicnn.save({"w": np.ones(2)}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.npz"]


def test_no_space_left_names_the_path(tmp_path, monkeypatch):
    target = tmp_path / "best.npz"
    minicnn.save({"w": np.zeros(2)}, target)

    def full(f, arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serialization, "_write_npz", full)
    with pytest.raises(OSError, match=r"best\.npz.*No space left on device.*untouched") as e:
        minicnn.save({"w": np.ones(2)}, target)
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz"]
    assert minicnn.load(target)["w"].tolist() == [0, 0]


def test_manifest_with_unequal_key_and_value_lists_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    minicnn.save({"a": 1, "b": np.ones(2)}, path)
    with np.load(path) as z:
        arrays = {k[:-4] if k.endswith(".npy") else k: z[k] for k in z.files}
    manifest = json.loads(bytes(arrays[serialization.MANIFEST]).decode())
    manifest["root"]["v"].pop()
    arrays[serialization.MANIFEST] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    with open(path, "wb") as f:
        serialization._write_npz(f, arrays)
    with pytest.raises(CheckpointError, match=r"c\.npz.*2 keys but 1 values"):
        minicnn.load(path)


def test_adam_state_into_sgd_names_both():
    model = nn.Linear(3, 1)
    adam = optim.Adam(model.parameters(), lr=0.1)
    model(minicnn.tensor(np.ones((2, 3), np.float32))).sum().backward()
    adam.step()
    state = adam.state_dict()
    sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="saved by Adam, not SGD"):
        sgd.load_state_dict(state)
    del state["optimizer"]  # a state saved before optimizers recorded their class
    with pytest.raises(ValueError, match=r"lacks SGD's options \[.*'momentum'"):
        sgd.load_state_dict(state)
    optim.Adam(model.parameters(), lr=0.1).load_state_dict(adam.state_dict())  # same class: fine


def test_conv2d_zero_channels_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"Conv2d\(0, 8\): in_channels and out_channels must be positive"):
        nn.Conv2d(0, 8, 3)


def test_resume_with_more_epochs_stretches_the_cosine(tmp_path):
    x, y = data()

    def run(epochs, resume):
        model = bn_model()
        opt = optim.SGD(model.parameters(), lr=0.1)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        return fit(model, loader(x, y), loss_fn=nn.BCEWithLogitsLoss(), optimizer=opt, scheduler=sched,
                   epochs=epochs, verbose=0, checkpoint=str(tmp_path / "state.npz"),
                   resume=str(tmp_path / "state.npz") if resume else None)

    run(4, False)
    with pytest.warns(UserWarning, match=r"new schedule length \(T_max=4 -> 8\)"):
        h = run(8, True)
    lr = h["lr"]
    assert lr[:4] == pytest.approx([0.1 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)])
    assert lr[4:] == pytest.approx([0.1 * (1 + math.cos(math.pi * k / 8)) / 2 for k in range(4, 8)])
    assert lr[4] > 0.04  # the old schedule had lr 0 at epoch 5


def test_metrics_json_has_null_not_nan(tmp_path):
    m = {"auc": float("nan"), "acc": np.float32(0.5), "curve": np.array([1.0, np.inf]), "n": np.int64(3)}
    write_json(tmp_path / "m.json", m)
    text = (tmp_path / "m.json").read_text()
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert back == {"auc": None, "acc": 0.5, "curve": [1.0, None], "n": 3}
    assert json_safe([float("-inf")]) == [None]
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_resume_from_a_mismatched_state_names_the_file(tmp_path):
    x, y = data()
    model = bn_model()
    fit(model, loader(x, y), loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.SGD(model.parameters(), 0.1),
        epochs=1, verbose=0, checkpoint=str(tmp_path / "state.npz"))
    other = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 1))
    with pytest.raises(ValueError, match=r"cannot resume from .*state\.npz: it was saved by a different setup"):
        fit(other, loader(x, y), loss_fn=nn.BCEWithLogitsLoss(), optimizer=optim.SGD(other.parameters(), 0.1),
            epochs=2, verbose=0, resume=str(tmp_path / "state.npz"))
