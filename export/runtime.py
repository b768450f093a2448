"""onnxruntime runners for the feed-forward and AdaIN modes, used by the CLI and the demo.

    from export.runtime import get_fast_runner, get_adain_runner

    fast = get_fast_runner()                        # the catalogue's default feed-forward model
    out = fast.stylize(content, [0.7, 0.3])         # (N,3,H,W) in [0,1] -> same size, [0,1]

    adain = get_adain_runner()
    stats = adain.style_stats(style)                # compute once per style, cache freely
    out = adain.stylize(content, stats, alpha=0.8)

A runner holds one ``onnxruntime.InferenceSession`` per file, created once and reused; the
``get_*_runner`` functions return the same runner for the same arguments (thread-safe; sessions may
be run from several threads at once). Providers: CUDA when onnxruntime has it and it initializes,
else CPU, without onnxruntime's CUDA-missing log noise. Without onnxruntime (or when an explicitly
named file is missing) the runners fall back to PyTorch with one warning; ``runner.backend`` says
which is used. A corrupt or mismatched file raises :class:`~stylekit.errors.WeightsError`.

On CPUs with native bf16 (AVX512-BF16, AMX) ``variant="auto"`` runs the PyTorch network in bf16
instead (``backend == "torch"``, ``variant == "bf16"``; :func:`stylekit.precision.bf16_copy`): 0.8x the
feed-forward and 0.5x the AdaIN time of onnxruntime float32 there. It is used only after a quality
check against float32 (:data:`BF16_MIN_PSNR`) when the runner is made; ``STYLEKIT_BF16=off`` or
``backend="onnx"`` keeps onnxruntime.

Exported files live in :func:`default_onnx_dir` (``$STYLEKIT_ONNX_DIR``, else
``~/.cache/stylekit/onnx``), named after the source weights' sha256, and are exported on first use.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from stylekit.errors import ParameterError, StyleKitError, WeightsError, check_fraction

from .graphs import prepad_small
from .onnx_files import GraphInfo, load_checked, sha256_state_dict

#: Variants used by ``variant="auto"`` on CPU, per graph kind (on CUDA: the fp16 files). int8 for the
#: feed-forward net: 2-3x faster than fp32 onnxruntime and 41-63 dB against fp32 on a partly trained
#: model; it is still used only after passing the quality gate (:func:`gate_int8`) on the real weights.
#: AdaIN stays fp32: int8 is 2x faster but gave 29-35 dB on a half-trained decoder with painting styles
#: (every layer subset tried; the AdaIN normalization amplifies relu4_1 quantization noise), so it would
#: only cost a rejected quantization at start-up. ``variant="int8"`` still makes and gates it.
CPU_AUTO_VARIANT = {"fast": "int8", "adain-stylizer": "fp32", "adain-style": "fp32"}
INT8_MIN_PSNR = 35.0
#: The quality check of the PyTorch bf16 runners: PSNR against float32 on a photo at 256 px (the
#: shipped models: 50-55 dB).
BF16_MIN_PSNR = 40.0
VARIANTS = ("auto", "fp32", "fp16", "int8", "bf16")
#: Identifies the int8 recipe (export.exporter.quantize_int8); a rejection note of another recipe is retried.
QUANT_RECIPE = "qdq-u8s8-perchannel-p99.999-io-float"


class OnnxUnsupported(StyleKitError, NotImplementedError):
    """A control the ONNX graphs do not implement (e.g. AdaIN masks): use the PyTorch backend."""


# ---- files and sessions ------------------------------------------------------------------------------------
def default_onnx_dir() -> Path:
    """``$STYLEKIT_ONNX_DIR``, else ``$XDG_CACHE_HOME/stylekit/onnx`` (``~/.cache/stylekit/onnx``)."""
    env = os.environ.get("STYLEKIT_ONNX_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "stylekit" / "onnx"


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except Exception:  # noqa: BLE001  (ImportError, or a broken install)
        return False
    return True


def cpu_threads() -> int:
    """Threads for one session: ``$STYLEKIT_ONNX_THREADS``, else the cores this process may use."""
    env = os.environ.get("STYLEKIT_ONNX_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None):
    """Options tuned for throughput on few cores: all graph optimizations, one op at a time using
    every core, memory arena on, no busy-waiting of idle worker threads (the CPU is shared)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or cpu_threads()
    so.inter_op_num_threads = 1
    so.enable_cpu_mem_arena = True
    so.enable_mem_pattern = True
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def _want_cuda(device: str) -> bool:
    import onnxruntime as ort

    if device == "cpu":
        return False
    has = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has:
        raise ParameterError("device 'cuda' asked for, but this onnxruntime has no CUDA provider "
                             "(install stylekit[export], i.e. onnxruntime-gpu)")
    return has


