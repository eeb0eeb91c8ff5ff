"""Weights without a framework (issue 12): safetensors, PyTorch checkpoints read by a restricted
unpickler (never executing file code), and load_pretrained's name/shape/dtype mapping."""
import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.weights import (
    WeightsError,
    load_pretrained,
    read_safetensors,
    read_torch,
    read_weights,
    write_safetensors,
)
from minicnn.weights.safetensors import parse_safetensors

FIX = Path(__file__).parent / "fixtures"


# ---- safetensors ------------------------------------------------------------------------------
def _raw_safetensors(header: dict, data: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def test_safetensors_round_trip(tmp_path, rng):
    tensors = {
        "conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "half": rng.standard_normal(5).astype(np.float16),
        "double": rng.standard_normal((2, 2)),
        "count": np.array(7, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(5, dtype=np.uint8),
        "i16": np.array([-3, 4], dtype=np.int16),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "big_endian": np.arange(3, dtype=">f4"),
    }
    path = tmp_path / "w.safetensors"
    write_safetensors(tensors, path, metadata={"format": "pt"})
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left
    back, meta = read_safetensors(path, with_metadata=True)
    assert meta == {"format": "pt"} and list(back) == list(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype.newbyteorder("=") and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0  # buffers 8-byte aligned
    header = json.loads(blob[8:8 + n])
    assert header["half"]["dtype"] == "F16" and header["count"] == {"dtype": "I64", "shape": [],
                                                                    "data_offsets": header["count"]["data_offsets"]}


def test_safetensors_bf16_is_widened_to_float32(tmp_path):
    values = np.array([1.0, -0.5, 3.140625, 0.0], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")  # exact in bfloat16
    raw = _raw_safetensors({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, bits.tobytes())
    (tmp_path / "b.safetensors").write_bytes(raw)
    w = read_safetensors(tmp_path / "b.safetensors")["w"]
    assert w.dtype == np.float32 and w.shape == (2, 2)
    np.testing.assert_array_equal(w.ravel(), values)


def test_safetensors_refuses_tensor_with_unstorable_dtype(tmp_path):
    with pytest.raises(WeightsError, match="object"):
        write_safetensors({"x": np.array([object()])}, tmp_path / "x.safetensors")


@pytest.mark.parametrize("header,data,msg", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12), "overlaps"),
    ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8), "past the"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12), "unreferenced bytes"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(12), "trailing bytes"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "need 12"),
    ({"a": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), "unsupported dtype"),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8), "invalid shape"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8), "invalid data_offsets"),
    ({"a": {"dtype": "F32", "shape": [2]}}, bytes(8), "exactly dtype"),
    ({"__metadata__": {"k": 3}}, b"", "__metadata__"),
])
def test_safetensors_malformed_files_are_refused_naming_the_file(tmp_path, header, data, msg):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(_raw_safetensors(header, data))
    with pytest.raises(WeightsError, match=msg) as e:
        read_safetensors(path)
    assert "bad.safetensors" in str(e.value)


def test_safetensors_truncated_and_garbage(tmp_path, rng):
    path = tmp_path / "w.safetensors"
    write_safetensors({"w": rng.standard_normal(100).astype(np.float32)}, path)
    blob = path.read_bytes()
    for cut, msg in [(len(blob) - 4, "past the"), (20, "runs past the end"), (5, "shorter than")]:
        with pytest.raises(WeightsError, match=msg) as e:
            parse_safetensors(blob[:cut], str(path))
        assert str(path) in str(e.value)
    with pytest.raises(WeightsError, match="JSON"):
        parse_safetensors(struct.pack("<Q", 4) + b"{{{{", "x")
    with pytest.raises(WeightsError, match="limit"):
        parse_safetensors(struct.pack("<Q", 2**40) + b"{}", "x")


# ---- PyTorch files written by real PyTorch (tests/fixtures/make_tiny_pth.py) -----------------------
def _tiny_model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(36, 2))


@pytest.mark.parametrize("name", ["tiny_torch.pth", "tiny_torch_legacy.pth"])
def test_real_torch_state_dict(name):
    expected = np.load(FIX / "tiny_torch_expected.npz")
    sd = read_torch(FIX / name)
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked", "4.weight", "4.bias"]
    for k, v in sd.items():
        ref = expected[f"sd/{k}"]
        assert v.dtype == ref.dtype and v.shape == ref.shape
        np.testing.assert_array_equal(v, ref)
    assert int(sd["1.num_batches_tracked"]) == 3


