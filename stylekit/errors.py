"""The one error type stylekit raises for problems a user can fix (bad files, bad parameters)."""
from __future__ import annotations


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
