"""AdaIN: arbitrary style transfer in one forward pass (Huang & Belongie, ICCV 2017).

Encode content and style with VGG-19 up to ``relu4_1``, give the content features the style's
channel means and standard deviations (adaptive instance normalization), decode back to an image:

    t   = AdaIN(f(c), f(s)) = sigma(s) * (f(c) - mu(c)) / sigma(c) + mu(s)
    out = g((1 - alpha) * f(c) + alpha * t)

Controls (all in :func:`transfer`): the content/style trade-off ``alpha``; several styles mixed
with interpolation ``weights`` (mixing their statistics); colour preservation (``"stats"``: the style
image's colours are matched to the content's before encoding; ``"luminance"``: only the luminance is
stylized); spatial control with a label ``mask`` (label k gets ``styles[k]``); the style size
(stroke scale) independent of the content size. Any content size in, the same size out.

Style statistics (:class:`StyleStats`) can be computed once with :func:`style_statistics` and reused.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoder import VGG19Encoder, load_encoder
from .errors import ParameterError, WeightsError, check_fraction
from .images import check_size, resize_long_side
from .losses import mean_std

#: The layer AdaIN works at, and the layers of the training style loss.
ADAIN_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: layers of the optional feature reconstruction term (``train-adain --recon-feature-weight``)
RECON_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
#: The encoder downsamples by 8 up to relu4_1: inputs are padded to a multiple of this.
STRIDE = 8
EPS = 1e-5
#: relu4_1 of the Caffe VGG-19 (0-255 inputs) is large (hundreds); the decoder divides its input by
#: per-channel scales (mean activations measured on the training data, see :func:`feature_scales`;
#: this constant until then) so inputs are O(1), like the "normalised" VGG of the paper's code.
FEATURE_SCALE = 100.0
PRESERVE_COLOR = (None, "stats", "luminance")
#: Reflect margin (px) put around the content before encoding and cut off after decoding. Without it
#: the encoder's zero padding marks the edges of relu4_1 and the decoder draws them: a line and a
#: colour cast along the image border. 24 px (3 relu4_1 cells) removes it; 8-16 px leave a trace.
#: (The decoders fine-tuned since session 22 draw a fainter frame themselves; the margin still brings
#: the edges closer to the interior, most on flat photos.)
BORDER = 24
#: ``detail``: the decoder loses the photo's finest detail (it inverts relu4_1, 1/8 resolution): decoding
#: the photo's own features gives it back blurred. ``transfer(..., detail=d)`` adds ``d`` times the
#: high-pass part (what a Gaussian of this sigma, in pixels, removes) of that loss,
#: ``photo - decode(encode(photo))``, to the stylized image: edges and texture come back, the style's
#: colours stay (the low-pass part of the loss, colour shifts, is not added). 0 = the paper's AdaIN.
DETAIL_SIGMA = 2.0
#: the default ``detail`` of the CLI and the demo (the library's is 0, the paper's method): on the
#: bench's held-out pairs it lifts the output's fine detail from 59 % to 97 % of the Gatys result's
#: (``stylekit bench adain``; docs/adain.md)
DEFAULT_DETAIL = 0.5


# ---- the operation ----------------------------------------------------------------------------------
def adain(content_feat: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor,
          eps: float = EPS) -> torch.Tensor:
    """Give ``content_feat`` (N, C, H, W) the per-channel ``style_mean``/``style_std`` ((N|1, C, 1, 1)).

    Epsilon-safe: a constant (zero-variance) content channel becomes the style mean, never NaN.
    """
    c_mean, c_std = mean_std(content_feat, eps)
    return (content_feat - c_mean) / c_std * style_std + style_mean


def _masked_mean_std(feat: torch.Tensor, m: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel mean/std of ``feat`` (N, C, H, W) over the positions where ``m`` (1, 1, H, W) is 1."""
    n = m.sum().clamp_min(1.0)
    mean = (feat * m).sum(dim=(2, 3), keepdim=True) / n
    var = ((feat - mean).pow(2) * m).sum(dim=(2, 3), keepdim=True) / n
    return mean, (var + eps).sqrt()


# ---- the decoder -------------------------------------------------------------------------------------
def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    mods: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    if relu:
        mods.append(nn.ReLU(inplace=True))
    return mods


def _up() -> nn.Module:
    return nn.Upsample(scale_factor=2, mode="nearest")


