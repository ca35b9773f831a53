"""The ``fastml-lab`` command line: one verb per pipeline step, each a thin layer over the Python API.

Verbs live in ``fastml_lab/commands/<area>.py``; each module has ``register(subparsers)``, which adds
its verbs with ``set_defaults(func=...)``. Heavy libraries are imported inside the verbs, so
``fastml-lab emulate`` and ``fastml-lab run`` work on a board that has numpy alone.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .exceptions import FastMLError

#: Command modules in pipeline order; their verbs appear in --help in this order.
COMMAND_MODULES = ("pipeline", "train", "quantize", "profile", "hls", "estimate", "overlay", "serve", "app",
                   "sweep")


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
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def add_verb(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    """Add verb ``name`` running ``func(args)``; returns its parser for options."""
    parser = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    parser.set_defaults(func=func)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        status = args.func(args)  # a verb may return an exit status (e.g. check: 1 on a mismatch)
    except FastMLError as exc:
        print(f"fastml-lab {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused: a full disk, no permission, a folder for a file
        where = exc.filename2 or exc.filename
        print(f"fastml-lab {args.verb}: error: {exc.strerror or exc}" + (f": {where}" if where else ""),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastml-lab {args.verb}: interrupted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
