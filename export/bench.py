"""``python -m export bench``: PyTorch eager vs onnxruntime, feed-forward and AdaIN, at 256, 512, 1024.

Median of several runs in one process. The backends are interleaved (eager, onnx, int8, eager, ...)
so a background load on the shared CPU hits all of them alike. Peak memory is the growth of the
peak resident set (Linux ``/proc/self/clear_refs``) of a fresh process, from just before the
onnxruntime session is created (so it includes the session's copy of the weights and its memory
arena) or just before the first eager run, to the end of one run at that size (not in ``--quick``). AdaIN times use cached
style statistics on both sides (the style is encoded once). Uses the shipped models when the
catalogue has them, else randomly initialized networks of the shipped architectures (timing does
not depend on the weight values; int8 quality does).

``--quick``: feed-forward at 512 only, 3 runs, no memory column; ends with one line
``fast 512: onnx/eager=0.61 int8/eager=0.40 maxerr=3e-06``.

On the CPU the table also has **torch bf16**: the PyTorch network as a bf16 copy
(:func:`stylekit.precision.bf16_copy`), what the runners use on CPUs with native bf16 (AVX512-BF16,
AMX; elsewhere bf16 is emulated and slow, and the header says which); the notes give its PSNR against
float32 eager at 512 px.

``--device cuda``: the same table on the GPU — PyTorch eager fp32 on CUDA against onnxruntime's CUDA
provider with the fp32 and fp16 files. Every timed call goes from a float32 image in host memory to
the result in host memory (eager: copy in, forward, copy out, synchronize), so both sides pay the same
transfers; the memory column is then the peak CUDA memory PyTorch allocated (eager rows only).
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch


@dataclass
class Row:
    mode: str
    size: int
    backend: str
    median_s: float
    peak_mb: float
    ratio: float = float("nan")
    note: str = ""


def _rss_kb(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_mb(fn: Callable[[], Any]) -> float:
    """Peak resident-memory growth of one call, in MB (nan where Linux's peak reset is unavailable)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    before = _rss_kb("VmRSS")
    fn()
    return max(0, _rss_kb("VmHWM") - before) / 1024


def mem_child(mode: str, backend: str, size: int, onnx_dir: str) -> float:
    """In this (fresh) process: peak RSS growth of creating the runner (onnxruntime) and running once."""
    torch.set_num_threads(__import__("export.runtime", fromlist=["cpu_threads"]).cpu_threads())
    x = _photo(size)
    d = Path(onnx_dir) if onnx_dir else None
    if mode == "fast":
        src, note = _fast_model()
        net = src.modules().float().eval()
        w = torch.full((1, len(src.styles)), 1.0 / len(src.styles))
        if backend == "eager":
            def fn():
                with torch.no_grad():
                    net(x, w)
        else:
            from .runtime import get_fast_runner

            def fn():
                r = get_fast_runner(src.name, net=None if note == "shipped" else net,
                                    style_names=src.styles, variant=backend, device="cpu", onnx_dir=d)
                r.stylize(x, w)
    else:
        from stylekit.adain import StyleStats, transfer

        src, note = _adain_model()
        model = src.modules()
        stats = StyleStats(torch.rand(1, 512, 1, 1) * 10, torch.rand(1, 512, 1, 1) * 10 + 1)
        if backend == "eager":
            def fn():
                transfer(model, x, [stats])
        else:
            from .runtime import get_adain_runner

            def fn():
                r = get_adain_runner(src.name, model=None if note == "shipped" else model,
                                     variant=backend, device="cpu", onnx_dir=d)
                r.stylize(x, stats)
    return peak_mb(fn)


def peak_in_fresh_process(mode: str, backend: str, size: int, onnx_dir: Path | None) -> float:
    import subprocess
    import sys

    code = ("import sys, warnings; warnings.simplefilter('ignore'); import export.bench as b; "
            f"b.FAST_WEIGHTS = {FAST_WEIGHTS!r}; print(b.mem_child({mode!r}, {backend!r}, {size}, {str(onnx_dir or '')!r}))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                             cwd=str(Path(__file__).resolve().parent.parent))
        return float(out.stdout.strip().splitlines()[-1])
    except Exception:  # noqa: BLE001
        return float("nan")


def time_interleaved(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 1) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _photo(size: int) -> torch.Tensor:
    from stylekit.images import load_image, resize

    from .data import validation_photos

    files = validation_photos(2)
    if files:
        return resize(load_image(files[0]), size, size)
    g = torch.Generator().manual_seed(0)
    return torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=(size, size), mode="bilinear")


FAST_WEIGHTS: str | None = None  # --fast-weights: a feed-forward .safetensors instead of the catalogue's


def _eager_on(device: str, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], Any]:
    """A timed call of ``fn`` from host memory to host memory on ``device`` (synchronized on CUDA)."""
    if device == "cpu":
        return lambda: fn(x)

    def run() -> torch.Tensor:
        y = fn(x.to(device, non_blocking=True)).to("cpu")
        torch.cuda.synchronize()
        return y
    return run


