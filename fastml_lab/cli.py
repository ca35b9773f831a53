"""The ``fastml-lab`` command line: one verb per pipeline step, each a thin layer over the Python API.

Heavy libraries are imported inside each verb, so ``fastml-lab emulate`` and ``fastml-lab run`` work
on a board that has numpy alone.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .exceptions import FastMLError

_VERBS = {}


def verb(name: str, help: str):
    """Register ``func(args)`` as the verb ``name``; ``func.configure(parser)`` adds its options."""

    def wrap(func):
        _VERBS[name] = (func, help)
        return func

    return wrap


def _configure(name):
    def wrap(func):
        _VERBS[name][0].configure = func
        return func

    return wrap


# ---------------------------------------------------------------------------------------------- demo
@verb("demo", "run the whole pipeline on jet data and write DIR/report.json")
def _demo(args):
    from .demo import run_demo

    run_demo(out=args.out, quick=args.quick, data=args.data)


@_configure("demo")
def _(p):
    p.add_argument("--out", default="demo_out", help="output folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="small data and few epochs (< 3 min on 2 cores)")
    p.add_argument("--data", default="auto",
                   help="'synthetic', 'openml', a file or folder path, or 'auto' (real data when "
                        "cached or reachable, else synthetic; default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="fastml-lab",
        description="Train, quantize, export to HLS and run models as PYNQ-Z2 overlays (or their "
                    "bit-exact software fallback).",
    )
    parser.add_argument("--version", action="version", version=f"fastml-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (func, help_) in _VERBS.items():
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        getattr(func, "configure", lambda _p: None)(p)
        p.set_defaults(func=func)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(message)s")
    try:
        args.func(args)
    except FastMLError as exc:
        print(f"fastml-lab {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastml-lab {args.verb}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
