"""The ``stylekit`` command line.

Every mode shares ``-o/--output`` and ``--size`` (long side in pixels). Errors a user can fix
(:class:`~stylekit.errors.StyleKitError`) print one line and exit with status 2, never a traceback;
Ctrl-C exits with 130.

Each sub-command is registered by a ``_add_<name>(sub)`` function below; the handler it sets
(``func``) receives the parsed arguments and returns an exit status.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, Sequence

from . import __version__
from .errors import ParameterError, StyleKitError


# ---- shared argument helpers ----------------------------------------------------------------------
def finite_float(lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """argparse type: a finite float within [lo, hi]."""

    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
        if lo is not None and v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi}, got {v}")
        return v

    return parse


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """argparse type: an integer within [lo, hi]."""

    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {v}")
        return v

    return parse


def add_output_args(p: argparse.ArgumentParser, default_size: int | None = 512) -> None:
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    p.add_argument("--size", type=int_range(16, 4096), default=default_size,
                   help=f"long side of the output in pixels (default {default_size})")


def add_bf16_arg(p: argparse.ArgumentParser) -> None:
    """``--bf16 auto|on|off`` of Gatys and the trainers (resolved by :func:`stylekit.precision.use_bf16`)."""
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help="bfloat16 autocast: auto = on for CUDA and for CPUs with AVX512-BF16/AMX "
                        "(statistics and losses stay float32)")


# ---- metrics ----------------------------------------------------------------------------------------
def _add_metrics(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="style and content distance of a stylized image")
    p.add_argument("output", help="the stylized image")
    p.add_argument("content", help="the content image")
    p.add_argument("style", help="the style image")

    def run(a: argparse.Namespace) -> int:
        from .images import load_image
        from .metrics import distances

        d = distances(load_image(a.output), load_image(a.content), load_image(a.style))
        print(f"style_distance\t{d.style:.4f}\ncontent_distance\t{d.content:.4f}")
        return 0

    p.set_defaults(func=run)


# Registration order = order in --help. Other modules' commands are added below as they land.
_REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = [_add_metrics]


def register(fn: Callable[[argparse._SubParsersAction], None]) -> Callable[[argparse._SubParsersAction], None]:
    _REGISTRY.append(fn)
    return fn


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = argparse.ArgumentParser(prog="stylekit", description="Neural style transfer: Gatys, feed-forward, AdaIN.")
    parser.add_argument("--version", action="version", version=f"stylekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for fn in _REGISTRY:
        fn(sub)
    return parser


_COMMAND_MODULES = (
    # each module registers its sub-commands with @register when imported
    "stylekit.cli_gatys",
    "stylekit.cli_fast",
    "stylekit.cli_adain",
    "stylekit.cli_bench",
    "stylekit.cli_compare",
    "stylekit.cli_export",
)


def _load_commands() -> None:
    import importlib
    import importlib.util

    for m in _COMMAND_MODULES:
        if m in sys.modules:
            continue
        if importlib.util.find_spec(m) is not None:
            importlib.import_module(m)


def run_command(args: argparse.Namespace, prog: str = "stylekit") -> int:
    """Run a parsed sub-command: a library error or a missing/unreadable file is one line on stderr and
    exit status 2, Ctrl-C is 130; never a traceback. Shared by ``stylekit`` and ``python -m export``."""
    try:
        return int(args.func(args) or 0)
    except (StyleKitError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        print(f"{prog} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    # `python -m stylekit.cli`: run the package's module, so sub-commands register into the same registry
    from stylekit.cli import main as _main

    sys.exit(_main())
