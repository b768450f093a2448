"""``stylekit bench adain``: how good and how fast the shipped AdaIN decoder is, on held-out images.

For held-out content x held-out style pairs at 512 px it prints the style distance S and content
distance C (stylekit.metrics) of the AdaIN output, of the unstylized content, and of the Gatys
``default`` preset, plus AdaIN's time with and without cached style statistics. Acceptable when on
average S(AdaIN) <= 0.5 * S(content) and C(AdaIN) <= 1.5 * C(Gatys). Writes a contact sheet
(content | style | Gatys | AdaIN alpha=1 | AdaIN alpha=0.5), and the mean "detail" (high-frequency energy,
stylekit.metrics.detail) of the photo, the Gatys result and AdaIN at alpha = 1 and 0: a number on blur.
AdaIN runs with ``--detail`` (default: the CLI's and the demo's, stylekit.adain.DEFAULT_DETAIL); the
paper's plain output (detail 0) is measured beside it.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Sequence

import torch

DEFAULT_DATA = "../shared/data"
SIZE = 512


def _sheet(rows: list[list[torch.Tensor]], height: int = 256):
    from PIL import Image

    from .images import resize, tensor_to_pil

    tiles = []
    for row in rows:
        r = []
        for x in row:
            h, w = x.shape[-2:]
            r.append(tensor_to_pil(resize(x, height, max(1, round(w * height / h)))))
        tiles.append(r)
    pad = 4
    widths = [sum(t.width for t in r) + pad * (len(r) - 1) for r in tiles]
    sheet = Image.new("RGB", (max(widths), len(tiles) * height + pad * (len(tiles) - 1)), "white")
    y = 0
    for r in tiles:
        x = 0
        for t in r:
            sheet.paste(t, (x, y))
            x += t.width + pad
        y += height + pad
    return sheet


def _gatys(a: argparse.Namespace, cp: Path, sp: Path, c: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Gatys ``default`` preset result for a pair (cached as PNG + seconds in a .txt next to it)."""
    from .gatys import get_preset, stylize_gatys
    from .images import load_image, save_image

    preset = get_preset("default", steps=a.gatys_steps, style_weight=a.gatys_style_weight)
    tag = f"{cp.stem}__{sp.stem}__{a.gatys_steps or 'default'}__sw{preset.style_weight:g}"
    png = Path(a.gatys_cache) / f"{tag}.png" if a.gatys_cache else None
    if png is not None and png.exists() and png.with_suffix(".txt").exists():
        return load_image(png), float(png.with_suffix(".txt").read_text())
    t0 = time.perf_counter()
    out = stylize_gatys(c, s, preset, size=SIZE)
    t = time.perf_counter() - t0
    if png is not None:
        png.parent.mkdir(parents=True, exist_ok=True)
        save_image(out, png)
        png.with_suffix(".txt").write_text(f"{t:.1f}")
    print(f"gatys {cp.name} x {sp.name}: {t:.0f} s", flush=True)
    return out, t


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stylekit bench adain", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="folder with content/ and style/ (default ../shared/data)")
    p.add_argument("--pairs", type=int, default=3, help="number of held-out (content, style) pairs (default 3)")
    p.add_argument("--gatys-steps", type=int, default=None, help="override the Gatys preset's iterations")
    p.add_argument("--no-gatys", action="store_true", help="skip the (slow) Gatys reference")
    p.add_argument("--gatys-style-weight", type=float, default=None,
                   help="override the Gatys preset's style weight (cached results are kept per weight)")
    p.add_argument("--gatys-cache", default="runs/bench_adain_gatys",
                   help="folder where Gatys results are kept and reused (they do not depend on the decoder)")
    p.add_argument("--gatys-only", action="store_true", help="only compute (and cache) the Gatys results")
    p.add_argument("--weights-file", default=None, help="decoder .safetensors (default: the shipped one)")
    p.add_argument("--sheet", default="docs/adain_contact_sheet.png", help="contact sheet PNG to write")
    p.add_argument("--repeat", type=int, default=3, help="timing repetitions (median)")
    p.add_argument("--detail", type=float, default=None,
                   help="AdaIN's detail (default stylekit.adain.DEFAULT_DETAIL, what the CLI and the demo use); "
                        "the paper's plain output (detail 0) is measured beside it")
    a = p.parse_args(argv)

    from .adain import DEFAULT_DETAIL, check_detail, style_statistics, transfer
    from .errors import ParameterError
    from .images import load_image, save_image
    from .metrics import detail, distances
    from .training import held_out_sample

    dt = check_detail(DEFAULT_DETAIL if a.detail is None else a.detail)
    data = Path(a.data)
    contents = held_out_sample(data / "content", a.pairs)
    styles = held_out_sample(data / "style", a.pairs)
    if not contents or not styles:
        raise ParameterError(f"no held-out images under {data}/content and {data}/style")
    if a.weights_file:
        from .adain import AdaINModel, load_decoder

        model = AdaINModel(load_decoder(a.weights_file))
    elif not a.gatys_only:
        from .weights import load_adain_model

        model = load_adain_model()

    rows, table, recon, details, plain = [], [], [], [], []
    print(f"{'pair':<44} {'S_out':>6} {'S_cont':>6} {'S_gat':>6} {'C_out':>6} {'C_gat':>6} "
          f"{'t_img':>6} {'t_stat':>6} {'t_gat':>6}")
    for i in range(a.pairs):
        cp, sp = contents[i % len(contents)], styles[i % len(styles)]
        c, s = load_image(cp, SIZE), load_image(sp, SIZE)
        if a.gatys_only:
            _gatys(a, cp, sp, c, s)
            continue
        # time: from the style image (stats computed) vs with cached statistics
        t_img, t_stat = [], []
        stats = style_statistics(model, s)
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            out = transfer(model, c, [s], detail=dt)
            t_img.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            transfer(model, c, [stats], detail=dt)
            t_stat.append(time.perf_counter() - t0)
        half = transfer(model, c, [stats], alpha=0.5, detail=dt)
        paper = transfer(model, c, [stats]) if dt else out  # detail 0: the paper's decoder output
        dp = distances(paper, c, s)
        plain.append(dict(s=dp.style, c=dp.content, detail=detail(paper)))
        # alpha = 0 decodes the photo's own relu4_1 features: how well the decoder inverts the encoder
        zero = transfer(model, c, [stats], alpha=0.0)
        recon.append(float((zero - c).abs().mean()))
        d_out, d_c = distances(out, c, s), distances(c, c, s)
        gat, d_g, t_g = None, None, float("nan")
        if not a.no_gatys:
            gat, t_g = _gatys(a, cp, sp, c, s)
            d_g = distances(gat, c, s)
        row = dict(s_out=d_out.style, s_c=d_c.style, c_out=d_out.content,
                   s_g=d_g.style if d_g else float("nan"), c_g=d_g.content if d_g else float("nan"))
        table.append(row)
        name = f"{cp.name[:20]} x {sp.name[:20]}"
        print(f"{name:<44} {row['s_out']:6.3f} {row['s_c']:6.3f} {row['s_g']:6.3f} {row['c_out']:6.3f} "
              f"{row['c_g']:6.3f} {statistics.median(t_img):6.2f} {statistics.median(t_stat):6.2f} {t_g:6.1f}",
              flush=True)
        rows.append([c, s] + ([gat] if gat is not None else []) + [out, half])
        details.append(dict(content=detail(c), gatys=detail(gat) if gat is not None else float("nan"),
                            out=detail(out), zero=detail(zero)))

    if a.gatys_only:
        return 0
    mean = {k: statistics.fmean(r[k] for r in table) for k in table[0]}
    print(f"{'mean':<44} {mean['s_out']:6.3f} {mean['s_c']:6.3f} {mean['s_g']:6.3f} {mean['c_out']:6.3f} "
          f"{mean['c_g']:6.3f}")
    print(f"alpha=0 reconstruction (decoded content features vs the photo): mean abs pixel error "
          f"{statistics.fmean(recon):.3f}")
    dm = {k: statistics.fmean(d[k] for d in details) for k in details[0]}
    print(f"detail (mean |Laplacian| of the luminance, 512 px; blur lowers it): photo {dm['content']:.4f}, "
          f"Gatys {dm['gatys']:.4f}, AdaIN a=1 {dm['out']:.4f} (detail {dt:g}), a=0 {dm['zero']:.4f} "
          f"(plain decoding keeps {dm['zero'] / dm['content']:.0%} of the photo's)")
    pm = {k: statistics.fmean(d[k] for d in plain) for k in plain[0]}
    print(f"the paper's AdaIN (detail 0), a=1: S {pm['s']:.3f} C {pm['c']:.3f} detail {pm['detail']:.4f}"
          + (f" ({pm['detail'] / dm['gatys']:.0%} of Gatys'); with detail {dt:g}: S {mean['s_out']:.3f} "
             f"C {mean['c_out']:.3f} detail {dm['out']:.4f} ({dm['out'] / dm['gatys']:.0%})"
             if dm['gatys'] == dm['gatys'] else ""))
    ok_s = mean["s_out"] <= 0.5 * mean["s_c"]
    ok_c = a.no_gatys or mean["c_out"] <= 1.5 * mean["c_g"]
    print(f"S(out) <= 0.5 S(content): {'yes' if ok_s else 'NO'} ({mean['s_out']:.3f} vs {0.5 * mean['s_c']:.3f})")
    if not a.no_gatys:
        print(f"C(out) <= 1.5 C(Gatys):   {'yes' if ok_c else 'NO'} ({mean['c_out']:.3f} vs {1.5 * mean['c_g']:.3f})")
    if a.sheet:
        Path(a.sheet).parent.mkdir(parents=True, exist_ok=True)
        save_image(_sheet(rows), a.sheet)
        cols = ("content | style | " + ("Gatys default | " if not a.no_gatys else "")
                + f"AdaIN a=1 | AdaIN a=0.5 (detail {dt:g})")
        print(f"contact sheet ({cols}): {a.sheet}")
    return 0 if (ok_s and ok_c) else 1
