"""``stylekit gatys CONTENT STYLE [STYLE...] -o OUT``: optimization-based style transfer from the command line."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .cli import add_bf16_arg, add_output_args, finite_float, int_range, register
from .errors import Cancelled, ParameterError


def _weights(s: str) -> list[float]:
    parse = finite_float(0.0)
    try:
        return [parse(v) for v in s.replace(",", " ").split()]
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"style weights: {e}") from None


@register
def _add_gatys(sub: argparse._SubParsersAction) -> None:
    from .gatys import INITS, OPTIMIZERS, PRESETS

    p = sub.add_parser("gatys", help="Gatys et al. optimization-based style transfer (slow, best quality)",
                       description="Optimize the output image so its VGG-19 features match the content image "
                                   "and its Gram matrices match the style image(s).")
    p.add_argument("content", help="content image")
    p.add_argument("styles", nargs="+", metavar="STYLE", help="style image(s); several are blended")
    add_output_args(p, default_size=512)
    p.add_argument("--preset", default="default", choices=list(PRESETS),
                   help="settings to start from (default: the tuned 'default')")
    p.add_argument("--style-weights", type=_weights, metavar="W1,W2,...",
                   help="blend weights of the style images (default equal)")
    p.add_argument("--style-scale", type=finite_float(0.05, 8.0),
                   help="style image size relative to the output (bigger = larger strokes)")
    p.add_argument("--steps", type=int_range(1, 100_000), help="iterations at the final scale")
    p.add_argument("--coarse-steps", type=int_range(0, 100_000), help="iterations at each coarser scale")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=finite_float(1e-6, 1e3), help="learning rate (Adam) / step multiplier (L-BFGS)")
    p.add_argument("--init", choices=INITS)
    p.add_argument("--noise-ratio", type=finite_float(0.0, 1.0))
    p.add_argument("--content-weight", type=finite_float(0.0))
    p.add_argument("--style-weight", type=finite_float(0.0))
    p.add_argument("--tv-weight", type=finite_float(0.0))
    ms = p.add_mutually_exclusive_group()
    ms.add_argument("--multiscale", dest="multiscale", action="store_true", default=None,
                    help="coarse-to-fine from --min-size")
    ms.add_argument("--no-multiscale", dest="multiscale", action="store_false")
    p.add_argument("--min-size", type=int_range(16, 4096), help="first scale's long side (multi-scale)")
    p.add_argument("--pooling", choices=("max", "avg"))
    p.add_argument("--preserve-color", choices=("luminance", "histogram"),
                   help="keep the content's colours (luminance-only transfer or histogram-matched style)")
    add_bf16_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int_range(0, 100_000), default=0, metavar="K",
                   help="save a preview every K iterations next to the output (OUT_stepN.png)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .gatys import get_preset, iter_gatys
    from .images import load_image, save_image

    out = Path(a.output)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise ParameterError(f"output '{out}' must end in .png, .jpg, .jpeg or .webp")
    if a.style_weights is not None and len(a.style_weights) != len(a.styles):
        raise ParameterError(f"--style-weights has {len(a.style_weights)} values for {len(a.styles)} style images")
    cfg = get_preset(a.preset, optimizer=a.optimizer, lr=a.lr, steps=a.steps, coarse_steps=a.coarse_steps,
                     init=a.init, noise_ratio=a.noise_ratio, content_weight=a.content_weight,
                     style_weight=a.style_weight, tv_weight=a.tv_weight, style_scale=a.style_scale,
                     multiscale=a.multiscale, min_size=a.min_size, pooling=a.pooling,
                     preserve_color=a.preserve_color, preview_every=a.save_every, bf16=a.bf16)
    # Large inputs are shrunk on load; the optimization never needs more than 2x the output size.
    content = load_image(a.content, size=min(4096, max(a.size, 1024)))
    styles = [load_image(s, size=min(4096, max(int(a.size * cfg.style_scale * 2), 512))) for s in a.styles]

    cancel = threading.Event()
    old = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):  # first Ctrl-C: stop within one iteration; second: default behaviour
        cancel.set()
        signal.signal(signal.SIGINT, old)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
    bar = None
    try:
        image = None
        for ev in iter_gatys(content, styles, cfg, a.size, a.style_weights, a.seed, cancel):
            if bar is None and not a.quiet:
                bar = tqdm(total=ev.total_steps, unit="it", dynamic_ncols=True, desc="gatys")
            if bar is not None:
                bar.n = ev.step
                bar.set_postfix_str(f"scale {ev.scale + 1}/{ev.num_scales} {ev.size[1]}x{ev.size[0]} "
                                    f"loss {ev.losses.get('total', float('nan')):.3g}", refresh=True)
            if ev.preview is not None and not ev.done:
                save_image(ev.preview, out.with_name(f"{out.stem}_step{ev.step}{out.suffix}"))
            if ev.done:
                image = ev.image
    except Cancelled:
        if bar is not None:
            bar.close()
            bar = None
        print("stylekit gatys: cancelled, nothing saved", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, old)
    assert image is not None
    save_image(image, out)
    print(f"saved {out} ({image.shape[-1]}x{image.shape[-2]})")
    return 0
