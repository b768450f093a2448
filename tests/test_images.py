"""Image loading: every PIL mode to float32 RGB [0, 1] NCHW, EXIF, resizing, saving, bad files -> ImageError."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from stylekit.errors import ImageError, ParameterError
from stylekit.images import (check_size, image_to_bytes, load_image, open_image, resize_long_side, save_image,
                             tensor_to_pil)


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _pixel(x: torch.Tensor, y: int, xx: int) -> list[float]:
    return [round(v, 3) for v in x[0, :, y, xx].tolist()]


def test_rgb_from_path_bytes_file_and_pil(tmp_path):
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[..., 0] = 255
    arr[5, 7] = (10, 20, 30)
    img = Image.fromarray(arr, "RGB")
    p = tmp_path / "a.png"
    img.save(p)
    for src in (p, str(p), p.read_bytes(), io.BytesIO(p.read_bytes()), img):
        x = load_image(src)
        assert x.shape == (1, 3, 20, 30) and x.dtype == torch.float32
        assert _pixel(x, 0, 0) == [1.0, 0.0, 0.0]
        assert torch.allclose(x[0, :, 5, 7], torch.tensor([10, 20, 30]) / 255.0)


def test_rgba_and_la_composite_on_white():
    rgba = Image.new("RGBA", (16, 12), (255, 0, 0, 0))  # fully transparent red -> white
    rgba.putpixel((1, 1), (0, 0, 255, 255))              # opaque blue stays blue
    rgba.putpixel((2, 2), (0, 0, 0, 128))                # half-transparent black -> mid grey
    x = load_image(_png_bytes(rgba))
    assert x.shape == (1, 3, 12, 16)
    assert _pixel(x, 0, 0) == [1.0, 1.0, 1.0]
    assert _pixel(x, 1, 1) == [0.0, 0.0, 1.0]
    assert all(abs(v - 127 / 255) < 0.01 for v in _pixel(x, 2, 2))
    la = Image.new("LA", (16, 12), (0, 0))
    la.putpixel((3, 4), (50, 255))
    y = load_image(_png_bytes(la))
    assert _pixel(y, 0, 0) == [1.0, 1.0, 1.0]
    assert _pixel(y, 4, 3) == [round(50 / 255, 3)] * 3


def test_grey_and_one_bit():
    l = Image.new("L", (10, 10), 200)
    x = load_image(_png_bytes(l))
    assert x.shape == (1, 3, 10, 10) and torch.allclose(x, torch.full_like(x, 200 / 255))
    one = Image.new("1", (10, 10), 0)
    one.putpixel((2, 3), 1)
    y = load_image(_png_bytes(one))
    assert y.shape == (1, 3, 10, 10)
    assert _pixel(y, 3, 2) == [1.0, 1.0, 1.0] and _pixel(y, 0, 0) == [0.0, 0.0, 0.0]


def test_palette_with_and_without_transparency():
    p = Image.new("P", (10, 10), 0)
    p.putpalette([0, 255, 0] + [255, 0, 255] + [0] * (254 * 3))
    p.putpixel((1, 1), 1)
    x = load_image(_png_bytes(p))
    assert _pixel(x, 0, 0) == [0.0, 1.0, 0.0] and _pixel(x, 1, 1) == [1.0, 0.0, 1.0]
    y = load_image(_png_bytes(p, transparency=0))  # index 0 transparent -> white
    assert _pixel(y, 0, 0) == [1.0, 1.0, 1.0] and _pixel(y, 1, 1) == [1.0, 0.0, 1.0]


def test_cmyk_jpeg():
    c = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red
    buf = io.BytesIO()
    c.save(buf, format="JPEG", quality=95)
    x = load_image(buf.getvalue())
    assert x.shape == (1, 3, 16, 16)
    r, g, b = _pixel(x, 8, 8)
    assert r > 0.9 and g < 0.1 and b < 0.1


def test_sixteen_bit_grey():
    arr = np.full((10, 12), 65535, np.uint16)
    arr[0, 0] = 0
    arr[1, 1] = 32768
    img = Image.fromarray(arr)  # I;16
    assert img.mode.startswith("I;16")
    data = _png_bytes(img)
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")  # 16-bit PNG
    x = load_image(data)
    assert x.shape == (1, 3, 10, 12)
    assert _pixel(x, 0, 0) == [0.0] * 3 and _pixel(x, 2, 2) == [1.0] * 3
    assert abs(x[0, 0, 1, 1].item() - 0.5) < 0.01
    y = load_image(img)  # the I;16 PIL image itself
    assert torch.allclose(x, y)


def test_sixteen_bit_rgb_png():
    # 48-bit RGB PNG written by hand (Pillow cannot create one), red = 0xFFFF, green = 0x8000
    import struct
    import zlib

    w, h = 9, 9
    row = b"\x00" + (b"\xff\xff\x80\x00\x00\x00" * w)
    raw = zlib.compress(row * h)

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    x = load_image(png)
    assert x.shape == (1, 3, 9, 9)
    r, g, b = _pixel(x, 4, 4)
    assert r == 1.0 and abs(g - 0.5) < 0.01 and b == 0.0


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 10))  # red top-left corner of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    x = load_image(buf.getvalue())
    assert x.shape == (1, 3, 40, 20)  # portrait after rotation
    r, g, b = _pixel(x, 3, 16)       # the red corner is now top-right
    assert r > 0.8 and b < 0.2


def test_resize_on_load_keeps_aspect():
    img = Image.new("RGB", (300, 100), (10, 200, 30))
    x = load_image(img, size=60)
    assert x.shape == (1, 3, 20, 60)
    assert torch.allclose(x[0, :, 10, 30], torch.tensor([10, 200, 30]) / 255.0, atol=0.01)
    y = resize_long_side(torch.rand(1, 3, 50, 100), 64)
    assert y.shape == (1, 3, 32, 64) and 0 <= y.min() and y.max() <= 1


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_save_roundtrip(tmp_path, ext):
    x = torch.zeros(1, 3, 16, 24)
    x[:, 1] = 0.5
    p = save_image(x, tmp_path / f"sub/out{ext}")
    assert p.exists() and not list(p.parent.glob(".*.tmp"))
    assert p.stat().st_mode & 0o044  # readable by others like any normal file (not mkstemp's 0600)
    y = load_image(p)
    assert y.shape == x.shape
    assert (y - x).abs().max() < 0.05


def test_save_rejects_unknown_extension(tmp_path):
    with pytest.raises(ParameterError):
        save_image(torch.zeros(1, 3, 8, 8), tmp_path / "out.gif")


def test_tensor_pil_roundtrip_exact():
    x = torch.randint(0, 256, (1, 3, 9, 11)).float() / 255
    assert torch.equal(load_image(tensor_to_pil(x)), x)
    assert load_image(image_to_bytes(x)).shape == (1, 3, 9, 11)


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("data,needle", [
    (b"", "empty"),
    (b"hello, this is just text\n" * 10, "not an image"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "SVG"),
    (b"<!DOCTYPE html><html></html>", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, None),
])
def test_bad_bytes_raise_image_error(data, needle):
    with pytest.raises(ImageError, match=needle):
        load_image(data)


def test_truncated_files_raise_image_error(tmp_path):
    jpg = _jpeg_bytes()
    png = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    for data in (jpg[: len(jpg) // 2], png[: len(png) // 2], png[:40]):
        with pytest.raises(ImageError):
            load_image(data)
    p = tmp_path / "trunc.png"
    p.write_bytes(png[: len(png) // 2])
    with pytest.raises(ImageError, match="trunc.png"):
        load_image(p)


def test_bad_paths_raise_image_error(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    (tmp_path / "notes.png").write_text("not really a png")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "notes.png")


def test_size_limits():
    with pytest.raises(ImageError, match="megapixels"):
        open_image(Image.new("RGB", (200, 200)), max_pixels=10_000)
    with pytest.raises(ImageError, match="at least"):
        load_image(Image.new("RGB", (4, 100)))
    with pytest.raises(ImageError, match="aspect"):
        load_image(Image.new("RGB", (2100, 100)))
    with pytest.raises(ParameterError):
        load_image(Image.new("RGB", (32, 32)), size=float("nan"))
    for bad in (0, -5, 1e9, "abc", 12.5, None):
        with pytest.raises(ParameterError):
            check_size(bad)
    assert check_size("256") == 256
