"""``stylekit adain`` (stylize with any style image) and ``stylekit train-adain`` (train the decoder)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .cli import add_bf16_arg, add_output_args, finite_float, int_range, register
from .errors import ParameterError


def _parse_weights(s: str) -> list[float]:
    try:
        return [float(v) for v in s.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {s!r}") from None


def load_mask(path: str, h: int, w: int, n_styles: int | None = None):
    """A label map from an image file: a grayscale/paletted image whose distinct values are labels.

    Flat masks (PNG, up to 16 distinct values): the values are numbered in increasing order (a
    black/white mask gives 0 = black, 1 = white). Masks with many grey levels (JPEG noise, antialiased
    edges) are quantized into ``n_styles`` even bins of brightness. Resized (nearest) to (h, w).
    """
    import numpy as np
    import torch
    from PIL import Image

    from .images import open_image

    img = open_image(path)
    if img.mode not in ("L", "P", "1", "I"):
        img = img.convert("L")
    img = img.resize((w, h), Image.Resampling.NEAREST)
    arr = np.asarray(img)
    values = np.unique(arr)
    if len(values) <= 16:
        labels = np.searchsorted(values, arr)
    elif n_styles:
        g = np.asarray(img.convert("L"), dtype=np.int64)
        labels = np.minimum(g * n_styles // 256, n_styles - 1)
    else:
        raise ParameterError(f"mask '{path}' has {len(values)} different values; a label map needs a few "
                             "flat values (e.g. black and white)")
    return torch.from_numpy(labels.astype(np.int64))


@register
def _add_adain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adain", help="stylize with any style image in one pass (AdaIN)",
                       description="Arbitrary style transfer with adaptive instance normalization.")
    p.add_argument("content", help="content image")
    p.add_argument("styles", nargs="+", metavar="STYLE", help="style image(s)")
    add_output_args(p)
    p.add_argument("--alpha", type=finite_float(0, 1), default=1.0,
                   help="content/style trade-off: 0 = content, 1 = full style (default 1)")
    p.add_argument("--weights", type=_parse_weights, default=None,
                   help="interpolation weights, one per style, e.g. 0.7,0.3 (default equal)")
    p.add_argument("--mask", default=None,
                   help="label image: its distinct grey values (in increasing order) pick STYLE 1, 2, ...; "
                        "a black/white mask gives black -> first style, white -> second")
    p.add_argument("--preserve-color", choices=("stats", "luminance"), default=None,
                   help="keep the content's colours: 'stats' matches the style's colours to the content, "
                        "'luminance' stylizes the luminance only")
    p.add_argument("--style-size", type=int_range(16, 4096), default=None,
                   help="long side the style image is encoded at: smaller = larger strokes (default: --size)")
    p.add_argument("--detail", type=finite_float(0, 1), default=None,
                   help="give back this share of the photo's fine detail that the decoder loses (one more "
                        "decoder pass; 0 = the paper's AdaIN; default 0.5, stylekit.adain.DEFAULT_DETAIL)")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                   help="onnx runs the exported model with onnxruntime where available (default auto)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto)")
    p.add_argument("--weights-file", default=None, help="decoder .safetensors (default: the shipped one)")

    def run(a: argparse.Namespace) -> int:
        from .adain import DEFAULT_DETAIL
        from .images import load_image, save_image

        content = load_image(a.content, a.size)
        styles = [load_image(s, a.style_size or a.size) for s in a.styles]
        h, w = content.shape[-2:]
        mask = load_mask(a.mask, h, w, len(styles)) if a.mask else None
        t0 = time.perf_counter()
        out, backend = stylize(content, styles, weights=a.weights, alpha=a.alpha, mask=mask,
                               preserve_color=a.preserve_color, backend=a.backend, device=a.device,
                               weights_file=a.weights_file,
                               detail=DEFAULT_DETAIL if a.detail is None else a.detail)
        save_image(out, a.output)
        print(f"wrote {a.output} ({w}x{h}, {backend}, {time.perf_counter() - t0:.2f} s)")
        return 0

    p.set_defaults(func=run)


def stylize(content, styles, weights=None, alpha=1.0, mask=None, preserve_color=None, backend="auto",
            device="cpu", weights_file=None, detail=0.0):
    """Run AdaIN with the ONNX runner when asked/available and the controls allow it, else torch.

    Returns ``(image, backend name)``.
    """
    from .adain import transfer

    if backend not in ("auto", "torch", "onnx"):
        raise ParameterError(f"backend must be auto, torch or onnx, got {backend!r}")
    if backend != "torch" and weights_file is None:
        try:
            from export.runtime import get_adain_runner  # type: ignore[import-not-found]
        except ImportError:
            if backend == "onnx":
                raise ParameterError("the onnx backend needs the export package and onnxruntime") from None
        else:
            from .errors import WeightsError

            try:
                runner = get_adain_runner(backend=backend, device=device)
                out = runner.transfer(content, styles, weights=weights, alpha=alpha, mask=mask,
                                      preserve_color=preserve_color, detail=detail)
                return out, f"{runner.backend} {runner.variant}"
            except (NotImplementedError, WeightsError):  # masks are not in the ONNX graphs; no export yet
                if backend == "onnx":
                    raise
    from .training import resolve_device

    dev = resolve_device(device)
    if weights_file is not None:
        from .adain import AdaINModel, load_decoder

        model = AdaINModel(load_decoder(weights_file), device=dev)
    else:
        from .weights import load_adain_model

        model = load_adain_model(device=dev)
    return transfer(model, content, styles, weights=weights, alpha=alpha, mask=mask,
                    preserve_color=preserve_color, detail=detail), "torch"


# ---- training ------------------------------------------------------------------------------------------
@register
def _add_train_adain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-adain", help="train the AdaIN decoder on content and style image folders",
                       description="Train the AdaIN decoder (Huang & Belongie): content loss on the AdaIN target "
                                   "at relu4_1, mean/std style loss at relu1_1..relu4_1. A tenth of each folder "
                                   "is held out for validation (every 10th file by name).")
    p.add_argument("--content", required=True, help="folder of content photos")
    p.add_argument("--style", required=True, help="folder of style images")
    p.add_argument("--out", default="runs/adain", help="run folder: checkpoint, previews (default runs/adain)")
    p.add_argument("--steps", type=int_range(1, 10_000_000), default=4000,
                   help="training steps; the learning-rate schedule is scaled to this (default 4000)")
    p.add_argument("--batch-size", type=int_range(1, 256), default=8, help="per process (default 8)")
    p.add_argument("--crop", type=int_range(32, 1024), default=128,
                   help="training crop size; images are loaded with their short side 2x this (default 128)")
    p.add_argument("--width", type=finite_float(0.0625, 2), default=0.5,
                   help="decoder width multiplier (default 0.5: 128/64/32 channels)")
    p.add_argument("--lr", type=finite_float(1e-7, 1), default=5e-4, help="Adam learning rate (default 5e-4)")
    p.add_argument("--warmup", type=int_range(0, 1_000_000), default=0, help="linear warm-up steps")
    p.add_argument("--style-weight", type=finite_float(0), default=10.0, help="default 10, as the paper's port")
    p.add_argument("--content-weight", type=finite_float(0), default=1.0)
    p.add_argument("--recon-weight", type=finite_float(0), default=0.0,
                   help="weight of an extra pixel reconstruction loss (decode the content's own features; "
                        "not in the paper; sharpens short runs). Default 0")
    p.add_argument("--recon-feature-weight", type=finite_float(0), default=0.0,
                   help="weight of a feature reconstruction loss: MSE of relu1_1-relu3_1 between the decoded "
                        "content features and the photo (perceptual; asks for edges where the pixel loss "
                        "settles for blur; not in the paper). Default 0")
    add_bf16_arg(p)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda[:N]")
    p.add_argument("--threads", type=int_range(1, 1024), default=None, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--seed", type=int_range(0, 2**31 - 1), default=0)
    p.add_argument("--time-budget", type=finite_float(0), default=None,
                   help="minutes; stop cleanly (checkpoint) after this")
    p.add_argument("--schedule-minutes", type=finite_float(0.01), default=None,
                   help="wall-clock lr schedule: decay by max(step/steps, elapsed/this) (for time-boxed runs; "
                        "resume is then not bit-exact)")
    p.add_argument("--checkpoint-every", type=finite_float(0), default=5.0, help="minutes (default 5)")
    p.add_argument("--preview-every", type=int_range(0, 10_000_000), default=200,
                   help="steps between preview grids (0 = off)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors, exactly")
    p.add_argument("--stop-after", type=int_range(0, 10_000_000), default=None,
                   help="stop after this many steps in this invocation (checkpoint; continue with --resume); "
                        "0 with --resume --export packages the checkpoint as it is")
    p.add_argument("--init", default=None,
                   help="start from these decoder weights (.safetensors), e.g. to continue another run")
    p.add_argument("--note", default=None, help="free text stored in the checkpoint and the exported record")
    p.add_argument("--export", default=None,
                   help="at the end, write the fp16 .safetensors decoder here (into stylekit/models/: also "
                        "registered in the catalogue as 'adain_decoder')")
    p.set_defaults(func=train_adain)


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def train_adain(a: argparse.Namespace) -> int:
    """The AdaIN decoder's training; the loop, data, checkpoints, previews and DDP are stylekit.training's."""
    import os
    import sys

    import torch

    from . import training as T
    from .adain import (RECON_LAYERS, AdaINModel, Decoder, adain, feature_scales, load_decoder, save_decoder,
                        training_losses)
    from .losses import mean_std
    from .weights import training_record

    if a.threads:
        torch.set_num_threads(a.threads)
    device = T.resolve_device(a.device)
    bf16 = T.use_bf16(a.bf16, device)
    load_size = 2 * a.crop
    content = T.ImageFolder(a.content, load_size=load_size)
    style = T.ImageFolder(a.style, load_size=load_size)
    if not style.train:
        raise ParameterError(f"no readable style images for training in '{a.style}'")

    torch.manual_seed(a.seed)
    decoder = Decoder(a.width) if a.init is None else load_decoder(a.init)
    if a.init is not None and abs(decoder.width - a.width) > 1e-9:
        raise ParameterError(f"--init has width {decoder.width:g}, not --width {a.width:g}")
    model = AdaINModel(decoder, device=device)
    # per-channel feature scales ("normalised VGG"), from fixed training images: the same on every run
    with torch.no_grad():
        imgs = [T.center_crops(folder.train, 8, a.crop).to(device) for folder in (content, style)]
        scales = feature_scales(model.encoder, imgs)
        if a.init is None:
            decoder.in_scale.copy_(scales["relu4_1"])
        scales["relu4_1"] = decoder.in_scale.detach().clone()

    rank = int(os.environ.get("RANK", 0))
    style_sampler = T.CropSampler(style.train, a.batch_size, a.crop, seed=a.seed * 1000 + 500 + rank)
    val_style = style.validation_batch(4, 192).to(device)

    def loss_fn(net, batch, ctx):
        # style crops are drawn from the checkpointed generator: exact resume
        style_sampler.generator = ctx.generator
        s = style_sampler.next_batch().to(ctx.device)
        lc, ls, *rec = training_losses(model, batch, s, scales, decoder=net, bf16=bf16, recon=a.recon_weight > 0,
                                       recon_layers=RECON_LAYERS if a.recon_feature_weight > 0 else ())
        loss = a.content_weight * lc + a.style_weight * ls
        parts = {"content": float(lc.detach()), "style": float(ls.detach())}
        if a.recon_weight > 0:
            pix = rec.pop(0)
            loss = loss + a.recon_weight * pix
            parts["recon"] = float(pix.detach())
        if a.recon_feature_weight > 0:
            loss = loss + a.recon_feature_weight * rec[0]
            parts["recon_feat"] = float(rec[0].detach())
        return loss, parts

    def preview_fn(dec, val):  # rows: content, style, AdaIN output
        n = min(len(val), len(val_style))
        c, s = val[:n], val_style[:n]
        with torch.autocast(device.type, enabled=False):
            t = adain(model.encode(c.float()), *mean_std(model.encode(s.float())))
            out = dec(t).clamp(0, 1)
        return torch.cat([c, s, out.float()])

    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return a.stop_after is not None and calls["n"] > a.stop_after

    # the commands that produced this run (kept across --resume), and the losses it had reached
    commands, prior_losses = [], {}
    ckpt = Path(a.out) / T.CHECKPOINT_NAME
    if a.resume and ckpt.exists():
        ck = T.read_checkpoint(ckpt)
        commands = list(ck.meta.get("commands") or [ck.meta.get("command")] * bool(ck.meta.get("command")))
        prior_losses = dict(ck.extra.get("losses") or {})
    this_command = " ".join(["stylekit"] + sys.argv[1:])
    if a.stop_after != 0:
        commands.append(this_command)
    cfg = T.TrainConfig(out=a.out, steps=a.steps, batch_size=a.batch_size, crop=a.crop, lr=a.lr,
                        warmup=a.warmup, seed=a.seed, device=str(device), threads=a.threads, amp=bf16,
                        channels_last=False,   # (train-fast's channels-last path; not measured for this loop)
                        checkpoint_every=a.checkpoint_every, preview_every=a.preview_every, preview_count=4,
                        preview_size=192, time_budget=a.time_budget, resume=a.resume,
                        schedule_minutes=a.schedule_minutes,
                        meta={"command": commands[-1] if commands else this_command, "commands": commands,
                              "width": a.width, "init": a.init or "", "note": a.note or ""})
    res = T.train(decoder, loss_fn, content, cfg, preview_fn=preview_fn, cancel=stop)
    if rank == 0:
        print(f"step {res.step}/{a.steps} in {res.seconds / 60:.1f} min: " +
              " ".join(f"{k}={v:.4g}" for k, v in res.losses.items()) + f"; checkpoint {res.checkpoint}")

    if a.export and rank == 0:
        decoder.eval()
        vc = content.validation_batch(8, a.crop).to(device)
        vs = style.validation_batch(8, a.crop).to(device)
        n = min(len(vc), len(vs))
        with torch.no_grad():
            lc, ls = training_losses(model, vc[:n], vs[:n], scales)

        record = {
            "id": "adain_decoder",
            "command": " && ".join(commands) if commands else this_command,
            "export_command": this_command, "note": a.note or "",
            "data": f"content={a.content} ({len(content.train)} train / {len(content.val)} held out), "
                    f"style={a.style} ({len(style.train)} train / {len(style.val)} held out)",
            "steps": res.step, "batch_size": a.batch_size, "crop": a.crop, "lr": a.lr, "schedule":
                "stylekit.training: constant 30%, cosine to lr/10 (inverse decay of the paper not available)",
            "style_weight": a.style_weight, "content_weight": a.content_weight, "recon_weight": a.recon_weight,
            "recon_feature_weight": a.recon_feature_weight, "bf16": bf16, "init": a.init,
            "init_meta": training_record(a.init),
            "seconds": round(res.seconds, 1), "finished": res.finished,
            "machine": f"{_cpu_name()} ({os.cpu_count()} vCPU), {device}"
                       + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
                       + f", threads={torch.get_num_threads()}",
            "final_losses": res.losses or prior_losses,
            "val_losses": {"content": round(float(lc), 4), "style": round(float(ls), 4)},
        }
        save_decoder(decoder, a.export, record)
        print(f"wrote {a.export} (val content {float(lc):.3f}, style {float(ls):.3f})")
        from .weights import MODELS_DIR, register_model, shipped_record

        if Path(a.export).resolve().parent == MODELS_DIR:
            rec = shipped_record("adain_decoder", "adain_decoder", a.export, record,
                                 ("command", "steps", "seconds", "batch_size", "crop", "machine", "val_losses",
                                  "init_meta"), architecture=decoder.architecture(), width=decoder.width)
            register_model(rec, persist=True)
            print(f"registered 'adain_decoder' in {MODELS_DIR / 'catalogue.json'}")
    return 0
