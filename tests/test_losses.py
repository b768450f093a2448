"""Loss formulas against hand computations on tiny tensors."""
from __future__ import annotations

import pytest
import torch

from stylekit.losses import (content_loss, gram_matrix, mean_std, mean_std_loss, scaled_gram, style_layer_loss,
                             style_loss, tv_loss)


def test_content_loss_is_half_sum_of_squares():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    p = torch.tensor([[[[0.0, 2.0], [5.0, 1.0]]]])
    # 1/2 * (1 + 0 + 4 + 9) = 7
    assert content_loss(f, p).item() == pytest.approx(7.0)


def test_gram_matrix_by_hand():
    # C=2 channels, H*W=3 positions
    f = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).reshape(1, 2, 1, 3)
    g = gram_matrix(f)
    expected = torch.tensor([[1 + 4 + 9, 0 + 2 - 3], [0 + 2 - 3, 0 + 1 + 1]], dtype=torch.float32)
    assert torch.equal(g[0], expected)
    assert torch.allclose(gram_matrix(f, normalize=True)[0], expected / 3)


def test_style_layer_loss_gatys_normalization():
    f = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).reshape(1, 2, 1, 3)
    a = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    g = torch.tensor([[14.0, -1.0], [-1.0, 2.0]])
    n, m = 2, 3
    expected = ((g - a) ** 2).sum() / (4 * n**2 * m**2)  # (16 + 1 + 1 + 1) / 144
    assert style_layer_loss(f, a).item() == pytest.approx(expected.item())
    assert style_layer_loss(f, a).item() == pytest.approx(19 / 144)
    # identical Grams -> zero loss
    assert style_layer_loss(f, gram_matrix(f)).item() == 0.0


def test_style_loss_weighted_sum_over_layers():
    f1 = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).reshape(1, 2, 1, 3)
    f2 = torch.tensor([[2.0, 0.0]]).reshape(1, 1, 1, 2)
    a1 = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    a2 = torch.tensor([[1.0]])  # G2 = 4 -> (4-1)^2 / (4*1*4) = 9/16
    loss = style_loss({"a": f1, "b": f2}, {"a": a1, "b": a2}, {"a": 0.5, "b": 2.0})
    assert loss.item() == pytest.approx(0.5 * 19 / 144 + 2.0 * 9 / 16)


def test_scaled_gram_rescales_to_output_positions():
    f = torch.arange(8.0).reshape(1, 2, 2, 2)
    assert torch.allclose(scaled_gram(f, 16), gram_matrix(f) * 4)
    # a tiled (2x larger in each direction) feature map has the same scaled Gram at its own size
    big = f.repeat(1, 1, 2, 2)
    assert torch.allclose(scaled_gram(f, 16), gram_matrix(big))


def test_tv_loss_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [3.0, 2.0]]]])
    # vertical: (3-0), (2-1); horizontal: (1-0), (2-3)
    assert tv_loss(x).item() == pytest.approx(9 + 1 + 1 + 1)
    assert tv_loss(x, power=1).item() == pytest.approx(3 + 1 + 1 + 1)
    assert tv_loss(torch.full((1, 3, 4, 4), 0.3)).item() == 0.0


def test_mean_std_and_statistics_loss():
    f = torch.tensor([[1.0, 3.0], [5.0, 7.0]]).reshape(1, 1, 2, 2)
    m, s = mean_std(f, eps=0.0)
    assert m.shape == (1, 1, 1, 1) and m.item() == pytest.approx(4.0)
    assert s.item() == pytest.approx(5.0 ** 0.5)  # population variance (9+1+1+9)/4 = 5
    t = torch.tensor([[0.0, 0.0], [0.0, 4.0]]).reshape(1, 1, 2, 2)  # mean 1, std sqrt(3)
    expected = abs(4.0 - 1.0) + abs((5.0 + 1e-5) ** 0.5 - (3.0 + 1e-5) ** 0.5)
    assert mean_std_loss(f, t).item() == pytest.approx(expected, rel=1e-5)
    assert mean_std_loss(f, f).item() == pytest.approx(0.0, abs=1e-6)
