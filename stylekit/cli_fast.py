"""Feed-forward mode on the command line: ``stylekit train-fast``, ``stylekit fast``, ``stylekit styles``.

``train-fast`` trains one conditional-instance-norm :class:`~stylekit.feedforward.TransformerNet` for
all ``--style`` images (each batch sample gets one style, cycling through them) with the shared loop of
:mod:`stylekit.training`. Losses (all relative, so the weights are readable):

- style:   mean over layers of ||G(out) - G(style)|| / ||G(style)|| (size-normalized Grams; the metric's
  style distance, on the training layers)
- content: ||F(out) - F(content)|| / ||F(content)|| at the content layer

Relative distances, not their squares: the gradient does not grow with the error, so the loss spikes
of squared Gram losses (which wreck Adam's second-moment estimates) do not happen.
- TV:      mean squared difference of neighbouring pixels
- range:   mean squared distance of the raw output from [0, 1]
- distill: (``--teacher``) mean absolute difference from a trained network's clamped output for the same
  crop and style, left out where the teacher has a droplet (:func:`droplet_mask`): a new architecture
  learns a trained gallery's mapping in per-pixel steps, and fills the teacher's blob from the rest.
  With every style weight and the content weight at 0 the encoder is not run at all (several times
  cheaper a step).

The encoder sees the output as a user will: clamped to [0, 1] (a straight-through clamp, so gradients
still flow; ``--loss-on raw`` restores the old behaviour). Trained on the raw output, a network learns to
put values far outside [0, 1] in small regions, which moves the Gram matrices cheaply and shows up
after clamping as flat saturated blobs with bright rims, with less style left in the clamped image.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from .cli import add_bf16_arg, add_output_args, finite_float, int_range, register
from .errors import ParameterError, TrainingStalled
from .feedforward import CONTEXT_POOLS, NORMS, TransformerNet, dead_pixels, norm_input_peaks, output_feed_norm


def _layers(s: str) -> list[str]:
    from .encoder import check_layers

    out = [x.strip() for x in s.split(",") if x.strip()]
    try:
        return check_layers(out)
    except ParameterError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _weighted_layers(s: str) -> dict[str, float]:
    """``relu1_1,relu3_1=2,...``: VGG layers, each with an optional relative weight (default 1)."""
    from .encoder import check_layer_weights

    pairs = []
    for part in (x.strip() for x in s.split(",")):
        if not part:
            continue
        name, _, w = part.partition("=")
        try:
            pairs.append((name.strip(), float(w) if w else 1.0))
        except ValueError:
            raise argparse.ArgumentTypeError(f"layer weight for {name.strip()!r} is not a number: {w!r}") from None
    if len({n for n, _ in pairs}) != len(pairs):
        raise argparse.ArgumentTypeError(f"a layer is named twice: {s!r}")
    try:
        return check_layer_weights(dict(pairs), "layer weights")
    except ParameterError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


DEAD_PATIENCE = 50  # steps of a completely dead net before train-fast stops (FastStyleLoss._stop_if_dead)
DROPLET_Z = 5.0     # droplet_mask: positions whose channels stand this many standard deviations out ...
DROPLET_GROW = 12   # ... and this many pixels around them (the blob's bright rim)


@torch.no_grad()
def droplet_mask(teacher: TransformerNet, x: torch.Tensor, style_weights: torch.Tensor,
                 z: float = DROPLET_Z, grow: int = DROPLET_GROW) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's clamped output for ``x`` and a (B, 1, H, W) mask that is 0 on its droplets.

    A droplet (the rimmed blob of the instance-norm gallery, docs/training.md sessions 14-16) is where the
    channels entering the teacher's last norm stand ``z`` or more standard deviations out of their image
    statistics (:func:`~stylekit.feedforward.norm_input_peaks`: about 1 elsewhere, 11-19 in the blob);
    the mask is 0 there and ``grow`` pixels around it, 1 elsewhere.
    """
    inp: list[torch.Tensor] = []
    hook = output_feed_norm(teacher).register_forward_hook(lambda _m, i, _o: inp.append(i[0]))
    try:
        out = teacher(x, style_weights).clamp(0, 1)
    finally:
        hook.remove()
    h, w = x.shape[-2:]
    peak = (norm_input_peaks(inp[0])[:, None, :h, :w] >= z).float()
    drop = torch.nn.functional.max_pool2d(peak, 2 * grow + 1, 1, grow) if grow > 0 else peak
    return out, 1.0 - drop


def fill_holes(image: torch.Tensor, keep: torch.Tensor, step: int = 2) -> torch.Tensor:
    """``image`` with the pixels where ``keep`` is 0 filled from their edge inwards, each ring with the mean
    of the known pixels within ``step`` of it (onion peeling): the ``--distill-fill`` target inside the
    teacher's droplets, the colours of their surroundings without the blob."""
    k = 2 * step + 1
    filled, have = image * keep, keep.clone()
    for _ in range(max(image.shape[-2:])):
        if bool((have > 0).all()):
            break
        num = torch.nn.functional.avg_pool2d(filled * have, k, 1, step, count_include_pad=False)
        den = torch.nn.functional.avg_pool2d(have, k, 1, step, count_include_pad=False)
        ring = (have == 0) & (den > 0)
        filled = torch.where(ring, num / den.clamp_min(1e-6), filled)
        have = torch.where(ring, torch.ones_like(have), have)
    return torch.where(keep > 0, image, filled)


