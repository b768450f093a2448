"""A corpus of hostile and odd inputs, every file generated here (no downloads, no /work/shared).

``image_cases()`` lists :class:`ImageCase` objects: each writes one file into a folder and says whether
stylekit must accept it (``ok=True``, with an optional check of the decoded tensor) or refuse it with an
:class:`~stylekit.errors.ImageError` whose message contains ``needle``.

The builders are cheap: the decompression bomb is a 30000×30000 1-bit PNG compressed from zero rows
(~110 KB on disk, 900 megapixels when decoded), the "too large file" is a sparse file.

``weights_cases()`` and ``onnx_cases()`` build corrupt / truncated / foreign weight and ONNX files;
``PICKLE_MARKER`` names the file a malicious pickle would create if anything unpickled it.
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

__all__ = ["ImageCase", "image_cases", "png_bytes", "bomb_png", "good_jpeg", "weights_cases", "onnx_cases",
           "malicious_pickle", "PICKLE_MARKER"]


# ---- raw PNG writer (for headers Pillow would refuse to write, and for bombs) -----------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, bit_depth: int = 8, color_type: int = 0, row: bytes | None = None) -> bytes:
    """A PNG whose every row is ``row`` (default zeros), compressed row by row (cheap for huge images)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4, 3: 1}[color_type]
    row_bytes = (width * channels * bit_depth + 7) // 8
    row = row if row is not None else bytes(row_bytes)
    assert len(row) == row_bytes
    line = b"\x00" + row
    comp = zlib.compressobj(9)
    parts = []
    block = line * max(1, (1 << 20) // len(line))  # ~1 MB per compress() call
    per_block = len(block) // len(line)
    left = height
    while left > 0:
        n = min(left, per_block)
        parts.append(comp.compress(block if n == per_block else line * n))
        left -= n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def bomb_png(side: int = 30000) -> bytes:
    """A side×side 1-bit grey PNG of zeros: ~110 KB for 30000² (900 megapixels)."""
    return png_bytes(side, side, bit_depth=1, color_type=0)


def _pil_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _gradient(w: int = 64, h: int = 48) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    arr = np.stack([x, y, 255 - x], -1).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def good_jpeg(w: int = 64, h: int = 48) -> bytes:
    return _pil_bytes(_gradient(w, h), "JPEG", quality=90)


def good_png(w: int = 64, h: int = 48) -> bytes:
    return _pil_bytes(_gradient(w, h), "PNG")


# ---- the image corpus ------------------------------------------------------------------------------------------
@dataclass
class ImageCase:
    name: str                      # file name written (its suffix may lie about the content)
    make: Callable[[Path], None]   # writes the file at the given path
    ok: bool                       # True: must load; False: must raise ImageError
    needle: str = ""               # lower-case text the error message must contain
    check: Callable[[object], None] | None = None  # check of the loaded (1, 3, H, W) tensor
    demo: bool = True              # also sent to the demo (False for cases a browser cannot upload)
    tags: set = field(default_factory=set)

    def write(self, folder: Path) -> Path:
        p = Path(folder) / self.name
        self.make(p)
        return p


def _w(data: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    def make(p: Path) -> None:
        p.write_bytes(data() if callable(data) else data)
    return make


def _shape(h: int, w: int) -> Callable[[object], None]:
    def check(x) -> None:
        assert tuple(x.shape) == (1, 3, h, w), tuple(x.shape)
        assert str(x.dtype) == "torch.float32"
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    return check


def _animated_gif() -> bytes:
    frames = [Image.new("P", (40, 30), i * 40) for i in range(4)]
    return _pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _multipage_tiff() -> bytes:
    pages = [Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("RGB", (20, 20), (0, 255, 0))]
    return _pil_bytes(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def _first_page_red(x) -> None:
    _shape(30, 40)(x)
    assert float(x[0, 0].mean()) > 0.95 and float(x[0, 1].mean()) < 0.05


def _png16() -> bytes:
    arr = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    img = Image.fromarray(arr)  # uint16 -> mode I;16
    assert img.mode == "I;16", img.mode
    return _pil_bytes(img, "PNG")


def _palette_transparent() -> bytes:
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    img.paste(1, (0, 0, 16, 32))  # left half red, right half index 0 = transparent black
    return _pil_bytes(img, "PNG", transparency=0)


def _palette_check(x) -> None:
    _shape(32, 32)(x)
    right = x[0, :, :, 16:]
    assert float(right.min()) > 0.99, "transparent pixels must be composited on white"
    assert float(x[0, 0, :, :16].mean()) > 0.99 and float(x[0, 1, :, :16].mean()) < 0.01


def _rgba() -> bytes:
    arr = np.zeros((24, 32, 4), np.uint8)
    arr[..., 2] = 255
    arr[..., 3] = 128
    return _pil_bytes(Image.fromarray(arr, "RGBA"), "PNG")


def _exif_rotated() -> bytes:
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)    # left half red
    arr[:, 20:] = (0, 0, 255)    # right half blue
    img = Image.fromarray(arr, "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    return _pil_bytes(img, "JPEG", quality=95, exif=exif.tobytes())


def _exif_check(x) -> None:
    # stored 40 wide × 20 high; displayed 20 wide × 40 high with the red half on top
    _shape(40, 20)(x)
    top, bottom = x[0, :, :20], x[0, :, 20:]
    assert float(top[0].mean()) > 0.8 and float(top[2].mean()) < 0.2, "EXIF orientation was not applied"
    assert float(bottom[2].mean()) > 0.8 and float(bottom[0].mean()) < 0.2


def _cmyk() -> bytes:
    return _pil_bytes(_gradient().convert("CMYK"), "JPEG", quality=90)


def _grey_jpeg() -> bytes:
    return _pil_bytes(_gradient().convert("L"), "JPEG", quality=90)


def _one_bit() -> bytes:
    return _pil_bytes(_gradient().convert("1"), "PNG")


def _float_tiff() -> bytes:
    arr = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)
    arr[0, 0] = np.nan
    return _pil_bytes(Image.fromarray(arr, "F"), "TIFF")


def _truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def _bad_crc_png() -> bytes:
    data = bytearray(good_png())
    i = data.index(b"IDAT")
    data[i + 10] ^= 0xFF  # corrupt compressed data (and so its CRC)
    return bytes(data)


def _sparse_huge(p: Path) -> None:
    with open(p, "wb") as f:
        f.write(good_jpeg()[:64])
        f.truncate(60 * 1024 * 1024)  # 60 MB, sparse: costs nothing


def _huge_json() -> bytes:
    return json.dumps({"data": ["x" * 1000] * 2000, "nested": [[[[[1]]]]] * 1000}).encode()  # ~2 MB


def _svg() -> bytes:
    return (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
            b'<circle cx="50" cy="50" r="40" fill="red"/></svg>')


def _mkdir(p: Path) -> None:
    p.mkdir()


def image_cases() -> list[ImageCase]:
    """The image corpus (≥ 25 files). ``ok`` cases must load, the others must raise ImageError."""
    C = ImageCase
    return [
        # ---- refused -------------------------------------------------------------------------------------------
        C("empty.jpg", _w(b""), False, "empty"),
        C("truncated.jpg", _w(lambda: _truncated(good_jpeg(256, 192), 0.3)), False, "truncated"),
        C("truncated.png", _w(lambda: _truncated(good_png(256, 192), 0.5)), False, ""),
        C("header_only.png", _w(lambda: good_png()[:40]), False, ""),
        C("bad_crc.png", _w(_bad_crc_png), False, ""),
        C("text.jpg", _w(b"this is not an image, just some text\n" * 10), False, "not an image"),
        C("page.jpg", _w(b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"), False,
          "html"),
        C("vector.svg", _w(_svg), False, "svg"),
        C("vector_named.png", _w(_svg), False, "svg"),
        C("payload.json.png", _w(_huge_json), False, "json"),
        C("random.webp", _w(lambda: np.random.default_rng(0).bytes(4096)), False, "not an image"),
        C("one_pixel.png", _w(lambda: good_png(1, 1)), False, "at least"),
        C("one_by_5000.png", _w(lambda: png_bytes(1, 5000)), False, "at least"),
        C("sliver_8x4000.png", _w(lambda: png_bytes(8, 4000)), False, "aspect"),
        C("bomb_30000x30000.png", _w(bomb_png), False, "too large", tags={"bomb"}),
        C("big_9000x5000.png", _w(lambda: png_bytes(9000, 5000, bit_depth=1)), False, "megapixels"),
        C("huge_file.jpg", _sparse_huge, False, "limit", demo=False),
        C("folder.jpg", _mkdir, False, "folder", demo=False),
        # ---- accepted (and converted correctly) -----------------------------------------------------------------
        C("animated.gif", _w(_animated_gif), True, check=_shape(30, 40)),
        C("multipage.tiff", _w(_multipage_tiff), True, check=_first_page_red),
        C("grey16.png", _w(_png16), True, check=_shape(48, 64)),
        C("one_bit.png", _w(_one_bit), True, check=_shape(48, 64)),
        C("cmyk.jpg", _w(_cmyk), True, check=_shape(48, 64)),
        C("grey.jpg", _w(_grey_jpeg), True, check=_shape(48, 64)),
        C("palette_transparent.png", _w(_palette_transparent), True, check=_palette_check),
        C("rgba.png", _w(_rgba), True, check=_shape(24, 32)),
        C("exif_rotated.jpg", _w(_exif_rotated), True, check=_exif_check),
        C("float.tiff", _w(_float_tiff), True, check=_shape(48, 64)),
        C("jpeg_named.png", _w(good_jpeg), True, check=_shape(48, 64)),
        C("plain.bmp", _w(lambda: _pil_bytes(_gradient(), "BMP")), True, check=_shape(48, 64)),
        C("plain.webp", _w(lambda: _pil_bytes(_gradient(), "WEBP")), True, check=_shape(48, 64)),
    ]


# ---- weights ------------------------------------------------------------------------------------------------------
PICKLE_MARKER = "STYLEKIT_PICKLE_EXECUTED"


class _Evil:
    """Unpickling this runs ``open(marker, 'w')`` — it must never happen on stylekit's load path."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_pickle(path: Path, marker: Path) -> None:
    """A torch-style pickle (``torch.save``) whose unpickling creates ``marker``."""
    import torch

    torch.save({"state_dict": _Evil(str(marker))}, str(path))


def weights_cases(folder: Path) -> dict[str, Path]:
    """Bad weight files: name -> path (corrupt, truncated, empty, JSON, a pickle, a foreign safetensors)."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = folder / name
        out[name].write_bytes(data)

    put("random.safetensors", np.random.default_rng(1).bytes(2048))
    put("empty.safetensors", b"")
    put("header_lies.safetensors", struct.pack("<Q", 10**12) + b"{}")
    put("json.safetensors", b'{"not": "weights"}')
    # a valid foreign file: safetensors with tensors of another network, no stylekit metadata
    foreign = folder / "foreign.safetensors"
    save_file({"fc.weight": torch.randn(10, 4), "fc.bias": torch.zeros(10)}, str(foreign),
              metadata={"stylekit": json.dumps({"config": {"arch": "resnet-9000"}})})
    out["foreign.safetensors"] = foreign
    # a valid file truncated half-way
    full = foreign.read_bytes()
    put("truncated.safetensors", full[: len(full) // 2])
    # a pickle pretending to be weights
    p = folder / "evil.safetensors"
    malicious_pickle(p, folder / PICKLE_MARKER)
    out["evil.safetensors"] = p
    q = folder / "evil.pth"
    q.write_bytes(p.read_bytes())
    out["evil.pth"] = q
    return out


# ---- ONNX ----------------------------------------------------------------------------------------------------------
def onnx_cases(folder: Path) -> dict[str, Path]:
    """Bad ONNX files: corrupt bytes, a valid graph with the wrong inputs, one without stylekit metadata."""
    import onnx
    from onnx import TensorProto, helper

    folder = Path(folder)
    out: dict[str, Path] = {}
    p = folder / "corrupt.onnx"
    p.write_bytes(b"\x08\x07\x12\x04junk" + np.random.default_rng(2).bytes(1024))
    out["corrupt.onnx"] = p
    p = folder / "empty.onnx"
    p.write_bytes(b"")
    out["empty.onnx"] = p

    def identity(input_name: str, meta: dict[str, str] | None) -> onnx.ModelProto:
        x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, "h", "w"])
        y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, "h", "w"])
        g = helper.make_graph([helper.make_node("Identity", [input_name], ["out"])], "g", [x], [y])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        for k, v in (meta or {}).items():
            e = m.metadata_props.add()
            e.key, e.value = k, v
        return m

    p = folder / "no_metadata.onnx"
    onnx.save(identity("image", None), str(p))
    out["no_metadata.onnx"] = p
    # claims to be a stylekit feed-forward graph but takes one input called "x"
    try:
        from export.onnx_files import GraphInfo
        info = GraphInfo(kind="fast", model="fast_gallery", styles=["a", "b"], variant="fp32", source_sha256="0" * 64)
        meta = info.to_props()
    except Exception:  # noqa: BLE001 - GraphInfo's fields changed: fall back to plausible keys
        meta = {"stylekit.kind": "fast", "stylekit.model": "fast_gallery", "stylekit.variant": "fp32",
                "stylekit.source_sha256": "0" * 64}
    p = folder / "wrong_inputs.onnx"
    onnx.save(identity("x", meta), str(p))
    out["wrong_inputs.onnx"] = p
    good = p.read_bytes()
    p = folder / "truncated.onnx"
    p.write_bytes(good[: len(good) // 2])
    out["truncated.onnx"] = p
    return out


# ---- the demo, launched in this process ----------------------------------------------------------------------------
def launch_demo(onnx_dir: Path, max_file_size: str = "2mb", **settings):
    """Launch demo/app.py's app on a free 127.0.0.1 port with small untrained networks behind the real
    onnxruntime runners (whatever the catalogue holds). Returns ``(app, url, style_names, restore)``;
    call ``app.close()`` then ``restore()`` when done."""
    from demo import engine
    from demo.app import Settings, create_demo, launch_kwargs
    from export.runtime import get_adain_runner, get_fast_runner
    from stylekit.adain import AdaINModel, Decoder
    from stylekit.feedforward import TransformerNet

    import torch

    torch.manual_seed(0)
    net = TransformerNet(num_styles=2, width=(8, 16, 32), blocks=1).eval()
    engine.use_runner("fast", get_fast_runner(net=net, style_names=["stripes", "dots"], variant="fp32",
                                              onnx_dir=onnx_dir))
    engine.use_runner("adain", get_adain_runner(model=AdaINModel(Decoder(width=0.125)), variant="fp32",
                                                onnx_dir=onnx_dir))
    kw = dict(max_queue=16, heavy_concurrency=1, fast_concurrency=2, gatys_size=64, gatys_steps=5, fast_size=96,
              preview_every=2, warm_up=False, max_file_size=max_file_size)
    kw.update(settings)
    s = Settings(**kw)
    app = create_demo(s)
    from demo.procs import free_port

    port = free_port()
    lk = launch_kwargs(s)
    lk.update(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    app.launch(**lk)

    def restore() -> None:
        engine.use_runner("fast", None)
        engine.use_runner("adain", None)

    return app, f"http://127.0.0.1:{port}/", engine.fast_style_names(), restore


# ---- raw HTTP access to a running demo (no gradio_client: what a hostile client can send) ---------------------------
def rest_upload(url: str, name: str, data: bytes, timeout: float = 60) -> tuple[int, object]:
    """POST one file to ``/gradio_api/upload``: (status, server paths or error text)."""
    import httpx

    r = httpx.post(url + "gradio_api/upload", files={"files": (name, data, "application/octet-stream")},
                   timeout=timeout)
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, r.text


def file_data(server_path: str) -> dict:
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}}


def rest_call(url: str, api_name: str, data: list, timeout: float = 120) -> tuple[str, str]:
    """Call a named endpoint through Gradio's REST API with ``data`` serialized by Python's json (NaN and
    Infinity included, as a hostile client may send them). Returns (last SSE event, its data); a request
    refused before it is queued gives ``("http <status>", body)``."""
    import httpx

    body = json.dumps({"data": data})  # allow_nan=True: "NaN"/"Infinity" literals
    r = httpx.post(f"{url}gradio_api/call/{api_name.strip('/')}", content=body,
                   headers={"content-type": "application/json"}, timeout=timeout)
    if r.status_code != 200:
        return f"http {r.status_code}", r.text[:500]
    event_id = r.json()["event_id"]
    event, payload = "", ""
    with httpx.stream("GET", f"{url}gradio_api/call/{api_name.strip('/')}/{event_id}", timeout=timeout) as s:
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                payload = line[5:].strip()
                if event in ("complete", "error"):
                    break
    return event, payload
