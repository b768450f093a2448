"""The shipped models of :mod:`stylekit.weights`, as export sources (model name, weights sha256, styles).

A :class:`~export.runtime.Source` is cheap to make: it reads the catalogue record only; the PyTorch
model is loaded (sha256-verified by :mod:`stylekit.weights`) when an export or a fallback needs it.
"""
from __future__ import annotations

import json
from typing import Any

from stylekit.errors import WeightsError

ADAIN_KINDS = ("adain_decoder", "adain")


def _weights():
    try:
        from stylekit import weights
    except ImportError:
        raise WeightsError("stylekit.weights (the model catalogue) is not available") from None
    return weights


def fast_source(name: str | None = None) -> Any:
    """The catalogue's feed-forward model ``name`` (default: the default model)."""
    from .runtime import Source

    w = _weights()
    rec = w.get_record(name, "fast")
    styles = list(rec.metadata.get("styles", []))
    if not styles:
        raise WeightsError(f"catalogue model '{rec.id}' names no styles")
    cfg = rec.metadata.get("config") or {}
    arch = json.dumps(cfg, sort_keys=True) if cfg else "stylekit-transformer-cin"
    return Source(rec.id, rec.sha256, styles, arch, lambda: w.load_fast_model(rec.id))


def adain_source(name: str | None = None) -> Any:
    """The catalogue's AdaIN decoder ``name`` (default: the first one) with the bundled VGG-19 encoder."""
    from .runtime import Source

    w = _weights()
    recs = [r for k in ADAIN_KINDS for r in w.records(k)]
    if name is not None:
        recs = [r for r in recs if r.id == name]
    if not recs:
        raise WeightsError(f"no AdaIN model {repr(name) + ' ' if name else ''}in the catalogue "
                           "(stylekit/models/catalogue.json)")
    rec = recs[0]

    def load() -> Any:
        from stylekit.adain import AdaINModel, load_decoder

        w.verify(rec)
        return AdaINModel(load_decoder(rec.path))

    arch = str(rec.metadata.get("architecture") or rec.metadata.get("config") or "adain-decoder")
    return Source(rec.id, rec.sha256, [], f"{arch}+vgg19-caffe", load)
