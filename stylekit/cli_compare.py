"""``stylekit compare CONTENT STYLE -o figure.png``: the three modes side by side in one labelled figure."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import int_range, register


@register
def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run Gatys, feed-forward and AdaIN on one pair; save a comparison figure",
                       description="Run the three modes on CONTENT and STYLE and save one figure: content, style "
                                   "and the three results in a labelled row with wall times and style/content "
                                   "distances. A mode whose model is not available is shown as a placeholder.")
    p.add_argument("content", help="content image")
    p.add_argument("style", help="style image")
    p.add_argument("-o", "--output", required=True, help="figure file (.png, .jpg, .webp)")
    p.add_argument("--size", type=int_range(64, 2048), default=384,
                   help="long side of every result in pixels (default 384)")
    p.add_argument("--gatys-preset", default="default", help="Gatys preset (default: default)")
    p.add_argument("--gatys-steps", type=int_range(1, 100_000), default=None,
                   help="Gatys iterations at the final scale (default: the preset's)")
    p.add_argument("--fast-style", default=None,
                   help="feed-forward style name (the network only knows its trained styles; default: the "
                        "STYLE file's name when it is one of them, else the first)")
    p.add_argument("--panel-height", type=int_range(64, 2048), default=256,
                   help="height of each image in the figure (default 256)")
    p.add_argument("--no-metrics", action="store_true", help="skip the style/content distances")

    def run(a: argparse.Namespace) -> int:
        from .compare import compare, figure_for
        from .images import load_image, save_image

        content = load_image(a.content)
        style = load_image(a.style)
        overrides = {"steps": a.gatys_steps} if a.gatys_steps else {}
        results = compare(content, style, size=a.size, fast_style=a.fast_style, gatys_preset=a.gatys_preset,
                          gatys_overrides=overrides, measure=not a.no_metrics, style_hint=Path(a.style).stem,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
        for r in results:
            d = f"  style {r.distances.style:.3f}  content {r.distances.content:.3f}" if r.distances else ""
            t = f"{r.seconds:7.2f} s" if r.seconds is not None else "      - "
            print(f"{r.title:22s} {t}{d}  {r.note}")
        fig = figure_for(content, style, results, a.panel_height)
        save_image(fig, a.output)
        print(f"wrote {a.output} ({fig.width}x{fig.height})")
        return 0

    p.set_defaults(func=run)
