"""Feed-forward style transfer (Johnson, Alahi & Fei-Fei 2016) with conditional instance norm
(Dumoulin, Shlens & Kudlur 2017): one forward pass per image, one network for N styles.

:class:`TransformerNet`: 9×9 conv in, two stride-2 3×3 convs, residual blocks, two nearest-upsample +
3×3 conv stages (no transposed convs, so no checkerboard), 9×9 conv out; reflection padding
everywhere (by default the output is ``input + network(input)``, started near the identity). Every
normalization holds one (gamma, beta) pair per style: a :class:`ConditionalInstanceNorm` everywhere
(``norm="instance"``), or only in the three downsampling layers with a :class:`ConditionalAffine` (no
per-image statistics) in the residual and upsampling layers (``norm="down-only"``, which leaves the
network no statistics to steer with a "droplet", see :func:`norm_input_peaks`). ``net(x, style_weights)`` blends those pairs with a weight vector over the styles — shape
(S,) for the whole batch or (B, S) per image, normalized to sum to 1 — so style interpolation is a
single forward pass. A single-style net is ``num_styles=1`` (same code path, weights default to [1]).

Any input size works: the input is reflection-padded to a multiple of 4 inside and the output is
cropped back, so it has exactly the input's size. The raw output is not clamped (training sees the
unclamped values); :func:`stylize_fast` clamps to [0, 1].

The network's strokes have a fixed size in pixels, so their size relative to the picture is set by the
size the network runs at: ``stroke_scale`` (:func:`at_stroke_scale`) runs it on the image resized by
1/stroke_scale and resizes the result back (< 1: finer strokes, rendered at a larger size and shrunk with
antialiasing; > 1: bigger strokes), like Gatys' ``style_scale`` and AdaIN's style size.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ParameterError, check_fraction, check_range
from .images import resize

ARCH = "stylekit-transformer-cin/1"


#: the accepted range of ``stroke_scale`` and the largest side the network is run at because of it
STROKE_SCALE_RANGE = (0.25, 4.0)
MAX_WORK_SIDE = 4096

#: epsilon of the instance norms' variance (and of :func:`to_down_only`'s calibration, which replaces them)
EPS = 1e-5


class ConditionalAffine(nn.Module):
    """Per-style scale and shift without statistics (``x * gamma + beta``): ``num_styles`` learned
    (gamma, beta) pairs, blended per image by the (B, S) style weights.

    The layers after the downsampling stages of a ``norm="down-only"`` net use it: no per-image
    statistics there, so no position can steer them (the instance-norm "droplet", see
    :func:`norm_input_peaks`). :func:`to_down_only` converts an instance-norm net into one.
    """

    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = blended_pair(self, w, x.dtype)
        return x * gamma + beta


def blended_pair(norm: nn.Module, w: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The (gamma, beta) of each image, (B, C, 1, 1) each: ``norm``'s per-style pairs mixed by ``w`` (B, S)."""
    return ((w @ norm.gamma).unsqueeze(-1).unsqueeze(-1).to(dtype),
            (w @ norm.beta).unsqueeze(-1).unsqueeze(-1).to(dtype))


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose affine (gamma, beta) is a weighted mix of ``num_styles`` learned pairs."""

    def __init__(self, channels: int, num_styles: int, eps: float = EPS) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        if dtype != torch.float32:  # statistics in float32 (bf16 autocast in training)
            x = x.float()
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
        gamma, beta = blended_pair(self, w, x.dtype)
        y = (x - mean) * torch.rsqrt(var + self.eps) * gamma + beta
        return y if dtype == torch.float32 else y.to(dtype)


#: ``norm`` choices of :class:`TransformerNet`: instance norm in every layer, or only in the three
#: downsampling layers (the photo's contrast is still normalized) with :class:`ConditionalAffine` after
NORMS = ("instance", "down-only")


class ConvLayer(nn.Module):
    """Pad + conv (+ CIN or conditional affine + ReLU); ``upsample`` = nearest ×2 before the conv.

    Reflection padding by default; ``pad="replicate"`` repeats the border instead (a map of 1 pixel on a
    side cannot be reflected: the context branch's). ``negative_slope`` > 0 makes the ReLU leaky (the
    slope of its negative side).
    """

    def __init__(self, cin: int, cout: int, k: int, num_styles: int, stride: int = 1, upsample: bool = False,
                 norm: str | None = "instance", relu: bool = True, negative_slope: float = 0.0,
                 pad: str = "reflect") -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.upsample = upsample
        self.pad = nn.ReplicationPad2d(k // 2) if pad == "replicate" else nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride)
        self.norm = (ConditionalInstanceNorm(cout, num_styles) if norm == "instance"
                     else ConditionalAffine(cout, num_styles) if norm == "affine" else None)
        self.relu = relu

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x, w)
        if not self.relu:
            return x
        return F.leaky_relu(x, self.negative_slope) if self.negative_slope else F.relu(x)


class ResidualBlock(nn.Module):
    def __init__(self, c: int, num_styles: int, norm: str = "instance", negative_slope: float = 0.0) -> None:
        super().__init__()
        self.c1 = ConvLayer(c, c, 3, num_styles, norm=norm, negative_slope=negative_slope)
        self.c2 = ConvLayer(c, c, 3, num_styles, norm=norm, relu=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x + self.c2(self.c1(x, w), w)


class ContextBranch(nn.Module):
    """A wide-context path beside the residual blocks (``TransformerNet(context=P)``): the 1/4-resolution
    features average-pooled by ``P``, three 3×3 conv layers there, bilinear upsampling back, added to
    the features. At ``P = 8`` its three convolutions see about 220 px of the input, where the residual
    blocks see about 95: room for broad colour fields (docs/training.md, session 35). The last layer's
    (gamma, beta) start at zero, so a new branch starts as the identity and a grown net stylizes exactly
    as the one it grew from."""

    def __init__(self, c: int, num_styles: int, pool: int, norm: str, negative_slope: float) -> None:
        super().__init__()
        self.pool = int(pool)
        self.c1 = ConvLayer(c, c, 3, num_styles, norm=norm, negative_slope=negative_slope, pad="replicate")
        self.c2 = ConvLayer(c, c, 3, num_styles, norm=norm, negative_slope=negative_slope, pad="replicate")
        self.c3 = ConvLayer(c, c, 3, num_styles, norm=norm, relu=False, pad="replicate")
        with torch.no_grad():
            self.c3.norm.gamma.zero_()
            self.c3.norm.beta.zero_()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        h, wd = x.shape[-2:]
        p = self.pool  # replicate padding here (any size, no branch on it: the ONNX trace holds for every size)
        g = F.avg_pool2d(F.pad(x, (0, (-wd) % p, 0, (-h) % p), mode="replicate"), p)
        g = self.c3(self.c2(self.c1(g, w), w), w)
        g = F.interpolate(g, scale_factor=float(p), mode="bilinear", align_corners=False)
        return x + g[..., :h, :wd]


#: pooling factors ``TransformerNet(context=...)`` accepts (0: no context branch)
CONTEXT_POOLS = (0, 2, 4, 8)


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network with conditional instance norm.

    ``width``: channels of the three resolutions (full, 1/2, 1/4); ``blocks``: residual blocks;
    ``norm``: ``"instance"`` (every layer) or ``"down-only"`` (instance norm in the downsampling layers,
    :class:`ConditionalAffine` in the residual and upsampling layers); ``negative_slope``: 0 for ReLU,
    in (0, 1) for leaky ReLUs (a pixel where every ReLU before the output layer is off gets no gradient
    through them, see :func:`dead_fraction`; a leaky ReLU keeps a small one); ``context``: 0, or the
    pooling factor of a :class:`ContextBranch` after the residual blocks.
    """

    def __init__(self, num_styles: int = 1, width: Sequence[int] = (32, 64, 128), blocks: int = 5,
                 residual: bool = True, norm: str = "instance", negative_slope: float = 0.0,
                 context: int = 0) -> None:
        super().__init__()
        if num_styles < 1:
            raise ParameterError(f"num_styles must be >= 1, got {num_styles}")
        if norm not in NORMS:
            raise ParameterError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        try:
            slope = float(negative_slope)
        except (TypeError, ValueError):
            raise ParameterError(f"negative_slope must be a number in [0, 1), got {negative_slope!r}") from None
        if not 0.0 <= slope < 1.0:  # also rejects NaN
            raise ParameterError(f"negative_slope must be in [0, 1), got {negative_slope!r}")
        if context not in CONTEXT_POOLS:
            raise ParameterError(f"context must be one of {', '.join(map(str, CONTEXT_POOLS))}, got {context!r}")
        self.norm = norm
        self.context = int(context)
        self.negative_slope = slope
        late = "instance" if norm == "instance" else "affine"
        w1, w2, w3 = (int(c) for c in width)
        self.num_styles = int(num_styles)
        self.width = (w1, w2, w3)
        self.blocks = int(blocks)
        self.residual = bool(residual)
        s = self.num_styles
        ns = slope  # every ReLU but the output layer's (which has none)
        self.down = nn.ModuleList([ConvLayer(3, w1, 9, s, negative_slope=ns),
                                   ConvLayer(w1, w2, 3, s, stride=2, negative_slope=ns),
                                   ConvLayer(w2, w3, 3, s, stride=2, negative_slope=ns)])
        self.res = nn.ModuleList([ResidualBlock(w3, s, late, ns) for _ in range(self.blocks)])
        if self.context:
            self.ctx = ContextBranch(w3, s, self.context, late, ns)
        self.up = nn.ModuleList([ConvLayer(w3, w2, 3, s, upsample=True, norm=late, negative_slope=ns),
                                 ConvLayer(w2, w1, 3, s, upsample=True, norm=late, negative_slope=ns),
                                 ConvLayer(w1, 3, 9, s, norm=None, relu=False)])
        if self.residual:
            # output = input + correction, starting near the identity: a short (CPU) training run spends
            # its steps on the style instead of first learning to reproduce the photo
            with torch.no_grad():
                self.up[-1].conv.weight.mul_(0.1)
                self.up[-1].conv.bias.zero_()

    @property
    def config(self) -> dict[str, Any]:
        """Architecture description (stored in weight files; :meth:`from_config` rebuilds the net)."""
        cfg = {"arch": ARCH, "num_styles": self.num_styles, "width": list(self.width), "blocks": self.blocks,
               "residual": self.residual}
        if self.norm != "instance":  # files of instance-norm ReLU nets stay as they were
            cfg["norm"] = self.norm
        if self.negative_slope:
            cfg["negative_slope"] = self.negative_slope
        if self.context:
            cfg["context"] = self.context
        return cfg

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "TransformerNet":
        if cfg.get("arch", ARCH) != ARCH:
            raise ParameterError(f"unknown feed-forward architecture {cfg.get('arch')!r} (expected {ARCH})")
        return cls(int(cfg["num_styles"]), tuple(cfg["width"]), int(cfg["blocks"]), bool(cfg.get("residual", False)),
                   str(cfg.get("norm", "instance")), cfg.get("negative_slope", 0.0), cfg.get("context", 0))

    def style_matrix(self, style_weights: torch.Tensor | Sequence[float] | None, batch: int,
                     device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(B, S) normalized style weights from None (uniform), (S,) or (B, S)."""
        if style_weights is None:
            w = torch.ones(1, self.num_styles, device=device, dtype=dtype)
        else:
            w = torch.as_tensor(style_weights, device=device, dtype=dtype)
            if w.dim() == 1:
                w = w.unsqueeze(0)
        if w.dim() != 2 or w.shape[1] != self.num_styles or w.shape[0] not in (1, batch):
            raise ParameterError(f"style weights must have shape ({self.num_styles},) or "
                                 f"({batch}, {self.num_styles}), got {tuple(w.shape)}")
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-8)
        return w.expand(batch, -1)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | Sequence[float] | None = None) -> torch.Tensor:
        low = self.down[0].conv.weight.dtype
        if low != torch.float32:  # a bf16 copy (precision.bf16_copy): float32 in and out, bf16 inside
            return self._forward(x.to(low), style_weights).float()
        return self._forward(x, style_weights)

    def _forward(self, x: torch.Tensor, style_weights: torch.Tensor | Sequence[float] | None) -> torch.Tensor:
        b, _, h, wd = x.shape
        w = self.style_matrix(style_weights, b, x.device, x.dtype)
        inp = x
        ph, pw = (-h) % 4, (-wd) % 4
        if ph or pw:
            mode = "reflect" if h > ph and wd > pw else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        for layer in self.down:
            x = layer(x, w)
        for blk in self.res:
            x = blk(x, w)
        if self.context:
            x = self.ctx(x, w)
        for layer in self.up:
            x = layer(x, w)
        x = x[..., :h, :wd]
        return inp + x if self.residual else x


def train_only_style_rows(model: TransformerNet, rows: Sequence[int]) -> int:
    """Freeze ``model`` except the per-style (gamma, beta) rows ``rows`` (Dumoulin et al.: a new style is
    learnt by its normalization parameters alone). The shared convolutions stop taking gradients and the
    other styles' rows get zero gradients, so with Adam (no weight decay) they stay bit-identical.
    Returns the number of trainable values."""
    keep = sorted(set(int(r) for r in rows))
    if not keep or keep[0] < 0 or keep[-1] >= model.num_styles:
        raise ParameterError(f"style rows must be in 0..{model.num_styles - 1}, got {list(rows)}")
    mask = torch.zeros(model.num_styles, 1)
    mask[keep] = 1.0
    n = 0
    for name, p in model.named_parameters():
        if name.endswith((".gamma", ".beta")):
            p.requires_grad_(True)
            p.register_hook(lambda g, m=mask: g * m.to(g))
            n += len(keep) * p.shape[1]
        else:
            p.requires_grad_(False)
    return n


def grow_blocks_state(model: TransformerNet, state: Mapping[str, torch.Tensor], have: int) -> dict[str, torch.Tensor]:
    """``state`` of a net with ``have`` residual blocks, completed for ``model``, which has more: the
    blocks it lacks come after the existing ones, with ``model``'s fresh convolutions and a zero
    (gamma, beta) in their second norm, so each starts as the identity and the grown net stylizes exactly
    as the smaller one (zero-initialised residual branches; the gamma gets gradients from the first step).
    More receptive field and capacity at 1/4 resolution for a fine-tune (docs/training.md, session 34)."""
    if not 0 <= have < model.blocks:
        raise ParameterError(f"can grow a net of 0..{model.blocks - 1} residual blocks into {model.blocks}, not {have}")
    out = dict(state)
    for k, v in model.state_dict().items():
        if not k.startswith("res.") or int(k.split(".")[1]) < have:
            continue
        out[k] = torch.zeros_like(v) if k.endswith((".c2.norm.gamma", ".c2.norm.beta")) else v.clone()
    return out


def grow_context_state(model: TransformerNet, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` of a net without a context branch, completed with ``model``'s fresh :class:`ContextBranch`
    (whose last (gamma, beta) are zero, so the grown net starts exactly as the one without)."""
    if not model.context:
        raise ParameterError("this network has no context branch to grow")
    out = dict(state)
    for k, v in model.state_dict().items():
        if k.startswith("ctx."):
            out[k] = v.clone()
    return out


def one_hot(index: int, num_styles: int) -> torch.Tensor:
    if not 0 <= index < num_styles:
        raise ParameterError(f"style index {index} out of range 0..{num_styles - 1}")
    w = torch.zeros(num_styles)
    w[index] = 1.0
    return w


def norm_input_peaks(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W): at each position, how many standard deviations the channels stand out, on average.

    ``x`` is an instance norm's input (B, C, H, W); each channel is standardized over the image, then
    |z| is averaged over the channels. Ordinary positions give about 1, edges 2-4. A trained transformer
    net can grow a "droplet": a small region where nearly every channel stands 10-20 standard deviations
    out and so steers the normalization statistics of the whole image; it shows as a rimmed blob.
    """
    x = x.float()
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
    return ((x - mean) / std).abs().mean(dim=1)


def output_feed_norm(model: TransformerNet) -> nn.Module:
    """The norm whose output, through one ReLU, feeds the output layer: hook it to see the activations
    the output is made of, before their ReLU (:func:`dead_fraction`, ``train-fast --alive-weight``)."""
    return model.up[-2].norm


def dead_pixels(pre: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool: where every activation feeding the output layer (``pre``, (B, C, H, W), before its
    ReLU) is off, so the output there is the input plus a constant (:func:`dead_fraction`)."""
    return (pre <= 0).all(dim=1)


@torch.no_grad()
def diagnose(model: TransformerNet, content: torch.Tensor,
             style_weights: torch.Tensor | Sequence[float] | None = None) -> dict[str, float]:
    """One forward pass, two diagnostics: ``{"droplet": droplet_score, "dead": dead_fraction}``."""
    scores: list[float] = []
    feed: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, inp, _o: scores.append(float(norm_input_peaks(inp[0]).max())))
             for m in model.modules() if isinstance(m, (ConditionalInstanceNorm, ConditionalAffine))]
    hooks.append(output_feed_norm(model).register_forward_hook(lambda _m, _i, out: feed.append(out)))
    try:
        dev, dtype = next(model.parameters()).device, next(model.parameters()).dtype
        model(content.to(dev, dtype), style_weights)
    finally:
        for h in hooks:
            h.remove()
    h, w = content.shape[-2:]
    return {"droplet": max(scores) if scores else 0.0,
            "dead": float(dead_pixels(feed[0][..., :h, :w]).float().mean())}


