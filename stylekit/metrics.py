"""The quality measures every mode is judged by, computed with the default (Caffe) VGG-19 encoder.

- **style distance** S(x, style): mean over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of the relative
  Frobenius distance between size-normalized Gram matrices, ||G(x) - G(s)|| / ||G(s)||. 0 = same style
  statistics; an unstylized photo is typically around 1.
- **content distance** C(x, content): relative relu4_2 feature distance ||F(x) - F(c)|| / ||F(c)||,
  after resizing x to the content image's size. 0 = same content.
- **the painting's own distance** S_self(style): the mean style distance of four corner crops of the
  style image (2/3 of each side, not resized) from the whole. A yardstick for style distances: how far
  the painting's own pieces are from it. The feed-forward gallery's outputs all stay above it; Gatys,
  which optimizes the Gram matrices directly, can get below.
- **detail** D(x): mean absolute Laplacian of the luminance at the measuring size, the image's
  high-frequency energy (no encoder). Not a quality score by itself: it puts a number on "blurry" (a
  decoder's reconstruction against its photo, an output against the Gatys result for the same pair).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .color import luminance
from .encoder import VGG19Encoder, load_encoder
from .images import resize, resize_long_side
from .losses import gram_matrix

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
#: Images are measured at this long side (the style image too), so numbers compare across modes.
MEASURE_SIZE = 512


@dataclass
class Distances:
    style: float
    content: float

    def __str__(self) -> str:
        return f"style distance {self.style:.3f}  content distance {self.content:.3f}"


def _prep(x: torch.Tensor, size: int | None) -> torch.Tensor:
    x = x.float()
    if size is not None and max(x.shape[-2:]) != size:
        x = resize_long_side(x, size)
    return x


def _grams(enc: VGG19Encoder, x: torch.Tensor) -> dict[str, torch.Tensor]:
    f = enc(x, STYLE_LAYERS)
    return {l: gram_matrix(f[l], normalize=True) for l in STYLE_LAYERS}


def _layer_distances(gx: dict[str, torch.Tensor], gs: dict[str, torch.Tensor]) -> dict[str, float]:
    return {l: float((gx[l] - gs[l]).norm() / gs[l].norm().clamp_min(1e-8)) for l in STYLE_LAYERS}


def _gram_distance(gx: dict[str, torch.Tensor], gs: dict[str, torch.Tensor]) -> float:
    return sum(_layer_distances(gx, gs).values()) / len(STYLE_LAYERS)


@torch.no_grad()
def style_distance(x: torch.Tensor, style: torch.Tensor, encoder: VGG19Encoder | None = None,
                   size: int | None = MEASURE_SIZE) -> float:
    enc = encoder or load_encoder()
    return _gram_distance(_grams(enc, _prep(x, size)), _grams(enc, _prep(style, size)))


@torch.no_grad()
def style_distance_by_layer(x: torch.Tensor, style: torch.Tensor, encoder: VGG19Encoder | None = None,
                            size: int | None = MEASURE_SIZE) -> dict[str, float]:
    """The terms of :func:`style_distance`, one per layer of ``STYLE_LAYERS`` (their mean is the style
    distance): shows which scale of the style an image lacks (relu1_1 colours and fine texture ... relu5_1
    the largest structures)."""
    enc = encoder or load_encoder()
    return _layer_distances(_grams(enc, _prep(x, size)), _grams(enc, _prep(style, size)))


@torch.no_grad()
def content_distance(x: torch.Tensor, content: torch.Tensor, encoder: VGG19Encoder | None = None,
                     size: int | None = MEASURE_SIZE) -> float:
    enc = encoder or load_encoder()
    c = _prep(content, size)
    x = resize(_prep(x, None), *c.shape[-2:])
    fx = enc(x, (CONTENT_LAYER,))[CONTENT_LAYER]
    fc = enc(c, (CONTENT_LAYER,))[CONTENT_LAYER]
    return float((fx - fc).norm() / fc.norm().clamp_min(1e-8))


def distances(x: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
              encoder: VGG19Encoder | None = None, size: int | None = MEASURE_SIZE) -> Distances:
    """Style and content distance of a stylized image ``x``."""
    return Distances(style_distance(x, style, encoder, size), content_distance(x, content, encoder, size))


@torch.no_grad()
def self_style_distance(style: torch.Tensor, encoder: VGG19Encoder | None = None, size: int = MEASURE_SIZE,
                        fraction: float = 2 / 3) -> float:
    """Mean style distance of the style image's four corner crops (``fraction`` of each side) from the whole.

    The whole is measured at ``size`` (long side) as :func:`style_distance` measures it, and the crops are
    cut from that same image without resizing, so they carry the painting's own pixel scale.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    enc = encoder or load_encoder()
    whole = _prep(style, size)
    h, w = whole.shape[-2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    g_whole = _grams(enc, whole)  # once, not once per crop
    crops = [whole[..., y:y + ch, x:x + cw] for y in (0, h - ch) for x in (0, w - cw)]
    return sum(_gram_distance(_grams(enc, c), g_whole) for c in crops) / len(crops)


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


@torch.no_grad()
def detail(x: torch.Tensor, size: int | None = MEASURE_SIZE) -> float:
    """Mean |Laplacian| of the luminance (:func:`stylekit.color.luminance`) of ``x`` (N, 3, H, W in [0, 1])
    resized to ``size``: 0 for a flat image, higher for more fine detail; blurring lowers it."""
    y = luminance(_prep(x, size))
    return float(F.conv2d(y, _LAPLACIAN.to(y)).abs().mean())
