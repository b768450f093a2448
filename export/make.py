"""``python -m export export``: the shipped models -> .onnx files (the runners' cache by default)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

from .runtime import Source, _cache_path, _check_images, default_onnx_dir, gate_int8


def _size_mb(p: Path) -> float:
    return p.stat().st_size / 1e6


def export_source(kind: str, src: Source, out_dir: Path, variants: Sequence[str],
                  calibration: Sequence[str | os.PathLike] | None = None,
                  log: Callable[[str], None] = print) -> list[Path]:
    """All files of one model: ``kind`` ``fast`` or ``adain``; fp32 always, then the asked variants."""
    from .exporter import (adain_calibration_feeds, calibration_images, export_adain, export_fast,
                           fast_calibration_feeds, quantize_int8, to_fp16)

    files: list[Path] = []
    t0 = time.perf_counter()
    if kind == "fast":
        fp32 = export_fast(src.modules(), _cache_path(out_dir, src, "fast", "fp32"), model_name=src.name,
                           style_names=src.styles, source_sha256=src.sha256, architecture=src.architecture)
        graphs = {"fast": fp32}
    else:
        m = src.modules()
        sp, zp = export_adain(m.encoder, m.decoder, _cache_path(out_dir, src, "adain-style", "fp32"),
                              _cache_path(out_dir, src, "adain-stylizer", "fp32"), model_name=src.name,
                              source_sha256=src.sha256, architecture=src.architecture)
        graphs = {"adain-style": sp, "adain-stylizer": zp}
    files += graphs.values()
    for g, p in graphs.items():
        log(f"{p}  ({_size_mb(p):.1f} MB, fp32, {time.perf_counter() - t0:.1f} s)")
    if "fp16" in variants:
        for g, p in graphs.items():
            q = to_fp16(p, _cache_path(out_dir, src, g, "fp16"))
            files.append(q)
            log(f"{q}  ({_size_mb(q):.1f} MB, fp16)")
    if "int8" in variants:
        imgs = calibration_images(calibration, n=8, size=320)
        checks = _check_images()
        if kind == "fast":
            g = "fast"
            feeds, check = fast_calibration_feeds(imgs, len(src.styles)), fast_calibration_feeds(checks, len(src.styles))
        else:
            g = "adain-stylizer"
            feeds = adain_calibration_feeds(imgs, graphs["adain-style"])
            check = adain_calibration_feeds(checks, graphs["adain-style"]) if checks else []
        t1 = time.perf_counter()
        dst = _cache_path(out_dir, src, g, "int8")
        dst.with_suffix(".rejected").unlink(missing_ok=True)
        q = quantize_int8(graphs[g], dst, feeds)
        why = gate_int8(graphs[g], q, feeds[:3] + check)
        if why:
            log(f"{dst}  int8 NOT shipped: {why} (runners use fp32)")
        else:
            files.append(q)
            log(f"{q}  ({_size_mb(q):.1f} MB, int8, calibrated on {len(imgs)} photos, "
                f"{time.perf_counter() - t1:.1f} s)")
    return files


def fast_model_ids(name: str | None = None) -> list[str | None]:
    """The feed-forward models an export covers: ``name``, or the default gallery and every style's own
    one-style network (:attr:`stylekit.weights.ModelRecord.specialist`)."""
    if name is not None:
        return [name]
    from stylekit import weights

    return [None] + [r.id for r in weights.records("fast") if r.specialist]


def export_models(kinds: Sequence[str], name: str | None = None, out_dir: Path | None = None,
                  variants: Sequence[str] = ("fp32", "fp16", "int8"),
                  calibration: Sequence[str | os.PathLike] | None = None,
                  log: Callable[[str], None] = print) -> list[Path]:
    from .catalogue import adain_source, fast_source

    from stylekit.errors import WeightsError

    out_dir = out_dir or default_onnx_dir()
    files: list[Path] = []
    for kind in kinds:
        try:
            srcs = [fast_source(n) for n in fast_model_ids(name)] if kind == "fast" else [adain_source(name)]
        except WeightsError as e:
            if len(kinds) == 1:
                raise
            log(f"skipped {kind}: {e}")
            continue
        for src in srcs:
            files += export_source(kind, src, out_dir, variants, calibration, log)
    if not files:
        raise WeightsError("nothing to export: the catalogue has no model of these kinds")
    return files
