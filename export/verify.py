"""``python -m export verify FILE``: compare an exported file with its PyTorch source.

Real photos (held-out validation photos, else the demo examples; synthetic images only when there
are none) at several sizes, odd ones included. Pass criteria against the fp32 PyTorch output:
fp32 max abs error <= 1e-3; fp16 PSNR >= 40 dB; int8 PSNR >= 35 dB. The style-statistics graph of
AdaIN is checked on its outputs (relative error <= 1e-3) and its variants end to end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from stylekit.errors import ParameterError

from .onnx_files import load_checked

MAX_ABS_FP32 = 1e-3
MIN_PSNR = {"fp16": 40.0, "int8": 35.0}
#: (height, width) sizes checked by default: odd, non-square, a multiple of nothing, and one larger
SIZES: tuple[tuple[int, int], ...] = ((67, 45), (129, 191), (257, 383), (512, 384))


@dataclass
class Check:
    size: tuple[int, int]
    max_abs: float
    psnr: float
    ok: bool
    what: str = "output"


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _photos(n: int, synthetic_ok: bool = True) -> list[torch.Tensor]:
    from stylekit.images import load_image

    from .data import validation_photos

    files = validation_photos(n)
    if files:
        return [load_image(p) for p in files]
    if not synthetic_ok:
        raise ParameterError("no real photos found for verification (STYLEKIT_DATA or demo/examples/)")
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        x = torch.rand(1, 3, 16, 16, generator=g)
        out.append(torch.nn.functional.interpolate(x, size=(600, 800), mode="bilinear", align_corners=False))
    return out


def _fit(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    from stylekit.images import resize

    return resize(x, h, w)


def _ok(variant: str, max_abs: float, p: float) -> bool:
    if variant == "fp32":
        return max_abs <= MAX_ABS_FP32
    return p >= MIN_PSNR[variant]


def verify_file(path: str | Path, source: Any = None, photos: Sequence[torch.Tensor] | None = None,
                sizes: Sequence[tuple[int, int]] = SIZES) -> list[Check]:
    """Checks of ``path`` against ``source`` (a :class:`export.runtime.Source`, or None = the catalogue's
    model named in the file, whose sha256 must match)."""
    from . import runtime

    model, info = load_checked(path)
    if source is None:
        from .catalogue import adain_source, fast_source

        source = fast_source(info.model) if info.kind == "fast" else adain_source(info.model)
    load_checked(path, sha256=source.sha256)  # the file comes from these weights
    style_imgs_given = photos is not None
    photos = list(photos) if photos is not None else _photos(max(3, len(sizes)))
    sess = runtime.create_session(model.SerializeToString(), f"'{path}'", device="cpu")
    mods = source.modules()
    checks: list[Check] = []
    if info.kind == "fast":
        net = mods.float().eval()
        n = len(info.styles)
        for i, (h, w) in enumerate(sizes):
            x = _fit(photos[i % len(photos)], h, w)
            wt = torch.zeros(1, n)
            wt[0, i % n] = 1.0
            if n > 1 and i % 2:
                wt[0, (i + 1) % n] = 1.0
            wt = wt / wt.sum()
            with torch.no_grad():
                ref = net(x, wt).clamp(0, 1).numpy()
            y = sess.run(None, {"image": x.numpy(), "style_weights": wt.numpy()})[0]
            d, p = float(np.abs(y - ref).max()), psnr(y, ref)
            checks.append(Check((h, w), d, p, _ok(info.variant, d, p) and y.shape == ref.shape))
        return checks
    from stylekit.adain import StyleStats, style_statistics, transfer

    adain_model = mods
    style_imgs = list(reversed(photos)) if style_imgs_given else _style_photos(photos)
    if info.kind == "adain-style":
        for i, (h, w) in enumerate(sizes):
            s = _fit(style_imgs[i % len(style_imgs)], h, w)
            ref = style_statistics(adain_model, s)
            m, sd = sess.run(None, {"style": s.numpy()})
            rel = max(float((np.abs(m - ref.mean.numpy()) / (1 + np.abs(ref.mean.numpy()))).max()),
                      float((np.abs(sd - ref.std.numpy()) / (1 + np.abs(ref.std.numpy()))).max()))
            # end to end: the stylized image with these statistics vs with PyTorch's
            c = _fit(photos[i % len(photos)], 129, 191)
            y_ref = transfer(adain_model, c, [ref])
            y = transfer(adain_model, c, [StyleStats(torch.from_numpy(m), torch.from_numpy(sd))])
            d, p = float((y - y_ref).abs().max()), psnr(y, y_ref)
            ok = rel <= 1e-3 if info.variant == "fp32" else p >= MIN_PSNR[info.variant]
            checks.append(Check((h, w), d, p, ok, what=f"stats rel.err {rel:.1e}"))
        return checks
    for i, (h, w) in enumerate(sizes):
        c = _fit(photos[i % len(photos)], h, w)
        st = style_statistics(adain_model, style_imgs[(i + 1) % len(style_imgs)], 256)
        alpha = 1.0 if i % 2 == 0 else 0.6
        # the graph itself adds no border margin (the runner does, like transfer's default)
        ref = transfer(adain_model, c, [st], alpha=alpha, border=0).numpy()
        y = sess.run(None, {"content": c.numpy(), "style_mean": st.mean.numpy(), "style_std": st.std.numpy(),
                            "alpha": np.array(alpha, np.float32)})[0]
        d, p = float(np.abs(y - ref).max()), psnr(y, ref)
        checks.append(Check((h, w), d, p, _ok(info.variant, d, p) and y.shape == ref.shape))
    return checks


def _style_photos(fallback: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Held-out paintings not used for int8 calibration (which takes the first four), else ``fallback``."""
    from stylekit.images import load_image

    from .data import style_photos

    files = style_photos(8)
    files = files[4:] or files
    if files:
        return [load_image(p, 512) for p in files[:4]]
    return list(reversed(fallback))


def format_checks(path: str | Path, checks: Sequence[Check]) -> str:
    _, info = load_checked(path)
    crit = f"max abs err <= {MAX_ABS_FP32:g}" if info.variant == "fp32" else f"PSNR >= {MIN_PSNR[info.variant]:g} dB"
    lines = [f"{Path(path).name}: {info.kind} '{info.model}' {info.variant} (opset {info.opset}); pass: {crit}",
             f"{'size (HxW)':>12}  {'max abs err':>11}  {'PSNR dB':>8}  result"]
    for c in checks:
        p = "inf" if math.isinf(c.psnr) else f"{c.psnr:.1f}"
        extra = f"  ({c.what})" if c.what != "output" else ""
        lines.append(f"{c.size[0]:>5}x{c.size[1]:<6}  {c.max_abs:>11.2e}  {p:>8}  {'ok' if c.ok else 'FAIL'}{extra}")
    lines.append("verify: " + ("PASS" if all(c.ok for c in checks) else "FAIL"))
    return "\n".join(lines)
