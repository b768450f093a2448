"""The ``nn.Module`` wrappers that are traced into ONNX graphs.

- :class:`FastGraph`: feed-forward network, ``(image, style_weights) -> output`` of the input's size
  (the network pads to its multiple internally and crops back; the padding traces into dynamic
  ``Pad``/``Slice`` nodes), clamped to [0, 1] like :func:`stylekit.feedforward.stylize_fast`.
- :class:`AdaINStyleGraph`: style image -> channel mean and std at relu4_1 (the style statistics).
- :class:`AdaINStylizerGraph`: ``(content, style_mean, style_std, alpha) -> output``.

The AdaIN graphs reflect-pad to a multiple of 8 inside the graph. Images smaller than 16 px on a
side need PyTorch's replicate padding; the runners pad those before calling the graph
(:func:`prepad_small`), so the graph output equals :func:`stylekit.adain.transfer` for every size.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

ADAIN_STRIDE = 8


def pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    """Reflect-pad bottom/right to a multiple of ``m`` (traces into a dynamic ONNX ``Pad``)."""
    h, w = x.shape[-2], x.shape[-1]
    ph = (m - h % m) % m
    pw = (m - w % m) % m
    return F.pad(x, (0, pw, 0, ph), mode="reflect")


def prepad_small(x: torch.Tensor, stride: int = ADAIN_STRIDE) -> tuple[torch.Tensor, tuple[int, int] | None]:
    """PyTorch AdaIN's padding for images under ``2*stride`` px on a side; ``(x, None)`` for the rest."""
    h, w = x.shape[-2:]
    if h >= 2 * stride and w >= 2 * stride:
        return x, None
    from stylekit.adain import _pad_to_stride

    xp, hw = _pad_to_stride(x, stride)
    return xp, hw


class FastGraph(nn.Module):
    """A feed-forward network with conditional instance norm as one graph."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        return self.net(image, style_weights).clamp(0.0, 1.0)


class AdaINStyleGraph(nn.Module):
    """Style image (N, 3, H, W) -> (mean, std), each (N, 512, 1, 1), at relu4_1."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from stylekit.adain import ADAIN_LAYER, EPS
        from stylekit.losses import mean_std

        f = self.encoder(pad_to_multiple(style, ADAIN_STRIDE), (ADAIN_LAYER,))[ADAIN_LAYER]
        return mean_std(f, EPS)


class AdaINStylizerGraph(nn.Module):
    """(content (N,3,H,W), style_mean (N|1,512,1,1), style_std (N|1,512,1,1), alpha ()) -> (N,3,H,W)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor,
                alpha: torch.Tensor) -> torch.Tensor:
        from stylekit.adain import ADAIN_LAYER, adain

        h, w = content.shape[-2], content.shape[-1]
        fc = self.encoder(pad_to_multiple(content, ADAIN_STRIDE), (ADAIN_LAYER,))[ADAIN_LAYER]
        t = adain(fc, style_mean, style_std)
        t = alpha * t + (1.0 - alpha) * fc
        return self.decoder(t)[:, :, :h, :w].clamp(0.0, 1.0)