def test_real_torch_checkpoint_dtypes_and_views():
    expected = np.load(FIX / "tiny_torch_expected.npz")
    ck = read_torch(FIX / "tiny_torch_ckpt.pt")
    assert ck["epoch"] == 3 and ck["note"] == "tiny" and ck["lrs"] == [0.1, 0.01]
    ex = ck["extras"]
    assert ex["half"].dtype == np.float16 and ex["bf16"].dtype == np.float32 and ex["long"].dtype == np.int64
    assert ex["flag"].dtype == np.bool_ and ex["double"].dtype == np.float64
    for k, v in ex.items():
        np.testing.assert_array_equal(v, expected[f"extras/{k}"])
    np.testing.assert_array_equal(ex["transposed"], ex["base"].T)  # views of one storage
    np.testing.assert_array_equal(ex["row_slice"], ex["base"][2:, 1:5])
    assert ex["transposed"].flags.c_contiguous and ex["transposed"].flags.writeable


@pytest.mark.parametrize("name", ["tiny_torch.pth", "tiny_torch_legacy.pth", "tiny_torch_ckpt.pt"])
def test_load_pretrained_reproduces_torch_output(name):
    expected = np.load(FIX / "tiny_torch_expected.npz")
    model = _tiny_model()
    report = load_pretrained(model, FIX / name)
    assert len(report.loaded) == 9 and not report.missing and not report.unexpected
    assert int(model[1].num_batches_tracked.data) == 3
    with minicnn.no_grad():
        y = model.eval()(minicnn.tensor(expected["x"]))
    np.testing.assert_allclose(y.data, expected["y"], rtol=1e-5, atol=1e-6)


