"""Image I/O: anything Pillow reads -> float32 RGB [0,1] NCHW tensors, and back.

Every loader goes through :func:`load_image`, which
- accepts a path, raw bytes, a binary file object or a ``PIL.Image``;
- applies the EXIF orientation;
- converts every PIL mode (RGB, RGBA/LA/PA on white, L, P with transparency, CMYK, 1, I;16, I, F)
  to 8-bit-equivalent float RGB;
- refuses images above a pixel cap *before* decoding (and keeps Pillow's decompression-bomb
  protection on), tiny images and absurd aspect ratios;
- raises :class:`~stylekit.errors.ImageError` with a readable message for everything else
  (empty, truncated, not an image, SVG, ...).
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import ImageError, ParameterError

ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO, Image.Image]

#: Largest image (in pixels) stylekit will decode. 40 MP covers any phone photo.
DEFAULT_MAX_PIXELS = 40_000_000
#: Smallest accepted side (pixels) of an input image.
MIN_SIDE = 8
#: Largest accepted ratio between the long and the short side.
MAX_ASPECT = 20.0
#: Largest file accepted for decoding (bytes).
MAX_FILE_BYTES = 50 * 1024 * 1024

# Keep Pillow's decompression bomb protection on (it is on by default; make sure nobody disabled it).
if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > 2 * DEFAULT_MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = 2 * DEFAULT_MAX_PIXELS


def _describe(src: ImageSource) -> str:
    if isinstance(src, (str, os.PathLike)):
        return f"'{os.fspath(src)}'"
    if isinstance(src, (bytes, bytearray)):
        return f"the uploaded data ({len(src)} bytes)"
    if isinstance(src, Image.Image):
        return "the given PIL image"
    return "the given file"


def open_image(src: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open, validate and decode an image; returns an RGB ``PIL.Image`` (EXIF orientation applied)."""
    what = _describe(src)
    if isinstance(src, Image.Image):
        img = src
    else:
        if isinstance(src, (str, os.PathLike)):
            p = Path(src)
            if not p.exists():
                raise ImageError(f"{what} does not exist.")
            if p.is_dir():
                raise ImageError(f"{what} is a folder, not an image file.")
            size = p.stat().st_size
            if size == 0:
                raise ImageError(f"{what} is empty (0 bytes).")
            if size > MAX_FILE_BYTES:
                raise ImageError(f"{what} is {size / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MiB.")
            try:
                data = p.read_bytes()
            except OSError as e:
                raise ImageError(f"{what} cannot be read: {e.strerror or e}.") from None
        elif isinstance(src, (bytes, bytearray)):
            data = bytes(src)
        else:
            data = src.read()
        if len(data) == 0:
            raise ImageError(f"{what} is empty (0 bytes).")
        if len(data) > MAX_FILE_BYTES:
            raise ImageError(f"{what} is {len(data) / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MiB.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"{what} is far too large (decompression bomb protection); "
                             f"the limit is {max_pixels / 1e6:.0f} megapixels.") from None
        except UnidentifiedImageError:
            head = data[:256].lstrip().lower()
            kind = ""
            if head.startswith(b"<svg") or b"<svg" in head:
                kind = " It looks like an SVG (vector) file; please convert it to PNG or JPEG."
            elif head.startswith((b"<!doctype", b"<html", b"{", b"[")):
                kind = " It looks like a text/HTML/JSON file."
            raise ImageError(f"{what} is not an image stylekit can read (PNG, JPEG, WebP, GIF, BMP, TIFF).{kind}") from None
        except Exception as e:  # noqa: BLE001 - any decoder failure is a bad file
            raise ImageError(f"{what} could not be opened as an image ({type(e).__name__}: {e}).") from None
    w, h = img.size
    if w * h > max_pixels:
        raise ImageError(f"{what} is {w}×{h} = {w * h / 1e6:.1f} megapixels; "
                         f"the limit is {max_pixels / 1e6:.0f} megapixels. Please downscale it.")
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{what} is {w}×{h}; images must be at least {MIN_SIDE} pixels on each side.")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageError(f"{what} is {w}×{h}, an aspect ratio above {MAX_ASPECT:.0f}:1; please crop it.")
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)  # first frame of animations / multi-page TIFF
        img.load()
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{what} is damaged or truncated and cannot be decoded ({e}).") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if (mode.startswith("I;16") or arr.max() > 255) else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scale = 1.0 if hi <= 1.0 and lo >= 0 else 1.0 / 255.0
        arr = np.nan_to_num(np.clip(arr * scale, 0, 1)) * 255.0
        return Image.fromarray((arr + 0.5).astype(np.uint8), "L").convert("RGB")
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if mode == "CMYK":
        return img.convert("RGB")
    return img.convert("RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB ``PIL.Image`` -> float32 tensor (1, 3, H, W) in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) float tensor in [0, 1] -> RGB ``PIL.Image``."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ParameterError(f"tensor_to_pil expects one image, got a batch of {x.shape[0]}")
        x = x[0]
    arr = (x.detach().float().clamp(0, 1).mul(255).add_(0.5)).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def fit_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    """(h, w) scaled so that the long side is ``long_side`` (aspect kept, each side >= 1)."""
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def resize_long_side(x: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize an NCHW tensor so its long side is ``long_side`` pixels (antialiased when shrinking)."""
    check_size(long_side)
    h, w = x.shape[-2:]
    nh, nw = fit_size(h, w, long_side)
    return resize(x, nh, nw)


def resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bicubic resize of an NCHW tensor to (h, w); antialiased when shrinking, clamped to [0, 1]."""
    if tuple(x.shape[-2:]) == (h, w):
        return x
    shrink = h < x.shape[-2] or w < x.shape[-1]
    y = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=shrink)
    return y.clamp_(0, 1)


def check_size(size: object, lo: int = 16, hi: int = 4096, name: str = "size") -> int:
    """Validate a long-side size parameter; returns it as int or raises ParameterError."""
    try:
        f = float(size)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a whole number of pixels, got {size!r}") from None
    if not np.isfinite(f) or f != int(f):
        raise ParameterError(f"{name} must be a whole number of pixels, got {size!r}")
    if not lo <= int(f) <= hi:
        raise ParameterError(f"{name} must be between {lo} and {hi} pixels, got {int(f)}")
    return int(f)


def load_image(src: ImageSource, size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Load any supported image as float32 RGB (1, 3, H, W) in [0, 1].

    ``size``: if given, resize so that the long side is ``size`` pixels (antialiased).
    """
    if size is not None:
        size = check_size(size)
    img = open_image(src, max_pixels=max_pixels)
    if size is not None:
        # Shrink with PIL first when the image is much larger (fast, high quality), finish in torch.
        w, h = img.size
        nh, nw = fit_size(h, w, size)
        if (nh, nw) != (h, w):
            img = img.resize((nw, nh), Image.Resampling.LANCZOS)
    return pil_to_tensor(img)


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def save_image(x: torch.Tensor | Image.Image, path: str | os.PathLike, quality: int = 95) -> Path:
    """Save an image tensor (or PIL image) as PNG/JPEG/WebP, chosen by extension; written atomically."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ParameterError(f"cannot save '{path}': use a .png, .jpg/.jpeg or .webp file name")
    img = x if isinstance(x, Image.Image) else tensor_to_pil(x)
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {"optimize": False}
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt, **kwargs)
    return path


def image_to_bytes(x: torch.Tensor | Image.Image, fmt: str = "PNG") -> bytes:
    img = x if isinstance(x, Image.Image) else tensor_to_pil(x)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()