def droplet_score(model: TransformerNet, content: torch.Tensor,
                  style_weights: torch.Tensor | Sequence[float] | None = None) -> float:
    """The droplet diagnostic of one forward pass: the largest :func:`norm_input_peaks` over the net's
    instance norms and positions. About 3-5 without a droplet, 10 and more with one.

    It sees the concentrated droplet of ordinarily trained nets (the shipped gallery: 11-17). A net
    trained to keep this number down (session 14, docs/training.md) scored 5 but had spread its blob into
    a wider, milder region, so a low score alone does not prove a clean output: look at the images.
    """
    return diagnose(model, content, style_weights)["droplet"]


def dead_fraction(model: TransformerNet, content: torch.Tensor,
                  style_weights: torch.Tensor | Sequence[float] | None = None) -> float:
    """The fraction of output pixels where every activation feeding the output layer is off (<= 0).

    There the output layer sees only zeros (ReLU), the output is the photo plus a constant, and no
    gradient reaches the layers below from those pixels: the inside of the rimmed blob that the
    session-13 ReLU gallery shows on dark foliage (0.5-1.5 % of the bench photos). ``train-fast
    --alive-weight`` revives such pixels (the shipped gallery: under 0.1 %), though that alone did not
    remove the blob (docs/training.md, session 16).
    """
    return diagnose(model, content, style_weights)["dead"]


