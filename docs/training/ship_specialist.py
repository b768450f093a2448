"""Ship one style's own network (a ``docs/training/specialist.sh`` run) beside the gallery.

    python docs/training/ship_specialist.py runs/specialist_vangogh_starry_night [--note "..."]

The run folder holds ``checkpoint.safetensors`` (a one-style ``train-fast`` checkpoint),
``stroke_scale.json`` (``stylekit bench fast --select-stroke-scale ... --json``, on training photos) and
``bench.json`` (``stylekit bench fast --styles STYLE ... --json``, on the held-out photos); the
checkpoint may also be an already packaged fp16 file (what next_gpu_session.sh brings back). Writes
``stylekit/models/fast_<style>.safetensors`` (fp16) and its catalogue record: ``"specialist": true``,
the stroke scale and its selection table, the benchmark's figures and the training lineage (``rounds``:
each ``--init`` run's command, steps, seconds and machine, written by ``package_fast_checkpoint``). From
then on the style runs alone on this network (CLI, demo, export, bench); blends still run on the gallery
(``stylekit.weights.fast_model_for``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from stylekit import weights as W  # noqa: E402
from stylekit.training import read_checkpoint  # noqa: E402
from stylekit.weights import MODELS_DIR, find_style, package_fast_checkpoint, read_weights_file  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="the specialist run's folder")
    p.add_argument("--note", default="", help="a sentence for the catalogue record")
    a = p.parse_args(argv)
    ck_path = a.run / "checkpoint.safetensors"
    state, info = read_weights_file(ck_path)
    if "format" in info:  # a train-fast checkpoint (a CPU run)
        ck = read_checkpoint(ck_path)
        meta, steps = dict(ck.meta), ck.step
    else:  # already packaged (fp16, what next_gpu_session.sh brings back from the GPU): it has its rounds
        ck, meta, steps = None, info, int(info.get("steps", 0))
    names = list(meta.get("styles", []))
    if len(names) != 1:
        raise SystemExit(f"{ck_path} holds {len(names)} styles; a specialist holds one")
    style = names[0]
    find_style(style)  # the gallery must know the style (its image and license are committed there)
    select = json.loads((a.run / "stroke_scale.json").read_text())
    bench = next(r for r in json.loads((a.run / "bench.json").read_text()) if r["style"] == style)
    ss = float(select["stroke_scales"][style])
    if abs(float(bench["stroke_scale"]) - ss) > 1e-9:
        raise SystemExit(f"bench.json was run at stroke scale {bench['stroke_scale']}, the selection chose {ss}")
    r3 = lambda v: None if v is None else round(float(v), 3)  # noqa: E731
    metrics = {
        "bench": f"stylekit bench fast --weights-file {ck_path} --styles {style} --photos 2 --gatys-photos 1 "
                 f"--by-layer --stroke-scale {ss:g} (512 px, held-out photos)",
        "style_distance": {style: r3(bench["s_out"])}, "content_image_style_distance": {style: r3(bench["s_content"])},
        "gatys_style_distance": {style: r3(bench["s_gatys"])},
        "content_distance_on_gatys_photo": {style: r3(bench["c_out_on_gatys_photos"])},
        "gatys_content_distance": {style: r3(bench["c_gatys"])},
        "style_ok": {style: bool(bench["style_ok"])}, "content_ok": {style: bool(bench["content_ok"])},
        "dead_percent": {style: r3(bench["dead_percent"])}, "droplet": {style: r3(bench["droplet"])},
        "by_layer": {k: {l: r3(v) for l, v in d.items()} for k, d in bench.get("by_layer", {}).items()},
    }
    selection = {"command": f"stylekit bench fast --weights-file {ck_path} --select-stroke-scale "
                            f"{','.join(select['table'][style])} --photos {len(select['photos'])}",
                 "photos": select["photos"],
                 "s_out": {c: round(v["s_out"], 4) for c, v in select["table"][style].items()}}
    mid = f"fast_{style}"
    out = MODELS_DIR / f"{mid}.safetensors"
    extra = {"specialist": True, "stroke_scales": {style: ss}, "stroke_scale_selection": selection,
             "metrics": metrics, "init": meta.get("init"),
             "note": a.note or f"{style}'s own network: the shipped gallery fine-tuned on this style alone "
                               f"(docs/training/specialist.sh); {steps} steps in the last run"}
    if ck is not None:
        rec = package_fast_checkpoint(ck_path, out, model_id=mid, style_images=[f"styles/{style}.jpg"], extra=extra)
    else:  # the packaged file with the new metadata
        rec = W.write_fast_file(state, info | extra | {"id": mid, "style_images": [f"styles/{style}.jpg"]}, out, mid,
                                register=False)
        W.fast_model_from_file(out)  # validates the architecture before the catalogue names the file
        W.register_model(rec, persist=True)
    print(f"shipped {rec.path.relative_to(REPO)} ({rec.path.stat().st_size / 1e6:.1f} MB) as {mid!r}: "
          f"S(out) {metrics['style_distance'][style]} (goal {0.4 * bench['s_content']:.3f}), "
          f"C {metrics['content_distance_on_gatys_photo'][style]} (limit {1.5 * bench['c_gatys']:.3f}), "
          f"stroke scale {ss:g}; {len(rec.metadata.get('rounds') or [1])} training rounds, "
          f"{rec.metadata.get('total_steps', steps)} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
