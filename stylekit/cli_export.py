"""``stylekit export {fast,adain,all,verify,bench}``: the ONNX export package's commands (see export/cli.py).

    stylekit export all                 # export the shipped models (fp32, fp16, int8) to the runners' cache
    stylekit export verify FILE.onnx    # compare with PyTorch
    stylekit export bench --quick       # eager vs onnxruntime timings
"""
from __future__ import annotations

import argparse

from .cli import register


@register
def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="ONNX export, verification and benchmark of the fast and AdaIN models",
                       description="Export the shipped networks to ONNX (fp32, fp16, int8), verify the files "
                                   "against PyTorch, benchmark onnxruntime against PyTorch.")
    s = p.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    try:
        from export.cli import add_export_args, add_verify_and_bench, run_export
    except ImportError:  # the export package is not installed alongside
        return
    for what, help_ in (("fast", "export the feed-forward model"), ("adain", "export the AdaIN graphs"),
                        ("all", "export both")):
        e = s.add_parser(what, help=help_)
        add_export_args(e, with_what=False)
        e.set_defaults(func=run_export, what=what)
    add_verify_and_bench(s)
