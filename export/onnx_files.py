"""ONNX files: metadata, self-contained atomic writes, validation before any session is created.

Every file stylekit writes carries ``metadata_props`` (see :data:`META_KEYS`) that say what graph it
holds, which weights it was exported from (their sha256) and how its inputs are laid out.
:func:`validate` checks a file against what a caller expects and raises
:class:`~stylekit.errors.WeightsError` with a readable message, so a corrupt or mismatched file never
reaches onnxruntime.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from stylekit.atomic import atomic_path
from stylekit.errors import WeightsError

#: Graph kinds and their (input names, output names).
GRAPHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fast": (("image", "style_weights"), ("output",)),
    "adain-style": (("style",), ("style_mean", "style_std")),
    "adain-stylizer": (("content", "style_mean", "style_std", "alpha"), ("output",)),
}
VARIANTS = ("fp32", "fp16", "int8")
INPUT_RANGE = "[0, 1]"
LAYOUT = "NCHW float32 RGB"
P = "stylekit."
#: metadata_props keys written to every file
META_KEYS = ("kind", "model", "styles", "variant", "source_sha256", "architecture", "version", "opset",
             "input_range", "layout", "pad_multiple", "exporter")


@dataclass
class GraphInfo:
    """What an exported file holds (its stylekit metadata)."""

    kind: str
    model: str
    styles: list[str]
    variant: str
    source_sha256: str
    architecture: str = ""
    version: str = ""
    opset: int = 0
    input_range: str = INPUT_RANGE
    layout: str = LAYOUT
    pad_multiple: int = 1
    exporter: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        props = {
            P + "kind": self.kind, P + "model": self.model, P + "styles": json.dumps(list(self.styles)),
            P + "variant": self.variant, P + "source_sha256": self.source_sha256,
            P + "architecture": self.architecture, P + "version": self.version, P + "opset": str(self.opset),
            P + "input_range": self.input_range, P + "layout": self.layout,
            P + "pad_multiple": str(self.pad_multiple), P + "exporter": self.exporter,
        }
        props.update({P + k: v for k, v in self.extra.items()})
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], where: str = "file") -> "GraphInfo":
        missing = [k for k in ("kind", "model", "variant", "source_sha256") if P + k not in props]
        if missing:
            raise WeightsError(f"{where} is not a stylekit ONNX export (metadata {', '.join(missing)} missing); "
                               "export it with `python -m export export`")
        try:
            styles = json.loads(props.get(P + "styles", "[]"))
            opset = int(props.get(P + "opset", "0") or 0)
            pad = int(props.get(P + "pad_multiple", "1") or 1)
        except (ValueError, TypeError):
            raise WeightsError(f"{where} has unreadable stylekit metadata") from None
        known = {P + k for k in META_KEYS}
        extra = {k[len(P):]: v for k, v in props.items() if k.startswith(P) and k not in known}
        return cls(kind=props[P + "kind"], model=props[P + "model"], styles=list(styles), variant=props[P + "variant"],
                   source_sha256=props[P + "source_sha256"], architecture=props.get(P + "architecture", ""),
                   version=props.get(P + "version", ""), opset=opset, input_range=props.get(P + "input_range", ""),
                   layout=props.get(P + "layout", ""), pad_multiple=pad, exporter=props.get(P + "exporter", ""),
                   extra=extra)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_state_dict(state: Mapping[str, "object"]) -> str:
    """A content hash of an in-memory state dict (for networks that come from no file, e.g. in tests)."""
    import torch

    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k]
        h.update(k.encode())
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def set_metadata(model: "object", info: GraphInfo) -> None:
    """Replace the stylekit metadata_props of an in-memory ``onnx.ModelProto``."""
    keep = [p for p in model.metadata_props if not p.key.startswith(P)]  # type: ignore[attr-defined]
    del model.metadata_props[:]  # type: ignore[attr-defined]
    model.metadata_props.extend(keep)  # type: ignore[attr-defined]
    for k, v in info.to_props().items():
        e = model.metadata_props.add()  # type: ignore[attr-defined]
        e.key, e.value = k, v
    model.producer_name = "stylekit"  # type: ignore[attr-defined]
    model.producer_version = info.version  # type: ignore[attr-defined]
    model.doc_string = (f"stylekit {info.kind} graph of '{info.model}' ({info.variant}); inputs {info.layout} "  # type: ignore[attr-defined]
                        f"in {info.input_range}")


def save_model(model: "object", path: str | os.PathLike) -> Path:
    """Write one self-contained file (no external data side file), atomically, after ``onnx.checker``."""
    import onnx

    path = Path(path)
    data = model.SerializeToString()  # type: ignore[attr-defined]
    if len(data) >= 2 ** 31 - 1:
        raise WeightsError(f"{path.name}: the graph is larger than 2 GB and cannot be one self-contained file")
    onnx.checker.check_model(model, full_check=False)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def read_info(path: str | os.PathLike) -> GraphInfo:
    """The stylekit metadata of a file (loads the graph; raises WeightsError when unreadable)."""
    return load_checked(path)[1]


def _input_summary(model: "object") -> list[tuple[str, int]]:
    init = {i.name for i in model.graph.initializer}  # type: ignore[attr-defined]
    out = []
    for i in model.graph.input:  # type: ignore[attr-defined]
        if i.name in init:
            continue
        out.append((i.name, len(i.type.tensor_type.shape.dim)))
    return out


def load_checked(path: str | os.PathLike, kind: str | None = None, sha256: str | None = None,
                 model_name: str | None = None) -> tuple["object", GraphInfo]:
    """Load and validate an exported file; return ``(onnx.ModelProto, GraphInfo)``.

    Checks: the file exists and parses as ONNX; it is self-contained; ``onnx.checker`` passes; it has
    stylekit metadata; its graph inputs/outputs are those of ``kind``; and, when given, its source
    weights' sha256 and its model name match. Any failure -> :class:`WeightsError` naming the file.
    """
    import onnx

    path = Path(path)
    where = f"ONNX file '{path}'"
    if not path.is_file():
        raise WeightsError(f"{where} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001  (DecodeError, OSError, ...)
        raise WeightsError(f"{where} is corrupt or not an ONNX model ({type(e).__name__}: {str(e)[:120]}); "
                           "delete it and export again") from None
    if not model.graph.node:
        raise WeightsError(f"{where} holds no graph (corrupt or truncated); delete it and export again")
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise WeightsError(f"{where} keeps its weights in an external data file; stylekit needs "
                               "self-contained files (export again)")
    try:
        onnx.checker.check_model(model, full_check=False)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{where} fails the ONNX checker: {str(e).splitlines()[0][:200]}") from None
    info = GraphInfo.from_props({p.key: p.value for p in model.metadata_props}, where)
    if info.kind not in GRAPHS:
        raise WeightsError(f"{where} holds an unknown graph kind {info.kind!r}")
    if kind is not None and info.kind != kind:
        raise WeightsError(f"{where} is a {info.kind!r} graph, expected {kind!r} (wrong file?)")
    want_in, want_out = GRAPHS[info.kind]
    have_in = [n for n, _ in _input_summary(model)]
    have_out = [o.name for o in model.graph.output]
    if tuple(have_in) != want_in or tuple(have_out) != want_out:
        raise WeightsError(f"{where} has inputs {have_in} and outputs {have_out}; a {info.kind!r} graph needs "
                           f"inputs {list(want_in)} and outputs {list(want_out)}")
    if info.variant not in VARIANTS:
        raise WeightsError(f"{where} has unknown variant {info.variant!r}")
    if model_name is not None and info.model != model_name:
        raise WeightsError(f"{where} was exported from model {info.model!r}, not {model_name!r}")
    if sha256 is not None and info.source_sha256 != sha256:
        raise WeightsError(f"{where} was exported from other weights (sha256 {info.source_sha256[:12]}...) than "
                           f"the catalogue's '{info.model}' ({sha256[:12]}...); export it again")
    return model, info


def graph_inputs(model: "object") -> Sequence[tuple[str, int]]:
    return _input_summary(model)