def _cuda_peak_mb(fn: Callable[[], Any]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    return max(0, torch.cuda.max_memory_allocated() - base) / 2**20


def _fast_model() -> tuple[Any, str]:
    from stylekit.errors import StyleKitError

    if FAST_WEIGHTS:
        from stylekit.weights import fast_model_from_file

        from .runtime import _fast_source

        net = fast_model_from_file(FAST_WEIGHTS)
        return _fast_source(Path(FAST_WEIGHTS).stem, net, getattr(net, "style_names", None)), Path(FAST_WEIGHTS).name

    try:
        from .catalogue import fast_source

        return fast_source(None), "shipped"
    except StyleKitError:
        from stylekit.feedforward import TransformerNet

        from .runtime import _fast_source

        torch.manual_seed(0)
        net = TransformerNet(num_styles=4) if "num_styles" in TransformerNet.__init__.__code__.co_varnames else TransformerNet()
        return _fast_source("random-init", net.eval(), None), "random weights"


def _adain_model() -> tuple[Any, str]:
    from stylekit.errors import StyleKitError

    try:
        from .catalogue import adain_source

        return adain_source(None), "shipped"
    except StyleKitError:
        from stylekit.adain import AdaINModel, Decoder

        from .runtime import _adain_source

        torch.manual_seed(0)
        return _adain_source("random-init", AdaINModel(Decoder())), "random weights"


def _rejected_reason(path: Path | None, variant: str) -> str:
    if path is None:
        return "no onnxruntime"
    note = Path(str(path).replace(".fp32.onnx", f".{variant}.rejected"))
    return note.read_text().strip().splitlines()[0] if note.exists() else "unavailable"


def _log(msg: str) -> None:
    print(msg, flush=True)


def _timed_rows(mode: str, label: str, size: int, fns: dict[str, Callable[[], Any]], runs: int, device: str,
                measure_memory: bool, onnx_dir: Path | None, note: str, emit) -> list[Row]:
    """Time ``fns`` (interleaved; the first is the eager reference) and make one table row per backend."""
    med = time_interleaved(fns, runs)
    ref = next(iter(fns))
    rows = []
    for k, fn in fns.items():
        if not measure_memory:
            mem = float("nan")
        elif device != "cpu":
            mem = _cuda_peak_mb(fn) if k == ref else float("nan")
        else:
            mem = peak_in_fresh_process(mode, k.split()[-1] if k.startswith("onnx") or k == "torch bf16" else "eager",
                                        size, onnx_dir)
        rows.append(Row(label, size, k, med[k], mem, med[k] / med[ref], note))
        emit(format_row(rows[-1]))
    return rows


def bench_fast(sizes: list[int], runs: int, variants: list[str], onnx_dir: Path | None, log=_log,
               measure_memory: bool = True, emit=_log, device: str = "cpu") -> tuple[list[Row], float]:
    from stylekit.feedforward import stylize_fast
    from stylekit.precision import bf16_copy

    from .runtime import FastRunner, cpu_threads, get_fast_runner
    from .verify import psnr

    src, note = _fast_model()
    net = src.modules().float().eval()
    runners: dict[str, FastRunner] = {}
    for v in variants:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a rejected variant is reported below
            r = get_fast_runner(src.name, net=None if note == "shipped" else net,
                                style_names=src.styles, variant=v, device=device, onnx_dir=onnx_dir)
        if r.variant == v:
            runners[v] = r
        else:
            log(f"# fast {v}: not shipped ({_rejected_reason(r.path, v)}); runners use {r.variant}")
    torch.set_num_threads(cpu_threads())
    n = len(src.styles)
    net = net.to(device)
    low = bf16_copy(net) if device == "cpu" else None
    w = torch.full((1, n), 1.0 / n, device=device)
    rows: list[Row] = []
    maxerr = 0.0
    for s in sizes:
        x = _photo(s)

        def forward(xd: torch.Tensor) -> torch.Tensor:
            return stylize_fast(net, xd, w)

        eager = _eager_on(device, forward, x)
        fns: dict[str, Callable[[], Any]] = {"torch eager fp32": eager}
        if low is not None:
            fns["torch bf16"] = lambda: stylize_fast(low, x, w)
        for v, r in runners.items():
            fns[f"onnxruntime {v}"] = (lambda r=r: r.stylize(x, w.cpu()))
        if s == 512 and "fp32" in runners:
            maxerr = float((runners["fp32"].stylize(x, w.cpu()) - eager().cpu()).abs().max())
        if s == 512 and low is not None:
            log(f"# fast torch bf16 at 512: {psnr(stylize_fast(low, x, w), eager()):.1f} dB against float32 eager")
        rows += _timed_rows("fast", "fast", s, fns, runs, device, measure_memory, onnx_dir, note, emit)
    return rows, maxerr


def bench_adain(sizes: list[int], runs: int, variants: list[str], onnx_dir: Path | None, log=_log,
                measure_memory: bool = True, emit=_log, device: str = "cpu") -> list[Row]:
    from stylekit.adain import style_statistics, transfer

    from .runtime import cpu_threads, get_adain_runner
    from .verify import psnr

    src, note = _adain_model()
    model = src.modules()
    runners = {}
    for v in variants:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = get_adain_runner(src.name, model=None if note == "shipped" else model,
                                 variant=v, device=device, onnx_dir=onnx_dir)
        if r.variant == v:
            runners[v] = r
        else:
            log(f"# adain {v}: not shipped ({_rejected_reason(r.stylizer.path if r.stylizer else None, v)}); "
                f"runners use {r.variant}")
    torch.set_num_threads(cpu_threads())
    style = _photo(256).flip(-1)
    stats = style_statistics(model, style)
    model_d = model.to(device)
    stats_d = stats.to(device)
    low = model.bf16_copy() if device == "cpu" else None
    rows: list[Row] = []
    for s in sizes:
        x = _photo(s)
        eager = _eager_on(device, lambda xd: transfer(model_d, xd, [stats_d]), x)
        fns: dict[str, Callable[[], Any]] = {"torch eager fp32": eager}
        if low is not None:
            fns["torch bf16"] = lambda: transfer(low, x, [stats])
            if s == 512:
                log(f"# adain torch bf16 at 512: {psnr(transfer(low, x, [stats]), eager()):.1f} dB against "
                    "float32 eager")
        for v, r in runners.items():
            fns[f"onnxruntime {v}"] = (lambda r=r: r.stylize(x, stats))
        rows += _timed_rows("adain", "adain (cached stats)", s, fns, runs, device, measure_memory, onnx_dir,
                            note, emit)
    return rows


HEADER = "| mode | size | backend | median ms | x eager | peak MB | weights |\n|---|---|---|---:|---:|---:|---|"


def format_row(r: Row) -> str:
    mem = "-" if r.peak_mb != r.peak_mb else f"{r.peak_mb:.0f}"
    return (f"| {r.mode} | {r.size}² | {r.backend} | {r.median_s * 1000:.0f} | {r.ratio:.2f} | {mem} | "
            f"{r.note} |")


def format_rows(rows: list[Row]) -> str:
    return "\n".join([HEADER] + [format_row(r) for r in rows])


def run(args: argparse.Namespace) -> int:
    import os

    from .runtime import cpu_threads

    global FAST_WEIGHTS
    quick = args.quick
    FAST_WEIGHTS = getattr(args, "fast_weights", None)
    sizes = [512] if quick else list(args.sizes)
    runs = args.runs or (3 if quick else 5)
    onnx_dir = Path(args.onnx_dir) if args.onnx_dir else None
    device = getattr(args, "device", "cpu") or "cpu"
    if device == "cuda":
        from stylekit.errors import ParameterError

        from .runtime import _want_cuda

        if not torch.cuda.is_available():
            raise ParameterError("--device cuda: this PyTorch sees no CUDA GPU")
        _want_cuda("cuda")  # clear error when onnxruntime has no CUDA provider
        fast_variants = adain_variants = ["fp32", "fp16"]
        where = f"{torch.cuda.get_device_name(0)}, host-to-host timings"
    else:
        from stylekit.precision import cpu_has_bf16

        fast_variants = adain_variants = ["fp32", "int8"]
        where = f"{cpu_threads()} threads, native bf16: {'yes' if cpu_has_bf16() else 'no (emulated, slow)'}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# export bench on {device}: {where}, torch {torch.__version__}, load average {load:.2f} "
          f"(backends interleaved, median of {runs})", flush=True)
    mem = not quick
    print(HEADER, flush=True)
    notes: list[str] = []
    try:
        rows, maxerr = bench_fast(sizes, runs, fast_variants, onnx_dir, log=notes.append, measure_memory=mem,
                                  device=device)
    except ImportError as e:  # stylekit.feedforward missing
        notes.append(f"# feed-forward skipped: {e}")
        rows, maxerr = [], float("nan")
    if not (args.fast_only or quick):
        rows += bench_adain(sizes, runs, adain_variants, onnx_dir, log=notes.append, measure_memory=mem,
                            device=device)
    for n in notes:
        print(n)
    r512 = {r.backend: r.ratio for r in rows if r.mode == "fast" and r.size == 512}
    if r512:
        line = f"fast 512: onnx/eager={r512.get('onnxruntime fp32', float('nan')):.2f}"
        if "onnxruntime int8" in r512:  # measured only when it passed the quality gate (= shipped)
            line += f" int8/eager={r512['onnxruntime int8']:.2f}"
        if "onnxruntime fp16" in r512:
            line += f" fp16/eager={r512['onnxruntime fp16']:.2f}"
        if "torch bf16" in r512:
            line += f" bf16/eager={r512['torch bf16']:.2f}"
        print(line + f" maxerr={maxerr:.0e}")
    return 0
