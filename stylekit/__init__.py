"""stylekit: neural style transfer — Gatys optimization, feed-forward networks and AdaIN.

Image convention everywhere: float32 RGB in [0, 1], NCHW tensors.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import StyleKitError, ImageError, ParameterError, WeightsError, Cancelled  # noqa: F401