def create_session(source: Any, where: str, device: str = "auto", threads: int | None = None):
    """An InferenceSession on CUDA (when available and working) else CPU; onnxruntime errors -> WeightsError."""
    import onnxruntime as ort

    providers: list = ["CPUExecutionProvider"]
    if _want_cuda(device):
        providers.insert(0, "CUDAExecutionProvider")
    so = session_options(threads)
    try:
        if len(providers) > 1:
            ort.set_default_logger_severity(4)  # no "Failed to create CUDAExecutionProvider" noise
        sess = ort.InferenceSession(source, so, providers=providers)
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise WeightsError(f"onnxruntime cannot load {where}: {msg}") from None
    finally:
        if len(providers) > 1:
            ort.set_default_logger_severity(2)
    if device == "cuda" and "CUDAExecutionProvider" not in sess.get_providers():
        raise ParameterError("device 'cuda' asked for, but onnxruntime's CUDA provider did not initialize "
                             "(CUDA/cuDNN libraries missing?)")
    return sess


class _Graph:
    """One validated file and its session."""

    def __init__(self, path: Path, kind: str, sha256: str | None, model_name: str | None, device: str,
                 threads: int | None = None) -> None:
        model, info = load_checked(path, kind=kind, sha256=sha256, model_name=model_name)
        del model  # onnxruntime reads the (validated) file itself: no extra in-memory copies
        self.path = path
        self.info: GraphInfo = info
        self.session = create_session(str(path), f"'{path}'", device, threads)
        self.providers: list[str] = list(self.session.get_providers())
        self._inputs = {i.name: i for i in self.session.get_inputs()}

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(None, feeds)
        except Exception as e:  # noqa: BLE001  (onnxruntime's Fail/InvalidArgument...)
            shapes = {k: tuple(v.shape) for k, v in feeds.items()}
            msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise WeightsError(f"onnxruntime failed running '{self.path.name}' on inputs {shapes}: {msg}") from None


_WARNED: set[str] = set()


