"""Export networks to ONNX files: fp32 (reference), fp16 (for CUDA), int8 (static QDQ, for CPU).

Exporter: ``torch.onnx.export(..., dynamo=False)`` (the TorchScript-based exporter, still in torch
2.13). It traces the dynamic-size padding of the networks into ``Shape``/``Pad``/``Slice`` nodes, needs
no onnxscript, exports in well under a second and gives graphs exactly as fast as the dynamo
exporter's on this machine (measured: feed-forward 512x512 0.29 s both; AdaIN 0.57 s both). Where it
is missing (a future torch), the dynamo exporter is used with dynamic ``H``/``W``/batch dims.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn as nn

from stylekit.errors import ParameterError, WeightsError

from .graphs import ADAIN_STRIDE, AdaINStyleGraph, AdaINStylizerGraph, FastGraph
from .onnx_files import GRAPHS, GraphInfo, load_checked, save_model, set_metadata

#: ONNX opset of every exported file (recorded in its metadata too).
OPSET = 17


def _stylekit_version() -> str:
    from stylekit import __version__

    return __version__


def _exporter_name(dynamo: bool) -> str:
    return f"torch.onnx {'dynamo' if dynamo else 'torchscript'} (torch {torch.__version__.split('+')[0]})"


def _export_proto(module: nn.Module, args: tuple, input_names: Sequence[str], output_names: Sequence[str],
                  dynamic_axes: dict[str, dict[int, str]], opset: int = OPSET, dynamo: bool | None = None):
    """Trace ``module`` to an in-memory ``onnx.ModelProto``."""
    import onnx

    module = module.eval()
    if dynamo is None:
        dynamo = False
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not dynamo:
            buf = io.BytesIO()
            try:
                torch.onnx.export(module, args, buf, dynamo=False, opset_version=opset, input_names=list(input_names),
                                  output_names=list(output_names), dynamic_axes=dynamic_axes,
                                  do_constant_folding=True)
                return onnx.load_from_string(buf.getvalue()), False
            except TypeError:  # this torch has no TorchScript exporter any more
                pass
        from torch.export import Dim

        shapes = []
        for name in input_names:
            ax = dynamic_axes.get(name)
            shapes.append({i: Dim.DYNAMIC for i in ax} if ax else None)
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            prog = torch.onnx.export(module, args, dynamo=True, external_data=False, opset_version=max(opset, 18),
                                     input_names=list(input_names), output_names=list(output_names),
                                     dynamic_shapes=tuple(shapes), optimize=True)
        return prog.model_proto, True


def _write(proto, path: Path, info: GraphInfo) -> Path:
    set_metadata(proto, info)
    save_model(proto, path)
    load_checked(path, kind=info.kind)  # the file we wrote reads back and matches its kind
    return path


# ---- fp16 and int8 from an fp32 file ------------------------------------------------------------------
def to_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """An fp16 copy of an fp32 file, for CUDA: convolutions and the layout ops between them
    (ReLU, pooling, padding, resizing, slicing) in half precision; everything statistical (instance
    norm, means, variances, AdaIN) stays float32, with a ``Cast`` where the two meet. float32 inputs
    and outputs, like the fp32 file. (onnxruntime's generic converter casts each kept-float node's
    output back to half, and VGG relu4_1 variances overflow there.)
    """
    model, info = load_checked(src)
    _half_convs(model.graph)
    info.variant = "fp16"
    return _write(model, Path(dst), info)


#: ops that run in half when their data input is half (first input only; other inputs are shapes/indices)
_FP16_PASS_THROUGH = {"Relu", "MaxPool", "Pad", "Resize", "Slice", "Upsample", "LeakyRelu", "Identity"}


def _half_convs(graph) -> None:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    half_values: set[str] = set()
    half_nodes = set()
    for n in graph.node:  # topological order
        if n.op_type in ("Conv", "ConvTranspose"):
            half_nodes.add(id(n))
            half_values.update(n.output)
        elif n.op_type in _FP16_PASS_THROUGH and n.input and n.input[0] in half_values:
            if n.op_type == "Pad" and len(n.input) > 2 and n.input[2]:
                continue  # constant_value input would need converting too; keep float
            half_nodes.add(id(n))
            half_values.update(n.output[:1])
    # weights of half convs -> fp16 (an initializer shared with a float consumer is duplicated)
    for n in graph.node:
        if id(n) not in half_nodes or n.op_type not in ("Conv", "ConvTranspose"):
            continue
        for k in range(1, len(n.input)):
            name = n.input[k]
            if name in inits and inits[name].data_type == onnx.TensorProto.FLOAT:
                arr = numpy_helper.to_array(inits[name]).astype(np.float16)
                new = numpy_helper.from_array(arr, name + "__fp16")
                if new.name not in {t.name for t in graph.initializer}:
                    graph.initializer.append(new)
                n.input[k] = new.name
            elif name:
                half_values.add(name)  # a computed weight: cast below
    # casts at the boundaries
    new_nodes = []
    cast16: dict[str, str] = {}
    cast32: dict[str, str] = {}
    for n in graph.node:
        is_half = id(n) in half_nodes
        data_inputs = range(len(n.input)) if n.op_type in ("Conv", "ConvTranspose") else range(min(1, len(n.input)))
        for k, name in enumerate(list(n.input)):
            if not name:
                continue
            if is_half and k in data_inputs and name not in half_values | {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT16}:
                if name not in cast16:
                    cast16[name] = name + "__to_fp16"
                    new_nodes.append(helper.make_node("Cast", [name], [cast16[name]], to=onnx.TensorProto.FLOAT16,
                                                      name=name + "__cast16"))
                n.input[k] = cast16[name]
            elif not (is_half and k in data_inputs) and name in half_values:
                if name not in cast32:
                    cast32[name] = name + "__to_fp32"
                    new_nodes.append(helper.make_node("Cast", [name], [cast32[name]], to=onnx.TensorProto.FLOAT,
                                                      name=name + "__cast32"))
                n.input[k] = cast32[name]
        new_nodes.append(n)
    # graph outputs produced in half: rename the producer's output, cast back to the original name
    for o in graph.output:
        if o.name in half_values:
            h = o.name + "__fp16_out"
            for n in new_nodes:
                for k, name in enumerate(n.input):
                    if name == o.name:
                        n.input[k] = h
                for k, name in enumerate(n.output):
                    if name == o.name:
                        n.output[k] = h
            new_nodes.append(helper.make_node("Cast", [h], [o.name], to=onnx.TensorProto.FLOAT, name=o.name + "__cast32"))
    copies = []
    for n in new_nodes:
        c = onnx.NodeProto()
        c.CopyFrom(n)
        copies.append(c)
    del graph.node[:]
    graph.node.extend(copies)
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.value_info[:]  # stale float types; onnxruntime infers them again
    _toposort(graph)


def _toposort(graph) -> None:
    """Sort ``graph.node`` topologically in place (stable: keeps the original order where it can)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for n in pending:
            if all(i in known for i in n.input):
                ordered.append(n)
                known.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise WeightsError("fp16 conversion produced a graph with a cycle or a dangling input")
        pending = rest
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def _silenced():
    """Context: onnxruntime.quantization's shape-inference chatter off."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in ("root", "onnxruntime", "onnxruntime.quantization"):
        lg = logging.getLogger(None if name == "root" else name)
        old = lg.level
        lg.setLevel(logging.ERROR)
        stack.callback(lg.setLevel, old)
    return stack


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, feeds: Iterable[dict],
                  percentile: float = 99.999, keep_io_convs: bool = True) -> Path:
    """Static int8 quantization (QDQ; u8 activations, per-channel s8 weights) of the ``Conv`` nodes.

    ``feeds``: calibration inputs (dicts of numpy arrays by input name, all of one shape), e.g. from
    :func:`fast_calibration_feeds`. Activation ranges: the ``percentile`` of the calibration
    histogram (clips rare outliers; on a partly trained AdaIN decoder 43-45 dB PSNR at every size, against
    39-47 dB for min/max and 34-43 dB for the 99.99th percentile). The first and the last convolution
    (image in, image out; 10 % of the feed-forward net's multiply-adds) stay float: on a partly trained
    feed-forward net that took the worst case from 22 to 35 dB.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    _, info = load_checked(src)
    if info.variant != "fp32":
        raise ParameterError(f"int8 quantization starts from an fp32 file, '{src}' is {info.variant}")
    feeds = list(feeds)
    if not feeds:
        raise ParameterError("int8 quantization needs at least one calibration image")

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self):  # noqa: ANN201
            return next(self._it, None)

    with tempfile.TemporaryDirectory(prefix="stylekit-q-") as tmp, _silenced():
        pre = Path(tmp) / "pre.onnx"
        out = Path(tmp) / "q.onnx"
        # no symbolic shape inference: it fails on the AdaIN graph and then litters the working
        # directory with a temp model and its external data; quantizing Conv nodes needs no shapes
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        exclude = [convs[0], convs[-1]] if keep_io_convs and len(convs) > 2 else []
        method = CalibrationMethod.Percentile if percentile < 100 else CalibrationMethod.MinMax
        quantize_static(str(pre), str(out), _Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=exclude, calibrate_method=method,
                        extra_options={"ActivationSymmetric": False, "CalibPercentile": percentile})
        q = onnx.load(str(out))
    info.variant = "int8"
    return _write(q, Path(dst), info)


