"""save/load: pickle-free .npz checkpoints of nested state."""
import os
import zipfile

import numpy as np
import pytest

import minicnn
from minicnn import nn, serialization
from minicnn.random import get_rng, get_state, set_state
from minicnn.serialization import CheckpointError, load, save


def assert_same(a, b):
    """Deep equality that also checks container types and array dtypes/shapes."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


def test_round_trip_of_nested_structure(tmp_path):
    obj = {
        "epoch": 7,
        "big": 2 ** 200 + 12345,
        "neg": -(2 ** 70),
        "floats": [0.1, float("inf"), float("-inf"), float("nan"), -0.0],
        "flags": (True, False, None),
        "name": "résumé / ünïcode",
        "arrays": {"f64": np.linspace(0, 1, 5), "f32": np.ones((2, 3), np.float32),
                   "i64": np.arange(-3, 3), "u8": np.array([0, 255], np.uint8),
                   "empty": np.zeros((0, 4), np.float32), "scalar0d": np.array(3.5), "bool": np.array([True])},
        "np_scalars": [np.float32(1.25), np.int64(-4)],
        3: "int key",
        "file": np.zeros(1),            # would clash with np.savez's own parameter names
        "a/b": np.ones(1), "a": {"b": np.full(1, 2.0)},  # two leaves with the same path
        "x.npy": np.arange(2), "x": np.arange(3),
        "": [],
        "/odd\\key\x00\n": np.arange(2), "..": {"..": np.zeros(1)},
        "nested": [[{"deep": [np.arange(4).reshape(2, 2)]}]],
    }
    save(obj, tmp_path / "ck.npz")
    back = load(tmp_path / "ck.npz")
    assert_same(obj, back)
    assert type(back["np_scalars"][0]) is np.float32


def test_file_is_a_plain_npz_readable_without_pickle(tmp_path):
    path = tmp_path / "ck.npz"
    save({"w": np.arange(3.0), "meta": {"step": 2}}, path)
    with np.load(path, allow_pickle=False) as npz:
        assert "w" in npz.files and serialization.MANIFEST in npz.files
        np.testing.assert_array_equal(npz["w"], [0.0, 1.0, 2.0])


def test_rng_state_with_big_ints_round_trips(tmp_path):
    minicnn.manual_seed(123)
    get_rng().normal(size=3)
    save({"rng": get_state()}, tmp_path / "rng.npz")
    expected = get_rng().normal(size=4)
    set_state(load(tmp_path / "rng.npz")["rng"])
    np.testing.assert_array_equal(get_rng().normal(size=4), expected)


def test_model_and_optimizer_checkpoint(tmp_path):
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = minicnn.optim.Adam(model.parameters(), lr=0.01)
    loss = model(minicnn.tensor(np.ones((2, 3), np.float32))).sum()
    loss.backward()
    opt.step()
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 1}, tmp_path / "m.npz")
    ck = load(tmp_path / "m.npz")
    minicnn.manual_seed(1)
    model2 = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model2.load_state_dict(ck["model"])
    for (k, v), (k2, v2) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v, v2)
    assert ck["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert ck["optimizer"]["state"][0]["step"] == 1


def test_crash_during_save_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    save({"version": 1, "w": np.zeros(1000)}, path)

    def broken_writer(f, arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(serialization, "_write_npz", broken_writer)
    with pytest.raises(KeyboardInterrupt):
        save({"version": 2, "w": np.ones(1000)}, path)
    assert os.listdir(tmp_path) == ["ck.npz"]
    assert load(path)["version"] == 1


def test_saved_file_has_normal_permissions(tmp_path):
    save({"a": 1}, tmp_path / "p.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "p.npz").st_mode & 0o777 == 0o666 & ~umask


def test_garbage_and_foreign_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="junk.npz"):
        load(junk)

    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.arange(3))
    with pytest.raises(CheckpointError, match="without a minicnn manifest"):
        load(plain)

    single = tmp_path / "single.npy"
    np.save(single, np.arange(3))
    with pytest.raises(CheckpointError, match="single .npy array"):
        load(single)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{serialization.MANIFEST: np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="pickled.npz"):
        load(pickled)

    good = tmp_path / "good.npz"
    save({"w": np.arange(1000.0)}, good)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(CheckpointError, match="cut.npz"):
        load(cut)

    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        load(tmp_path / "nothere.npz")


def test_tampered_manifest_is_rejected(tmp_path):
    path = tmp_path / "t.npz"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open(serialization.MANIFEST + ".npy", "w") as f:
            manifest = b'{"format": "minicnn-checkpoint", "version": 1, "root": {"t": "eval", "v": "1"}}'
            np.lib.format.write_array(f, np.frombuffer(manifest, np.uint8))
    with pytest.raises(CheckpointError, match="unknown manifest node type 'eval'"):
        load(path)


def test_unsupported_values_are_refused_on_save(tmp_path):
    with pytest.raises(TypeError, match="set.*'opt/x'"):
        save({"opt": {"x": {1, 2}}}, tmp_path / "a.npz")
    with pytest.raises(TypeError, match="object arrays"):
        save({"a": np.array([None, 1], dtype=object)}, tmp_path / "a.npz")
    with pytest.raises(TypeError, match="dict keys"):
        save({(1, 2): 0}, tmp_path / "a.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save({"a": 1}, tmp_path / "missing" / "a.npz")
    assert os.listdir(tmp_path) == []


def test_tensors_and_gpu_arrays_are_saved_as_numpy(tmp_path):
    t = minicnn.tensor(np.arange(3, dtype=np.float32))
    save({"t": t}, tmp_path / "t.npz")
    back = load(tmp_path / "t.npz")["t"]
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    if minicnn.gpu_available():
        import cupy as cp
        save({"g": cp.arange(4, dtype=cp.float32)}, tmp_path / "g.npz")
        g = load(tmp_path / "g.npz")["g"]
        assert isinstance(g, np.ndarray)
        np.testing.assert_array_equal(g, np.arange(4, dtype=np.float32))
