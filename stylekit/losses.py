"""Losses of the style-transfer papers, on VGG feature maps (N, C, H, W).

Normalizations follow Gatys et al. (2016) unless noted:

- content:  L = 1/2 * sum (F - P)^2
- Gram:     G = F F^T with F the (C, H*W) feature matrix (unnormalized)
- style:    E_l = sum (G - A)^2 / (4 N_l^2 M_l^2),  N_l = channels, M_l = H*W;  L = sum_l w_l E_l
- TV:       sum of squared (or absolute) differences of neighbouring pixels
- mean/std: Huang & Belongie's AdaIN statistics loss, sum_l ||mu(F)-mu(S)||_2 + ||sigma(F)-sigma(S)||_2
"""
from __future__ import annotations

from typing import Mapping

import torch


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_content = 1/2 * sum (F - P)^2 (summed over the batch)."""
    return 0.5 * (features - target).pow(2).sum()


def gram_matrix(features: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """G = F F^T per batch item: (N, C, H, W) -> (N, C, C). ``normalize`` divides by H*W."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    g = torch.bmm(f, f.transpose(1, 2))
    return g / (h * w) if normalize else g


def style_layer_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """E_l = sum (G - A)^2 / (4 N^2 M^2) for one layer (mean over the batch).

    ``target_gram`` is the unnormalized Gram A of the style features (C, C) or (N, C, C), computed on
    a feature map with the same number of positions M as ``features`` (see :func:`scaled_gram`).
    """
    n, c, h, w = features.shape
    g = gram_matrix(features)
    m = h * w
    return (g - target_gram).pow(2).sum() / (4.0 * c * c * m * m) / n


def scaled_gram(style_features: torch.Tensor, positions: int) -> torch.Tensor:
    """Gram of the style features rescaled to ``positions`` (= H*W of the output's features).

    Gatys' formula assumes style and output feature maps have the same size; when the style image is
    smaller or larger (style scale), the Gram is rescaled by M_out / M_style so E_l stays meaningful.
    """
    n, c, h, w = style_features.shape
    return gram_matrix(style_features) * (positions / (h * w))


def style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float]) -> torch.Tensor:
    """Weighted sum over layers of :func:`style_layer_loss`."""
    total = None
    for name, w in layer_weights.items():
        e = style_layer_loss(features[name], target_grams[name]) * w
        total = e if total is None else total + e
    assert total is not None, "style_loss needs at least one layer"
    return total


def tv_loss(x: torch.Tensor, power: float = 2.0) -> torch.Tensor:
    """Total variation: sum |x[i+1,j]-x[i,j]|^p + |x[i,j+1]-x[i,j]|^p over the image (p=2 or p=1)."""
    dh = x[..., 1:, :] - x[..., :-1, :]
    dw = x[..., :, 1:] - x[..., :, :-1]
    if power == 1:
        return dh.abs().sum() + dw.abs().sum()
    return dh.abs().pow(power).sum() + dw.abs().pow(power).sum()


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over H, W: (N, C, H, W) -> two (N, C, 1, 1) tensors."""
    n, c = features.shape[:2]
    f = features.reshape(n, c, -1)
    mean = f.mean(dim=2).view(n, c, 1, 1)
    std = (f.var(dim=2, unbiased=False) + eps).sqrt().view(n, c, 1, 1)
    return mean, std


def mean_std_loss(features: torch.Tensor, target: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """AdaIN statistics loss for one layer: ||mu(F)-mu(T)||_2 + ||sigma(F)-sigma(T)||_2, mean over batch.

    ``target`` is either a feature map or a precomputed ``(mean, std)`` pair.
    """
    m, s = mean_std(features)
    tm, ts = target if isinstance(target, tuple) else mean_std(target)
    tm, ts = tm.expand_as(m), ts.expand_as(s)
    n = m.shape[0]
    dm = (m - tm).reshape(n, -1).norm(dim=1)
    ds = (s - ts).reshape(n, -1).norm(dim=1)
    return (dm + ds).mean()