# ---- hand-built pickles: a tiny opcode assembler (protocol 2) ----------------------------------
def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _s(text: str) -> bytes:
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _i(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def _tup(items) -> bytes:
    return b"(" + b"".join(_i(v) for v in items) + b"t"


def _tensor(key: str, numel: int, offset: int, size, stride, storage: str = "FloatStorage") -> bytes:
    pid = b"(" + _s("storage") + _g("torch", storage) + _s(key) + _s("cpu") + _i(numel) + b"tQ"
    hooks = _g("collections", "OrderedDict") + b")R"
    return (_g("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + _i(offset) + _tup(size) + _tup(stride)
            + b"\x89" + hooks + b"tR")


def _state_pickle(entries: dict) -> bytes:
    return b"\x80\x02" + _g("collections", "OrderedDict") + b")R(" + b"".join(
        _s(k) + v for k, v in entries.items()) + b"u."


def _zip(path: Path, pkl: bytes, storages: dict, byteorder: str = "little") -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", byteorder)
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
    return path


def test_hand_built_zip_with_shared_storage_and_big_endian(tmp_path):
    base = np.arange(12, dtype=np.float32)
    pkl = _state_pickle({"a": _tensor("0", 12, 0, (3, 4), (4, 1)),
                         "b": _tensor("0", 12, 5, (2, 3), (1, 2)),   # a strided view from element 5
                         "c": _tensor("1", 2, 0, (2,), (1,), "LongStorage")})
    p = _zip(tmp_path / "h.pth", pkl, {"0": base.tobytes(), "1": np.array([5, -6], "<i8").tobytes()})
    sd = read_torch(p)
    np.testing.assert_array_equal(sd["a"], base.reshape(3, 4))
    np.testing.assert_array_equal(sd["b"], np.array([[5, 7, 9], [6, 8, 10]], dtype=np.float32))
    np.testing.assert_array_equal(sd["c"], [5, -6])
    p = _zip(tmp_path / "be.pth", _state_pickle({"a": _tensor("0", 12, 0, (12,), (1,))}),
             {"0": base.astype(">f4").tobytes()}, byteorder="big")
    np.testing.assert_array_equal(read_torch(p)["a"], base)


@pytest.mark.parametrize("tensor,storage,msg", [
    (_tensor("0", 4, 2, (2, 2), (2, 1)), np.zeros(4, "<f4").tobytes(), "reaches element 5"),
    (_tensor("0", 4, 0, (4,), (1,)), np.zeros(3, "<f4").tobytes(), "holds 12 bytes"),
    (_tensor("9", 4, 0, (4,), (1,)), np.zeros(4, "<f4").tobytes(), "no archive/data/9"),
    (_tensor("0", 4, 0, (4,), (1,), "EvilStorage"), np.zeros(4, "<f4").tobytes(), "torch.EvilStorage"),
])
def test_hand_built_zip_errors_name_the_file(tmp_path, tensor, storage, msg):
    p = _zip(tmp_path / "bad.pth", _state_pickle({"w": tensor}), {"0": storage})
    with pytest.raises(WeightsError, match=msg) as e:
        read_torch(p)
    assert "bad.pth" in str(e.value)


# ---- malicious files: the command must never run ------------------------------------------------
class _RunsCommand:
    def __init__(self, cmd: str):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _malicious_pickles(marker: Path) -> list[tuple[bytes, str]]:
    cmd = f"touch {marker}"
    real = pickle.dumps({"state_dict": _RunsCommand(cmd)}, protocol=2)  # what an attacker's torch.save gives
    hand = b"\x80\x02" + _g("builtins", "eval") + b"(" + _s(f"__import__('os').system('{cmd}')") + b"tR."
    # smuggled inside an allowed rebuild call's arguments
    nested = b"\x80\x02" + _g("torch._utils", "_rebuild_tensor_v2") + b"(" + _g("os", "system") + b"(" + _s(cmd) \
        + b"tR" + _i(0) + _tup((1,)) + _tup((1,)) + b"\x89" + b"NtR."
    return [(real, f"{os.system.__module__}.system"), (hand, "builtins.eval"), (nested, "os.system")]


def test_malicious_pth_is_refused_and_the_command_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    for i, (pkl, forbidden) in enumerate(_malicious_pickles(marker)):
        zipped = _zip(tmp_path / f"evil{i}.pth", pkl, {})
        legacy = tmp_path / f"evil{i}_legacy.pth"
        legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
                           + pickle.dumps({}, protocol=2) + pkl)
        for p in (zipped, legacy):
            with pytest.raises(WeightsError, match=forbidden.replace(".", r"\.")) as e:
                read_weights(p)
            assert p.name in str(e.value) and "refusing" in str(e.value)
            assert not marker.exists()
    # the same bytes through the ordinary pickle module would have run it: the test can fail
    pickle.loads(_malicious_pickles(marker)[0][0])
    assert marker.exists()


def test_build_on_a_stand_in_object_is_refused(tmp_path):
    pkl = b"\x80\x02" + _g("torch", "FloatStorage") + b"}b."  # BUILD(state) on the storage type
    with pytest.raises(WeightsError, match="BUILD"):
        read_torch(_zip(tmp_path / "b.pth", pkl, {}))


# ---- truncated and tampered real files -------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny_torch.pth", "tiny_torch_legacy.pth"])
def test_truncated_files_give_clear_errors(tmp_path, name):
    blob = (FIX / name).read_bytes()
    for cut in (len(blob) // 2, len(blob) - 3, 40):
        p = tmp_path / f"cut{cut}_{name}"
        p.write_bytes(blob[:cut])
        with pytest.raises(WeightsError) as e:
            read_weights(p)
        assert p.name in str(e.value)


def test_tampered_zip_data_fails_its_checksum(tmp_path):
    blob = bytearray((FIX / "tiny_torch.pth").read_bytes())
    with zipfile.ZipFile(FIX / "tiny_torch.pth") as zf:
        info = zf.getinfo("tiny_torch/data/0")
    name_len, extra_len = struct.unpack("<HH", bytes(blob[info.header_offset + 26:info.header_offset + 30]))
    start = info.header_offset + 30 + name_len + extra_len  # the local header's extra field pads for alignment
    blob[start + 5] ^= 0xFF  # flip bits inside the first storage's bytes
    p = tmp_path / "tampered.pth"
    p.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="CRC") as e:
        read_torch(p)
    assert "tampered.pth" in str(e.value)


def test_tampered_pickle_global_is_refused(tmp_path):
    blob = (FIX / "tiny_torch_legacy.pth").read_bytes().replace(b"FloatStorage", b"FloatStorags")
    p = tmp_path / "renamed.pth"
    p.write_bytes(blob)
    with pytest.raises(WeightsError, match=r"torch\.FloatStorags"):
        read_torch(p)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.pth"
    p.write_bytes(b"hello world, not weights")
    with pytest.raises(WeightsError, match="unknown weights format"):
        read_weights(p)
    with pytest.raises(FileNotFoundError):
        read_weights(tmp_path / "missing.pth")


# ---- load_pretrained: names, shapes, dtypes, layouts -----------------------------------------
def _state(model: nn.Module) -> "OrderedDict[str, np.ndarray]":
    return model.state_dict()


def test_gray_model_gets_rgb_first_conv_summed(rng):
    rgb = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3))
    gray = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3))
    report = load_pretrained(gray, _state(rgb))
    assert any("summed" in n for n in report.notes)
    x = rng.random((2, 1, 7, 7)).astype(np.float32)
    with minicnn.no_grad():
        np.testing.assert_allclose(gray(minicnn.tensor(x)).data, rgb(minicnn.tensor(np.repeat(x, 3, axis=1))).data,
                                   rtol=1e-5, atol=1e-6)


