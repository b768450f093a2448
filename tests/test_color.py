"""Colour preservation: YIQ conversions, luminance-only transfer, colour matching of the style image."""
from __future__ import annotations

import pytest
import torch

from stylekit.color import (luminance, luminance_only, luminance_transfer, match_color, rgb_to_yiq,
                            yiq_to_rgb)
from stylekit.errors import ParameterError

from .conftest import synthetic_image


def test_yiq_roundtrip_and_known_values():
    x = torch.rand(2, 3, 5, 7)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-5)
    white = torch.ones(1, 3, 1, 1)
    y = rgb_to_yiq(white)[0, :, 0, 0]
    assert y[0].item() == pytest.approx(1.0, abs=1e-5)
    assert y[1].abs().item() < 1e-5 and y[2].abs().item() < 1e-5  # grey has no chroma
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
    assert rgb_to_yiq(red)[0, 0].item() == pytest.approx(0.299)


def test_luminance_transfer_keeps_output_luminance_and_content_chroma():
    content = synthetic_image(40, 48, 0, "content")
    output = synthetic_image(40, 48, 1, "style") * 0.6 + 0.2  # away from the clamp limits
    out = luminance_transfer(output, content)
    assert out.shape == content.shape
    yo, yc, yr = rgb_to_yiq(out), rgb_to_yiq(content), rgb_to_yiq(output)
    assert (yo[:, 0] - yr[:, 0]).abs().mean() < 0.02          # output's luminance kept
    assert (yo[:, 1:] - yc[:, 1:]).abs().mean() < 0.03        # content's chroma
    assert (yr[:, 1:] - yc[:, 1:]).abs().mean() > 0.1         # (which was really different before)


def test_luminance_transfer_resizes_content():
    out = luminance_transfer(torch.full((1, 3, 20, 30), 0.5), torch.rand(1, 3, 40, 60))
    assert out.shape == (1, 3, 20, 30)


def test_luminance_only_is_grey_with_content_luminance_statistics():
    style = synthetic_image(32, 32, 1, "style")
    content = synthetic_image(32, 32, 0, "content") * 0.5
    g = luminance_only(style, content)
    assert g.shape == style.shape
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert g[:, 0].mean().item() == pytest.approx(luminance(content).mean().item(), abs=0.02)


def test_match_color_stats_matches_mean_and_covariance():
    style = synthetic_image(40, 40, 1, "style") * 0.5 + 0.25
    content = synthetic_image(30, 50, 0, "content") * 0.5 + 0.2
    m = match_color(style, content, "stats")
    assert m.shape == style.shape
    a, c = m[0].reshape(3, -1), content[0].reshape(3, -1)
    assert torch.allclose(a.mean(1), c.mean(1), atol=0.01)
    assert torch.allclose(torch.cov(a), torch.cov(c), atol=0.003)


def test_match_color_histogram_matches_each_channel():
    style = synthetic_image(40, 40, 1, "style")
    content = synthetic_image(40, 40, 0, "content")
    m = match_color(style, content, "histogram")
    for ch in range(3):
        assert torch.allclose(m[0, ch].flatten().sort().values, content[0, ch].flatten().sort().values)
    # the ordering (structure) of the style is kept
    s0 = style[0, 0].flatten()
    m0 = m[0, 0].flatten()
    i, j = s0.argmin(), s0.argmax()
    assert m0[i] <= m0[j]


def test_match_color_bad_arguments():
    with pytest.raises(ParameterError):
        match_color(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), mode="lab")
    with pytest.raises(ParameterError):
        match_color(torch.rand(3, 8, 8), torch.rand(1, 3, 8, 8))
