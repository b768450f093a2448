"""The demo's logic without Gradio: inputs, the shipped style catalogue, the three modes, metrics.

Everything heavy is created once and shared by all requests (thread-safe): the VGG encoder, the
onnxruntime runners (``export.runtime``), AdaIN style statistics (cached per style image, keyed by a
hash of its pixels) and the metric targets (content features / style Gram matrices, same keying).
A mode whose model is not shipped yet raises :class:`ModelUnavailable` with a readable message; the
next request tries again, so the app lights up as soon as the model files exist.
"""
from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
import warnings
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image

from stylekit.errors import ParameterError, StyleKitError, WeightsError, check_fraction
from stylekit.images import pil_to_tensor, resize, resize_long_side

EXAMPLES = Path(__file__).resolve().parent / "examples"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

#: Inputs with more pixels than this are downscaled (with a visible note) before anything runs.
PIXEL_CAP = 1024 * 1024
#: Long side of the fast modes' output (the UI slider's range and default).
FAST_SIZES = (64, 1024, 512)
#: Gatys output long side (range and default) and final-scale steps (range and default).
GATYS_SIZES = (64, 512, 256)
GATYS_STEPS = (5, 300, 40)


class ModelUnavailable(StyleKitError):
    """The model of a mode is not shipped / cannot be loaded (yet)."""


class Busy(StyleKitError):
    """More one-pass work is queued than the server can finish within the wait budget: try again later."""


class WorkGate:
    """One at a time, first come first served, for the CPU work of the one-pass modes (feed-forward,
    AdaIN, metrics), with admission control.

    On a 2-core Space two inferences side by side only slow each other down, so requests take turns
    and each gets every core. A request first estimates its own time (seconds per pixel of its kind,
    a running average of what recent requests of that kind took) and the time of the work ahead of it
    (the remaining time of the running request plus everything waiting). When the work ahead plus its
    own estimate exceeds ``max_wait`` seconds, or :attr:`MAX_LINE` requests are in the gate already,
    the request is answered at once with :class:`Busy` ("busy, try again") instead of joining a queue
    it could only leave late: an accepted request waits at most about ``max_wait`` seconds, however
    many people press the button. An empty gate admits anything.
    """

    #: at most this many requests in the gate (running + waiting) when a budget applies: estimates made
    #: on an idle machine are too low under a sudden burst, a short line bounds the wait anyway
    MAX_LINE = 2
    #: seconds per pixel to start from (2-vCPU figures at 512 px; updated by every request)
    START_RATES = {"fast": 2.3e-6, "adain": 3.2e-6, "measure": 6e-6}

    @dataclass
    class _Ticket:
        estimate: float
        started: float | None = None

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._line: deque[WorkGate._Ticket] = deque()
        self._rate = dict(self.START_RATES)

    def estimate(self, kind: str, pixels: int) -> float:
        """Seconds a request of ``kind`` (a key of :attr:`START_RATES`) on ``pixels`` pixels should take."""
        return max(0.05, self._rate[kind] * pixels)

    def ahead(self) -> float:
        """Estimated seconds of work in the gate now (running remainder + waiting)."""
        with self._cond:
            return self._ahead()

    def _ahead(self) -> float:
        now = time.perf_counter()
        return sum(max(0.0, t.estimate - (now - t.started)) if t.started is not None else t.estimate
                   for t in self._line)

    def run(self, kind: str, pixels: int, fn: Callable[[], Any], max_wait: float | None = None) -> Any:
        """``fn()`` in turn; :class:`Busy` when the work ahead plus this request's estimate exceeds
        ``max_wait`` seconds (None: always wait in line, e.g. the compare figure). A request whose own
        estimate is over the budget is admitted while less than a quarter of the budget is queued."""
        est = self.estimate(kind, pixels)
        with self._cond:
            if max_wait is not None and self._line:
                ahead = self._ahead()
                # a request bigger than the budget still gets in when the line is nearly empty
                if len(self._line) >= self.MAX_LINE or ahead > max(max_wait - est, 0.25 * max_wait):
                    raise Busy(f"The server is busy: about {ahead:.1f} s of work is queued ahead of you. "
                               "Please try again in a few seconds.")
            ticket = WorkGate._Ticket(est)
            self._line.append(ticket)
            while self._line[0] is not ticket:
                self._cond.wait()
            ticket.started = time.perf_counter()
        finished = False
        try:
            result = fn()
            finished = True
            return result
        finally:
            took = time.perf_counter() - ticket.started
            with self._cond:
                self._line.remove(ticket)
                if finished and pixels > 0:  # a request that failed early says nothing about the rate
                    self._rate[kind] = 0.5 * self._rate[kind] + 0.5 * took / pixels
                self._cond.notify_all()