def _warn_once(key: str, msg: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


def _check_image(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"{name} must be an RGB image tensor (N, 3, H, W) in [0, 1], got {shape}")
    if not torch.isfinite(x).all():
        raise ParameterError(f"{name} holds NaN or infinite values")
    return x


# ---- the models the runners start from ------------------------------------------------------------------
@dataclass
class Source:
    """A network and what names its exports: model name, style names, weights sha256, architecture."""

    name: str
    sha256: str
    styles: list[str]
    architecture: str
    modules: Callable[[], Any]  # loads the PyTorch model lazily (fast: net; adain: AdaINModel)


def _record_attr(rec: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        v = rec.get(n) if isinstance(rec, dict) else getattr(rec, n, None)
        if v is not None:
            return v
    return default


def _fast_source(name: str | None, net: nn.Module | None, style_names: Sequence[str] | None) -> Source:
    if net is not None:
        styles = list(style_names or getattr(net, "style_names", None) or [])
        if not styles:
            n = int(getattr(net, "num_styles", 0) or getattr(net, "n_styles", 0) or 0)
            styles = [f"style{i}" for i in range(n)]
        if not styles:
            raise ParameterError("give style_names for a feed-forward network that does not name its styles")
        cfg = getattr(net, "config", None)
        if isinstance(cfg, dict):  # as the catalogue describes its models
            arch = json.dumps(cfg, sort_keys=True)
        else:
            arch = getattr(net, "architecture", type(net).__name__)
            arch = str(arch() if callable(arch) else arch)
        # the cache key covers the architecture too: the same weights with another activation are another graph
        sha = hashlib.sha256((sha256_state_dict(net.state_dict()) + arch).encode()).hexdigest()
        return Source(name or "custom", sha, styles, arch, lambda: net)
    from .catalogue import fast_source

    return fast_source(name)


def _adain_source(name: str | None, model: Any | None) -> Source:
    if model is not None:
        dec = model.decoder
        arch = dec.architecture() if hasattr(dec, "architecture") else type(dec).__name__
        return Source(name or "custom", sha256_state_dict(dec.state_dict()), [], arch + "+vgg19-caffe", lambda: model)
    from .catalogue import adain_source

    return adain_source(name)


def _cache_path(onnx_dir: Path, src: Source, graph: str, variant: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in src.name)
    return onnx_dir / f"{safe}-{src.sha256[:16]}.{graph}.{variant}.onnx"


_EXPORT_LOCK = threading.Lock()


def _cached_graph_valid(path: Path, kind: str, sha: str) -> bool:
    if not path.exists():
        return False
    try:
        load_checked(path, kind=kind, sha256=sha)
        return True
    except WeightsError as e:
        _warn_once(f"stale:{path}", f"re-exporting the cached ONNX file: {e}")
        return False


def _int8_psnr(fp32: Path, int8: Path, feeds: list[dict]) -> float:
    import onnxruntime as ort

    so = session_options()
    a = ort.InferenceSession(str(fp32), so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(int8), so, providers=["CPUExecutionProvider"])
    worst = float("inf")
    for f in feeds:
        ya, yb = a.run(None, f)[0], b.run(None, f)[0]
        mse = float(np.mean((ya.astype(np.float64) - yb) ** 2))
        worst = min(worst, 10 * np.log10(1.0 / max(mse, 1e-12)))
    return worst


def _ensure_variant(fp32: Path, dst: Path, variant: str, kind: str, sha: str, feeds_fn: Callable[[], tuple[list[dict], list[dict]]]) -> Path | None:
    """fp16/int8 file next to the fp32 one (made on first use); None when int8 fails its quality check."""
    from .exporter import quantize_int8, to_fp16

    if _cached_graph_valid(dst, kind, sha):
        return dst
    rejected = dst.with_suffix(".rejected")
    if rejected.exists() and QUANT_RECIPE in rejected.read_text():
        return None  # this recipe already failed the gate for these weights
    if variant == "fp16":
        return to_fp16(fp32, dst)
    feeds, checks = feeds_fn()
    if not feeds:
        return None
    quantize_int8(fp32, dst, feeds)
    return dst if gate_int8(fp32, dst, feeds[:3] + checks) is None else None


def gate_int8(fp32: Path, int8: Path, feeds: list[dict]) -> str | None:
    """The quality gate of int8 files: PSNR >= 35 dB against the fp32 file on ``feeds``. On failure the
    int8 file is deleted, a ``.rejected`` note is left in its place, and the reason is returned."""
    psnr = _int8_psnr(fp32, int8, feeds)
    if psnr >= INT8_MIN_PSNR:
        return None
    why = f"int8 PSNR {psnr:.1f} dB < {INT8_MIN_PSNR:g} dB against fp32"
    int8.with_suffix(".rejected").write_text(f"{why}\nrecipe {QUANT_RECIPE}\n")
    int8.unlink(missing_ok=True)
    return why


def _check_variant(variant: str, backend: str, named_files: bool) -> None:
    if variant not in VARIANTS:
        raise ParameterError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if variant == "bf16" and backend == "onnx":
        raise ParameterError("the bf16 variant runs on the PyTorch backend: use backend 'torch' or 'auto'")
    if variant == "bf16" and named_files:
        raise ParameterError("the bf16 variant runs the PyTorch network: it does not take ONNX files")


def _torch_bf16(variant: str, backend: str, device: str) -> bool:
    """Whether a runner runs PyTorch in bf16: asked for, or ``auto`` on a CPU with native bf16 (where
    it beats onnxruntime float32) unless the backend is onnx or a CUDA provider would be used."""
    if variant == "bf16":
        return True
    if variant != "auto" or backend == "onnx" or device not in ("auto", "cpu"):
        return False
    if device == "auto" and onnx_available() and _want_cuda(device):
        return False
    from stylekit.precision import use_bf16

    return use_bf16("auto", torch.device("cpu"))


def _bf16_check(kind: str, run: Callable[[Any, torch.Tensor], torch.Tensor], fp32: Any, bf16: Any,
                name: str) -> bool:
    """The bf16 quality check: ``run(model, photo)`` of the bf16 copy against float32 on a check photo at
    256 px; False (with one warning) below :data:`BF16_MIN_PSNR`. No photos at hand: passes."""
    from stylekit.images import resize_long_side

    from .verify import psnr

    try:
        imgs = [resize_long_side(x, 256) for x in _check_images()]
    except (StyleKitError, OSError):
        imgs = []
    if not imgs:
        return True
    with torch.no_grad():
        got = psnr(run(fp32, imgs[0]), run(bf16, imgs[0]))
    if got >= BF16_MIN_PSNR:
        return True
    _warn_once(f"bf16:{kind}:{name}", f"the bf16 copy of '{name}' gave {got:.1f} dB against float32 "
                                      f"(< {BF16_MIN_PSNR:g} dB); running float32 instead")
    return False


def _check_painting() -> torch.Tensor:
    """A painting at 256 px for the AdaIN bf16 check (held-out styles, else the demo's), else noise."""
    from stylekit.images import load_image

    from .data import style_photos

    try:
        return load_image(style_photos(1)[0], 256)
    except (StyleKitError, OSError, IndexError):
        return torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))


def _resolve_variant(variant: str, kind: str, device: str) -> str:
    """The ONNX variant to run (``variant`` already checked by :func:`_check_variant`)."""
    if variant != "auto":
        return variant
    if device != "cpu" and onnx_available() and _want_cuda(device):
        return "fp16"
    return CPU_AUTO_VARIANT.get(kind, "fp32")


