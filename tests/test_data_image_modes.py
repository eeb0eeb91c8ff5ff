"""Issue 11, item 2: every PIL mode keeps its values; 12-bit X-rays in 16-bit files keep their contrast."""
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from minicnn.data import ImageFolder, ImageLoadError, load_image
from minicnn.data.bitdepth import detect_bits, png_significant_bits


def ramp(h=6, w=10, top=255):
    return (np.arange(h * w).reshape(h, w) * top // (h * w - 1)).astype(np.int64)


def test_twelve_bit_in_sixteen_bit_png_spans_the_full_range(tmp_path):
    a = ramp(top=4095).astype(np.uint16)  # a 12-bit detector: 0..4095
    Image.fromarray(a).save(tmp_path / "xray.png")
    out = load_image(tmp_path / "xray.png")[:, :, 0]
    assert out.max() == 255 and out.min() == 0  # was 0..15 (>> 8): a near-black image
    assert np.array_equal(out, np.rint(a * (255 / 4095)).astype(np.uint8))


def test_png_sbit_chunk_sets_the_depth(tmp_path):
    a = ramp(top=1000).astype(np.uint16)  # a dark 12-bit image: its maximum alone suggests 10 bits
    info = PngImagePlugin.PngInfo()
    info.add(b"sBIT", bytes([12]))
    Image.fromarray(a).save(tmp_path / "x.png", pnginfo=info)
    assert png_significant_bits(tmp_path / "x.png") == 12
    out = load_image(tmp_path / "x.png")[:, :, 0]
    assert np.array_equal(out, np.rint(a * (255 / 4095)).astype(np.uint8))
    # without the chunk the maximum decides (10 bits), and an explicit bits= overrides both
    Image.fromarray(a).save(tmp_path / "y.png")
    assert np.array_equal(load_image(tmp_path / "y.png")[:, :, 0], np.rint(a * (255 / 1023)).astype(np.uint8))
    assert np.array_equal(load_image(tmp_path / "y.png", bits=16)[:, :, 0],
                          np.rint(a * (255 / 65535)).astype(np.uint8))
    assert np.array_equal(ImageFolder_single(tmp_path, a, bits=12), np.rint(a * (255 / 4095)).astype(np.uint8))


def ImageFolder_single(tmp_path, a, bits):
    (tmp_path / "root" / "c").mkdir(parents=True)
    Image.fromarray(a).save(tmp_path / "root" / "c" / "z.png")
    return ImageFolder(tmp_path / "root", bits=bits)[0][0][:, :, 0]


def test_detect_bits_rule():
    assert [detect_bits(v) for v in (0, 255, 256, 1023, 1024, 4095, 4096, 65535, 65536)] == \
        [8, 8, 10, 10, 12, 12, 14, 16, 24]
    assert detect_bits(10, declared=12) == 12


GREY = ramp()  # 0..255 grey levels


@pytest.mark.parametrize("mode", ["1", "L", "I;16", "I", "RGB", "RGBA", "CMYK", "P"])
def test_every_mode_keeps_its_values(tmp_path, mode):
    g8 = GREY.astype(np.uint8)
    rgb = np.stack([g8, 255 - g8, np.full_like(g8, 77)], axis=2)  # (H, W, 3)
    if mode == "1":
        img, grey, colour = Image.fromarray(g8 >= 128).convert("1"), np.where(g8 >= 128, 255, 0), None
    elif mode == "L":
        img, grey, colour = Image.fromarray(g8), g8, None
    elif mode == "I;16":  # full 16-bit range: 0..65535 maps back to 0..255
        img, grey, colour = Image.fromarray((GREY * 257).astype(np.uint16)), g8, None
    elif mode == "I":  # 32-bit integers holding 12-bit values
        img = Image.fromarray((GREY * 4095 // 255).astype(np.int32), mode="I")
        grey, colour = np.rint((GREY * 4095 // 255) * (255 / 4095)), None
    elif mode == "RGB":
        img, grey, colour = Image.fromarray(rgb), None, rgb
    elif mode == "RGBA":  # alpha dropped, colour kept
        img = Image.fromarray(np.concatenate([rgb, np.full_like(g8, 100)[:, :, None]], axis=2), mode="RGBA")
        grey, colour = None, rgb
    elif mode == "CMYK":  # Pillow's CMYK -> RGB: 255 - C, 255 - M, 255 - Y when K = 0
        cmyk = np.concatenate([255 - rgb, np.zeros_like(g8)[:, :, None]], axis=2)
        img, grey, colour = Image.fromarray(cmyk, mode="CMYK"), None, rgb
    else:  # P: a grey palette
        img, grey, colour = Image.fromarray(g8).convert("P", palette=Image.Palette.ADAPTIVE, colors=256), None, None
    assert img.mode == mode
    path = tmp_path / ("x.tif" if mode in ("I", "CMYK") else "x.png")
    img.save(path)
    with Image.open(path) as back:  # the file really holds that mode (PNG stores I as I;16 or I)
        assert back.mode in (mode, "I;16" if mode == "I" else mode, "I" if mode == "I;16" else mode)
    out = load_image(path)
    if grey is not None:
        assert out.shape == GREY.shape + (1,) and np.array_equal(out[:, :, 0], np.asarray(grey, dtype=np.uint8))
    if colour is not None:
        assert out.shape == GREY.shape + (3,) and np.array_equal(out, colour)
    if mode == "P":  # the palette is applied: the colours are the palette's entries for each index
        want = np.asarray(img.convert("RGB"))
        assert out.shape == GREY.shape + (3,) and np.array_equal(out, want)
        assert np.abs(want[:, :, 0].astype(int) - g8).max() <= 8
    grey_out = load_image(path, grayscale=True)  # any mode can be asked for grey
    assert grey_out.shape == GREY.shape + (1,) and grey_out.dtype == np.uint8


def test_negative_or_nan_values_are_refused_naming_the_file(tmp_path):
    Image.fromarray(np.full((4, 4), -5, np.int32), mode="I").save(tmp_path / "neg.tif")
    with pytest.raises(ImageLoadError, match=r"neg\.tif.*negative"):
        load_image(tmp_path / "neg.tif")
    Image.fromarray(np.full((4, 4), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(ImageLoadError, match=r"nan\.tif.*NaN"):
        load_image(tmp_path / "nan.tif")
    f = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    Image.fromarray(f, mode="F").save(tmp_path / "unit.tif")
    assert np.array_equal(load_image(tmp_path / "unit.tif")[:, :, 0], np.rint(f * 255).astype(np.uint8))