@torch.no_grad()
def to_down_only(model: TransformerNet, photos: torch.Tensor) -> TransformerNet:
    """A ``norm="down-only"`` copy of an instance-norm net, calibrated on ``photos`` (N, 3, H, W).

    Every residual/upsampling instance norm ``gamma * (x - mean_i) / std_i + beta`` (per image i) becomes
    the fixed affine ``gamma * (x - mean) / std + beta``, with ``mean`` and ``std`` the averages of the
    per-image statistics over the photos, per style. One forward pass per style does it: each layer is
    rewritten just before it runs, so it is calibrated on the outputs of the already converted layers.
    The copy stylizes typical photos much like the original and is the starting point of a fine-tune
    (``stylekit train-fast --norm down-only --init``).
    """
    if model.norm != "instance":
        raise ParameterError(f"to_down_only converts an instance-norm net, this one has norm={model.norm!r}")
    if photos.dim() != 4 or photos.shape[0] < 1 or photos.shape[1] != 3:
        raise ParameterError("calibration photos must be a non-empty (N, 3, H, W) batch")
    dev = next(model.parameters()).device
    out = TransformerNet(model.num_styles, model.width, model.blocks, model.residual, norm="down-only",
                         negative_slope=model.negative_slope, context=model.context)
    out.load_state_dict(model.state_dict())  # same names and shapes; the affines' gamma/beta are rewritten
    out = out.to(dev).float().eval()
    style = 0

    def calibrate(layer: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        x = inp[0].float()
        mean = x.mean(dim=(2, 3)).mean(0)
        std = (x.var(dim=(2, 3), unbiased=False) + EPS).sqrt().mean(0)
        g, b = layer.gamma[style].clone(), layer.beta[style].clone()
        layer.gamma[style] = g / std
        layer.beta[style] = b - g * mean / std

    hooks = [m.register_forward_pre_hook(calibrate) for m in out.modules() if isinstance(m, ConditionalAffine)]
    try:
        for style in range(model.num_styles):
            out(photos.to(dev, torch.float32), one_hot(style, model.num_styles).to(dev))
    finally:
        for h in hooks:
            h.remove()
    return out


def check_stroke_scale(stroke_scale: object) -> float:
    """``stroke_scale`` as a float in :data:`STROKE_SCALE_RANGE`, else a :class:`ParameterError`."""
    return check_range(stroke_scale, "stroke scale", *STROKE_SCALE_RANGE)


def work_size(h: int, w: int, stroke_scale: float) -> tuple[int, int]:
    """The (H, W) the network runs at for an image of (h, w) at ``stroke_scale`` (checked: 5 to
    :data:`MAX_WORK_SIDE` pixels a side)."""
    s = check_stroke_scale(stroke_scale)
    hh, ww = max(1, round(h / s)), max(1, round(w / s))
    if max(hh, ww) > MAX_WORK_SIDE:
        raise ParameterError(f"stroke scale {s:g} on a {w}x{h} image would run the network at {ww}x{hh}; the "
                             f"limit is {MAX_WORK_SIDE} px a side: use a larger stroke scale or a smaller image")
    if min(hh, ww) < 5:
        raise ParameterError(f"stroke scale {s:g} on a {w}x{h} image would run the network at {ww}x{hh}; it "
                             f"needs at least 5x5 px: use a smaller stroke scale or a larger image")
    return hh, ww


def at_stroke_scale(run: Callable[[torch.Tensor], torch.Tensor], content: torch.Tensor,
                    stroke_scale: float = 1.0) -> torch.Tensor:
    """``run(content)`` with the network's strokes scaled by ``stroke_scale`` relative to the picture:
    ``run`` gets ``content`` resized by 1/stroke_scale and its result is resized back to ``content``'s
    size (:func:`stylekit.images.resize`: bicubic, antialiased when shrinking, clamped to [0, 1]).
    1 = ``run(content)`` itself."""
    h, w = content.shape[-2:]
    hh, ww = work_size(h, w, stroke_scale)
    if (hh, ww) == (h, w):
        return run(content)
    return resize(run(resize(content, hh, ww)), h, w)


@torch.no_grad()
def stylize_fast(model: TransformerNet, content: torch.Tensor,
                 style_weights: torch.Tensor | Sequence[float] | int | None = None,
                 strength: float = 1.0, preserve_color: bool | str | None = None,
                 stroke_scale: float = 1.0) -> torch.Tensor:
    """Stylize ``content`` (N, 3, H, W) [0, 1] in one forward pass; returns the same size, clamped to [0, 1].

    ``style_weights``: a style index, a weight vector (S,) / (N, S) over the model's styles (blended), or
    None (uniform mix; the only style of a single-style net). ``strength`` in [0, 1] blends the
    result with the content (0 = content, 1 = full style). ``preserve_color`` (True or
    ``"luminance"``): keep the content's colours (luminance-only transfer, :mod:`stylekit.color`).
    ``stroke_scale``: strokes' size relative to the picture (:func:`at_stroke_scale`; 1 = as trained).
    """
    if not isinstance(content, torch.Tensor) or content.dim() != 4 or content.shape[1] != 3:
        raise ParameterError("content must be an RGB image tensor (N, 3, H, W)")
    if not torch.isfinite(content).all():
        raise ParameterError("content holds NaN or infinite values")
    strength = check_fraction(strength, "strength")
    if isinstance(style_weights, int) and not isinstance(style_weights, bool):
        style_weights = one_hot(style_weights, model.num_styles)
    if style_weights is not None:
        w = torch.as_tensor(style_weights, dtype=torch.float32)
        if not torch.isfinite(w).all() or (w < 0).any() or not (w.sum(dim=-1) > 0).all():
            raise ParameterError("style weights must be finite, non-negative and not all zero")
    dev = next(model.parameters()).device
    x = content.to(dev, torch.float32)
    was_training = model.training
    model.eval()
    try:  # a low-precision model casts its input itself
        y = at_stroke_scale(lambda t: model(t, style_weights).float().clamp(0, 1), x, stroke_scale)
    finally:
        model.train(was_training)
    if preserve_color:
        if preserve_color not in (True, "luminance"):
            raise ParameterError(f"preserve_color must be True/'luminance' or None, got {preserve_color!r}")
        from .color import luminance_transfer

        y = luminance_transfer(y, x)
    if strength < 1.0:
        y = strength * y + (1.0 - strength) * x
    return y.clamp(0, 1)