def _calibration(n: int = 8, size: int = 320) -> list[torch.Tensor]:
    try:
        from .exporter import calibration_images

        return calibration_images(n=n, size=size)
    except StyleKitError:
        return []


def _check_images() -> list[torch.Tensor]:
    """Two photos at 512 long side (full frame) for the int8 quality gate."""
    from stylekit.images import load_image

    from .data import validation_photos

    return [load_image(p, 512) for p in validation_photos(10)[-2:]]


# ---- feed-forward ------------------------------------------------------------------------------------------------
class FastRunner:
    """Feed-forward stylization with one onnxruntime session (or the PyTorch network as fallback)."""

    def __init__(self, src: Source, graph: _Graph | None, net: nn.Module | None = None) -> None:
        """``graph``: the onnxruntime file, else PyTorch: ``net`` (e.g. a bf16 copy) or the source's network."""
        self.source = src
        self.graph = graph
        self.style_names: list[str] = list(graph.info.styles if graph else src.styles)
        self.backend = "onnx" if graph is not None else "torch"
        self.path = graph.path if graph else None
        self._net: nn.Module | None = net
        self.variant = graph.info.variant if graph else "bf16" if _is_bf16(net) else "fp32"
        self._lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        return self.graph.providers if self.graph else []

    def __repr__(self) -> str:
        where = f"{self.path.name}, {self.providers[0]}" if self.graph else f"PyTorch {self.variant}"
        return f"FastRunner({self.source.name!r}, {self.backend}: {where})"

    def style_weights(self, style_weights: Any, batch: int) -> np.ndarray:
        """Validate and normalize to an (N|1, S) float32 array whose rows sum to 1.

        None = the uniform mix (the only style of a single-style model), like
        :func:`stylekit.feedforward.stylize_fast`; an int = that style; a str = the style of that name.
        """
        s = len(self.style_names)
        if style_weights is None:
            return np.full((1, s), 1.0 / s, np.float32)
        if isinstance(style_weights, (int, np.integer)) and not isinstance(style_weights, bool):
            if not 0 <= int(style_weights) < s:
                raise ParameterError(f"style index {style_weights} out of range 0..{s - 1}")
            w = np.zeros((1, s), np.float32)
            w[0, int(style_weights)] = 1.0
            return w
        if isinstance(style_weights, str):
            if style_weights not in self.style_names:
                raise ParameterError(f"unknown style {style_weights!r}; this model has {self.style_names}")
            return self.style_weights(self.style_names.index(style_weights), batch)
        try:
            w = np.asarray(style_weights.detach().cpu().numpy() if isinstance(style_weights, torch.Tensor)
                           else style_weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(f"style weights must be numbers, got {style_weights!r}") from None
        if w.ndim == 1:
            w = w[None]
        if w.ndim != 2 or w.shape[1] != s or w.shape[0] not in (1, batch):
            raise ParameterError(f"style weights must have shape ({s},) or ({batch}, {s}), "
                                 f"got {tuple(np.shape(style_weights))}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ParameterError("style weights must be finite, non-negative and not all zero")
        tot = w.sum(axis=1, keepdims=True)
        if (tot <= 0).any():
            raise ParameterError("style weights must be finite, non-negative and not all zero")
        return (w / tot).astype(np.float32)

    def stylize(self, content: torch.Tensor, style_weights: Any = None, strength: float = 1.0,
                preserve_color: bool | str | None = None, stroke_scale: float = 1.0) -> torch.Tensor:
        """Same contract as :func:`stylekit.feedforward.stylize_fast`: ``content`` (N,3,H,W) in [0,1];
        ``style_weights`` a mix (S,) or (N,S), a style index or name, or None (uniform mix);
        ``strength`` in [0,1] blends with the content; ``preserve_color`` (True/``"luminance"``) keeps the
        content's colours; ``stroke_scale`` sizes the strokes (:func:`stylekit.feedforward.at_stroke_scale`).
        Returns (N,3,H,W) float32 in [0,1] on ``content``'s device."""
        from stylekit.feedforward import at_stroke_scale

        content = _check_image(content, "content")
        if min(content.shape[-2:]) < 5:
            raise ParameterError(f"the feed-forward network needs images of at least 5x5 pixels, got "
                                 f"{content.shape[-1]}x{content.shape[-2]}")
        strength = check_fraction(strength, "strength")
        if preserve_color not in (None, False, True, "luminance"):
            raise ParameterError(f"preserve_color must be True/'luminance' or None, got {preserve_color!r}")
        w = self.style_weights(style_weights, content.shape[0])
        x = content.detach().to("cpu", torch.float32)

        def run(t: torch.Tensor) -> torch.Tensor:
            if self.graph is None:
                return self._torch(t, w)
            ww = np.repeat(w, t.shape[0], axis=0) if w.shape[0] != t.shape[0] else w
            tp, hw = _prepad_fast(t)
            y = torch.from_numpy(self.graph.run({"image": _to_numpy(tp), "style_weights": ww})[0])
            return y[..., :hw[0], :hw[1]].contiguous() if hw is not None else y

        y = at_stroke_scale(run, x, stroke_scale)
        if preserve_color:
            from stylekit.color import luminance_transfer

            y = luminance_transfer(y, x)
        if strength < 1.0:
            y = (strength * y + (1.0 - strength) * x).clamp(0, 1)
        return y.to(content.device)

    __call__ = stylize

    def _torch(self, content: torch.Tensor, w: np.ndarray) -> torch.Tensor:
        with self._lock:
            if self._net is None:
                self._net = self.source.modules().float().eval()
        net = self._net
        dev = next(net.parameters()).device
        wt = torch.from_numpy(w).to(dev)
        if wt.shape[0] != content.shape[0]:
            wt = wt.expand(content.shape[0], -1)
        with torch.no_grad():  # a bf16 copy takes and returns float32 itself
            return net(content.to(dev, torch.float32), wt).float().clamp(0, 1).cpu()


def _is_bf16(module: Any) -> bool:
    try:
        return next(module.parameters()).dtype == torch.bfloat16
    except (AttributeError, StopIteration):
        return False


def _prepad_fast(x: torch.Tensor, m: int = 4) -> tuple[torch.Tensor, tuple[int, int] | None]:
    """The feed-forward graph reflect-pads to a multiple of ``m`` itself; images of 1-2 px on a side need
    PyTorch's replicate padding instead (reflect needs pad < size), done here."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if (ph or pw) and not (h > ph and w > pw):
        return torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate"), (h, w)
    return x, None


# ---- AdaIN ------------------------------------------------------------------------------------------------------------
class AdaINRunner:
    """AdaIN with two sessions: style statistics (once per style) and the stylizer."""

    def __init__(self, src: Source, style: _Graph | None, stylizer: _Graph | None, model: Any = None) -> None:
        """``style``/``stylizer``: the onnxruntime files, else PyTorch: ``model`` (e.g. a bf16 copy) or the
        source's model."""
        self.source = src
        self.style_graph = style
        self.stylizer = stylizer
        self.backend = "onnx" if stylizer is not None else "torch"
        self.variant = stylizer.info.variant if stylizer else "bf16" if _is_bf16(model) else "fp32"
        self._model: Any = model
        self._lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        return self.stylizer.providers if self.stylizer else []

    def __repr__(self) -> str:
        where = f"{self.stylizer.path.name}, {self.providers[0]}" if self.stylizer else f"PyTorch {self.variant}"
        return f"AdaINRunner({self.source.name!r}, {self.backend}: {where})"

    def torch_model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self.source.modules()
        return self._model

    def style_stats(self, style: torch.Tensor, style_size: int | None = None):
        """Channel mean/std of a style image (1,3,H,W) at relu4_1 -> :class:`stylekit.adain.StyleStats`."""
        from stylekit.adain import StyleStats, style_statistics
        from stylekit.images import check_size, resize_long_side

        style = _check_image(style, "style")
        if style.shape[0] != 1:
            raise ParameterError(f"style must be one image, got a batch of {style.shape[0]}")
        if self.style_graph is None:
            return style_statistics(self.torch_model(), style, style_size)
        if style_size is not None:
            style = resize_long_side(style.float(), check_size(style_size, name="style size"))
        x, _ = prepad_small(style.float())
        m, s = self.style_graph.run({"style": _to_numpy(x)})
        return StyleStats(torch.from_numpy(m), torch.from_numpy(s))

    def stylize(self, content: torch.Tensor, stats: Any, alpha: float = 1.0, detail: float = 0.0,
                reconstruction: torch.Tensor | None = None) -> torch.Tensor:
        """``content`` (N,3,H,W) in [0,1] with cached ``stats`` (a StyleStats; mix several with
        ``StyleStats.mix``). Returns (N,3,H,W) in [0,1]. Same as :func:`stylekit.adain.transfer`.
        ``detail`` > 0 needs the content's :meth:`reconstruction`: pass it when cached (it depends on
        the content only), else it is made here (onnxruntime: the stylizer graph once more, at alpha 0)."""
        from stylekit.adain import check_alpha, check_detail, restore_detail, transfer

        content = _check_image(content, "content")
        a = check_alpha(alpha)
        d = check_detail(detail)
        if not hasattr(stats, "mean") or not hasattr(stats, "std"):
            raise ParameterError("stats must be StyleStats (from style_stats); mix several with StyleStats.mix")
        if reconstruction is not None and tuple(reconstruction.shape) != tuple(content.shape):
            raise ParameterError(f"the reconstruction has shape {tuple(reconstruction.shape)}, the content "
                                 f"{tuple(content.shape)}: make it from this content")
        if self.stylizer is None and (d == 0 or reconstruction is None):
            return transfer(self.torch_model(), content, [stats], alpha=a, detail=d)  # one batched decoding
        y = transfer(self.torch_model(), content, [stats], alpha=a) if self.stylizer is None else \
            self._stylize_graph(content, stats, a)
        if d > 0:
            rec = self.reconstruction(content) if reconstruction is None else reconstruction
            y = restore_detail(y.cpu(), content.float().cpu(), rec.float().cpu(), d)
        return y.to(content.device)

    def reconstruction(self, content: torch.Tensor) -> torch.Tensor:
        """The content decoded from its own relu4_1 features (alpha 0): what ``detail`` compares the
        photo with. It depends on the content only: cache it per image."""
        from stylekit.adain import StyleStats, transfer

        content = _check_image(content, "content")
        unused = StyleStats(torch.zeros(1, 512, 1, 1), torch.ones(1, 512, 1, 1))  # alpha 0 ignores the style
        if self.stylizer is None:
            return transfer(self.torch_model(), content, [unused], alpha=0.0)
        return self._stylize_graph(content, unused, 0.0).to(content.device)

    def _stylize_graph(self, content: torch.Tensor, stats: Any, alpha: float) -> torch.Tensor:
        from stylekit.adain import add_border

        h, w = content.shape[-2:]
        xb, b = add_border(content.float().cpu())  # the same margin as transfer() (no frame at the edges)
        x, _ = prepad_small(xb)  # its crop is inside the one below
        m = _to_numpy(stats.mean).reshape(-1, 512, 1, 1)
        s = _to_numpy(stats.std).reshape(-1, 512, 1, 1)
        out = self.stylizer.run({"content": _to_numpy(x), "style_mean": m, "style_std": s,  # type: ignore[union-attr]
                                 "alpha": np.array(alpha, np.float32)})[0]
        return torch.from_numpy(out)[..., b:b + h, b:b + w].contiguous()

    def transfer(self, content: torch.Tensor, styles: Any, weights: Sequence[float] | None = None,
                 alpha: float = 1.0, mask: Any = None, preserve_color: str | None = None,
                 style_size: int | None = None, detail: float = 0.0) -> torch.Tensor:
        """Like :func:`stylekit.adain.transfer` (styles: images or StyleStats; weights mix their statistics).

        Spatial ``mask`` control is not in the graphs: :class:`OnnxUnsupported` on the onnx backend (the
        PyTorch backend, bf16 included, takes it).
        """
        from stylekit.adain import PRESERVE_COLOR, StyleStats, _check_weights

        if self.stylizer is None:
            from stylekit.adain import transfer

            return transfer(self.torch_model(), content, styles, weights=weights, alpha=alpha, mask=mask,
                            preserve_color=preserve_color, style_size=style_size, detail=detail)
        if mask is not None:
            raise OnnxUnsupported("spatial masks run on the PyTorch backend only (use --backend torch or auto)")
        content = _check_image(content, "content").float()
        if isinstance(styles, (torch.Tensor, StyleStats)):
            styles = [styles]
        styles = list(styles)
        if not styles:
            raise ParameterError("give at least one style")
        if preserve_color not in PRESERVE_COLOR:
            raise ParameterError(f"preserve_color must be one of None, 'stats', 'luminance'; got {preserve_color!r}")
        w = _check_weights(weights, len(styles))
        stats = []
        for s in styles:
            if isinstance(s, StyleStats):
                if preserve_color is not None:
                    raise ParameterError("colour preservation needs the style images, not precomputed statistics")
                stats.append(s)
                continue
            s = _check_image(s, "style").float()
            if preserve_color == "stats":
                from stylekit.color import match_color

                s = match_color(s, content)
            elif preserve_color == "luminance":
                from stylekit.color import luminance_only

                s = luminance_only(s, content)
            stats.append(self.style_stats(s, style_size))
        mix = stats[0] if len(stats) == 1 else StyleStats.mix(stats, w)
        if preserve_color == "luminance":
            from stylekit.color import luminance, luminance_transfer

            out = self.stylize(luminance(content).expand(-1, 3, -1, -1).contiguous(), mix, alpha, detail)
            return luminance_transfer(out, content)
        return self.stylize(content, mix, alpha, detail)


# ---- factories ----------------------------------------------------------------------------------------------------
_RUNNERS: dict[tuple, Any] = {}
_RUNNERS_LOCK = threading.RLock()


def _fallback_reason(backend: str) -> str | None:
    if backend not in ("auto", "onnx", "torch"):
        raise ParameterError(f"backend must be auto, onnx or torch, got {backend!r}")
    if backend == "torch":
        return "torch"
    if not onnx_available():
        if backend == "onnx":
            raise ParameterError("the onnx backend needs onnx and onnxruntime: pip install 'stylekit[onnx]'")
        _warn_once("no-ort", "onnxruntime is not installed; running the PyTorch model instead "
                             "(pip install 'stylekit[onnx]' for the faster runtime)")
        return "no onnxruntime"
    return None


def _missing_file(path: str | os.PathLike | None, backend: str) -> bool:
    if path is None or Path(path).exists():
        return False
    if backend == "onnx":
        raise WeightsError(f"ONNX file '{path}' does not exist")
    _warn_once(f"missing:{path}", f"ONNX file '{path}' does not exist; running the PyTorch model instead")
    return True


def get_fast_runner(name: str | None = None, *, net: nn.Module | None = None, style_names: Sequence[str] | None = None,
                    file: str | os.PathLike | None = None, variant: str = "auto", device: str = "auto",
                    backend: str = "auto", onnx_dir: str | os.PathLike | None = None) -> FastRunner:
    """The runner of a feed-forward model (cached: the same arguments give the same runner).

    ``name``: a catalogue model (default: the catalogue's default feed-forward model); or ``net``: a
    network object (``style_names`` names its styles when it does not). ``file``: use this exported
    file instead of the cache (it must match the model's weights). ``variant``: ``auto`` (int8 on CPU
    where shipped, fp16 on CUDA, else fp32), ``fp32``, ``fp16``, ``int8``. ``device``: ``auto``, ``cpu``,
    ``cuda``. ``backend``: ``auto`` (onnxruntime, else PyTorch with a warning), ``onnx`` (error when
    unavailable) or ``torch``. ``onnx_dir``: the export cache (default :func:`default_onnx_dir`).
    """
    key = ("fast", name, id(net) if net is not None else None, tuple(style_names or ()),
           str(file) if file else None, variant, device, backend, str(onnx_dir) if onnx_dir else None)
    return _cached_runner(key, lambda: _make_fast_runner(name, net, style_names, file, variant, device, backend,
                                                         onnx_dir))


_MAKING: dict[tuple, threading.Lock] = {}


def _cached_runner(key: tuple, make: Any) -> Any:
    """The runner for ``key``, made once. Concurrent first requests for the same key wait for one
    export (a per-key lock); requests for other runners are not held up by it."""
    with _RUNNERS_LOCK:
        r = _RUNNERS.get(key)
        if r is not None:
            return r
        making = _MAKING.setdefault(key, threading.Lock())
    with making:
        with _RUNNERS_LOCK:
            r = _RUNNERS.get(key)
        if r is None:
            r = make()
            with _RUNNERS_LOCK:
                _RUNNERS[key] = r
                _MAKING.pop(key, None)
        return r


def _make_fast_runner(name, net, style_names, file, variant, device, backend, onnx_dir) -> FastRunner:
    src = _fast_source(name, net, style_names)
    _check_variant(variant, backend, file is not None)
    if file is None and _torch_bf16(variant, backend, device):
        from stylekit.feedforward import stylize_fast
        from stylekit.precision import bf16_copy

        fp32 = src.modules()
        low = bf16_copy(fp32)
        if variant == "bf16" or _bf16_check("fast", lambda m, x: stylize_fast(m, x, None), fp32, low, src.name):
            return FastRunner(src, None, low)
        if variant == "auto" and backend == "torch":
            return FastRunner(src, None)
    if _fallback_reason(backend) or _missing_file(file, backend):
        return FastRunner(src, None)
    if file is not None:
        return FastRunner(src, _Graph(Path(file), "fast", src.sha256, None, device))
    v = _resolve_variant(variant, "fast", device)
    d = Path(onnx_dir) if onnx_dir else default_onnx_dir()
    with _EXPORT_LOCK:
        fp32 = _cache_path(d, src, "fast", "fp32")
        if not _cached_graph_valid(fp32, "fast", src.sha256):
            from .exporter import export_fast

            export_fast(src.modules(), fp32, model_name=src.name, style_names=src.styles, source_sha256=src.sha256,
                        architecture=src.architecture)
        path = fp32
        if v != "fp32":
            def feeds() -> tuple[list[dict], list[dict]]:
                from .exporter import fast_calibration_feeds

                n = len(src.styles)
                return fast_calibration_feeds(_calibration(), n), fast_calibration_feeds(_check_images(), n)

            path = _ensure_variant(fp32, _cache_path(d, src, "fast", v), v, "fast", src.sha256, feeds) or fp32
            if path == fp32 and variant == v:
                _warn_once(f"rejected:{fp32}:{v}", f"the {v} variant of '{src.name}' did not pass its quality check; "
                                                   "using fp32")
    g = _Graph(path, "fast", src.sha256, None, device)
    if v == "fp16" and variant == "auto" and "CUDAExecutionProvider" not in g.providers:
        # onnxruntime has a CUDA provider but it did not initialize: the CPU variant, not fp16 on CPU
        return _make_fast_runner(name, net, style_names, file, variant, "cpu", backend, onnx_dir)
    return FastRunner(src, g)


def get_adain_runner(name: str | None = None, *, model: Any = None, style_file: str | os.PathLike | None = None,
                     stylizer_file: str | os.PathLike | None = None, variant: str = "auto", device: str = "auto",
                     backend: str = "auto", onnx_dir: str | os.PathLike | None = None) -> AdaINRunner:
    """The runner of an AdaIN model (cached). ``name``: catalogue model (default: the shipped decoder);
    ``model``: an :class:`stylekit.adain.AdaINModel`; ``style_file``/``stylizer_file``: exported files
    to use instead of the cache. Other arguments as in :func:`get_fast_runner`."""
    key = ("adain", name, id(model) if model is not None else None, str(style_file) if style_file else None,
           str(stylizer_file) if stylizer_file else None, variant, device, backend, str(onnx_dir) if onnx_dir else None)
    return _cached_runner(key, lambda: _make_adain_runner(name, model, style_file, stylizer_file, variant, device,
                                                          backend, onnx_dir))


def _make_adain_runner(name, model, style_file, stylizer_file, variant, device, backend, onnx_dir) -> AdaINRunner:
    src = _adain_source(name, model)
    _check_variant(variant, backend, style_file is not None or stylizer_file is not None)
    if style_file is None and stylizer_file is None and _torch_bf16(variant, backend, device):
        from stylekit.adain import transfer

        fp32 = src.modules()
        low = fp32.bf16_copy()
        style = _check_painting() if variant != "bf16" else None
        if variant == "bf16" or _bf16_check("adain", lambda m, x: transfer(m, x, style), fp32, low, src.name):
            return AdaINRunner(src, None, None, low)
        if variant == "auto" and backend == "torch":
            return AdaINRunner(src, None, None)
    if _fallback_reason(backend) or _missing_file(style_file, backend) or _missing_file(stylizer_file, backend):
        return AdaINRunner(src, None, None)
    v = _resolve_variant(variant, "adain-stylizer", device)
    d = Path(onnx_dir) if onnx_dir else default_onnx_dir()
    with _EXPORT_LOCK:
        sp = Path(style_file) if style_file else _cache_path(d, src, "adain-style", "fp32")
        zp = Path(stylizer_file) if stylizer_file else _cache_path(d, src, "adain-stylizer", "fp32")
        if (style_file is None and not _cached_graph_valid(sp, "adain-style", src.sha256)) or \
                (stylizer_file is None and not _cached_graph_valid(zp, "adain-stylizer", src.sha256)):
            from .exporter import export_adain

            m = src.modules()
            tmp_s = sp if style_file is None else _cache_path(d, src, "adain-style", "fp32")
            tmp_z = zp if stylizer_file is None else _cache_path(d, src, "adain-stylizer", "fp32")
            export_adain(m.encoder, m.decoder, tmp_s, tmp_z, model_name=src.name, source_sha256=src.sha256,
                         architecture=src.architecture)
        if stylizer_file is None and v != "fp32":
            def feeds() -> tuple[list[dict], list[dict]]:
                from .exporter import adain_calibration_feeds

                imgs = _calibration()
                if not imgs:
                    return [], []
                return adain_calibration_feeds(imgs, sp), adain_calibration_feeds(_check_images(), sp)

            zv = _ensure_variant(zp, _cache_path(d, src, "adain-stylizer", v), v, "adain-stylizer", src.sha256, feeds)
            if zv is None and variant == v:
                _warn_once(f"rejected:{zp}:{v}", f"the {v} variant of '{src.name}' did not pass its quality check; "
                                                 "using fp32")
            zp = zv or zp
    style = _Graph(sp, "adain-style", src.sha256, None, device)
    stylizer = _Graph(zp, "adain-stylizer", src.sha256, None, device)
    if v == "fp16" and variant == "auto" and "CUDAExecutionProvider" not in stylizer.providers:
        return _make_adain_runner(name, model, style_file, stylizer_file, variant, "cpu", backend, onnx_dir)
    return AdaINRunner(src, style, stylizer)


def clear_runners() -> None:
    """Forget every cached runner (tests; after deleting cache files)."""
    with _RUNNERS_LOCK:
        _RUNNERS.clear()
