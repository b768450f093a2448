"""Run the three modes on one content/style pair and lay the results out as one labelled figure.

    from stylekit.compare import compare, comparison_figure

    results = compare(content, style, size=384)          # [ModeResult(Gatys), (Feed-forward), (AdaIN)]
    fig = comparison_figure(content, style, results)     # PIL image: content | style | three results
    fig.save("figure.png")

Each :class:`ModeResult` carries the image (or ``None`` with a ``note`` saying why the mode could not
run, e.g. no trained model shipped yet), the wall time and the style/content distances of
:mod:`stylekit.metrics`. The same figure comes from ``stylekit compare CONTENT STYLE -o figure.png``
and from the demo's "Compare all" button.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import ParameterError, StyleKitError
from .images import resize_long_side, tensor_to_pil
from .metrics import Distances, distances

MODES = ("gatys", "fast", "adain")
TITLES = {"gatys": "Gatys (optimization)", "fast": "Feed-forward", "adain": "AdaIN"}


@dataclass
class ModeResult:
    """One mode's outcome on a content/style pair."""

    mode: str                                 # "gatys" | "fast" | "adain"
    image: torch.Tensor | None                # (1, 3, H, W) [0, 1]; None when the mode could not run
    seconds: float | None = None              # wall time of the stylization (metrics not included)
    distances: Distances | None = None
    note: str = ""                            # e.g. "style: starry_night", or why there is no image

    @property
    def title(self) -> str:
        return TITLES.get(self.mode, self.mode)

    def caption(self) -> list[str]:
        lines = []
        if self.seconds is not None:
            lines.append(f"{self.seconds:.2f} s" if self.seconds < 10 else f"{self.seconds:.1f} s")
        if self.distances is not None:
            lines.append(f"style {self.distances.style:.3f} · content {self.distances.content:.3f}")
        if self.note:
            lines.append(self.note)
        return lines


# ---- running the modes ---------------------------------------------------------------------------------
def run_gatys(content: torch.Tensor, style: torch.Tensor, size: int = 256, preset: str = "default",
              cancel: threading.Event | None = None, **overrides: object) -> ModeResult:
    """Gatys with ``preset`` (+ overrides such as steps=..., style_weight=...) at long side ``size``."""
    from .gatys import get_preset, stylize_gatys

    cfg = get_preset(preset, **overrides)
    t0 = time.perf_counter()
    out = stylize_gatys(content, [style], cfg, size=size, cancel=cancel)
    return ModeResult("gatys", out, time.perf_counter() - t0, note=f"{preset} preset, {max(out.shape[-2:])} px")


def run_fast(content: torch.Tensor, style_name: str | None = None, size: int | None = 512) -> ModeResult:
    """The shipped feed-forward network (its runner) with one of its styles (default: its first)."""
    from export.runtime import get_fast_runner

    runner = get_fast_runner()
    names = list(runner.style_names)
    if style_name is not None and style_name not in names:
        try:  # short names / unique parts of a name, as the CLI accepts them
            from .weights import find_style

            style_name = find_style(style_name).name
        except (ImportError, StyleKitError):
            pass
    if style_name is not None and style_name not in names:
        raise ParameterError(f"the feed-forward model has no style {style_name!r}; it knows {', '.join(names)}")
    style_name = style_name or names[0]
    weights, stroke_scale, note = style_name, 1.0, f"style: {style_name}"
    try:  # the style alone: its own network where one is shipped, at the style's own stroke scale
        from .weights import default_stroke_scale, fast_model_for

        model_id, vec = fast_model_for(style_name)
        stroke_scale = default_stroke_scale(style_name, model_id)
        if model_id != getattr(runner.source, "name", model_id):
            runner, weights, note = get_fast_runner(model_id), vec, note + ", its own network"
    except (ImportError, StyleKitError):
        pass
    x = resize_long_side(content, size) if size else content
    t0 = time.perf_counter()
    out = runner.stylize(x, weights, stroke_scale=stroke_scale)
    if stroke_scale != 1:
        note += f", stroke scale {stroke_scale:g}"
    return ModeResult("fast", out, time.perf_counter() - t0, note=note)


def run_adain(content: torch.Tensor, style: torch.Tensor, size: int | None = 512, alpha: float = 1.0,
              detail: float | None = None) -> ModeResult:
    """The shipped AdaIN decoder (its runner) with the style image; ``detail`` default
    :data:`stylekit.adain.DEFAULT_DETAIL`."""
    from export.runtime import get_adain_runner

    from .adain import DEFAULT_DETAIL

    detail = DEFAULT_DETAIL if detail is None else detail
    runner = get_adain_runner()
    x = resize_long_side(content, size) if size else content
    t0 = time.perf_counter()
    out = runner.transfer(x, [style], alpha=alpha, detail=detail)
    notes = ([f"alpha {alpha:g}"] if alpha != 1 else []) + ([f"detail {detail:g}"] if detail else [])
    return ModeResult("adain", out, time.perf_counter() - t0, note=", ".join(notes))


def unavailable(mode: str, err: BaseException) -> ModeResult:
    return ModeResult(mode, None, note=f"not available: {err}")


