"""``stylekit bench fast``: how good and how fast the shipped feed-forward gallery is, on held-out photos.

For every gallery style and a few held-out validation photos (the training split's 10%) at 512 px it
prints the style distance S and content distance C (stylekit.metrics) of the feed-forward output, of
the unstylized content, and of the Gatys ``default`` preset on the same pair, plus the inference time.
A style passes when S(out) <= 0.4 * S(content) and C(out) <= 1.5 * C(Gatys) (means over the photos
that have a Gatys result). Writes a contact sheet (content | Gatys | feed-forward per row).
``S_self`` is the painting's own distance (stylekit.metrics.self_style_distance: its corner crops
against the whole), a yardstick for how low S can go while the photo's layout stays; where
0.4 * S(content) is below it the table marks the goal "< S_self".
Without ``--model`` or ``--weights-file`` each style runs on the network it runs on alone in ``stylekit
fast`` and the demo: its own one-style network where the catalogue ships one, else the gallery
(``--model fast_gallery``: the gallery for every style). Each style runs at its own stroke scale (the catalogue's ``stroke_scales``, as ``stylekit fast`` does; the
``ss`` column; a ``--weights-file`` gets the catalogue's for the same style names, and a retrained gallery
needs a new selection); ``--stroke-scale S`` runs every style at S instead (the network on the photo resized by
1/S, the result resized back to 512 px; the time then includes both resizes).
``--select-stroke-scale 0.8,0.9,1`` chooses those per-style stroke scales: on training photos (never the
held-out ones), each candidate's mean S(out); the lowest wins, a larger (cheaper) candidate within
``SELECT_TIE`` of it is preferred; ``--write-catalogue`` stores the choice in the model's catalogue record.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from .cli import finite_float

DEFAULT_DATA = "../shared/data"
SIZE = 512
DOCS_SHEET = "docs/fast_contact_sheet.png"  # the shipped gallery's contact sheet, linked from the README
#: --select-stroke-scale: a larger candidate whose mean S(out) is within this of the best one is preferred
#: (it costs 1/S^2 less work)
SELECT_TIE = 0.005


def _gatys(cache: Path | None, cp: Path, style_name: str, c: torch.Tensor, s: torch.Tensor,
           steps: int | None, cached_only: bool = False,
           style_weight: float | None = None) -> tuple[torch.Tensor | None, float]:
    """Gatys ``default`` result for a pair, cached (PNG + seconds) since it does not depend on the model."""
    from .gatys import get_preset, stylize_gatys
    from .images import load_image, save_image

    cfg = get_preset("default", steps=steps, style_weight=style_weight)
    tag = f"{cp.stem}__{style_name}__{steps or 'default'}__sw{cfg.style_weight:g}"
    png = cache / f"{tag}.png" if cache else None
    if png is not None and png.exists() and png.with_suffix(".txt").exists():
        return load_image(png), float(png.with_suffix(".txt").read_text())
    if cached_only:
        return None, float("nan")
    t0 = time.perf_counter()
    out = stylize_gatys(c, s, cfg, size=SIZE)
    t = time.perf_counter() - t0
    if png is not None:
        save_image(out, png)
        png.with_suffix(".txt").write_text(f"{t:.1f}")
    print(f"  gatys {cp.name} x {style_name}: {t:.0f} s", flush=True)
    return out, t


def _sheet(rows: list[list[torch.Tensor]], labels: list[str], height: int = 200):
    from PIL import Image, ImageDraw

    from .images import resize, tensor_to_pil

    tiles = [[tensor_to_pil(resize(x, height, max(1, round(x.shape[-1] * height / x.shape[-2])))) for x in r]
             for r in rows]
    pad, lab = 4, 16
    width = max(sum(t.width for t in r) + pad * (len(r) - 1) for r in tiles)
    sheet = Image.new("RGB", (width, len(tiles) * (height + lab + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for r, text in zip(tiles, labels):
        draw.text((2, y + 2), text, fill=(0, 0, 0))
        x = 0
        for t in r:
            sheet.paste(t, (x, y + lab))
            x += t.width + pad
        y += height + lab + pad
    return sheet


def _select_stroke_scale(a: argparse.Namespace, model, entries) -> int:
    """``--select-stroke-scale``: each style's mean S(out) (and C(out)) per candidate stroke scale on
    ``a.photos`` training photos; prints the table and the choice (see the module docstring)."""
    from .errors import ParameterError
    from .feedforward import check_stroke_scale, stylize_fast
    from .images import load_image
    from .metrics import distances
    from .training import list_images, split_files

    try:
        cands = sorted({check_stroke_scale(float(x)) for x in a.select_stroke_scale.split(",") if x.strip()})
    except ValueError:
        raise ParameterError(f"--select-stroke-scale takes numbers separated by commas, got "
                             f"{a.select_stroke_scale!r}") from None
    if not cands:
        raise ParameterError("--select-stroke-scale needs at least one stroke scale")
    train, _ = split_files(list_images(Path(a.data) / "content"))
    if not train:
        raise ParameterError(f"no training photos under {a.data}/content")
    n = min(a.photos, len(train))
    photos = [train[int((i + 0.5) * len(train) / n)] for i in range(n)]   # evenly spaced, deterministic
    contents = [load_image(p, SIZE) for p in photos]
    print(f"stroke scale selection: {len(entries)} styles x {n} training photos at {SIZE} px "
          f"({', '.join(p.name for p in photos)}); mean S(out) / C(out) per stroke scale")
    print(f"{'style':<34} " + " ".join(f"{'S@' + format(c, 'g'):>7} {'C@' + format(c, 'g'):>7}" for c in cands)
          + "  chosen")
    chosen, table = {}, {}
    for name, img_path, idx in entries:
        s = load_image(img_path, SIZE)
        w = torch.nn.functional.one_hot(torch.tensor(idx), model.num_styles).float()
        res = {}
        for c in cands:
            d = [distances(stylize_fast(model, x, w, stroke_scale=c), x, s) for x in contents]
            res[c] = (statistics.fmean(v.style for v in d), statistics.fmean(v.content for v in d))
        best = min(res[c][0] for c in cands)
        pick = max(c for c in cands if res[c][0] <= best + SELECT_TIE)
        chosen[name], table[name] = pick, {f"{c:g}": {"s_out": res[c][0], "c_out": res[c][1]} for c in cands}
        print(f"{name:<34} " + " ".join(f"{res[c][0]:7.3f} {res[c][1]:7.3f}" for c in cands) + f"  {pick:g}",
              flush=True)
    print("stroke_scales:", json.dumps(chosen))
    if a.json:
        Path(a.json).write_text(json.dumps({"photos": [p.name for p in photos], "table": table,
                                            "stroke_scales": chosen}, indent=2))
    if a.write_catalogue:
        rid = write_stroke_scales(getattr(model, "model_id", a.model), chosen, table, [p.name for p in photos],
                                  "stylekit bench fast " + " ".join(a._argv))
        print(f"wrote the stroke scales into the catalogue record {rid!r}")
    return 0


def write_stroke_scales(model_id: str | None, chosen: dict[str, float], table: dict[str, dict],
                        photos: list[str], command: str) -> str:
    """Store a ``--select-stroke-scale`` result in the model's catalogue record (``stroke_scales``, the
    styles not at 1, and ``stroke_scale_selection``: the command, the photos and every candidate's mean
    S(out)); returns the record's id."""
    from .weights import get_record, register_model

    rec = get_record(model_id, "fast")
    rec.metadata["stroke_scales"] = {k: v for k, v in chosen.items() if v != 1.0}
    rec.metadata["stroke_scale_selection"] = {
        "command": command, "photos": photos,
        "s_out": {k: {c: round(v["s_out"], 4) for c, v in t.items()} for k, t in table.items()}}
    register_model(rec, persist=True)
    return rec.id


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stylekit bench fast", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="folder with content/ (default ../shared/data)")
    p.add_argument("--model", default=None, help="one catalogue model id for every style (default: each style on "
                                                 "its own network where one is shipped, else fast_gallery)")
    p.add_argument("--weights-file", default=None, help="a weights file / training checkpoint instead")
    p.add_argument("--photos", type=int, default=3, help="held-out photos per style (default 3)")
    p.add_argument("--gatys-photos", type=int, default=2, help="of those, how many get a Gatys reference (default 2)")
    p.add_argument("--gatys-steps", type=int, default=None, help="override the Gatys preset's iterations")
    p.add_argument("--gatys-style-weight", type=float, default=None,
                   help="override the Gatys preset's style weight (cached results are kept per weight)")
    p.add_argument("--gatys-cache", default="runs/bench_fast_gatys", help="where Gatys results are kept and reused")
    p.add_argument("--gatys-only", action="store_true", help="only compute (and cache) the Gatys results")
    p.add_argument("--cached-gatys-only", action="store_true",
                   help="use Gatys results already in the cache; skip pairs without one (no new Gatys runs)")
    p.add_argument("--styles", default=None, help="comma-separated subset of the gallery styles")
    p.add_argument("--stroke-scale", type=finite_float(0.25, 4.0), default=None,
                   help="run every style at this stroke scale (the network at 1/S of the photo's size, resized "
                        "back; stylekit fast --stroke-scale) instead of each style's own")
    p.add_argument("--select-stroke-scale", default=None, metavar="S1,S2,...",
                   help="choose each style's stroke scale among these on --photos training photos (not the "
                        "held-out ones) and print the choice; no Gatys, no contact sheet")
    p.add_argument("--write-catalogue", action="store_true",
                   help="with --select-stroke-scale: store the choice in the model's catalogue record")
    p.add_argument("--sheet", default=None,
                   help=f"contact sheet PNG to write ('' = none); default {DOCS_SHEET} when the run is the shipped "
                        "catalogue as it ships (no --weights-file, --model, --styles or --stroke-scale), else none")
    p.add_argument("--json", default=None, help="also write the table as JSON here")
    p.add_argument("--repeat", type=int, default=3, help="timing repetitions (median)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--by-layer", action="store_true",
                   help="also print each style distance per VGG layer (relu1_1..relu5_1) for out, content and Gatys")
    a = p.parse_args(argv)
    a._argv = list(argv) if argv is not None else sys.argv[1:]

    from .errors import ParameterError
    from .feedforward import diagnose, stylize_fast
    from .images import load_image, save_image
    from .metrics import STYLE_LAYERS, distances, self_style_distance, style_distance_by_layer
    from .weights import fast_model_from_file, get_record, list_styles, load_fast_model, solo_style

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.write_catalogue and (not a.select_stroke_scale or a.weights_file):
        raise ParameterError("--write-catalogue goes with --select-stroke-scale on a catalogue model (no --weights-file)")
    gallery = list_styles()
    if a.weights_file:
        model = fast_model_from_file(a.weights_file)
        names = list(model.style_names)
        images = [Path(p) for p in model.metadata.get("style_images", [])]
        entries = [(n, images[i] if i < len(images) else None, i) for i, n in enumerate(names)]
        by_name = {s.name: s.image for s in gallery}
        entries = [(n, img if img and img.exists() else by_name.get(n), i) for n, img, i in entries]
        styles = gallery  # the catalogue's stroke scales for the same style names
    else:
        if a.model or a.select_stroke_scale:  # one catalogue model (default: the gallery)
            model = load_fast_model(a.model)
            styles = list_styles(getattr(model, "model_id", a.model))
        else:  # each style on the network it runs on alone: its own where one is shipped, else the gallery
            model, styles = None, [solo_style(s) for s in gallery]
        entries = [(s.name, s.image, s.index) for s in styles]
    own_scale = {s.name: s.stroke_scale for s in styles}
    if a.styles:
        want = [x.strip() for x in a.styles.split(",") if x.strip()]
        entries = [e for e in entries if any(w == e[0] or w in e[0] for w in want)]
    if a.select_stroke_scale:
        return _select_stroke_scale(a, model, entries)
    if a.sheet is None:  # a partial or experimental run must not overwrite the docs' sheet of the shipped gallery
        as_shipped = not (a.weights_file or a.model or a.styles or a.stroke_scale is not None)
        a.sheet = DOCS_SHEET if as_shipped else ""
    model_of = {s.name: s.model for s in styles}
    nets = {n: model if model is not None else load_fast_model(model_of[n]) for n, _, _ in entries}
    from .training import held_out_sample

    photos = held_out_sample(Path(a.data) / "content", a.photos)
    if not photos or not entries:
        raise ParameterError(f"no held-out photos under {a.data}/content or no styles to benchmark")
    cache = Path(a.gatys_cache) if a.gatys_cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    contents = {p: load_image(p, SIZE) for p in photos}

    print(f"feed-forward gallery benchmark: {len(entries)} styles x {len(photos)} held-out photos at {SIZE} px "
          f"(Gatys 'default' on {min(a.gatys_photos, len(photos))}; C_out is over those)"
          + (f", stroke scale {a.stroke_scale:g} for every style" if a.stroke_scale is not None
             else ", each style at its own stroke scale (ss)"))
    hdr = (f"{'style':<34} {'ss':>4} {'S_out':>6} {'S_cont':>6} {'S_gat':>6} {'S_self':>6} {'C_out':>6} "
           f"{'C_gat':>6} {'t_ms':>6} {'drop':>5} {'dead%':>5}  ok")
    if not a.gatys_only:
        print(hdr)
    rows, labels, table, all_ok, n_below_self = [], [], [], True, 0
    for name, img_path, idx in entries:
        if img_path is None:
            raise ParameterError(f"style image of {name!r} not found")
        s = load_image(img_path, SIZE)
        ss = a.stroke_scale if a.stroke_scale is not None else own_scale.get(name, 1.0)
        per = []
        for j, cp in enumerate(photos):
            c = contents[cp]
            gat = None
            if j < a.gatys_photos:
                gat, _ = _gatys(cache, cp, name, c, s, a.gatys_steps, a.cached_gatys_only, a.gatys_style_weight)
            if a.gatys_only:
                continue
            net = nets[name]
            w = torch.nn.functional.one_hot(torch.tensor(idx), net.num_styles).float()
            times = []
            for _ in range(max(1, a.repeat)):
                t0 = time.perf_counter()
                out = stylize_fast(net, c, w, stroke_scale=ss)
                times.append(time.perf_counter() - t0)
            d_o, d_c = distances(out, c, s), distances(c, c, s)
            d_g = distances(gat, c, s) if gat is not None else None
            diag = diagnose(net, c, w)
            per.append(dict(photo=cp.name, s_out=d_o.style, s_c=d_c.style, c_out=d_o.content,
                            s_g=d_g.style if d_g else None, c_g=d_g.content if d_g else None,
                            t=statistics.median(times), drop=diag["droplet"], dead=100 * diag["dead"]))
            if a.by_layer:
                per[-1]["by_layer"] = {k: style_distance_by_layer(x, s) for k, x in
                                       (("out", out), ("content", c), ("gatys", gat)) if x is not None}
            if j == 0:
                rows.append([c, gat if gat is not None else torch.full_like(c, 0.5), out])
                labels.append(f"{name} | {cp.name}: content | " + ("Gatys default" if gat is not None else
                              "(no Gatys result)") + " | feed-forward")
        if a.gatys_only:
            continue
        mean = lambda k, rs: statistics.fmean(r[k] for r in rs)  # noqa: E731
        with_g = [r for r in per if r["c_g"] is not None]
        s_out, s_c, t = mean("s_out", per), mean("s_c", per), mean("t", per)
        c_out_g = mean("c_out", with_g) if with_g else float("nan")
        c_g = mean("c_g", with_g) if with_g else float("nan")
        s_g = mean("s_g", with_g) if with_g else float("nan")
        ok_s = s_out <= 0.4 * s_c
        ok_c = (c_out_g <= 1.5 * c_g) if with_g else True
        ok = ok_s and ok_c
        all_ok &= ok
        s_self = self_style_distance(s)
        below_self = 0.4 * s_c < s_self
        n_below_self += below_self
        table.append(dict(style=name, model=getattr(nets[name], "model_id", a.weights_file), stroke_scale=ss, s_out=s_out, s_content=s_c, s_gatys=s_g, c_out=mean("c_out", per),
                          c_out_on_gatys_photos=c_out_g, c_gatys=c_g, ms=t * 1000, style_ok=ok_s, content_ok=ok_c,
                          s_self=s_self, goal_below_s_self=below_self, droplet=mean("drop", per), dead_percent=mean("dead", per), per_photo=per))
        if a.by_layer:
            table[-1]["by_layer"] = {k: {l: statistics.fmean(r["by_layer"][k][l] for r in per if k in r["by_layer"])
                                         for l in STYLE_LAYERS}
                                     for k in ("out", "content", "gatys") if any(k in r["by_layer"] for r in per)}
        c_shown = c_out_g if with_g else mean("c_out", per)
        print(f"{name:<34} {ss:4.2g} {s_out:6.3f} {s_c:6.3f} {s_g:6.3f} {s_self:6.3f} {c_shown:6.3f} {c_g:6.3f} {t * 1000:6.0f} "
              f"{mean('drop', per):5.1f} {mean('dead', per):5.2f}  "
              f"{'yes' if ok else 'NO'}{'' if ok_s else ' (style)'}{'' if ok_c else ' (content)'}"
              f"{'  goal < S_self' if below_self else ''}", flush=True)
    if a.gatys_only:
        print("Gatys results cached in", cache)
        return 0
    default_id = get_record(None, "fast").id
    own = [f"{r['style']} ({r['model']})" for r in table if model is None and r["model"] != default_id]
    if own:
        print(f"on their own networks: {', '.join(own)}; the other styles on the gallery")
    print(f"criteria: S(out) <= 0.4 * S(content) and C(out) <= 1.5 * C(Gatys) per style -> "
          f"{'all pass' if all_ok else 'NOT all pass'}")
    print("drop: the droplet diagnostic (feedforward.droplet_score: over the instance norms' inputs, the largest "
          "mean over the channels of |z-score| at one position; about 3-5 without, 10+ with a rimmed blob)")
    print("dead%: the share of pixels where every activation feeding the output layer is off (feedforward."
          "dead_fraction): the output there is the photo plus a constant, an 'identity hole' with a rim")
    if a.by_layer:
        print(f"\nstyle distance per layer (means over the photos; Gatys over its photos): "
              f"{' '.join(f'{l:>7}' for l in STYLE_LAYERS)}")
        for row in table:
            for k, v in row["by_layer"].items():
                print(f"  {row['style']:<34} {k:<8} {' '.join(f'{v[l]:7.3f}' for l in STYLE_LAYERS)}")
    if n_below_self:
        print(f"for {n_below_self} of {len(table)} styles the style goal 0.4 * S(content) is below S_self, the "
              "painting's own corner crops' distance from the whole")
    if a.sheet and rows:
        sheet = _sheet(rows, labels)
        Path(a.sheet).parent.mkdir(parents=True, exist_ok=True)
        save_image(sheet, a.sheet)
        print("contact sheet:", a.sheet)
    if a.json:
        Path(a.json).write_text(json.dumps(table, indent=2))
    return 0
