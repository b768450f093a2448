"""``stylekit bench MODE [ARGS...]``: benchmarks that print tables (gatys, fast, adain).

Each mode lives in ``stylekit.bench_<mode>`` with a ``main(argv) -> int``; arguments after MODE are
passed to it unchanged (``stylekit bench gatys --help``).
"""
from __future__ import annotations

import argparse
import importlib

from .cli import register
from .errors import StyleKitError

MODES = {
    "gatys": "stylekit.bench_gatys",
    "fast": "stylekit.bench_fast",
    "adain": "stylekit.bench_adain",
}


@register
def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (time, quality, memory) that print a table",
                       description="Run a benchmark; arguments after MODE go to it (try: stylekit bench gatys --help).")
    p.add_argument("mode", choices=list(MODES), help="which benchmark")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the benchmark")
    p.set_defaults(func=_run)


def _run(a: argparse.Namespace) -> int:
    try:
        mod = importlib.import_module(MODES[a.mode])
    except ModuleNotFoundError as e:
        if e.name == MODES[a.mode]:
            raise StyleKitError(f"the '{a.mode}' benchmark is not available in this install") from None
        raise
    try:
        return int(mod.main(list(a.args)) or 0)
    except SystemExit as e:  # argparse inside the benchmark (--help, bad arguments)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
