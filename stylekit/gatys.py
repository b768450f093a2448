"""Gatys et al.'s optimization-based style transfer, with a coarse-to-fine schedule.

The image itself is optimized (L-BFGS or Adam) so that its VGG-19 features match the content image
(``content_layers``) and its Gram matrices match the style image(s) (``style_layers``), plus an
optional total-variation term. Loss formulas are those of :mod:`stylekit.losses` (Gatys 2016):

    L = content_weight * sum_l a_l * 1/2 sum (F_l - P_l)^2  +  style_weight * sum_l w_l * E_l  +  tv_weight * TV

What stylekit adds over the classic loop:

- **multi-scale** (``multiscale=True``): optimize at ~``min_size`` px first, then at sizes growing by
  ``scale_factor`` (√2) up to the target, each scale initialized from the upsampled previous result.
  The content and TV sums are multiplied by (target pixels / current pixels) so every scale optimizes
  the same balance as the target size (E_l is already size-independent).
- **early stop** per scale: when the loss has not improved by a relative ``tol`` for ``patience`` steps.
- several styles with blend weights (their Gram targets are mixed), style scale (stroke size),
  per-layer weights, presets of the classic implementations and a tuned ``default``.
- **bf16** (``bf16="auto"``): the encoder's forward and backward passes run in bfloat16 autocast on CPUs
  with native bf16 (AVX512-BF16/AMX; :mod:`stylekit.precision`), ~1.6x faster there; the features are cast
  back to float32 before the Gram matrices and losses, and the image and optimizer stay float32.

Step counting: ``steps`` is the number of optimizer iterations at the target (last) scale;
``coarse_steps`` the number at each coarser scale (multi-scale only). One L-BFGS iteration = one
forward/backward pass (``torch.optim.LBFGS`` with ``max_iter=1`` per call, history kept).

:func:`iter_gatys` is a generator of :class:`GatysProgress` events (for progress bars and previews);
:func:`stylize_gatys` runs it to the end and returns the image.
"""
from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import torch

from .encoder import LAYER_INDEX, LAYER_NAMES, VGG19Encoder, check_layer_weights, load_encoder
from .errors import Cancelled, ParameterError
from .images import check_size, fit_size, resize
from .losses import content_loss, gram_matrix, style_layer_loss, tv_loss
from .precision import BF16_CHOICES, autocast_context, use_bf16

OPTIMIZERS = ("lbfgs", "adam")
_LBFGS_CLAMP = False
#: Adam learning rate of the fallback when L-BFGS diverges within a scale
ADAM_FALLBACK_LR = 0.02
INITS = ("content", "noise", "style", "blend")
PRESERVE_COLOR = (None, "luminance", "histogram")

GATYS_STYLE_LAYERS = {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2}