# ---- calibration data ------------------------------------------------------------------------------------------
def calibration_images(paths: Sequence[str | os.PathLike] | None = None, n: int = 8, size: int = 256) -> list[torch.Tensor]:
    """Calibration photos, ``size`` x ``size`` centre crops: ``paths`` or, by default, :func:`export.data.validation_photos`."""
    from stylekit.images import load_image

    from .data import validation_photos

    files = list(paths) if paths else validation_photos(n)
    if not files:
        raise ParameterError("no calibration photos found: pass --calibration DIR (a folder of photos)")
    return [square_crop(load_image(p), size) for p in files[:n]]


def square_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Short side resized to ``size``, centre crop ``size`` x ``size`` (histogram calibration needs one shape)."""
    from stylekit.images import resize

    h, w = x.shape[-2:]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    x = resize(x, nh, nw)
    t, l = (nh - size) // 2, (nw - size) // 2
    return x[..., t:t + size, l:l + size].contiguous()


def fast_calibration_feeds(images: Sequence[torch.Tensor], n_styles: int) -> list[dict]:
    """One feed per image; the style weights cycle through one-hot vectors and the uniform mix."""
    import numpy as np

    feeds = []
    for i, x in enumerate(images):
        k = i % (n_styles + 1)
        w = np.full((1, n_styles), 1.0 / n_styles, np.float32) if k == n_styles else np.eye(n_styles, dtype=np.float32)[k:k + 1]
        feeds.append({"image": x.numpy().astype(np.float32), "style_weights": w})
    return feeds


def adain_calibration_feeds(images: Sequence[torch.Tensor], style_graph_path: str | os.PathLike,
                            styles: Sequence[torch.Tensor] | None = None) -> list[dict]:
    """Content = each image; style statistics of ``styles`` (paintings; default
    :func:`export.data.style_photos`, else the next photo) in turn; alpha 1 and 0.6 alternating.

    Real paintings matter: their statistics drive the decoder into other activation ranges than photos'.
    """
    import numpy as np
    import onnxruntime as ort

    if styles is None:
        from stylekit.images import load_image

        from .data import style_photos

        styles = [load_image(p, 256) for p in style_photos(8)[:4]]
    sess = ort.InferenceSession(str(style_graph_path), providers=["CPUExecutionProvider"])
    pool = list(styles) if styles else list(images[1:]) + list(images[:1])
    stats = [sess.run(None, {"style": x.numpy()}) for x in pool]
    feeds = []
    for i, x in enumerate(images):
        m, s = stats[i % len(stats)]
        feeds.append({"content": x.numpy(), "style_mean": m, "style_std": s,
                      "alpha": np.array(1.0 if i % 2 == 0 else 0.6, np.float32)})
    return feeds


# ---- the graphs ---------------------------------------------------------------------------------------------
def _probe_style_weights_rank(net: nn.Module, n_styles: int) -> None:
    x = torch.rand(1, 3, 21, 23)
    with torch.no_grad():
        y = net(x, torch.full((1, n_styles), 1.0 / n_styles))
    if tuple(y.shape) != (1, 3, 21, 23):
        raise ParameterError(f"the feed-forward network returned {tuple(y.shape)} for a 21x23 input; "
                             "its output must have the input's size")


def export_fast(net: nn.Module, path: str | os.PathLike, *, model_name: str, style_names: Sequence[str],
                source_sha256: str, architecture: str = "", pad_multiple: int = 4,
                dynamo: bool | None = None) -> Path:
    """fp32 graph of a feed-forward network: ``image`` (N,3,H,W) + ``style_weights`` (N|1, S) -> ``output``."""
    n_styles = len(style_names)
    if n_styles < 1:
        raise ParameterError("a feed-forward network needs at least one style name")
    net = net.float().cpu().eval()
    _probe_style_weights_rank(net, n_styles)
    x = torch.rand(1, 3, 61, 77)  # odd sizes: the traced padding must not be a no-op
    w = torch.full((1, n_styles), 1.0 / n_styles)
    names_in, names_out = GRAPHS["fast"]
    proto, used_dynamo = _export_proto(
        FastGraph(net), (x, w), names_in, names_out,
        {"image": {0: "N", 2: "H", 3: "W"}, "style_weights": {0: "NW"}, "output": {0: "N", 2: "H", 3: "W"}},
        dynamo=dynamo)
    info = GraphInfo(kind="fast", model=model_name, styles=list(style_names), variant="fp32",
                     source_sha256=source_sha256, architecture=architecture, version=_stylekit_version(),
                     opset=_opset_of(proto), pad_multiple=pad_multiple, exporter=_exporter_name(used_dynamo))
    return _write(proto, Path(path), info)


def export_adain(encoder: nn.Module, decoder: nn.Module, style_path: str | os.PathLike,
                 stylizer_path: str | os.PathLike, *, model_name: str, source_sha256: str,
                 architecture: str = "", dynamo: bool | None = None) -> tuple[Path, Path]:
    """The two AdaIN fp32 graphs: style statistics, and the stylizer."""
    encoder = encoder.float().cpu().eval()
    decoder = decoder.float().cpu().eval()
    common = dict(model=model_name, styles=[], variant="fp32", source_sha256=source_sha256,
                  architecture=architecture, version=_stylekit_version(), pad_multiple=ADAIN_STRIDE)
    x = torch.rand(1, 3, 61, 77)
    names_in, names_out = GRAPHS["adain-style"]
    proto, used = _export_proto(AdaINStyleGraph(encoder), (x,), names_in, names_out,
                                {"style": {0: "N", 2: "H", 3: "W"}, "style_mean": {0: "N"}, "style_std": {0: "N"}},
                                dynamo=dynamo)
    sp = _write(proto, Path(style_path), GraphInfo(kind="adain-style", opset=_opset_of(proto),
                                                   exporter=_exporter_name(used), **common))
    m, s = torch.rand(1, 512, 1, 1), torch.rand(1, 512, 1, 1) + 0.5
    names_in, names_out = GRAPHS["adain-stylizer"]
    proto, used = _export_proto(AdaINStylizerGraph(encoder, decoder), (x, m, s, torch.tensor(0.8)), names_in,
                                names_out, {"content": {0: "N", 2: "H", 3: "W"}, "style_mean": {0: "NS"},
                                            "style_std": {0: "NS"}, "output": {0: "N", 2: "H", 3: "W"}},
                                dynamo=dynamo)
    zp = _write(proto, Path(stylizer_path), GraphInfo(kind="adain-stylizer", opset=_opset_of(proto),
                                                      exporter=_exporter_name(used), **common))
    return sp, zp


def _opset_of(proto) -> int:
    for o in proto.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    raise WeightsError("exported graph has no default-domain opset")