class FastStyleLoss:
    """The loss closure for :func:`stylekit.training.train` (see the module docstring)."""

    def __init__(self, styles: Sequence[torch.Tensor], style_layers: Sequence[str] | Mapping[str, float],
                 content_layer: str,
                 style_weight: float | Sequence[float], content_weight: float, tv_weight: float, device: torch.device,
                 encoder_weights: str = "caffe", style_loss: str = "gram", range_weight: float = 0.0,
                 loss_on: str = "clamped", style_tiles: int = 1, alive_weight: float = 0.0,
                 dead_patience: int = DEAD_PATIENCE, teacher: TransformerNet | None = None,
                 teacher_styles: Sequence[int] | None = None, distill_weight: float = 0.0,
                 distill_fill: bool = False, train_styles: Sequence[int] | None = None,
                 channels_last: bool = False) -> None:
        from .encoder import check_layer_weights, load_encoder
        from .losses import gram_matrix

        # relative weights of the style layers (a list: all 1); the style loss is their weighted mean
        self.layer_weights = check_layer_weights(style_layers if isinstance(style_layers, Mapping)
                                                 else dict.fromkeys(style_layers, 1.0), "style layer weights")
        self.layer_total = sum(self.layer_weights.values())
        self.style_layers = list(self.layer_weights)
        self.content_layer = content_layer
        self.layers = list(dict.fromkeys(self.style_layers + [content_layer]))
        self.cw, self.tw, self.rw = content_weight, tv_weight, float(range_weight)
        if loss_on not in ("clamped", "raw"):
            raise ParameterError(f"loss_on must be 'clamped' or 'raw', got {loss_on!r}")
        self.clamped = loss_on == "clamped"
        if not 1 <= int(style_tiles) <= 8:
            raise ParameterError(f"style_tiles must be 1..8, got {style_tiles!r}")
        self.tiles = int(style_tiles)
        self.aw = float(alive_weight)
        self.dead_patience = int(dead_patience)
        self.dead_steps = 0   # consecutive steps at which every pixel of the batch was dead
        self.num_styles = len(styles)
        # the styles the batches cycle through (``--train-styles``: only those being trained)
        self.cycle = torch.tensor(sorted(set(train_styles)) if train_styles else range(self.num_styles))
        if int(self.cycle.min()) < 0 or int(self.cycle.max()) >= self.num_styles:
            raise ParameterError(f"train_styles must be in 0..{self.num_styles - 1}, got {list(train_styles or [])}")
        sw = [float(style_weight)] if isinstance(style_weight, (int, float)) else [float(v) for v in style_weight]
        if len(sw) == 1:
            sw = sw * self.num_styles
        if len(sw) != self.num_styles:
            raise ParameterError(f"--style-weight takes one value or one per style ({self.num_styles}), got {len(sw)}")
        self.sw = torch.tensor(sw, device=device)   # per style
        self.dw = float(distill_weight)
        self.fill = bool(distill_fill)
        if (teacher is None) != (self.dw == 0):
            raise ParameterError("--teacher needs --distill-weight > 0 (and a distill weight needs a --teacher)")
        self.teacher = teacher.to(device).eval().requires_grad_(False) if teacher is not None else None
        self.teacher_styles = torch.tensor(list(teacher_styles) if teacher_styles is not None
                                           else range(self.num_styles), device=device)
        if style_loss not in ("gram", "gram+meanstd"):
            raise ParameterError(f"style loss must be gram or gram+meanstd, got {style_loss!r}")
        self.style_loss = style_loss
        # the encoder is loaded and run only when a loss needs it (pure distillation does without)
        self.use_encoder = self.cw > 0 or any(v > 0 for v in sw)
        self.enc = load_encoder(encoder_weights, device=device) if self.use_encoder else None
        if not self.use_encoder:
            return
        if channels_last:  # a private copy in the training step's layout (training.use_channels_last)
            self.enc = copy.deepcopy(self.enc).to(memory_format=torch.channels_last)
        with torch.no_grad():
            feats = [self.enc(s.to(device), self.style_layers) for s in styles]
            # (S, C, C) per layer
            self.grams = {l: torch.cat([gram_matrix(f[l], normalize=True) for f in feats]) for l in self.style_layers}
        self.gram_norm = {l: g.flatten(1).norm(dim=1) for l, g in self.grams.items()}
        if style_loss != "gram":
            from .losses import mean_std

            with torch.no_grad():
                ms = {l: [mean_std(f[l]) for f in feats] for l in self.style_layers}
            self.means = {l: torch.cat([m for m, _ in v]) for l, v in ms.items()}   # (S, C, 1, 1)
            self.stds = {l: torch.cat([sd for _, sd in v]) for l, v in ms.items()}

    def style_indices(self, step: int, batch: int) -> torch.Tensor:
        """Balanced: sample i of step t gets the style (t*B + i) mod S of the cycle (all S styles, or the
        ``train_styles``)."""
        return self.cycle[(torch.arange(batch) + step * batch) % len(self.cycle)]

    def __call__(self, net, batch: torch.Tensor, ctx) -> tuple[torch.Tensor, dict[str, float]]:
        b = batch.shape[0]
        idx = self.style_indices(ctx.step, b).to(batch.device)
        w = torch.nn.functional.one_hot(idx, self.num_styles).to(batch.dtype)
        pre: list[torch.Tensor] = []
        hook = None
        inner = getattr(net, "module", net)
        if isinstance(inner, TransformerNet):  # the activations feeding the output layer, before their ReLU
            hook = output_feed_norm(inner).register_forward_hook(lambda _m, _i, o: pre.append(o))
        try:
            out = net(batch, w)
        finally:
            if hook is not None:
                hook.remove()
        # what the user will see: clamped, with the identity's gradient (straight-through)
        seen = out + (out.clamp(0, 1) - out).detach() if self.clamped else out
        content = torch.zeros((), device=batch.device)
        style = torch.zeros(b, device=batch.device)   # per sample
        if self.use_encoder:
            content, style = self._perceptual(seen, batch, idx)
        o = out.float()
        tv = ((o[..., 1:, :] - o[..., :-1, :]).pow(2).mean() + (o[..., :, 1:] - o[..., :, :-1]).pow(2).mean())
        over = (o - o.clamp(0, 1)).pow(2).mean()
        loss = self.cw * content + (self.sw[idx] * style).mean() + self.tw * tv + self.rw * over
        logs = {"style": float(style.detach().mean()), "content": float(content.detach()), "tv": float(tv.detach()),
                "range": float(over.detach())}
        if self.teacher is not None:
            tw = torch.nn.functional.one_hot(self.teacher_styles[idx], self.teacher.num_styles).to(batch.dtype)
            target, keep = droplet_mask(self.teacher, batch, tw)
            logs["masked"] = float(1.0 - keep.mean())
            if self.fill:  # the droplets' pixels get their surroundings' colours as the target
                target, keep = fill_holes(target, keep), torch.ones_like(keep)
            distill = ((seen.float() - target.float()).abs() * keep).sum() / (keep.sum() * 3).clamp_min(1.0)
            loss = loss + self.dw * distill
            logs["distill"] = float(distill.detach())
        if pre and self.aw > 0:
            dead = dead_pixel_penalty(pre[0])
            loss = loss + self.aw * dead
            logs["dead"] = float(dead.detach())
        if pre and self.aw == 0 and not inner.negative_slope:
            self._stop_if_dead(pre[0], ctx.step)
        return loss, logs

    def _perceptual(self, seen: torch.Tensor, batch: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The content loss (a scalar) and the style loss (one value per sample) of the output ``seen``."""
        from .losses import gram_matrix

        b = batch.shape[0]
        fo = self.enc(seen, self.layers)
        with torch.no_grad():
            fc = self.enc(batch, (self.content_layer,))[self.content_layer]
        cl = fo[self.content_layer].float()
        content = ((cl - fc.float()).flatten(1).norm(dim=1) / fc.float().flatten(1).norm(dim=1).clamp_min(1e-8)).mean()
        style = torch.zeros(b, device=batch.device)   # per sample
        for l in self.style_layers:
            f = fo[l].float()
            t, tn = self.grams[l][idx], self.gram_norm[l][idx].clamp_min(1e-8)
            d = (gram_matrix(f, normalize=True) - t).flatten(1).norm(dim=1) / tn
            if self.tiles > 1:
                # every region must carry the style: the root mean square of the tiles' distances weighs a
                # region left as the photo K times more than the whole crop's Gram does
                dt = (tile_grams(f, self.tiles) - t.unsqueeze(1)).flatten(2).norm(dim=2) / tn.unsqueeze(1)
                d = 0.5 * d + 0.5 * dt.pow(2).mean(1).sqrt()
            style = style + self.layer_weights[l] * d
        style = style / self.layer_total
        if self.style_loss == "gram+meanstd":
            # relative distance of the per-channel feature means and stds (Huang & Belongie's statistics):
            # a smoother target than the Gram alone, which a generator learns much faster
            from .losses import mean_std

            ms = 0.0
            for l in self.style_layers:
                m, sd = mean_std(fo[l].float())
                tm, ts = self.means[l][idx], self.stds[l][idx]
                scale = (tm.flatten(1).norm(dim=1) + ts.flatten(1).norm(dim=1)).clamp_min(1e-8)
                ms = ms + self.layer_weights[l] * ((m - tm).flatten(1).norm(dim=1)
                                                   + (sd - ts).flatten(1).norm(dim=1)) / scale
            style = style + ms / self.layer_total
        return content, style

    def _stop_if_dead(self, pre: torch.Tensor, step: int) -> None:
        """Stop a run whose net has died: every activation feeding the output layer off at every pixel of
        ``dead_patience`` batches in a row. Through plain ReLUs and without ``--alive-weight`` no gradient
        can reach those activations again, so the net would return the photo (plus a constant) for the rest
        of the run (session 17's down-only net did within 100 steps). With DDP all ranks decide together."""
        with torch.no_grad():
            all_dead = torch.tensor(float(bool(dead_pixels(pre).all())), device=pre.device)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(all_dead, op=torch.distributed.ReduceOp.MIN)
        self.dead_steps = self.dead_steps + 1 if all_dead.item() == 1.0 else 0
        if self.dead_steps >= self.dead_patience:
            raise TrainingStalled(
                f"training stopped at step {step}: for {self.dead_steps} steps every activation feeding the output "
                "layer was off at every pixel, so the network returns the photo and no gradient can reach it "
                "again; start over with --alive-weight 100 (or --leaky 0.05); see docs/training.md")


def dead_pixel_penalty(pre: torch.Tensor) -> torch.Tensor:
    """The ``--alive-weight`` penalty: mean over the pixels of max(0, -max over the channels of ``pre``).

    ``pre`` (B, C, H, W) holds the activations feeding the output layer before their ReLU. A pixel where
    all of them are negative is a "dead" pixel (:func:`stylekit.feedforward.dead_fraction`): the output
    there is the photo plus a constant and the style loss's gradient cannot reach it through the ReLUs.
    This term's gradient reaches it directly (the pixel's largest activation is pushed up to zero); live
    pixels cost nothing.
    """
    return torch.relu(-pre.float().amax(dim=1)).mean()


def tile_grams(features: torch.Tensor, k: int) -> torch.Tensor:
    """(B, k*k, C, C): the normalized Gram matrix of each of the k x k tiles of ``features`` (B, C, H, W)
    (the last rows/columns that do not fill a tile are left out)."""
    b, c, h, w = features.shape
    th, tw = h // k, w // k
    if th < 1 or tw < 1:
        raise ParameterError(f"{k} x {k} style tiles need features of at least {k} x {k}, got {h} x {w}")
    from .losses import gram_matrix

    t = features[..., :th * k, :tw * k].reshape(b, c, k, th, k, tw).permute(0, 2, 4, 1, 3, 5)
    return gram_matrix(t.reshape(b * k * k, c, th, tw), normalize=True).reshape(b, k * k, c, c)


def style_name(path: str | Path) -> str:
    return Path(path).stem


def name_rows(have: Sequence[str], names: Sequence[str], error: Callable[[list[str]], str]) -> list[int]:
    """For each of ``names``, its index in ``have``; a ``ParameterError`` with ``error(missing)`` when
    some are not there."""
    missing = [n for n in names if n not in have]
    if missing:
        raise ParameterError(error(missing))
    return [list(have).index(n) for n in names]


def style_rows(model: torch.nn.Module, names: Sequence[str], where: str) -> list[int]:
    """For each of ``names``, its row in ``model``'s styles (a ``ParameterError`` naming ``where`` when the
    model lacks one): how ``--init`` and ``--teacher`` match a trained network's styles to the ``--style``
    images, by file name."""
    have = list(getattr(model, "style_names", []))
    return name_rows(have, names, lambda missing: f"{where} holds the styles {have}; it has no {missing}")


def _init_style(text: str) -> tuple[str, str]:
    """argparse type of ``--init-style NEW=OLD``."""
    new, sep, old = text.partition("=")
    if not sep or not new.strip() or not old.strip():
        raise argparse.ArgumentTypeError(f"expected NEW=OLD (two style names), got {text!r}")
    return new.strip(), old.strip()


def init_state_for_styles(init: torch.nn.Module, names: Sequence[str], where: str,
                          start_from: Mapping[str, str] | None = None) -> dict[str, torch.Tensor]:
    """``init``'s weights for a network holding ``names``, which must be ``init``'s styles or a subset of them.

    The shared convolutions are copied; each conditional-norm (gamma, beta) pair is taken from the row of
    the same style, so a one-style network started from a gallery stylizes exactly as the gallery does
    with that style's one-hot vector (the starting point of a per-style fine-tune). ``start_from`` maps a
    new style (one ``init`` lacks) to a style of ``init`` whose row it starts from (``--init-style``).
    """
    start_from = start_from or {}
    unused = [n for n in start_from if n not in names]
    if unused:
        raise ParameterError(f"--init-style names {unused}, which are not among the --style images' names {list(names)}")
    rows = torch.tensor(style_rows(init, [start_from.get(n, n) for n in names], where))
    return {k: (v[rows] if k.endswith((".gamma", ".beta")) else v) for k, v in init.state_dict().items()}


def load_teacher(path: str, names: Sequence[str]) -> tuple[TransformerNet, list[int]]:
    """``--teacher``: a trained feed-forward network holding every ``--style`` image's style (by file
    name), and for each of those styles its index in the teacher."""
    from .weights import fast_model_from_file

    teacher = fast_model_from_file(path)
    return teacher, style_rows(teacher, names, f"--teacher '{path}'")


def init_net(net, init_path: str, names: list[str], data, crop: int, device: torch.device,
             calibration_photos: int = 16, start_from: Mapping[str, str] | None = None) -> None:
    """Load ``--init`` weights into ``net``: the same architecture (or fewer residual blocks, see
    :func:`~stylekit.feedforward.grow_blocks_state`; without the context branch ``net`` has, see
    :func:`~stylekit.feedforward.grow_context_state`), or an instance-norm net into a ``norm="down-only"``
    one (converted by :func:`~stylekit.feedforward.to_down_only`, calibrated on ``calibration_photos``
    center crops of evenly spaced training photos)."""
    from .feedforward import grow_blocks_state, grow_context_state, to_down_only
    from .training import center_crops, load_model_state
    from .weights import fast_model_from_file

    where = f"--init '{init_path}'"
    init = fast_model_from_file(init_path)
    state = init_state_for_styles(init, names, where, start_from)
    if init.blocks < net.blocks:  # grown: the new blocks start as identities (other widths fail to load below)
        state = grow_blocks_state(net, state, init.blocks)
        print(f"{where}: {init.blocks} residual blocks -> {net.blocks} (the new ones start as the identity)",
              file=sys.stderr)
    if init.context and init.context != net.context:  # the same tensors would load, trained for another pooling
        raise ParameterError(f"{where} has a context branch pooling {init.context}; start a --context "
                             f"{init.context} network from it (this one: --context {net.context})")
    if net.context and not init.context:  # grown: a context branch that starts as the identity
        state = grow_context_state(net, state)
        print(f"{where}: a context branch added (pooling {net.context}; it starts as the identity)", file=sys.stderr)
    if init.negative_slope != net.negative_slope:  # same parameters, another activation: a fine-tune adapts
        print(f"{where}: ReLU negative slope {init.negative_slope:g} -> {net.negative_slope:g}", file=sys.stderr)
    if init.norm == net.norm:
        load_model_state(net, state, where)
        return
    if (init.norm, net.norm) != ("instance", "down-only"):
        raise ParameterError(f"{where} has norm={init.norm!r}; it cannot start a norm={net.norm!r} network")
    src = TransformerNet(net.num_styles, net.width, net.blocks, net.residual, norm="instance",
                         negative_slope=net.negative_slope, context=net.context)
    load_model_state(src, state, where)
    n = min(calibration_photos, len(data.train))
    photos = center_crops(data.train[::max(1, len(data.train) // n)][:n], n, crop)
    t = time.time()
    converted = to_down_only(src.to(device).eval(), photos)
    load_model_state(net, converted.state_dict(), where)
    print(f"{where}: instance norms after the downsampling layers turned into fixed affines, calibrated on "
          f"{n} photos ({time.time() - t:.0f}s)", file=sys.stderr)


def train_fast(a: argparse.Namespace) -> int:
    from .feedforward import one_hot, train_only_style_rows
    from .images import load_image
    from .training import (CHECKPOINT_NAME, ImageFolder, TrainConfig, resolve_device, train, use_bf16,
                           use_channels_last)
    from .weights import training_record

    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    channels_last = use_channels_last(device) if a.channels_last == "auto" else a.channels_last == "on"
    styles = [load_image(p, size=a.style_size) for p in a.style]
    names = [style_name(p) for p in a.style]
    if len(set(names)) != len(names):
        raise ParameterError(f"style images need distinct file names, got {names}")
    if a.norm == "down-only" and not a.alive_weight and not a.init and not a.resume:
        print("warning: --norm down-only from scratch without --alive-weight: with no normalization after the "
              "downsampling layers, the activations feeding the output layer can all turn off, and the net then "
              "returns the photo (it did within 100 steps in docs/training.md, session 17); add --alive-weight 100",
              file=sys.stderr)
    net = TransformerNet(len(styles), tuple(a.width), a.blocks, residual=not a.no_residual, norm=a.norm,
                         negative_slope=a.leaky, context=a.context)
    teacher, teacher_styles = load_teacher(a.teacher, names) if a.teacher else (None, None)
    train_rows = name_rows(names, a.train_styles, lambda missing: f"--train-styles names {missing}, which are not "
                           f"among the --style images' names {names}") or None
    loss = FastStyleLoss(styles, a.style_layers, a.content_layer, a.style_weight, a.content_weight, a.tv_weight,
                         device, a.encoder, a.style_loss, a.range_weight, a.loss_on, a.style_tiles, a.alive_weight,
                         teacher=teacher, teacher_styles=teacher_styles,
                         distill_weight=a.distill_weight if teacher is not None else 0.0,
                         distill_fill=a.distill_fill, train_styles=train_rows,
                         channels_last=channels_last)
    load_size = a.load_size or int(round(a.crop * 1.5))
    t = time.time()
    data = ImageFolder(a.data, load_size=load_size, max_train=a.max_images)
    print(f"data: {len(data.train)} training / {len(data.val)} validation images from {a.data} "
          f"(loaded in {time.time() - t:.1f}s); styles: {', '.join(names)}; device {device}", file=sys.stderr)
    resuming = a.resume and (Path(a.out) / CHECKPOINT_NAME).exists()
    init_styles = dict(a.init_style)   # --init-style NEW=OLD pairs
    if a.init and not resuming:  # start from another run's weights: the same styles or some of them
        init_net(net, a.init, names, data, a.crop, device, start_from=init_styles)
    if train_rows:
        n = train_only_style_rows(net, train_rows)
        print(f"--train-styles: training only the (gamma, beta) rows of {', '.join(a.train_styles)} ({n} values); "
              f"the shared convolutions and the other styles stay as --init gave them", file=sys.stderr)
    meta = {"kind": "fast", "styles": names, "style_images": [str(p) for p in a.style], "config": net.config,
            "command": "stylekit " + " ".join(shlex.quote(x) for x in a._argv), "data": str(a.data),
            "init": a.init or "", "init_meta": training_record(a.init),
            "init_styles": init_styles, **({"train_styles": list(a.train_styles)} if a.train_styles else {}),
            "train_images": len(data.train), "val_images": len(data.val),
            "val_files": [p.name for p in data.val_files],
            "machine": (f"{platform.machine()} {platform.processor() or ''} {device}"
                        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
                        + f" threads={torch.get_num_threads()}"),
            "loss": {"style_layers": list(a.style_layers),
                     **({"style_layer_weights": a.style_layers} if set(a.style_layers.values()) != {1.0} else {}),
                     "content_layer": a.content_layer, "style_weight": a.style_weight,
                     "content_weight": a.content_weight, "tv_weight": a.tv_weight, "style_size": a.style_size,
                     "range_weight": a.range_weight, "loss_on": a.loss_on, "style_tiles": a.style_tiles,
                     "alive_weight": a.alive_weight, "teacher": a.teacher or "",
                     "distill_weight": a.distill_weight if a.teacher else 0.0,
                     "distill_fill": bool(a.teacher and a.distill_fill)}}
    cfg = TrainConfig(out=a.out, steps=a.steps, batch_size=a.batch_size, crop=a.crop, scale=(a.scale_min, a.scale_max),
                      lr=a.lr, lr_final=a.lr_final, decay_start=a.decay_start, seed=a.seed, device=str(device),
                      threads=a.threads, checkpoint_every=a.checkpoint_every, preview_every=a.preview_every,
                      preview_count=a.preview_count, preview_size=a.crop, time_budget=a.time_budget, resume=a.resume,
                      schedule_minutes=a.schedule_minutes, grad_clip=a.grad_clip,
                      lr_multipliers={**({"ctx.": a.context_lr_mult} if a.context_lr_mult != 1 else {}),
                                      **({".gamma": a.cin_lr_mult, ".beta": a.cin_lr_mult} if a.cin_lr_mult != 1 else {})},
                      log_every=a.log_every, meta=meta, amp=use_bf16(a.bf16, device), channels_last=channels_last)

    def preview(model, val):
        rows = [val]
        for i in range(len(styles)):
            rows.append(model(val, one_hot(i, len(styles)).to(val)).clamp(0, 1))
        return torch.cat(rows)

    res = train(net, loss, data, cfg, preview_fn=preview, preview_ncol=None)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    from .atomic import atomic_write_bytes

    atomic_write_bytes(Path(a.out) / "result.json", json.dumps(
        {"step": res.step, "seconds": res.seconds, "losses": res.losses, "finished": res.finished,
         "checkpoint": str(res.checkpoint) if res.checkpoint else None}, indent=2).encode())
    print(f"{'finished' if res.finished else 'stopped'} at step {res.step} after {res.seconds / 60:.1f} min; "
          f"checkpoint {res.checkpoint}", file=sys.stderr)
    return 0


@register
def _add_train_fast(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-fast", help="train a feed-forward (Johnson + conditional instance norm) network",
                       description="Train one multi-style feed-forward network. Checkpoints to OUT/checkpoint."
                                   "safetensors every few minutes; --resume continues exactly.")
    p.add_argument("--style", nargs="+", required=True, help="style image(s); one network holds all of them")
    p.add_argument("--data", required=True, help="folder of training photos (every 10th, by name, is held out)")
    p.add_argument("--out", default="runs/fast", help="output folder (checkpoint, previews, result.json)")
    p.add_argument("--steps", type=int_range(1, 10_000_000), default=4000)
    p.add_argument("--batch-size", type=int_range(1, 1024), default=4)
    p.add_argument("--crop", type=int_range(32, 2048), default=192, help="training crop size")
    p.add_argument("--load-size", type=int_range(32, 4096), default=None,
                   help="photos are resized to this short side before cropping (default 1.5 x crop)")
    p.add_argument("--scale-min", type=finite_float(0.1, 4), default=0.8, help="crop scale jitter (lower)")
    p.add_argument("--scale-max", type=finite_float(0.1, 4), default=1.4, help="crop scale jitter (upper)")
    p.add_argument("--max-images", type=int_range(1, 10_000_000), default=None, help="use only the first N photos")
    p.add_argument("--style-size", type=int_range(16, 4096), default=512, help="long side of the style images")
    p.add_argument("--style-layers", type=_weighted_layers,
                   default=dict.fromkeys(["relu1_1", "relu2_1", "relu3_1", "relu4_1"], 1.0),
                   help="VGG layers of the style loss, each with an optional relative weight "
                        "(e.g. relu1_1=0.5,relu2_1,relu3_1=2,relu4_1=2; default weight 1): the loss is their "
                        "weighted mean")
    p.add_argument("--content-layer", default="relu3_1")
    p.add_argument("--style-loss", choices=("gram", "gram+meanstd"), default="gram",
                   help="gram: the metric's relative Gram distance; gram+meanstd adds feature mean/std matching")
    p.add_argument("--style-weight", type=finite_float(0), nargs="+", default=[5.0],
                   help="one weight for all styles, or one per --style image (in the same order)")
    p.add_argument("--style-tiles", type=int_range(1, 8), default=1,
                   help="K > 1: the Gram distance is the mean of the whole crop's and the root mean square of its "
                        "K x K tiles' (each region must carry the style; against regions left as the photo)")
    p.add_argument("--content-weight", type=finite_float(0), default=1.0)
    p.add_argument("--tv-weight", type=finite_float(0), default=1.0)
    p.add_argument("--range-weight", type=finite_float(0), default=50.0,
                   help="weight of the penalty on output values outside [0, 1] (mean squared overshoot)")
    p.add_argument("--loss-on", choices=("clamped", "raw"), default="clamped",
                   help="the losses see the output clamped to [0, 1] as users do (default), or raw (the "
                        "behaviour before session 13, which the GPU-trained gallery was trained with)")
    p.add_argument("--width", type=int, nargs=3, default=[32, 64, 128], metavar=("C1", "C2", "C3"))
    p.add_argument("--blocks", type=int_range(0, 32), default=5,
                   help="residual blocks; an --init net with fewer grows into this many, the new blocks "
                        "starting as the identity")
    p.add_argument("--context", type=int, choices=CONTEXT_POOLS, default=0, metavar="POOL",
                   help="add a context branch: the residual blocks' features average-pooled by POOL (2, 4 or 8), "
                        "three conv layers there, upsampled and added back (a wider view for broad colour fields); "
                        "an --init net without one grows it, starting as the identity; 0 = none")
    p.add_argument("--norm", choices=NORMS, default="instance",
                   help="instance: instance norm in every layer; down-only: only in the downsampling layers, "
                        "per-style affines after them (no statistics the net could steer: no 'droplet'); "
                        "--init from an instance-norm net converts it; from scratch, use it with --alive-weight")
    p.add_argument("--leaky", type=finite_float(0, 0.5), default=0.0, metavar="SLOPE",
                   help="negative slope of leaky ReLUs (0 = ReLU). A region where every ReLU before the output "
                        "is off gets no gradient and stays as the photo; --init from a ReLU net keeps its weights")
    p.add_argument("--alive-weight", type=finite_float(0), default=0.0,
                   help="weight of the penalty on dead pixels: where every activation feeding the output layer is "
                        "negative (the output is left as the photo, and no gradient gets there through the ReLUs); "
                        "0 = off")
    p.add_argument("--teacher", default=None, metavar="WEIGHTS",
                   help="distill a trained network (a shipped .safetensors or a checkpoint holding the --style "
                        "images' styles): the output is pulled towards the teacher's for the same crop and style, "
                        "except on the teacher's droplets (rimmed blobs); with --style-weight 0 --content-weight 0 "
                        "the VGG encoder is not run")
    p.add_argument("--distill-weight", type=finite_float(0), default=10.0,
                   help="weight of the --teacher term (mean absolute pixel difference, 0-1 scale)")
    p.add_argument("--distill-fill", action="store_true",
                   help="inside the teacher's droplets, pull the output towards their surroundings' colours "
                        "(default: no target there); for a student that starts with the teacher's blobs (--init)")
    p.add_argument("--no-residual", action="store_true",
                   help="plain Johnson output (default: output = input + network correction, started near identity)")
    p.add_argument("--cin-lr-mult", type=finite_float(0), default=1.0,
                   help="learning-rate factor of the per-style norm parameters (helps short multi-style runs)")
    p.add_argument("--context-lr-mult", type=finite_float(0), default=1.0,
                   help="learning-rate factor of the context branch's parameters (a branch grown onto an --init "
                        "net starts at zero and would barely move at a fine-tune's learning rate)")
    p.add_argument("--grad-clip", type=finite_float(0), default=None, help="clip the gradient norm to this")
    p.add_argument("--lr", type=finite_float(1e-7, 1), default=1e-3)
    p.add_argument("--lr-final", type=finite_float(0, 1), default=0.1, help="final lr as a fraction of --lr")
    p.add_argument("--decay-start", type=finite_float(0, 1), default=0.3,
                   help="fraction of the steps at constant lr before the cosine decay")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int_range(1, 1024), default=None, help="CPU threads (torch.set_num_threads)")
    add_bf16_arg(p)
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="keep the network's and the encoder's tensors channels-last (NHWC); auto = on for a "
                        "single-process CPU run, where it saves the layout conversions around every convolution")
    p.add_argument("--encoder", default="caffe", help="VGG-19 weights for the losses (caffe|torchvision|path)")
    p.add_argument("--checkpoint-every", type=finite_float(0.05), default=5.0, help="minutes between checkpoints")
    p.add_argument("--preview-every", type=int_range(0, 10_000_000), default=200, help="steps between preview grids")
    p.add_argument("--preview-count", type=int_range(1, 64), default=4)
    p.add_argument("--log-every", type=int_range(1, 1_000_000), default=10)
    p.add_argument("--time-budget", type=finite_float(0.01), default=None,
                   help="minutes; stop cleanly and save the checkpoint after this long")
    p.add_argument("--schedule-minutes", type=finite_float(0.01), default=None,
                   help="wall-clock lr schedule: decay by max(step/steps, elapsed/this) (for time-boxed runs; "
                        "resume is then not bit-exact)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--init", default=None,
                   help="start from these weights (a shipped .safetensors or a checkpoint with the same "
                        "architecture, holding the --style images' styles or more), e.g. to fine-tune the "
                        "gallery, or one of its styles alone")
    p.add_argument("--init-style", action="append", type=_init_style, default=[], metavar="NEW=OLD",
                   help="with --init: the style NEW (a --style image's file name without extension), which the "
                        "--init network lacks, starts from the network's style OLD (repeatable), e.g. to "
                        "replace one of a gallery's styles with another")
    p.add_argument("--train-styles", nargs="+", default=[], metavar="NAME",
                   help="with --init: train only these styles' per-style normalization parameters (their gamma, "
                        "beta rows); the shared convolutions and the other styles stay bit-identical, and the "
                        "batches hold only these styles (add or redo a gallery style without touching the others)")

    def run(a: argparse.Namespace) -> int:
        a._argv = sys.argv[1:]
        if a.scale_min > a.scale_max:
            raise ParameterError("--scale-min must be <= --scale-max")
        if a.init_style and not a.init:
            raise ParameterError("--init-style needs --init (the network whose styles the new ones start from)")
        if a.train_styles and not a.init:
            raise ParameterError("--train-styles needs --init (the trained network whose shared layers it keeps)")
        if a.distill_fill and not a.teacher:
            raise ParameterError("--distill-fill needs --teacher (it fills the teacher's droplets in its output)")
        return train_fast(a)

    p.set_defaults(func=run)


# ---- inference ---------------------------------------------------------------------------------
def _parse_blend(s: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ParameterError(f"--blend expects name=weight pairs separated by commas, got {part!r}")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise ParameterError(f"--blend weight for {k.strip()!r} is not a number: {v!r}") from None
    if not out:
        raise ParameterError("--blend is empty")
    return out


def run_fast(a: argparse.Namespace) -> int:
    from .images import load_image, save_image
    from .weights import default_stroke_scale, fast_model_for

    if a.blend and a.style:
        raise ParameterError("give either --style or --blend, not both")
    spec = _parse_blend(a.blend) if a.blend else (a.style or "starry_night")
    model_id, vec = fast_model_for(spec)  # a style alone: its own network where one is shipped
    if a.stroke_scale is None:  # the style's own (the catalogue's stroke_scales; a blend: the weighted mean)
        a.stroke_scale = default_stroke_scale(spec, model_id)
    content = load_image(a.input, size=a.size)
    t = time.perf_counter()
    out = None
    backend = a.backend
    if backend in ("auto", "onnx"):
        try:
            from export.runtime import get_fast_runner  # type: ignore[import-not-found]
        except ImportError:
            if backend == "onnx":
                raise ParameterError("--backend onnx needs the export package and onnxruntime "
                                     "(pip install stylekit[onnx])") from None
            get_fast_runner = None
        if get_fast_runner is not None:
            runner = get_fast_runner(model_id, backend=backend)
            out = runner.stylize(content, vec, strength=a.strength, preserve_color=a.preserve_color or None,
                                 stroke_scale=a.stroke_scale)
            backend = f"{runner.backend} {runner.variant}"
    if out is None:
        from .feedforward import stylize_fast
        from .weights import load_fast_model

        model = load_fast_model(model_id)
        out = stylize_fast(model, content, vec, strength=a.strength, preserve_color=a.preserve_color or None,
                           stroke_scale=a.stroke_scale)
        backend = "torch"
    save_image(out, a.output)
    print(f"wrote {a.output} ({out.shape[-1]}x{out.shape[-2]}, {model_id}, {backend}, stroke scale {a.stroke_scale:g}, "
          f"{time.perf_counter() - t:.2f}s)", file=sys.stderr)
    return 0


@register
def _add_fast(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fast", help="feed-forward style transfer with a shipped gallery style (one pass)")
    p.add_argument("input", help="content image")
    p.add_argument("--style", default=None, help="gallery style name (see `stylekit styles`); default starry_night")
    p.add_argument("--blend", default=None, help="mix styles: name=weight,name=weight (e.g. starry_night=0.5,the_scream=0.5)")
    p.add_argument("--strength", type=finite_float(0, 1), default=1.0, help="0 = content, 1 = full style")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--stroke-scale", type=finite_float(0.25, 4.0), default=None,
                   help="size of the strokes relative to the picture: the network runs on the image resized by "
                        "1/S (0.8 = finer strokes, rendered 1.25x larger and shrunk; 2 = bigger); default: the "
                        "style's own (`stylekit styles` lists it)")
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    add_output_args(p, default_size=None)
    p.set_defaults(func=run_fast)


@register
def _add_styles(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("styles", help="list the shipped feed-forward styles: name, style image path, the "
                                      "stroke scale the style runs at by default, and the network it runs on alone")

    def run(a: argparse.Namespace) -> int:
        from .weights import list_styles, solo_style

        for s in list_styles():
            alone = solo_style(s)
            net = "its own network" if s.specialist else "the gallery"
            print(f"{s.name}\t{s.image}\tstroke scale {alone.stroke_scale:g}\t{net} ({alone.model})")
        return 0

    p.set_defaults(func=run)