def test_gray_resnet_loads_rgb_resnet_weights():
    from minicnn.models import resnet18
    src = resnet18()
    dst = resnet18(in_channels=1, num_classes=2)
    report = load_pretrained(dst, _state(src), exclude=["fc."])
    assert report.excluded == ["fc.weight", "fc.bias"] and not report.missing
    np.testing.assert_allclose(dst.conv1.weight.data, src.conv1.weight.data.sum(axis=1, keepdims=True),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(dst.layer4[1].bn2.running_var.data, src.layer4[1].bn2.running_var.data)


def test_strict_and_non_strict_key_reports():
    src = _state(_tiny_model())
    src["extra.weight"] = np.zeros(3, np.float32)
    del src["4.bias"]
    with pytest.raises(WeightsError, match=r"4\.bias[\s\S]*extra\.weight"):
        load_pretrained(_tiny_model(), src)
    report = load_pretrained(_tiny_model(), src, strict=False)
    assert report.missing == ["4.bias"] and report.unexpected == ["extra.weight"] and len(report.loaded) == 8
    assert "missing (1): 4.bias" in str(report)


def test_shape_mismatch_names_key_and_both_shapes():
    src = _state(_tiny_model())
    src["4.weight"] = np.zeros((3, 36), np.float32)
    with pytest.raises(WeightsError, match=r"4\.weight: file has shape \(3, 36\), model has \(2, 36\)"):
        load_pretrained(_tiny_model(), src, strict=False)


def test_half_and_bf16_weights_become_float32(tmp_path, rng):
    ref = _tiny_model()
    sd = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in _state(ref).items()}
    write_safetensors(sd, tmp_path / "half.safetensors")
    model = _tiny_model()
    load_pretrained(model, tmp_path / "half.safetensors")
    assert model[0].weight.dtype == np.float32
    np.testing.assert_allclose(model[0].weight.data, ref[0].weight.data, rtol=1e-3, atol=1e-3)


def test_missing_num_batches_tracked_and_module_prefix_and_old_densenet_names():
    sd = OrderedDict(("module." + k, v) for k, v in _state(_tiny_model()).items()
                     if not k.endswith("num_batches_tracked"))
    report = load_pretrained(_tiny_model(), sd)  # strict, yet fine: old files lack the counter
    assert not report.missing
    from minicnn.weights.mapping import rename_legacy_densenet_key as rn
    assert rn("features.denseblock1.denselayer12.norm.1.running_var") == \
        "features.denseblock1.denselayer12.norm1.running_var"
    assert rn("features.denseblock2.denselayer3.conv.2.weight") == "features.denseblock2.denselayer3.conv2.weight"
    assert rn("features.transition1.norm.weight") == "features.transition1.norm.weight"


def test_checkpoint_wrapper_and_minicnn_checkpoint(tmp_path):
    src = _tiny_model()
    minicnn.save({"model": src.state_dict(), "epoch": 2}, tmp_path / "ck.npz")
    model = _tiny_model()
    load_pretrained(model, tmp_path / "ck.npz")
    np.testing.assert_array_equal(model[4].weight.data, src[4].weight.data)
    with pytest.raises(WeightsError, match="no state dict"):
        load_pretrained(model, {"epoch": 3})


def test_weights_modules_never_import_torch():
    src = "".join(p.read_text() for p in (Path(minicnn.__file__).parent / "weights").glob("*.py"))
    assert "import torch" not in src and "from torch" not in src