class Decoder(nn.Module):
    """Mirror of VGG-19 up to relu4_1: 9 convs (3x3, reflection padding), nearest 2x upsampling.

    ``width`` scales the channel counts of the mirror (256/128/64 at 1.0); the input stays 512 channels
    (relu4_1). The output is RGB in [0, 1] (not clamped while training; :func:`transfer` clamps).
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        if not (isinstance(width, (int, float)) and 0.0625 <= float(width) <= 2.0):
            raise ParameterError(f"decoder width must be between 0.0625 and 2, got {width!r}")
        self.width = float(width)
        c4, c3, c2 = (max(4, round(c * self.width)) for c in (256, 128, 64))
        self.channels = (c4, c3, c2)
        self.register_buffer("in_scale", torch.full((1, 512, 1, 1), FEATURE_SCALE))
        self.net = nn.Sequential(
            *_conv(512, c4), _up(),
            *_conv(c4, c4), *_conv(c4, c4), *_conv(c4, c4), *_conv(c4, c3), _up(),
            *_conv(c3, c3), *_conv(c3, c2), _up(),
            *_conv(c2, c2), *_conv(c2, 3, relu=False),
        )
        with torch.no_grad():  # start around mid-grey rather than black
            last = self.net[-1]
            assert isinstance(last, nn.Conv2d)
            last.bias.fill_(0.5)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t / self.in_scale
        low = self.net[1].weight.dtype  # a bf16 copy (stylekit.precision.bf16_copy): float32 in and out
        if low == torch.float32:
            return self.net(t)
        return self.net(t.to(low)).float()

    def architecture(self) -> str:
        return f"adain-decoder-vgg19-relu4_1-w{self.width:g}"


# ---- files -----------------------------------------------------------------------------------------
ADAIN_KIND = "adain_decoder"


def save_decoder(decoder: Decoder, path: str | os.PathLike, record: dict | None = None,
                 dtype: torch.dtype = torch.float16) -> Path:
    """Write the decoder as ``.safetensors`` (fp16 by default), atomically.

    Metadata key ``"stylekit"`` holds JSON (the catalogue's convention, :mod:`stylekit.weights`): kind,
    architecture, width, and ``record`` (training command, data, steps, time, machine, final losses...).
    """
    import json

    from safetensors.torch import save_file

    from .atomic import atomic_path

    info = {"kind": ADAIN_KIND, "architecture": decoder.architecture(), "width": decoder.width,
            "dtype": str(dtype).replace("torch.", "")}
    info.update(record or {})
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in decoder.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"stylekit": json.dumps(info)})
    return path


def decoder_from_state(state: dict[str, torch.Tensor], info: dict | None = None,
                       source: str = "weights") -> Decoder:
    """Build a :class:`Decoder` from a state dict (width from ``info`` or the tensor shapes)."""
    info = info or {}
    arch = str(info.get("architecture", ""))
    if arch and not arch.startswith("adain-decoder-vgg19-relu4_1"):
        raise WeightsError(f"{source} holds a '{arch}' model, not an AdaIN decoder")
    w0 = state.get("net.1.weight")
    if w0 is None or w0.dim() != 4 or w0.shape[1] != 512:
        raise WeightsError(f"{source} is not an AdaIN decoder (no 512-channel first convolution)")
    try:
        width = float(info["width"]) if "width" in info else float(w0.shape[0]) / 256
        dec = Decoder(width)
    except (ParameterError, ValueError, TypeError) as e:
        raise WeightsError(f"{source} has an invalid AdaIN decoder width: {e}") from None
    from .training import load_model_state

    load_model_state(dec, {k: v.float() for k, v in state.items()}, source)
    if not all(torch.isfinite(p).all() for p in dec.state_dict().values()):
        raise WeightsError(f"{source} holds non-finite weights")
    return dec.eval()


def load_decoder(path: str | os.PathLike) -> Decoder:
    """A decoder from a shipped ``.safetensors`` file or a ``train-adain`` checkpoint; WeightsError if unusable."""
    from .weights import read_weights_file

    state, info = read_weights_file(path)
    if "format" in info and "meta" in info:  # a training checkpoint
        info = {"width": info["meta"].get("width")} if info["meta"].get("width") is not None else {}
        state = {k[6:]: v for k, v in state.items() if k.startswith("model.")}
    dec = decoder_from_state(state, info, source=f"'{path}'")
    dec.record = info  # type: ignore[attr-defined]
    return dec


# ---- model, statistics ----------------------------------------------------------------------------
class AdaINModel(nn.Module):
    """VGG-19 encoder (shared, frozen, not part of the state dict) + trainable :class:`Decoder`."""

    def __init__(self, decoder: Decoder | None = None, encoder: VGG19Encoder | None = None,
                 device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.decoder = decoder if decoder is not None else Decoder()
        self.decoder.to(device)
        # kept out of the module tree: .to()/state_dict() must not touch the cached shared encoder
        self._encoder = [encoder if encoder is not None else load_encoder(device=device)]

    @property
    def encoder(self) -> VGG19Encoder:
        return self._encoder[0]

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, (ADAIN_LAYER,))[ADAIN_LAYER]

    def decode(self, t: torch.Tensor) -> torch.Tensor:
        return self.decoder(t)

    def bf16_copy(self) -> "AdaINModel":
        """A copy with encoder and decoder in bf16 for inference (:func:`stylekit.precision.bf16_copy`:
        float32 in and out, AdaIN statistics in float32); the shared float32 encoder is left as it is."""
        from .precision import bf16_copy

        return AdaINModel(decoder=bf16_copy(self.decoder), encoder=bf16_copy(self.encoder), device=self.device)

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """Plain single-style transfer (no clamp): what training and ONNX export use."""
        fc = self.encode(content)
        s_mean, s_std = mean_std(self.encode(style), EPS)
        t = adain(fc, s_mean, s_std)
        if alpha != 1.0:
            t = alpha * t + (1.0 - alpha) * fc
        return self.decode(t)


@dataclass
class StyleStats:
    """Channel mean and std of a style image at relu4_1, each (1, 512, 1, 1). Cache and reuse freely."""

    mean: torch.Tensor
    std: torch.Tensor

    def to(self, device: str | torch.device) -> "StyleStats":
        return StyleStats(self.mean.to(device), self.std.to(device))

    @staticmethod
    def mix(stats: Sequence["StyleStats"], weights: Sequence[float]) -> "StyleStats":
        """Convex combination of several styles' statistics (weights are normalized to sum 1)."""
        w = _check_weights(weights, len(stats))
        mean = sum(wi * s.mean for wi, s in zip(w, stats))
        std = sum(wi * s.std for wi, s in zip(w, stats))
        return StyleStats(mean, std)  # type: ignore[arg-type]


def _check_image(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"{name} must be an RGB image tensor (N, 3, H, W), got {shape}")
    if min(x.shape[-2:]) < 1:
        raise ParameterError(f"{name} is empty")
    if not torch.isfinite(x).all():
        raise ParameterError(f"{name} holds NaN or infinite values")
    return x.float()


@torch.no_grad()
def style_statistics(model: AdaINModel, style: torch.Tensor, style_size: int | None = None) -> StyleStats:
    """Encode a style image (optionally resized to ``style_size`` long side: the stroke scale)."""
    style = _check_image(style, "style")
    if style.shape[0] != 1:
        raise ParameterError(f"style must be one image, got a batch of {style.shape[0]}")
    if style_size is not None:
        style = resize_long_side(style, check_size(style_size, name="style size"))
    mean, std = mean_std(model.encode(_pad_to_stride(style.to(model.device))[0]), EPS)
    return StyleStats(mean, std)


# ---- parameter checks ---------------------------------------------------------------------------------
def _check_weights(weights: Sequence[float] | torch.Tensor | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    try:
        w = [float(v) for v in (weights.tolist() if isinstance(weights, torch.Tensor) else weights)]
    except (TypeError, ValueError):
        raise ParameterError(f"style weights must be a list of numbers, got {weights!r}") from None
    if len(w) != n:
        raise ParameterError(f"got {len(w)} style weight(s) for {n} style(s); give one weight per style")
    if any(not math.isfinite(v) for v in w):
        raise ParameterError(f"style weights must be finite numbers, got {w}")
    if any(v < 0 for v in w):
        raise ParameterError(f"style weights must not be negative, got {w}")
    total = sum(w)
    if total <= 0:
        raise ParameterError("style weights are all zero; at least one must be positive")
    return [v / total for v in w]


def check_detail(detail: object) -> float:
    """``detail`` as a float in [0, 1], else a :class:`ParameterError`."""
    return check_fraction(detail, "detail")


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), reflect padding (replicate on images too small for it)."""
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    g = torch.exp(-t * t / (2 * sigma * sigma))
    g = (g / g.sum()).to(x.dtype)
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    y = F.pad(x, (r, r, r, r), mode=mode)
    y = F.conv2d(y, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def restore_detail(out: torch.Tensor, photo: torch.Tensor, reconstruction: torch.Tensor, detail: float,
                   sigma: float = DETAIL_SIGMA) -> torch.Tensor:
    """``out`` plus ``detail`` times the high-pass part of what the decoder lost on ``photo``
    (``photo - reconstruction``, the reconstruction being the decoded photo features), clamped to [0, 1]."""
    loss = photo - reconstruction
    return (out + detail * (loss - _gaussian_blur(loss, sigma))).clamp(0, 1)


def check_alpha(alpha: object) -> float:
    """``alpha`` as a float in [0, 1], else a :class:`ParameterError`."""
    return check_fraction(alpha, "alpha")


def check_mask(mask: object, n_styles: int, h: int, w: int) -> torch.Tensor:
    """Validate a label map for an (h, w) content image -> long tensor (1, 1, h, w) with labels < n_styles.

    Accepted shapes: (H, W), (1, H, W), (1, 1, H, W); integer or bool values (floats must be whole numbers).
    """
    if not isinstance(mask, torch.Tensor):
        try:
            import numpy as np

            mask = torch.from_numpy(np.asarray(mask))
        except Exception:  # noqa: BLE001
            raise ParameterError(f"mask must be a label map (H, W) of integers, got {type(mask).__name__}") from None
    m = mask
    if m.dim() == 2:
        m = m[None, None]
    elif m.dim() == 3 and m.shape[0] == 1:
        m = m[None]
    elif not (m.dim() == 4 and m.shape[0] == 1 and m.shape[1] == 1):
        raise ParameterError(f"mask must have shape (H, W), (1, H, W) or (1, 1, H, W), got {tuple(mask.shape)}")
    if tuple(m.shape[-2:]) != (h, w):
        raise ParameterError(f"mask is {m.shape[-1]}x{m.shape[-2]} (WxH) but the content image is {w}x{h}; "
                             "they must be the same size")
    if m.dtype == torch.bool:
        m = m.long()
    elif m.is_floating_point():
        if not torch.isfinite(m).all() or not torch.equal(m, m.round()):
            raise ParameterError("mask must hold whole-number labels (0, 1, 2, ...), not fractions or NaN")
        m = m.long()
    else:
        m = m.long()
    if m.numel() == 0:
        raise ParameterError("mask is empty")
    lo, hi = int(m.min()), int(m.max())
    if lo < 0:
        raise ParameterError(f"mask labels must be 0 or more, got {lo}")
    if hi >= n_styles:
        raise ParameterError(f"mask has label {hi} but only {n_styles} style(s) were given "
                             f"(label k uses style k+1; labels 0..{n_styles - 1} are valid)")
    return m


# ---- transfer -------------------------------------------------------------------------------------------
def _pad_to_stride(x: torch.Tensor, stride: int = STRIDE) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    # a multiple of the stride, and at least 2 stride (the decoder's reflection padding needs 2x2 features)
    ph, pw = max(2 * stride, h + (-h) % stride) - h, max(2 * stride, w + (-w) % stride) - w
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def add_border(x: torch.Tensor, border: int = BORDER) -> tuple[torch.Tensor, int]:
    """Reflect-pad ``border`` px on every side (less for images under ``border`` + 1 px); returns the padded
    image and the margin used, to cut the decoded result back with ``y[..., b:b + h, b:b + w]``."""
    b = max(0, min(border, x.shape[-2] - 1, x.shape[-1] - 1))
    if b == 0:
        return x, 0
    return F.pad(x, (b, b, b, b), mode="reflect"), b


def _prepare_style(s: torch.Tensor, content: torch.Tensor, preserve_color: str | None) -> torch.Tensor:
    s = _check_image(s, "style")
    if preserve_color == "stats":
        from .color import match_color

        s = match_color(s, content)
    elif preserve_color == "luminance":
        from .color import luminance_only

        s = luminance_only(s, content)
    return s


@torch.no_grad()
def transfer(model: AdaINModel, content: torch.Tensor, styles: Sequence[torch.Tensor | StyleStats] | torch.Tensor
             | StyleStats, weights: Sequence[float] | None = None, alpha: float = 1.0,
             preserve_color: str | None = None, mask: torch.Tensor | None = None,
             style_size: int | None = None, border: int = BORDER, detail: float = 0.0) -> torch.Tensor:
    """Stylize ``content`` (N, 3, H, W) in [0, 1]; returns the same size, clamped to [0, 1].

    ``styles``: images (1, 3, h, w) of any size, or precomputed :class:`StyleStats`, or a mix.
    ``weights``: interpolation weights, one per style (normalized; default equal). Not with ``mask``.
    ``alpha``: 0 = content reconstructed by the decoder, 1 = full stylization.
    ``preserve_color``: None, ``"stats"`` (match the style's colours to the content first) or
    ``"luminance"`` (stylize luminance only, keep the content's colours); needs style images, not stats.
    ``mask``: label map (H, W) of the content's size; label k gets ``styles[k]``.
    ``style_size``: long side the style images are encoded at (stroke scale); None = as given.
    ``border``: reflect margin around the content while it is encoded and decoded (see :data:`BORDER`;
    0 = none, what the exported stylizer graph computes on the image it is given).
    ``detail`` in [0, 1]: give back that share of the fine detail the decoder loses on the photo
    (:data:`DETAIL_SIGMA`, :func:`restore_detail`; one more decoder pass); 0 = the paper's AdaIN.
    """
    content = _check_image(content, "content")
    if isinstance(styles, (torch.Tensor, StyleStats)):
        styles = [styles]
    styles = list(styles)
    if not styles:
        raise ParameterError("give at least one style")
    alpha = check_alpha(alpha)
    detail = check_detail(detail)
    if preserve_color not in PRESERVE_COLOR:
        raise ParameterError(f"preserve_color must be one of None, 'stats', 'luminance'; got {preserve_color!r}")
    if mask is not None and weights is not None:
        raise ParameterError("weights and mask do not combine: with a mask each label gets its own style")
    w = _check_weights(weights, len(styles)) if mask is None else None
    h, wd = content.shape[-2:]
    m = check_mask(mask, len(styles), h, wd) if mask is not None else None
    dev = model.device
    content = content.to(dev)

    enc_content = content
    if preserve_color == "luminance":
        from .color import luminance

        enc_content = luminance(content).expand(-1, 3, -1, -1)
    stats: list[StyleStats] = []
    for s in styles:
        if isinstance(s, StyleStats):
            if preserve_color is not None:
                raise ParameterError("colour preservation needs the style images, not precomputed statistics")
            stats.append(s.to(dev))
        else:
            stats.append(style_statistics(model, _prepare_style(s.to(dev), content, preserve_color), style_size))

    xb, b = add_border(enc_content, int(border))
    x, _ = _pad_to_stride(xb)
    fc = model.encode(x)
    if m is None:
        mix = stats[0] if len(stats) == 1 else StyleStats.mix(stats, w)  # type: ignore[arg-type]
        t = adain(fc, mix.mean, mix.std)
    else:
        mp, _ = _pad_to_stride(add_border(m.float(), b)[0])
        mf = F.interpolate(mp, size=fc.shape[-2:], mode="nearest")
        t = fc.clone()
        for k, st in enumerate(stats):
            region = (mf == k).float()
            if region.sum() == 0:
                continue
            c_mean, c_std = _masked_mean_std(fc, region)
            tk = (fc - c_mean) / c_std * st.std + st.mean
            t = torch.where(region.bool(), tk, t)
    if alpha != 1.0:
        t = alpha * t + (1.0 - alpha) * fc
    if detail > 0:  # the stylized features and the photo's own, decoded in one batch
        n = t.shape[0]
        both = model.decode(torch.cat([t, fc]))[..., b:b + h, b:b + wd].clamp(0, 1)
        out = restore_detail(both[:n], enc_content, both[n:], detail)
    else:
        out = model.decode(t)[..., b:b + h, b:b + wd].clamp(0, 1)
    if preserve_color == "luminance":
        from .color import luminance_transfer

        out = luminance_transfer(out, content)
    return out


# ---- training objective ----------------------------------------------------------------------------------
@torch.no_grad()
def feature_scales(encoder: VGG19Encoder, images: Sequence[torch.Tensor],
                   layers: Sequence[str] = STYLE_LAYERS) -> dict[str, torch.Tensor]:
    """Per-channel mean activation (1, C, 1, 1) of each layer over ``images``.

    Dividing features by these gives every filter mean activation 1, like the "normalised" VGG-19 the
    paper's code uses; the Caffe VGG-19 here is not normalised (relu1_1 ~ 10s, relu4_1 ~ 100s), and
    without this the loss balance (style weight 10) of the PyTorch port does not carry over.
    Channels that are almost never active get the layer's median scale (no division by ~0).
    """
    sums: dict[str, torch.Tensor] = {}
    for x in images:
        f = encoder(x, layers)
        for k, v in f.items():
            m = v.float().mean(dim=(0, 2, 3))
            sums[k] = sums.get(k, 0) + m
    out = {}
    for k, v in sums.items():
        v = v / len(images)
        floor = v.median() * 0.05
        v = torch.where(v < floor, v.median(), v)
        out[k] = v.view(1, -1, 1, 1)
    return out


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).mean()


def training_losses(model: AdaINModel, content: torch.Tensor, style: torch.Tensor,
                    scales: dict[str, torch.Tensor], decoder: nn.Module | None = None, bf16: bool = False,
                    recon: bool = False, recon_layers: Sequence[str] = ()) -> tuple[torch.Tensor, ...]:
    """Content and style loss of the decoder on a batch of (content, style) pairs (Huang & Belongie).

    - content: MSE between relu4_1 of the decoded image and the AdaIN target t;
    - style: sum over relu1_1..relu4_1 of MSE(mean) + MSE(std) between decoded image and style,
      the normalization of the paper's PyTorch port, whose style weight 10 this balance goes with.

    - ``recon=True`` adds a third value, not in the paper: the mean absolute pixel error of decoding the
      content's own relu4_1 (the alpha = 0 path), which teaches the decoder to invert the encoder.
    - ``recon_layers`` (e.g. :data:`RECON_LAYERS`) adds one more value after it (or in its place), also not
      in the paper: the summed MSE of those layers' (scaled) features between that reconstruction and
      the photo, a perceptual term that asks for the photo's edges and texture where the pixel error
      settles for a blurred average.

    Features are divided by ``scales`` (:func:`feature_scales`) first.
    ``decoder`` overrides ``model.decoder`` (e.g. its DDP wrapper). ``bf16``: autocast the encoder and
    decoder to bfloat16 (statistics and losses stay float32); 1.7x faster on CPUs with AVX512-BF16.
    """
    dec = decoder if decoder is not None else model.decoder
    enc = model.encoder
    dev_type = content.device.type
    with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=bf16):
        with torch.no_grad():
            fcs = enc(content, tuple(dict.fromkeys((*recon_layers, ADAIN_LAYER))))
            fc = fcs[ADAIN_LAYER].float()
            fs = {k: v.float() / scales[k] for k, v in enc(style, STYLE_LAYERS).items()}
            s_stats = {k: mean_std(v, EPS) for k, v in fs.items()}
            sm, ss = s_stats[ADAIN_LAYER]
            t = adain(fc, sm * scales[ADAIN_LAYER], ss * scales[ADAIN_LAYER])  # raw scale: decoder input
        out = dec(t)
        fo = {k: v.float() / scales[k] for k, v in enc(out, STYLE_LAYERS).items()}
        rec = dec(fc) if (recon or recon_layers) else None
        fr = {k: v.float() / scales[k] for k, v in enc(rec, tuple(recon_layers)).items()} if recon_layers else {}
    loss_c = _mse(fo[ADAIN_LAYER], t / scales[ADAIN_LAYER])
    loss_s = out.new_zeros((), dtype=torch.float32)
    for layer in STYLE_LAYERS:
        m, s = mean_std(fo[layer], EPS)
        loss_s = loss_s + _mse(m, s_stats[layer][0]) + _mse(s, s_stats[layer][1])
    extra = []
    if recon:
        extra.append((rec.float() - content).abs().mean())
    if recon_layers:
        extra.append(sum(_mse(fr[k], fcs[k].float() / scales[k]) for k in recon_layers))
    return (loss_c, loss_s, *extra)

