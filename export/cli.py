"""Command line of the export package: ``python -m export {export,verify,bench}``.

The same commands are reachable as ``stylekit export {fast,adain,all,verify,bench}`` (stylekit/cli_export.py).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from stylekit.errors import StyleKitError


def _variants(s: str) -> list[str]:
    out = [v.strip() for v in s.replace(",", " ").split() if v.strip()]
    bad = [v for v in out if v not in ("fp32", "fp16", "int8")]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"variants are fp32, fp16, int8 (comma separated), got {s!r}")
    return out


def add_export_args(p: argparse.ArgumentParser, with_what: bool = True) -> None:
    if with_what:
        p.add_argument("what", choices=("fast", "adain", "all"), nargs="?", default="all",
                       help="which model(s) to export (default all)")
    p.add_argument("--name", default=None, help="catalogue model name (default: the shipped default models: the "
                                                      "feed-forward gallery and each style's own network, the AdaIN decoder)")
    p.add_argument("-o", "--output-dir", default=None,
                   help="folder for the .onnx files (default: the runners' cache, $STYLEKIT_ONNX_DIR or "
                        "~/.cache/stylekit/onnx)")
    p.add_argument("--variants", type=_variants, default=["fp32", "fp16", "int8"],
                   help="comma separated: fp32, fp16, int8 (default all three; fp32 is always made)")
    p.add_argument("--calibration", default=None, help="folder of photos to calibrate int8 on "
                                                       "(default: held-out validation photos or demo examples)")
    p.add_argument("--verify", action="store_true", help="verify every file against PyTorch after exporting")


def add_verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="exported .onnx file(s)")


def add_bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="512 only, 3 runs: under a minute")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="square sizes (default 256 512 1024)")
    p.add_argument("--runs", type=int, default=None, help="timed runs per backend and size (default 5; quick 3)")
    p.add_argument("--fast-only", action="store_true", help="feed-forward only")
    p.add_argument("--onnx-dir", default=None, help="export cache to use (default: the runners' cache)")
    p.add_argument("--fast-weights", default=None, metavar="FILE",
                   help="time this feed-forward .safetensors (e.g. a training checkpoint) instead of the catalogue's")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cpu (default): eager vs onnxruntime fp32 and int8 on the CPU; cuda: eager on the GPU vs "
                        "onnxruntime's CUDA provider with the fp32 and fp16 files (needs onnxruntime-gpu)")


def run_export(a: argparse.Namespace) -> int:
    from .make import export_models

    what = getattr(a, "what", "all")
    kinds = ("fast", "adain") if what == "all" else (what,)
    cal = sorted(p for p in Path(a.calibration).iterdir()) if a.calibration else None
    if a.calibration and not cal:
        raise StyleKitError(f"calibration folder '{a.calibration}' holds no photos")
    files = export_models(kinds, name=a.name, out_dir=Path(a.output_dir) if a.output_dir else None,
                          variants=a.variants, calibration=cal, log=print)
    if a.verify:
        return run_verify(argparse.Namespace(files=[str(f) for f in files]))
    return 0


def run_verify(a: argparse.Namespace) -> int:
    from .verify import format_checks, verify_file

    ok = True
    for f in a.files:
        checks = verify_file(f)
        print(format_checks(f, checks), flush=True)
        ok &= all(c.ok for c in checks)
    return 0 if ok else 1


def run_bench(a: argparse.Namespace) -> int:
    from .bench import run

    return run(a)


def add_verify_and_bench(sub: argparse._SubParsersAction) -> None:
    """The ``verify`` and ``bench`` subcommands (here and under ``stylekit export``)."""
    v = sub.add_parser("verify", help="compare exported .onnx files with their PyTorch source")
    add_verify_args(v)
    v.set_defaults(func=run_verify)
    b = sub.add_parser("bench", help="PyTorch eager vs onnxruntime timings (a table)")
    add_bench_args(b)
    b.set_defaults(func=run_bench)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export",
                                description="ONNX export of stylekit's networks, verification and benchmark.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    e = sub.add_parser("export", help="export the shipped models to .onnx files (fp32, fp16, int8)")
    add_export_args(e)
    e.set_defaults(func=run_export)
    add_verify_and_bench(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from stylekit.cli import run_command

    return run_command(build_parser().parse_args(argv), prog="export")
