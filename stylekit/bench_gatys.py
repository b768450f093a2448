"""``stylekit bench gatys``: the tuned ``default`` preset against the classic Gatys loop.

On one content/style pair, at 512 px long side (``--size``):

1. ``default`` preset (multi-scale, early stop) — wall time, style and content distance;
2. the classic loop: full resolution from the first step, L-BFGS, Gatys 2016 weights, 500 iterations
   (the ``gatys2016`` preset) — the same numbers;
3. seconds per iteration (one forward + backward + L-BFGS update) at 256/512/1024 px and peak RSS.

``--bf16 auto|on|off`` applies to every run (auto: bfloat16 on CPUs with AVX512-BF16/AMX, see
:mod:`stylekit.precision`); ``--vs-fp32`` adds the ``default`` preset in float32 on the same pair and
prints the bf16/fp32 ratios of time and distances (measured side by side in one process).

Prints a table. Targets: default's time <= 1/4 of the classic's, its style and content distances each
no more than 10 % above the classic's. ``--quick`` runs a reduced version for smoke testing.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import torch

from .gatys import get_preset, iter_gatys
from .images import load_image, save_image
from .metrics import distances
from .cli import add_bf16_arg
from .precision import use_bf16

_SHARED = Path("/work/shared/data")
_REPO = Path(__file__).resolve().parent.parent


def default_pair() -> tuple[Path, Path]:
    """The cat + Starry Night from demo/examples (or the shared data pack), else the first demo pair."""
    ex = _REPO / "demo" / "examples"
    for root in (ex, _SHARED):
        c, s = root / "content" / "skimage_chelsea_cat.jpg", root / "style" / "vangogh_starry_night.jpg"
        if c.exists() and s.exists():
            return c, s
    if ex.is_dir():
        imgs = sorted(p for p in ex.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
        contents = [p for p in imgs if "content" in str(p.relative_to(ex)).lower()]
        styles = [p for p in imgs if "style" in str(p.relative_to(ex)).lower()]
        if contents and styles:
            return contents[0], styles[0]
    return _SHARED / "content" / "skimage_chelsea_cat.jpg", _SHARED / "style" / "vangogh_starry_night.jpg"


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return r * 1024 / 1e9


def run_preset(name: str, content: torch.Tensor, style: torch.Tensor, size: int, seed: int,
               log: bool = True, **overrides) -> tuple[torch.Tensor, float, float, int]:
    """Run a preset; returns (image, wall seconds, CPU seconds of this process, iterations)."""
    cfg = get_preset(name, **overrides)
    t0, c0 = time.perf_counter(), time.process_time()
    image, steps = None, 0
    for ev in iter_gatys(content, [style], cfg, size, seed=seed):
        steps = ev.step
        if log and (ev.step % 25 == 0 or ev.done):
            print(f"  [{name}] step {ev.step}/{ev.total_steps} scale {ev.scale + 1}/{ev.num_scales} "
                  f"{ev.size[1]}x{ev.size[0]} loss {ev.losses.get('total', float('nan')):.4g} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        if ev.done:
            image = ev.image
    assert image is not None
    return image, time.perf_counter() - t0, time.process_time() - c0, steps


def seconds_per_iteration(content: torch.Tensor, style: torch.Tensor, size: int, iters: int,
                          bf16: str = "auto") -> tuple[float, float]:
    """(wall, CPU) seconds per L-BFGS iteration at long side ``size`` (after 2 warm-up iterations)."""
    cfg = get_preset("gatys2016", steps=iters + 2, bf16=bf16)
    t0 = c0 = None
    for ev in iter_gatys(content, [style], cfg, size):
        if ev.step == 2:  # skip the first iterations (allocation, warm-up)
            t0, c0 = time.perf_counter(), time.process_time()
    assert t0 is not None and c0 is not None
    return (time.perf_counter() - t0) / iters, (time.process_time() - c0) / iters


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="stylekit bench gatys", description=__doc__.split("\n")[0])
    p.add_argument("content", nargs="?", help="content image (default: a demo/data-pack image)")
    p.add_argument("style", nargs="?", help="style image")
    p.add_argument("--size", type=int, default=512, help="long side for the comparison (default 512)")
    p.add_argument("--classic-steps", type=int, default=500, help="iterations of the classic loop (default 500)")
    p.add_argument("--timing-sizes", default="256,512,1024", help="sizes for seconds per iteration")
    p.add_argument("--timing-iters", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes and few iterations (smoke test)")
    p.add_argument("--skip-classic", action="store_true", help="only run the default preset")
    p.add_argument("--save", help="folder to save the two outputs in")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    add_bf16_arg(p)  # applies to every run
    p.add_argument("--vs-fp32", action="store_true",
                   help="also run the default preset in float32 and print the bf16/fp32 ratios")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.quick:
        a.size, a.classic_steps, a.timing_sizes, a.timing_iters = 128, 40, "64,128", 2
    if (a.content is None) != (a.style is None):
        p.error("give both CONTENT and STYLE, or neither")
    cpath, spath = (Path(a.content), Path(a.style)) if a.content else default_pair()
    content, style = load_image(cpath, size=1024), load_image(spath, size=1024)
    if a.save:
        Path(a.save).mkdir(parents=True, exist_ok=True)
    bf16 = use_bf16(a.bf16, torch.device("cpu"))
    print(f"stylekit bench gatys: {cpath.name} + {spath.name}, {a.size} px, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {'bf16' if bf16 else 'float32'}", flush=True)

    rows = []
    out_d, t_d, cpu_d, n_d = run_preset("default", content, style, a.size, a.seed, bf16=a.bf16)
    d_d = distances(out_d, content, style)
    rows.append(("default", t_d, cpu_d, n_d, d_d))
    if a.save:
        save_image(out_d, Path(a.save) / "gatys_default.png")
    fp32 = None
    if a.vs_fp32:
        out_f, t_f, cpu_f, n_f = run_preset("default", content, style, a.size, a.seed, bf16="off")
        fp32 = (t_f, cpu_f, distances(out_f, content, style))
        rows.append(("default, float32", t_f, cpu_f, n_f, fp32[2]))
        if a.save:
            save_image(out_f, Path(a.save) / "gatys_default_fp32.png")
    if not a.skip_classic:
        out_c, t_c, cpu_c, n_c = run_preset("gatys2016", content, style, a.size, a.seed, steps=a.classic_steps,
                                            bf16=a.bf16)
        d_c = distances(out_c, content, style)
        rows.append((f"classic ({a.classic_steps} it)", t_c, cpu_c, n_c, d_c))
        if a.save:
            save_image(out_c, Path(a.save) / "gatys_classic.png")

    print(f"\n{'run':<20} {'wall s':>8} {'CPU s':>8} {'iters':>6} {'style dist':>11} {'content dist':>13}")
    for name, t, cpu, n, d in rows:
        print(f"{name:<20} {t:8.1f} {cpu:8.1f} {n:6d} {d.style:11.4f} {d.content:13.4f}")
    if not a.skip_classic:
        print(f"\ntime ratio default/classic: {t_d / t_c:.3f} wall, {cpu_d / cpu_c:.3f} CPU  (target <= 0.25)")
        print(f"style distance ratio:       {d_d.style / d_c.style:.3f}  (target <= 1.10)")
        print(f"content distance ratio:     {d_d.content / d_c.content:.3f}  (target <= 1.10)")
    if fp32 is not None:
        t_f, cpu_f, d_f = fp32
        print(f"\ndefault {'bf16' if bf16 else '(bf16 off)'} / float32: time {t_d / t_f:.3f} wall, "
              f"{cpu_d / cpu_f:.3f} CPU; style distance {d_d.style / d_f.style:.3f}, "
              f"content distance {d_d.content / d_f.content:.3f}")

    print(f"\n{'size':>6} {'wall s/it':>10} {'CPU s/it':>10} {'peak RSS GB':>12}")
    for s in (int(v) for v in a.timing_sizes.split(",") if v.strip()):
        spi, cpi = seconds_per_iteration(content, style, s, a.timing_iters, a.bf16)
        print(f"{s:6d} {spi:10.3f} {cpi:10.3f} {peak_rss_gb():12.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
