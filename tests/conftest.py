"""Shared test fixtures: small synthetic images (tests never depend on /work/shared or the network)."""
from __future__ import annotations

import math

import pytest
import torch


def synthetic_image(h: int = 48, w: int = 64, seed: int = 0, kind: str = "content") -> torch.Tensor:
    """A deterministic (1, 3, h, w) float32 RGB [0, 1] image.

    ``content``: smooth gradients with a few shapes (a "photo"); ``style``: colourful high-frequency
    stripes and blobs (a "painting"); ``style2``: a different palette and stripe direction.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    if kind == "content":
        r = 0.2 + 0.6 * xx
        gr = 0.3 + 0.5 * yy
        b = 0.5 + 0.3 * torch.sin(2 * math.pi * (xx + yy))
        disk = ((xx - 0.35) ** 2 + (yy - 0.5) ** 2 < 0.04).float()
        box = ((xx > 0.6) & (xx < 0.85) & (yy > 0.2) & (yy < 0.7)).float()
        img = torch.stack([r * (1 - disk) + 0.9 * disk, gr * (1 - box) + 0.1 * box, b * (1 - disk)])
    elif kind == "style":
        f = 9.0
        img = torch.stack([0.5 + 0.5 * torch.sin(2 * math.pi * f * xx),
                           0.5 + 0.5 * torch.sin(2 * math.pi * f * (xx + yy) * 0.7),
                           0.5 + 0.5 * torch.cos(2 * math.pi * f * yy)])
    elif kind == "style2":
        f = 4.0
        img = torch.stack([0.8 - 0.3 * ((torch.sin(2 * math.pi * f * yy) > 0).float()),
                           0.2 + 0.2 * torch.sin(2 * math.pi * f * xx * yy * 3),
                           0.1 + 0.1 * torch.rand(h, w, generator=g)])
    else:
        raise ValueError(kind)
    img = img + 0.03 * torch.randn(3, h, w, generator=g)
    return img.clamp(0, 1).unsqueeze(0).float()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny images: one thread is faster and far more robust on a shared 2-core machine
    (modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def content_image() -> torch.Tensor:
    return synthetic_image(48, 64, 0, "content")


@pytest.fixture
def style_image() -> torch.Tensor:
    return synthetic_image(64, 64, 1, "style")


@pytest.fixture
def style_image2() -> torch.Tensor:
    return synthetic_image(64, 64, 2, "style2")


@pytest.fixture(scope="session")
def encoder():
    from stylekit.encoder import load_encoder

    return load_encoder()
