"""Colour preservation for style transfer (Gatys, Bethge, Hertzmann & Shechtman, 2016, "Preserving
color in neural artistic style transfer"), both ways:

- **luminance-only transfer**: stylize, then keep the output's luminance (Y of YIQ) and put back the
  content image's chroma (I, Q) — :func:`luminance_transfer`. :func:`luminance_only` prepares a
  style image for it (grey style, its luminance mean/std matched to the content's).
- **colour matching** of the style image to the content's colours *before* transfer —
  :func:`match_color`, either by matching the mean and covariance of the RGB pixels (``"stats"``,
  the paper's linear transform) or per-channel histograms (``"histogram"``).

All functions take and return float32 RGB [0, 1] NCHW tensors.
"""
from __future__ import annotations

import torch

from .errors import ParameterError
from .images import resize

# NTSC YIQ (the paper's choice); rows: Y, I, Q.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114],
                         [0.595716, -0.274453, -0.321263],
                         [0.211456, -0.522591, 0.311135]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)

MATCH_MODES = ("stats", "histogram")


def _check(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"{name} must be an RGB image tensor (N, 3, H, W), got {shape}")
    return x.float()


def _apply(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(x), x)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> YIQ (Y in [0, 1], I in about ±0.6, Q in about ±0.52)."""
    return _apply(_RGB2YIQ, _check(x, "image"))


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YIQ -> RGB (not clamped)."""
    return _apply(_YIQ2RGB, _check(x, "image"))


def luminance(x: torch.Tensor) -> torch.Tensor:
    """Y channel (N, 1, H, W) of an RGB image."""
    return rgb_to_yiq(x)[:, :1]


def luminance_transfer(output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep ``output``'s luminance and take the chroma (I, Q) of ``content`` (resized to the output)."""
    out = _check(output, "output")
    content = _check(content, "content")
    content = resize(content, *out.shape[-2:])
    yiq = torch.cat([rgb_to_yiq(out)[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def luminance_only(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """A grey version of ``style`` whose luminance mean/std match ``content``'s (for luminance-only transfer)."""
    s = luminance(_check(style, "style"))
    c = luminance(_check(content, "content"))
    s = (s - s.mean()) / s.std().clamp_min(1e-6) * c.std() + c.mean()
    return s.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def _match_stats(style: torch.Tensor, content: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Linear transform x' = A (x - mu_s) + mu_c with A Sigma_s A^T = Sigma_c (the paper's Cholesky variant
    is asymmetric; this uses the symmetric square roots, which changes the image least)."""
    s = style[0].reshape(3, -1).double()
    c = content[0].reshape(3, -1).double()
    mu_s, mu_c = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    eye = torch.eye(3, dtype=torch.float64) * eps
    cov_s = torch.cov(s) + eye
    cov_c = torch.cov(c) + eye

    def sqrtm(m: torch.Tensor, inv: bool = False) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(m)
        vals = vals.clamp_min(eps)
        d = vals.rsqrt() if inv else vals.sqrt()
        return vecs @ torch.diag(d) @ vecs.T

    a = sqrtm(cov_c) @ sqrtm(cov_s, inv=True)
    out = a @ (s - mu_s) + mu_c
    return out.reshape(1, *style.shape[1:]).float().clamp(0, 1)


def _match_histogram(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Per-channel histogram matching (exact quantile mapping) of the style to the content."""
    out = torch.empty_like(style[0])
    for ch in range(3):
        s = style[0, ch].reshape(-1)
        c = torch.sort(content[0, ch].reshape(-1)).values
        order = torch.argsort(s, stable=True)
        # rank of each style pixel -> the content value at the same quantile
        q = torch.linspace(0, c.numel() - 1, s.numel()).round().long()
        mapped = torch.empty_like(s)
        mapped[order] = c[q]
        out[ch] = mapped.reshape(style.shape[-2:])
    return out.unsqueeze(0)


def match_color(style: torch.Tensor, content: torch.Tensor, mode: str = "stats") -> torch.Tensor:
    """Recolour ``style`` to ``content``'s colour statistics (before transfer). Same size as ``style``.

    ``mode``: ``"stats"`` (mean and covariance of the RGB pixels) or ``"histogram"`` (per channel).
    """
    style = _check(style, "style")
    content = _check(content, "content")
    if mode not in MATCH_MODES:
        raise ParameterError(f"colour matching mode must be one of {MATCH_MODES}, got {mode!r}")
    outs = []
    for i in range(style.shape[0]):
        s, c = style[i:i + 1], content[min(i, content.shape[0] - 1):][:1]
        outs.append(_match_stats(s, c) if mode == "stats" else _match_histogram(s, c))
    return torch.cat(outs, 0)