def compare(content: torch.Tensor, style: torch.Tensor, size: int = 256, fast_style: str | None = None,
            gatys_preset: str = "default", gatys_overrides: dict | None = None, fast_size: int | None = None,
            measure: bool = True, log: Callable[[str], None] | None = None,
            cancel: threading.Event | None = None, style_hint: str | None = None) -> list[ModeResult]:
    """Run Gatys, feed-forward and AdaIN on one pair; a mode that cannot run gives a result with a note.

    ``size`` is the output long side of every mode (``fast_size`` overrides it for the fast modes).
    ``fast_style``: the feed-forward network's style (it only knows its trained styles; default:
    ``style_hint`` (e.g. the style file's name) when it is one of them, else its first).
    """
    fast_size = fast_size or size
    if fast_style is None and style_hint:
        try:
            from export.runtime import get_fast_runner

            if style_hint in get_fast_runner().style_names:
                fast_style = style_hint
        except (ImportError, StyleKitError):
            pass
    jobs: list[tuple[str, Callable[[], ModeResult]]] = [
        ("gatys", lambda: run_gatys(content, style, size, gatys_preset, cancel=cancel, **(gatys_overrides or {}))),
        ("fast", lambda: run_fast(content, fast_style, fast_size)),
        ("adain", lambda: run_adain(content, style, fast_size)),
    ]
    results = []
    for mode, job in jobs:
        if log:
            log(f"running {TITLES[mode]}...")
        try:
            r = job()
        except StyleKitError as e:
            if type(e).__name__ == "Cancelled":
                raise
            r = unavailable(mode, e)
        if measure and r.image is not None:
            r.distances = distances(r.image, content, style)
        results.append(r)
    return results


# ---- the figure ----------------------------------------------------------------------------------------------
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 without scalable default font
        return ImageFont.load_default()


def _to_pil(x: torch.Tensor | Image.Image) -> Image.Image:
    return x.convert("RGB") if isinstance(x, Image.Image) else tensor_to_pil(x)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        cand = f"{cur} {w}".strip()
        if draw.textlength(cand, font=font) <= width or not cur:
            cur = cand
        else:
            lines.append(cur)
            cur = w
    if cur:
        lines.append(cur)
    return lines


def comparison_figure(content: torch.Tensor | Image.Image, style: torch.Tensor | Image.Image,
                      results: Sequence[ModeResult], panel_height: int = 256, title: str | None = None) -> Image.Image:
    """One row: content, style, then each result, all ``panel_height`` px tall, each with a caption
    (mode, wall time, style/content distances, note). A mode without an image gets a grey placeholder."""
    if not 64 <= int(panel_height) <= 2048:
        raise ParameterError(f"panel height must be between 64 and 2048 pixels, got {panel_height}")
    ph = int(panel_height)
    pad = max(8, ph // 24)
    fs_title, fs_text = max(12, ph // 12), max(10, ph // 17)
    f_title, f_text = _font(fs_title), _font(fs_text)

    def fit(img: Image.Image) -> Image.Image:
        w, h = img.size
        nw = max(1, round(w * ph / h))
        if nw > 2 * ph:  # very wide images: cap the panel width, keep the aspect
            nw, nh = 2 * ph, max(1, round(h * 2 * ph / w))
            return img.resize((nw, nh), Image.Resampling.LANCZOS)
        return img.resize((nw, ph), Image.Resampling.LANCZOS)

    panels: list[tuple[Image.Image, str, list[str]]] = [
        (fit(_to_pil(content)), "Content", []),
        (fit(_to_pil(style)), "Style", []),
    ]
    missing: set[int] = set()
    ref_w = panels[0][0].width
    for r in results:
        if r.image is not None:
            img = fit(_to_pil(r.image))
        else:
            img = Image.new("RGB", (ref_w, ph), (225, 225, 225))
            missing.add(len(panels))
        panels.append((img, r.title, r.caption()))

    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [[ln for c in cap for ln in _wrap(scratch, c, f_text, max(p.width, 2 * ph // 3))]
               for p, _, cap in panels]
    line_h = int(fs_text * 1.35)
    caption_h = int(fs_title * 1.5) + line_h * max([len(w) for w in wrapped] + [1])
    head_h = int(fs_title * 2) if title else 0
    width = pad + sum(max(p.width, 2 * ph // 3) + pad for p, _, _ in panels)
    height = head_h + pad + ph + pad // 2 + caption_h + pad
    fig = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(fig)
    if title:
        draw.text((pad, pad // 2), title, fill=(20, 20, 20), font=f_title)
    x = pad
    for i, ((img, name, _), lines) in enumerate(zip(panels, wrapped)):
        col_w = max(img.width, 2 * ph // 3)
        fig.paste(img, (x + (col_w - img.width) // 2, head_h + pad + (ph - img.height) // 2))
        if i in missing:
            msg = "not available"
            tw = draw.textlength(msg, font=f_text)
            draw.text((x + (col_w - tw) / 2, head_h + pad + ph / 2 - fs_text / 2), msg, fill=(90, 90, 90), font=f_text)
        y = head_h + pad + ph + pad // 2
        draw.text((x, y), name, fill=(20, 20, 20), font=f_title)
        y += int(fs_title * 1.5)
        for ln in lines:
            draw.text((x, y), ln, fill=(70, 70, 70), font=f_text)
            y += line_h
        x += col_w + pad
    return fig


def figure_for(content: torch.Tensor, style: torch.Tensor, results: Sequence[ModeResult],
               panel_height: int = 256) -> Image.Image:
    """:func:`comparison_figure` with the default title (the output size and the device)."""
    sizes = {max(r.image.shape[-2:]) for r in results if r.image is not None}
    size = f"{max(sizes)} px" if sizes else ""
    return comparison_figure(content, style, results, panel_height,
                             title=f"stylekit: Gatys vs feed-forward vs AdaIN {size}".strip())

