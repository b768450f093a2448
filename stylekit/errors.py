"""The one error type stylekit raises for problems a user can fix (bad files, bad parameters)."""
from __future__ import annotations

import math


class StyleKitError(Exception):
    """Base class: a message a person understands, no traceback needed."""


class ImageError(StyleKitError, ValueError):
    """An input is not a usable image (unreadable, empty, truncated, too large, too small...)."""


class ParameterError(StyleKitError, ValueError):
    """A parameter is out of range, NaN/inf, or of the wrong shape."""


class WeightsError(StyleKitError):
    """A weights / checkpoint / ONNX file is missing, corrupt or does not match the model."""


class Cancelled(StyleKitError):
    """A long operation was cancelled by its caller."""


class TrainingStalled(StyleKitError):
    """A training run can no longer learn (e.g. a dead network); the message says how to start over."""


def check_range(value: object, name: str, lo: float, hi: float) -> float:
    """``value`` as a finite float in [lo, hi], else a :class:`ParameterError` naming it."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number between {lo} and {hi}, got {value!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ParameterError(f"{name} must be between {lo} and {hi}, got {value!r}")
    return v


def check_fraction(value: object, name: str) -> float:
    """``value`` as a float in [0, 1] (alpha, strength, detail...), else a :class:`ParameterError` naming it."""
    return check_range(value, name, 0, 1)