GATE = WorkGate()
#: default wait budget of the one-pass modes (seconds of queued work, see :class:`WorkGate`)
MAX_WAIT = float(os.environ.get("STYLEKIT_DEMO_MAX_WAIT", "1.0"))


# ---- inputs --------------------------------------------------------------------------------------------------
def pixel_hash(x: torch.Tensor | Image.Image | np.ndarray) -> str:
    """A short hash of an image's 8-bit pixels (same pixels -> same key, whatever the file)."""
    if isinstance(x, torch.Tensor):
        arr = (x.detach()[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    elif isinstance(x, Image.Image):
        arr = np.asarray(x.convert("RGB"))
    else:
        arr = np.asarray(x)
    h = hashlib.sha1(np.ascontiguousarray(arr).tobytes())
    h.update(str(arr.shape).encode())
    return h.hexdigest()[:20]


@dataclass
class Input:
    """A prepared input image: tensor (1, 3, H, W) [0, 1], pixel hash, and a note if it was downscaled."""

    tensor: torch.Tensor
    key: str
    note: str = ""


def prepare(img: Image.Image | np.ndarray | torch.Tensor | None, what: str, cap: int = PIXEL_CAP) -> Input:
    """Convert an input to a tensor; above ``cap`` pixels it is downscaled (the note says so)."""
    if img is None:
        raise ParameterError(f"Please give a {what} image (upload one, or pick an example).")
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img.astype(np.uint8)).convert("RGB")
    if isinstance(img, Image.Image):
        x = pil_to_tensor(img.convert("RGB"))
    else:
        x = img.float()
    note = ""
    h, w = x.shape[-2:]
    if h * w > cap:
        s = (cap / (h * w)) ** 0.5
        nh, nw = max(8, int(h * s)), max(8, int(w * s))
        x = resize(x, nh, nw)
        note = (f"The {what} image ({w}×{h}) is above the {cap / 1e6:.1f}-megapixel limit; "
                f"it was downscaled to {nw}×{nh}.")
    return Input(x.contiguous(), pixel_hash(x), note)


class LRU:
    """A small thread-safe LRU cache."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        value = make()
        with self._lock:
            self._d[key] = value
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._d


# ---- the style catalogue ---------------------------------------------------------------------------------------
@dataclass
class StyleEntry:
    name: str
    path: Path
    shipped: bool        # the feed-forward network was trained on it

    @property
    def label(self) -> str:
        return self.name.replace("_", " ") + (" ★" if self.shipped else "")


def _record(rec: Any, *names: str) -> Any:
    for n in names:
        v = rec.get(n) if isinstance(rec, dict) else getattr(rec, n, None)
        if v is not None:
            return v
    return None


def shipped_styles() -> list[tuple[str, Path | None]]:
    """(name, image path or None) of the styles of the shipped feed-forward model; [] when none."""
    try:
        from stylekit import weights  # the model catalogue (may not exist yet)
    except ImportError:
        return []
    try:
        try:  # the styles of the default feed-forward model (the one the runner serves)
            recs = list(weights.list_styles(weights.get_record(None, "fast").id))
        except (AttributeError, TypeError):
            recs = list(weights.list_styles())
    except StyleKitError:
        return []
    out = []
    for r in recs:
        if isinstance(r, str):
            out.append((r, None))
            continue
        if isinstance(r, (tuple, list)) and r:
            name, path = r[0], (r[1] if len(r) > 1 else None)
        else:
            name = _record(r, "name", "style", "id")
            path = _record(r, "image", "image_path", "path", "file", "thumbnail")
        if name:
            p = Path(path) if isinstance(path, (str, Path)) and Path(path).is_file() else None
            out.append((str(name), p))
    return out


def example_files(kind: str) -> list[Path]:
    d = EXAMPLES / kind
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if d.is_dir() else []


def style_catalogue() -> list[StyleEntry]:
    """Shipped styles first (those with an image), then the example styles not among them."""
    entries = [StyleEntry(n, p, True) for n, p in shipped_styles() if p is not None]
    names = {e.name for e in entries}
    entries += [StyleEntry(p.stem, p, False) for p in example_files("style") if p.stem not in names]
    return entries


# ---- runners -----------------------------------------------------------------------------------------------------
_RUNNER_LOCK = threading.Lock()
_OVERRIDES: dict[str, Any] = {}


def use_runner(kind: str, runner: Any | None) -> None:
    """Serve ``runner`` (an ``export.runtime`` FastRunner / AdaINRunner) for ``kind`` ("fast" | "adain")
    instead of the shipped model's; None goes back to the catalogue. For other models and for tests."""
    if kind not in ("fast", "adain"):
        raise ParameterError(f"kind must be 'fast' or 'adain', got {kind!r}")
    if runner is None:
        _OVERRIDES.pop(kind, None)
    else:
        _OVERRIDES[kind] = runner


def _runner(kind: str) -> Any:
    """The shared onnxruntime runner of ``kind`` ("fast" | "adain"); ModelUnavailable when there is none."""
    if kind in _OVERRIDES:
        return _OVERRIDES[kind]
    try:
        from export import runtime
    except ImportError as e:
        raise ModelUnavailable(f"the runtime is not installed ({e})") from None
    with _RUNNER_LOCK:  # first use may export the ONNX file: once, not once per concurrent request
        try:
            return runtime.get_fast_runner() if kind == "fast" else runtime.get_adain_runner()
        except (WeightsError, ImportError) as e:
            what = "feed-forward" if kind == "fast" else "AdaIN"
            raise ModelUnavailable(f"The {what} model is not available yet ({e}).") from None


def _own_runner(style: str) -> Any | None:
    """The runner of ``style``'s own one-style network (:attr:`stylekit.weights.StyleEntry.specialist`),
    which serves the style when it runs alone; None when the catalogue has none, when the feed-forward
    runner is overridden (:func:`use_runner`), or when it cannot be loaded (the gallery serves then)."""
    if "fast" in _OVERRIDES:
        return None
    try:
        from export import runtime
        from stylekit.weights import find_style

        sid = find_style(style).specialist
        if not sid:
            return None
        with _RUNNER_LOCK:
            return runtime.get_fast_runner(sid)
    except (StyleKitError, ImportError) as e:
        if style not in _OWN_FAILED:  # say it once per style, not on every request
            _OWN_FAILED.add(style)
            warnings.warn(f"the own network of style {style!r} is not available ({e}); the gallery serves it",
                          RuntimeWarning, stacklevel=2)
        return None


_OWN_FAILED: set[str] = set()


def own_networks() -> list[str]:
    """Names of the gallery styles that have their own network (from the catalogue; loads nothing)."""
    if "fast" in _OVERRIDES:
        return []
    try:
        from stylekit.weights import list_styles

        return [s.name for s in list_styles() if s.specialist]
    except (ImportError, StyleKitError):
        return []


def fast_style_names() -> list[str]:
    """Style names of the feed-forward model, from the catalogue (does not load the model)."""
    if "fast" in _OVERRIDES:
        return list(_OVERRIDES["fast"].style_names)
    return [n for n, _ in shipped_styles()]


def model_status() -> dict[str, str]:
    """'ready (onnx, int8)' or the reason, per fast mode (creates the runners: call off the request path)."""
    out = {}
    for kind in ("fast", "adain"):
        try:
            r = _runner(kind)
            out[kind] = f"ready ({r.backend}, {r.variant})"
        except ModelUnavailable as e:
            out[kind] = str(e)
    return out


def warm_up() -> None:
    """Load the encoder and the runners (call once in a background thread at start-up)."""
    from stylekit.encoder import load_encoder

    load_encoder()
    model_status()
    for style in own_networks():  # export/load each style's own network now, not on its first request
        _own_runner(style)


# ---- metrics (stylekit.metrics with cached targets) -----------------------------------------------------------
class Metrics:
    """:func:`stylekit.metrics.distances` with the content features and style Grams cached by pixel hash."""

    def __init__(self) -> None:
        self._content = LRU(16)
        self._style = LRU(32)

    @torch.no_grad()
    def distances(self, x: torch.Tensor, content: Input, style: Input):
        from stylekit.encoder import load_encoder
        from stylekit.losses import gram_matrix
        from stylekit.metrics import CONTENT_LAYER, MEASURE_SIZE, STYLE_LAYERS, Distances

        enc = load_encoder()

        def prep(t: torch.Tensor) -> torch.Tensor:
            t = t.float()
            return resize_long_side(t, MEASURE_SIZE) if max(t.shape[-2:]) != MEASURE_SIZE else t

        def content_target():
            c = prep(content.tensor)
            return c.shape[-2:], enc(c, (CONTENT_LAYER,))[CONTENT_LAYER]

        def style_target():
            f = enc(prep(style.tensor), STYLE_LAYERS)
            return {k: gram_matrix(v, normalize=True) for k, v in f.items()}

        c_hw, fc = self._content.get_or_make(content.key, content_target)
        gs = self._style.get_or_make(style.key, style_target)
        xs = prep(x)
        xc = resize(x.float(), *c_hw)
        if tuple(xs.shape[-2:]) == tuple(xc.shape[-2:]):
            f = enc(xs, (*STYLE_LAYERS, CONTENT_LAYER))
            fx, fxc = f, f[CONTENT_LAYER]
        else:
            fx = enc(xs, STYLE_LAYERS)
            fxc = enc(xc, (CONTENT_LAYER,))[CONTENT_LAYER]
        sd = sum(float((gram_matrix(fx[k], normalize=True) - gs[k]).norm() / gs[k].norm().clamp_min(1e-8))
                 for k in STYLE_LAYERS) / len(STYLE_LAYERS)
        cd = float((fxc - fc).norm() / fc.norm().clamp_min(1e-8))
        return Distances(sd, cd)


METRICS = Metrics()


def measure(image: torch.Tensor, content: Input, style: Input, max_wait: float | None = None):
    """Style and content distance of a result (:class:`Metrics`), through the one-pass modes' work gate:
    :class:`Busy` when more than ``max_wait`` seconds of work are queued (None: wait in line)."""
    from stylekit.metrics import MEASURE_SIZE

    return GATE.run("measure", MEASURE_SIZE * MEASURE_SIZE, lambda: METRICS.distances(image, content, style),
                    max_wait)


# ---- the modes ----------------------------------------------------------------------------------------------------
@dataclass
class Result:
    image: torch.Tensor
    seconds: float
    notes: list[str]
    style_for_metrics: Input | None = None   # feed-forward: the trained style's image


def _fit(x: torch.Tensor, size: int | None) -> torch.Tensor:
    return resize_long_side(x, int(size)) if size and max(x.shape[-2:]) != int(size) else x


def _keep_colors(out: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    from stylekit.color import luminance_transfer

    return luminance_transfer(out, content)


_STYLE_IMAGES = LRU(16)


def shipped_style_input(name: str) -> Input | None:
    for n, p in shipped_styles():
        if n == name and p is not None:
            def load(path: Path = p) -> Input:
                from stylekit.images import load_image

                return prepare(load_image(path), "style")
            return _STYLE_IMAGES.get_or_make(str(p), load)
    return None


def style_stroke_scale(style: str | None, style2: str | None = None, blend: float = 0.0) -> float:
    """The stroke scale a gallery style (or :func:`run_fast`'s blend of two, ``blend`` = weight of ``style2``)
    runs at by default: the catalogue's (:func:`stylekit.weights.default_stroke_scale`); 1 for a style the
    catalogue does not know."""
    from stylekit.weights import default_stroke_scale

    b = float(blend) if style2 else 0.0
    try:
        return default_stroke_scale({k: v for k, v in ((style, 1.0 - b), (style2, b)) if k})
    except StyleKitError:
        return 1.0


def run_fast(content: Input, style: str | None, style2: str | None = None, blend: float = 0.0,
             strength: float = 1.0, preserve_color: bool = False, size: int | None = 512,
             max_wait: float | None = None, stroke_scale: float | None = None) -> Result:
    """Feed-forward: one trained style, or a blend of two (``blend`` = weight of ``style2``), through
    the onnxruntime runner. ``strength`` mixes the stylized image with the content (1 = fully stylized).
    ``stroke_scale``: the network runs on the image resized by 1/stroke_scale (the runner's ``stylize``);
    None = the style's own (:func:`style_stroke_scale`). ``max_wait``: see :class:`WorkGate` (None: wait in
    line whatever the load)."""
    from stylekit.feedforward import work_size

    runner = _runner("fast")
    names = list(runner.style_names)
    if not names:
        raise ModelUnavailable("The feed-forward model has no styles.")
    style = style or names[0]
    for s in (style, style2):
        if s and s not in names:
            raise ParameterError(f"The feed-forward network was not trained on {s!r}; it knows: {', '.join(names)}.")
    blend, strength = check_fraction(blend, "blend"), check_fraction(strength, "strength")
    w = np.zeros(len(names), np.float32)
    w[names.index(style)] += 1.0 - (float(blend) if style2 else 0.0)
    if style2:
        w[names.index(style2)] += float(blend)
    own = None
    if np.count_nonzero(w) == 1:  # a style alone: its own network where the catalogue has one
        own = _own_runner(names[int(np.argmax(w))])
        if own is not None:
            runner, w = own, np.ones(1, np.float32)
    if stroke_scale is None:
        stroke_scale = style_stroke_scale(style, style2, blend)
    x = _fit(content.tensor, size)
    wh, ww = work_size(*x.shape[-2:], stroke_scale)

    def work() -> tuple[torch.Tensor, float]:
        t0 = time.perf_counter()
        out = runner.stylize(x, w, stroke_scale=stroke_scale)
        if preserve_color:  # same order as stylekit.feedforward.stylize_fast: colours, then strength
            out = _keep_colors(out, x)
        if strength < 1.0:
            out = (strength * out + (1.0 - strength) * x).clamp(0, 1)
        return out, time.perf_counter() - t0

    out, secs = GATE.run("fast", wh * ww, work, max_wait)
    label = style if not style2 or blend == 0 else f"{1 - blend:.0%} {style} + {blend:.0%} {style2}"
    main = style2 if style2 and blend > 0.5 else style
    notes = [f"style: {label}" + (", its own network" if own is not None else ""), f"{runner.backend} {runner.variant}"]
    if (wh, ww) != tuple(x.shape[-2:]):
        notes.append(f"stroke scale {stroke_scale:g} (network at {ww}x{wh})")
    return Result(out, secs, notes, shipped_style_input(main))


_ADAIN_STATS = LRU(64)
#: the AdaIN decoder's reconstruction of a content image at a size, for ``detail`` on onnxruntime, where
#: it is a second pass of the stylizer graph (0.65 s at 512 px here); it does not depend on the style,
#: so trying several styles on one photo pays for it once. Up to 12 MB each at 1024 px. (The PyTorch
#: runners decode it in one batch with the stylized features: +0.08 s, not worth a cache.)
_ADAIN_RECON = LRU(8)


def adain_stats(style: Input) -> Any:
    runner = _runner("adain")
    return _ADAIN_STATS.get_or_make(_stats_key(runner, style), lambda: runner.style_stats(style.tensor))


def _stats_key(runner: Any, style: Input) -> tuple:
    return id(runner), style.key


def run_adain(content: Input, style: Input, style2: Input | None = None, mix: float = 0.0, alpha: float = 1.0,
              preserve_color: bool = False, size: int | None = 512, max_wait: float | None = None,
              detail: float | None = None) -> Result:
    """AdaIN with cached style statistics; ``mix`` = weight of ``style2`` (interpolating statistics).
    ``detail``: share of the photo's fine detail given back (default :data:`stylekit.adain.DEFAULT_DETAIL`).
    ``max_wait``: see :class:`WorkGate` (None: wait in line whatever the load)."""
    from stylekit.adain import DEFAULT_DETAIL, StyleStats, check_alpha, check_detail

    runner = _runner("adain")
    alpha = check_alpha(alpha)
    detail = check_detail(DEFAULT_DETAIL if detail is None else detail)
    mix = check_fraction(mix, "interpolation")
    x = _fit(content.tensor, size)
    styles = [style] + ([style2] if style2 is not None and mix > 0 else [])
    uncached = [st for st in styles if _stats_key(runner, st) not in _ADAIN_STATS]
    recon_key = (id(runner), content.key, tuple(x.shape))
    cache_recon = bool(detail) and runner.backend == "onnx"
    new_recon = cache_recon and recon_key not in _ADAIN_RECON

    def work() -> tuple[torch.Tensor, float]:
        t0 = time.perf_counter()
        stats = [adain_stats(st) for st in styles]
        stats = StyleStats.mix(stats, [1.0 - mix, mix]) if len(stats) == 2 else stats[0]
        recon = _ADAIN_RECON.get_or_make(recon_key, lambda: runner.reconstruction(x)) if cache_recon else None
        out = runner.stylize(x, stats, alpha, detail, reconstruction=recon)
        if preserve_color:
            out = _keep_colors(out, x)
        return out, time.perf_counter() - t0

    # the gate's estimate: the content's pixels (twice when its reconstruction for ``detail`` is made
    # by a second onnxruntime pass), plus those of each style whose statistics are not cached yet
    pixels = x.shape[-2] * x.shape[-1] * (2 if new_recon else 1) + \
        sum(st.tensor.shape[-2] * st.tensor.shape[-1] for st in uncached)
    out, secs = GATE.run("adain", int(pixels), work, max_wait)
    notes = [f"alpha {alpha:g}"] + ([f"detail {detail:g}"] if detail else []) + \
        ([f"style mix {mix:.0%}"] if len(styles) == 2 else []) + \
        (["cached reconstruction"] if cache_recon and not new_recon else [])
    notes.append(f"{runner.backend} {runner.variant}" + ("" if uncached else ", cached style statistics"))
    return Result(out, secs, notes)


@dataclass
class GatysUpdate:
    step: int
    total: int
    preview: torch.Tensor | None
    done: bool = False
    result: Result | None = None
    stopped: bool = False


def gatys_config(preset: str = "default", steps: int | None = None, style_weight_scale: float = 1.0,
                 preserve_color: bool = False, preview_every: int = 5):
    from stylekit.gatys import PRESETS, get_preset

    if preset not in PRESETS:
        raise ParameterError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if style_weight_scale is None or not np.isfinite(style_weight_scale) or not 0 < style_weight_scale <= 1000:
        raise ParameterError(f"style weight must be a positive number, got {style_weight_scale!r}")
    base = PRESETS[preset]
    return get_preset(preset, steps=int(steps) if steps else None,
                      style_weight=base.style_weight * float(style_weight_scale),
                      preserve_color="luminance" if preserve_color else None, preview_every=preview_every)


#: OS priority ("nice" increment) of the threads that run Gatys jobs: on a 2-core Space the one-pass
#: modes then get most of the CPU while an optimization runs, and an idle machine gives Gatys all of it.
HEAVY_NICE = int(os.environ.get("STYLEKIT_DEMO_HEAVY_NICE", "10"))
_END = object()


def in_background(make_iter: Callable[[], Iterator[Any]], cancel: threading.Event | None = None,
                  nice: int = HEAVY_NICE) -> Iterator[Any]:
    """Run the iterator ``make_iter()`` in a thread of its own at a lower OS priority and yield its items here.

    The thread lowers only its own priority (Linux threads have their own nice value; the worker threads
    PyTorch starts from it inherit it), so the request threads and onnxruntime's pools stay at normal
    priority. An exception in the thread is raised here; if the consumer stops early (client gone),
    ``cancel`` is set so the job ends within a step.
    """
    q: queue.Queue = queue.Queue()

    def work() -> None:
        if nice > 0 and hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            except OSError:
                pass
        try:
            for item in make_iter():
                q.put((True, item))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put((False, e))
            return
        q.put((True, _END))

    threading.Thread(target=work, daemon=True, name="stylekit-heavy").start()
    finished = False
    try:
        while True:
            ok, item = q.get()
            if not ok:
                finished = True
                raise item
            if item is _END:
                finished = True
                return
            yield item
    finally:
        if not finished and cancel is not None:
            cancel.set()


def iter_gatys(content: Input, style: Input, size: int, config: Any,
               cancel: threading.Event | None = None) -> Iterator[GatysUpdate]:
    """Gatys run as updates (a preview every ``config.preview_every`` steps); stops within one step
    when ``cancel`` is set (the last update then has ``stopped=True`` and the latest image).

    The optimization runs in a low-priority thread (:func:`in_background`)."""
    from stylekit.images import check_size

    size = check_size(size, lo=GATYS_SIZES[0], hi=GATYS_SIZES[1])
    return in_background(lambda: _iter_gatys_here(content, style, size, config, cancel), cancel)


def _iter_gatys_here(content: Input, style: Input, size: int, config: Any,
                     cancel: threading.Event | None) -> Iterator[GatysUpdate]:
    from stylekit.errors import Cancelled
    from stylekit.gatys import iter_gatys as _iter
    from stylekit.precision import use_bf16

    t0 = time.perf_counter()
    last, step, total = None, 0, 0
    try:
        for ev in _iter(content.tensor, [style.tensor], config, size, cancel=cancel):
            step, total = ev.step, ev.total_steps
            if ev.done:
                secs = time.perf_counter() - t0
                notes = [f"{config.optimizer} {ev.step} steps", f"{max(ev.image.shape[-2:])} px"]
                if ev.step < ev.total_steps:
                    notes.append("early stop")
                if use_bf16(config.bf16, ev.image.device):
                    notes.append("bf16")
                yield GatysUpdate(step, total, ev.image, True, Result(ev.image, secs, notes))
                return
            if ev.preview is not None:
                last = ev.preview
                yield GatysUpdate(step, total, ev.preview)
    except Cancelled:
        secs = time.perf_counter() - t0
        img = last if last is not None else content.tensor
        yield GatysUpdate(step, total, img, True, Result(img, secs, [f"stopped after {step} of {total} steps"]),
                          stopped=True)


# ---- per-session cancellation ----------------------------------------------------------------------------------
class Cancellers:
    """Running jobs' cancel events per session, so a Stop button ends that session's jobs only."""

    def __init__(self) -> None:
        self._d: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()

    def new(self, session: str) -> threading.Event:
        ev = threading.Event()
        with self._lock:
            self._d.setdefault(session, set()).add(ev)
        return ev

    def done(self, session: str, ev: threading.Event) -> None:
        with self._lock:
            s = self._d.get(session)
            if s is not None:
                s.discard(ev)
                if not s:
                    del self._d[session]

    def cancel(self, session: str) -> int:
        with self._lock:
            evs = list(self._d.get(session, ()))
        for ev in evs:
            ev.set()
        return len(evs)


CANCELLERS = Cancellers()


def before_after(content: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(content at the result's size, result) for a before/after slider."""
    return resize(content, *out.shape[-2:]), out


__all__ = ["Input", "prepare", "pixel_hash", "style_catalogue", "run_fast", "run_adain", "iter_gatys",
           "gatys_config", "METRICS", "measure", "GATE", "Busy", "CANCELLERS", "ModelUnavailable", "use_runner"]