@dataclass
class GatysConfig:
    """All settings of one Gatys run. Weights apply to the formulas in the module docstring."""

    optimizer: str = "lbfgs"
    #: L-BFGS: step length multiplier (1.0 is standard). Adam: learning rate in [0, 1] pixel units.
    lr: float = 1.0
    #: optimizer iterations at the target scale (see module docstring).
    steps: int = 500
    #: optimizer iterations at each coarser scale (multi-scale only).
    coarse_steps: int = 100
    init: str = "noise"
    #: "blend" init: x = (1 - noise_ratio) * content + noise_ratio * noise.
    noise_ratio: float = 0.6
    content_layers: dict = field(default_factory=lambda: {"relu4_2": 1.0})
    style_layers: dict = field(default_factory=lambda: dict(GATYS_STYLE_LAYERS))
    content_weight: float = 1.0
    style_weight: float = 1e3
    tv_weight: float = 0.0
    #: style image long side = style_scale * output long side (bigger -> larger strokes).
    style_scale: float = 1.0
    multiscale: bool = False
    min_size: int = 128
    scale_factor: float = math.sqrt(2.0)
    #: early stop: relative loss improvement below ``tol`` for ``patience`` steps ends a scale (0 = off).
    tol: float = 0.0
    patience: int = 20
    #: yield a preview image every k steps (0 = never).
    preview_every: int = 0
    preserve_color: str | None = None
    pooling: str = "max"
    #: bfloat16 autocast for the encoder: "auto" (on for CPUs with AVX512-BF16/AMX), "on" or "off".
    bf16: str = "auto"

    def validate(self) -> "GatysConfig":
        def num(name: str, lo: float = 0.0, strict: bool = False, hi: float | None = None) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ParameterError(f"{name} must be a finite number, got {v!r}")
            if v < lo or (strict and v == lo) or (hi is not None and v > hi):
                rng = f"{'>' if strict else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
                raise ParameterError(f"{name} must be {rng}, got {v!r}")

        def integer(name: str, lo: int, hi: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ParameterError(f"{name} must be a whole number between {lo} and {hi}, got {v!r}")

        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.init not in INITS:
            raise ParameterError(f"init must be one of {INITS}, got {self.init!r}")
        if self.preserve_color not in PRESERVE_COLOR:
            raise ParameterError(f"preserve_color must be None, 'luminance' or 'histogram', got {self.preserve_color!r}")
        if self.pooling not in ("max", "avg"):
            raise ParameterError(f"pooling must be 'max' or 'avg', got {self.pooling!r}")
        if self.bf16 not in BF16_CHOICES:
            raise ParameterError(f"bf16 must be one of {BF16_CHOICES}, got {self.bf16!r}")
        num("lr", strict=True, hi=1e3)
        integer("steps", 1, 100_000)
        integer("coarse_steps", 0, 100_000)
        num("noise_ratio", hi=1.0)
        num("content_weight")
        num("style_weight")
        num("tv_weight")
        num("style_scale", lo=0.05, hi=8.0)
        integer("min_size", 16, 4096)
        num("scale_factor", lo=1.05, hi=4.0)
        num("tol", hi=1.0)
        integer("patience", 1, 100_000)
        integer("preview_every", 0, 100_000)
        for name in ("content_layers", "style_layers"):
            layers = getattr(self, name)
            if not isinstance(layers, Mapping):
                raise ParameterError(f"{name} must map layer names to weights, got {layers!r}")
            check_layer_weights(layers, name, need_positive=name == "style_layers")
        if self.content_weight > 0 and not self.content_layers:
            raise ParameterError("content_layers is empty but content_weight > 0")
        return self


PRESETS: dict[str, GatysConfig] = {
    # Gatys, Ecker & Bethge (CVPR 2016): content relu4_2, style relu1_1..relu5_1 equally weighted,
    # alpha/beta = 1e-3, white-noise init, L-BFGS, full resolution from the first step.
    "gatys2016": GatysConfig(optimizer="lbfgs", lr=1.0, steps=500, init="noise",
                             content_weight=1.0, style_weight=1e3),
    # The Keras example (neural_style_transfer.py): content block5_conv2 (weight 0.025), style
    # block1..5_conv1 (Keras convs include the ReLU) with style weight 5.0, TV loss, L-BFGS from the content.
    "keras": GatysConfig(optimizer="lbfgs", lr=1.0, steps=200, init="content",
                         content_layers={"relu5_2": 1.0}, content_weight=0.025, style_weight=5.0,
                         tv_weight=1.0),
    # The classic TensorFlow implementation: content conv4_2 and conv5_2 (0.5 each), style relu1_1..relu5_1
    # (0.2 each), alpha = 1, beta = 500, init = content mixed with 50 % noise, Adam.
    "tf-classic": GatysConfig(optimizer="adam", lr=0.02, steps=500, init="blend", noise_ratio=0.5,
                              content_layers={"conv4_2": 0.5, "conv5_2": 0.5},
                              content_weight=1.0, style_weight=500.0),
    # Dive into Deep Learning (ch. 14.12): init from the content, style conv1_1, conv2_1, conv3_1, conv4_1,
    # conv5_1, content conv4_4, TV loss, Adam.
    "d2l": GatysConfig(optimizer="adam", lr=0.03, steps=500, init="content",
                       content_layers={"conv4_4": 1.0},
                       style_layers={"conv1_1": 0.2, "conv2_1": 0.2, "conv3_1": 0.2, "conv4_1": 0.2, "conv5_1": 0.2},
                       content_weight=1.0, style_weight=1e3, tv_weight=10.0),
    # stylekit's default, tuned for quality per second on 2 CPU cores (see docs/gatys.md and
    # `stylekit bench gatys`): Gatys 2016 weights, coarse-to-fine from 128 px, L-BFGS, early stop.
    "default": GatysConfig(optimizer="lbfgs", lr=1.0, steps=40, coarse_steps=70, init="content",
                           content_weight=1.0, style_weight=5e2, multiscale=True, min_size=128,
                           tol=1e-3, patience=10),
}


def get_preset(name: str = "default", **overrides: object) -> GatysConfig:
    """A copy of preset ``name`` with ``overrides`` applied (None values are ignored), validated."""
    if name not in PRESETS:
        raise ParameterError(f"unknown Gatys preset {name!r}; choose one of {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(GatysConfig)}
    bad = [k for k in overrides if k not in fields]
    if bad:
        raise ParameterError(f"unknown Gatys setting(s) {bad}; valid: {', '.join(sorted(fields))}")
    cfg = dataclasses.replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
    cfg.content_layers = dict(cfg.content_layers)
    cfg.style_layers = dict(cfg.style_layers)
    return cfg.validate()


@dataclass
class GatysProgress:
    """One event of :func:`iter_gatys`."""

    step: int                      # optimizer iterations done so far (all scales)
    total_steps: int               # planned iterations (early stop may end sooner)
    scale: int                     # index of the current scale (0-based)
    num_scales: int
    size: tuple[int, int]          # (H, W) of the current scale
    losses: dict[str, float]       # "content", "style", "tv", "total" (weighted terms)
    preview: torch.Tensor | None = None   # (1, 3, h, w) [0, 1] every preview_every steps
    done: bool = False
    image: torch.Tensor | None = None     # the result, on the final event


def scale_sizes(h: int, w: int, size: int, config: GatysConfig) -> list[tuple[int, int]]:
    """(H, W) of each scale, coarse to fine; the last is the content's aspect at long side ``size``."""
    longs = [size]
    if config.multiscale:
        s = size / config.scale_factor
        while s >= config.min_size * 0.999:
            longs.append(int(round(s)))
            s /= config.scale_factor
    return [fit_size(h, w, l) for l in reversed(longs)]


def _check_image(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"{name} must be one RGB image tensor (1, 3, H, W), got {shape}")
    if not torch.isfinite(x).all():
        raise ParameterError(f"{name} contains NaN or infinite values")
    return x.detach().float().clamp(0, 1)


def _style_weights(style_weights: Sequence[float] | None, n: int) -> list[float]:
    if style_weights is None:
        return [1.0 / n] * n
    ws = [float(w) for w in style_weights]
    if len(ws) != n:
        raise ParameterError(f"got {len(ws)} style weights for {n} style images")
    if any(not math.isfinite(w) or w < 0 for w in ws) or sum(ws) <= 0:
        raise ParameterError(f"style weights must be finite, >= 0 and not all 0, got {ws}")
    s = sum(ws)
    return [w / s for w in ws]


def _cancel_check(cancel: threading.Event | Callable[[], bool] | None) -> Callable[[], None]:
    if cancel is None:
        return lambda: None
    is_set = cancel.is_set if hasattr(cancel, "is_set") else cancel
    if not callable(is_set):
        raise ParameterError("cancel must be a threading.Event or a zero-argument callable")

    def check() -> None:
        if is_set():
            raise Cancelled("style transfer cancelled")

    return check


class _Objective:
    """Loss of one scale: fixed content features and mixed Gram targets."""

    def __init__(self, enc: VGG19Encoder, content: torch.Tensor, styles: list[torch.Tensor],
                 weights: list[float], cfg: GatysConfig, hw: tuple[int, int], target_pixels: int,
                 bf16: bool = False) -> None:
        self.enc, self.cfg, self.bf16 = enc, cfg, bf16
        self.c_layers = {k: v for k, v in cfg.content_layers.items() if v > 0} if cfg.content_weight > 0 else {}
        self.s_layers = {k: v for k, v in cfg.style_layers.items() if v > 0}
        self.layers = list(dict.fromkeys([*self.c_layers, *self.s_layers]))
        self.size_ratio = target_pixels / (hw[0] * hw[1])
        with torch.no_grad():
            c = resize(content, *hw)
            self.content_img = c
            fc = enc(c, list(self.c_layers)) if self.c_layers else {}
            self.content_targets = {k: fc[k] for k in self.c_layers}
            # feature positions of the output at each style layer (for rescaling the style Grams)
            probe = enc(c, list(self.s_layers))
            positions = {k: v.shape[-2] * v.shape[-1] for k, v in probe.items()}
            self.gram_targets: dict[str, torch.Tensor] = {}
            long_side = max(hw)
            for s, w in zip(styles, weights):
                if w == 0:
                    continue
                sl = max(16, int(round(long_side * cfg.style_scale)))
                sh, sw = fit_size(*s.shape[-2:], sl)
                fs = enc(resize(s, sh, sw), list(self.s_layers))
                for k in self.s_layers:
                    f = fs[k]
                    g = gram_matrix(f) * (positions[k] / (f.shape[-2] * f.shape[-1])) * w
                    self.gram_targets[k] = self.gram_targets[k] + g if k in self.gram_targets else g

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        with autocast_context(x.device, self.bf16):
            feats = self.enc(x, self.layers)
        feats = {k: v.float() for k, v in feats.items()}
        terms: dict[str, torch.Tensor] = {}
        zero = x.new_zeros(())
        c = zero
        for k, a in self.c_layers.items():
            c = c + a * content_loss(feats[k], self.content_targets[k])
        terms["content"] = cfg.content_weight * self.size_ratio * c
        s = zero
        for k, wl in self.s_layers.items():
            s = s + wl * style_layer_loss(feats[k], self.gram_targets[k])
        terms["style"] = cfg.style_weight * s
        terms["tv"] = cfg.tv_weight * self.size_ratio * tv_loss(x) if cfg.tv_weight > 0 else zero
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms["total"], terms


def _initial_image(init: str, content: torch.Tensor, style: torch.Tensor, hw: tuple[int, int],
                   noise_ratio: float, gen: torch.Generator) -> torch.Tensor:
    c = resize(content, *hw)
    if init == "content":
        return c.clone()
    if init == "style":
        return resize(style, *hw).clone()
    noise = torch.rand(c.shape, generator=gen)
    if init == "noise":
        return noise
    return ((1 - noise_ratio) * c + noise_ratio * noise).clamp(0, 1)


def iter_gatys(content: torch.Tensor, styles: Sequence[torch.Tensor] | torch.Tensor, config: GatysConfig | None = None,
               size: int = 512, style_weights: Sequence[float] | None = None, seed: int = 0,
               cancel: threading.Event | Callable[[], bool] | None = None,
               encoder: VGG19Encoder | None = None) -> Iterator[GatysProgress]:
    """Run Gatys style transfer, yielding a :class:`GatysProgress` after every optimizer step.

    ``content``: (1, 3, H, W) [0, 1]; ``styles``: one or more such images, mixed by ``style_weights``
    (normalized to sum 1; default equal). The output has the content's aspect ratio and long side ``size``.
    ``cancel``: a ``threading.Event`` or zero-argument callable, checked at every forward pass; when set,
    :class:`~stylekit.errors.Cancelled` is raised within one step. Deterministic for a given ``seed``.
    The last event has ``done=True`` and ``image`` set.
    """
    cfg = (config or get_preset("default"))
    cfg = dataclasses.replace(cfg, content_layers=dict(cfg.content_layers),
                              style_layers=dict(cfg.style_layers)).validate()
    size = check_size(size)
    content = _check_image(content, "content")
    if isinstance(styles, torch.Tensor):
        styles = [styles]
    styles = [_check_image(s, f"style image {i + 1}") for i, s in enumerate(styles)]
    if not styles:
        raise ParameterError("at least one style image is needed")
    weights = _style_weights(style_weights, len(styles))
    check = _cancel_check(cancel)
    check()
    if cfg.preserve_color == "histogram":
        from .color import match_color

        styles = [match_color(s, content, "histogram") for s in styles]
    enc = encoder or load_encoder(pooling=cfg.pooling)
    bf16 = use_bf16(cfg.bf16, content.device)
    check()  # loading the encoder may take seconds: honour a Stop pressed meanwhile
    gen = torch.Generator().manual_seed(int(seed))
    h0, w0 = content.shape[-2:]
    sizes = scale_sizes(h0, w0, size, cfg)
    # VGG halves the resolution before each block: the deepest layer needs a big enough input
    deepest = max([*cfg.content_layers, *cfg.style_layers], key=lambda l: LAYER_INDEX[l])
    need = 2 ** sum(1 for n in LAYER_NAMES[:LAYER_INDEX[deepest]] if n.startswith("pool"))
    if min(sizes[-1]) < need:
        raise ParameterError(f"the output would be {sizes[-1][1]}x{sizes[-1][0]} px; layer {deepest} needs at least "
                             f"{need} px on the short side; use a larger size")
    sizes = [hw for hw in sizes if min(hw) >= need]
    plan = [cfg.coarse_steps] * (len(sizes) - 1) + [cfg.steps]
    total = sum(plan)
    target_pixels = sizes[-1][0] * sizes[-1][1]
    main_style = styles[max(range(len(styles)), key=lambda i: weights[i])]

    step = 0
    x: torch.Tensor | None = None
    for si, (hw, n_steps) in enumerate(zip(sizes, plan)):
        if n_steps == 0:
            continue
        with torch.no_grad():
            if x is None:
                x = _initial_image(cfg.init, content, main_style, hw, cfg.noise_ratio, gen)
            else:
                x = resize(x, *hw).contiguous()
        obj = _Objective(enc, content, styles, weights, cfg, hw, target_pixels, bf16)
        check()  # the style/content targets take a while at large sizes
        x = x.clone(memory_format=torch.contiguous_format).requires_grad_(True)
        if cfg.optimizer == "lbfgs":
            opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=cfg.lr, max_iter=1, history_size=50,
                                                            tolerance_grad=0.0, tolerance_change=0.0)
        else:
            opt = torch.optim.Adam([x], lr=cfg.lr)
        last_terms: dict[str, float] = {}
        # Adam: keep the image in [0, 1] (projected gradient). L-BFGS: clamping between its steps breaks its
        # curvature pairs (the loss oscillates), so it runs unconstrained and the image is clamped after the scale.
        clamp_in_closure = cfg.optimizer != "lbfgs" or _LBFGS_CLAMP
        best_loss, best_x, since_best = math.inf, x.detach().clone(), 0

        def closure() -> torch.Tensor:
            check()
            opt.zero_grad(set_to_none=True)
            if clamp_in_closure:
                with torch.no_grad():
                    x.clamp_(0, 1)
            loss, terms = obj(x)
            loss.backward()
            last_terms.clear()
            last_terms.update({k: float(v.detach()) for k, v in terms.items()})
            return loss

        for _ in range(n_steps):
            check()
            prev_x = x.detach().clone()
            if isinstance(opt, torch.optim.LBFGS):
                opt.step(closure)
            else:
                closure()
                opt.step()
            step += 1
            loss = last_terms.get("total", math.nan)
            if not math.isfinite(loss):   # diverged: go back to the best image of this scale
                with torch.no_grad():
                    x.copy_(best_x)
                if isinstance(opt, torch.optim.LBFGS):
                    # plain L-BFGS steps can overshoot when the style loss dwarfs the content loss (its
                    # curvature estimate comes from a tiny first step): finish this scale with clamped Adam
                    opt = torch.optim.Adam([x], lr=ADAM_FALLBACK_LR)
                    clamp_in_closure = True
                    continue
                break
            # last_terms is the loss *before* this step's update, i.e. of the previous x
            if loss < best_loss * (1 - cfg.tol):
                since_best = 0
            else:
                since_best += 1
            if loss < best_loss:
                best_loss, best_x = loss, prev_x
            preview = None
            if cfg.preview_every and step % cfg.preview_every == 0:
                preview = x.detach().clamp(0, 1).clone()
            yield GatysProgress(step, total, si, len(sizes), hw, dict(last_terms), preview)
            if cfg.tol > 0 and since_best >= cfg.patience:
                break
        x = x.detach().clamp_(0, 1)

    assert x is not None
    out = x
    if cfg.preserve_color == "luminance":
        from .color import luminance_transfer

        out = luminance_transfer(out, content)
    yield GatysProgress(step, total, len(sizes) - 1, len(sizes), tuple(out.shape[-2:]), dict(last_terms),
                        out, done=True, image=out)


def stylize_gatys(content: torch.Tensor, styles: Sequence[torch.Tensor] | torch.Tensor,
                  config: GatysConfig | str | None = None, size: int = 512,
                  style_weights: Sequence[float] | None = None, seed: int = 0,
                  cancel: threading.Event | Callable[[], bool] | None = None,
                  callback: Callable[[GatysProgress], None] | None = None,
                  encoder: VGG19Encoder | None = None) -> torch.Tensor:
    """Run :func:`iter_gatys` to the end and return the stylized image (1, 3, H, W) in [0, 1].

    ``config`` may be a preset name. ``callback`` receives every progress event.
    """
    if config is None or isinstance(config, str):
        config = get_preset(config or "default")
    image = None
    for ev in iter_gatys(content, styles, config, size, style_weights, seed, cancel, encoder):
        if callback is not None:
            callback(ev)
        if ev.done:
            image = ev.image
    assert image is not None
    return image
