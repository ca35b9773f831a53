"""Verb for the hardware model: ``estimate`` (latency, II, events/s and resources before synthesis).

A project brings its precision, reuse factor, strategy and board; a model file takes them from the
flags. ``--reuse auto`` runs the fit advisor and shows the fastest configuration that fits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import add_verb
from ..options import STRATEGIES


def _estimate(args):
    from ..boards import get_board
    from ..estimate import advise, estimate
    from ..exceptions import ConfigError
    from ..families.sources import family_of

    # The board, the source and the precision first, TensorFlow last: mistakes are refused in a second.
    if args.board is not None:
        get_board(args.board)
    family_of(args.source).preflight(args.source, args.precision)
    if args.reuse == "auto":
        if args.part:
            raise ConfigError("--reuse auto picks what fits a board's budget; a bare part (--part) has none. "
                              "Name a board (--board NAME).")
        advice = advise(args.source, args.board, flavour=args.flavour, precision=args.precision,
                        strategies=(args.strategy,) if args.strategy else STRATEGIES)
        best = advice.best
        if best is None:
            if args.json:
                print(json.dumps({"advice": advice.to_dict(), "estimate": None}, indent=1))
            else:
                print(advice.table())
            return 1
        if args.json:
            print(json.dumps({**best.to_dict(), "advice": advice.to_dict()}, indent=1))
        else:
            print(advice.table())
            print()
            print(best.table())
        return 0
    result = estimate(args.source, args.board, args.part, flavour=args.flavour, precision=args.precision,
                      reuse_factor=args.reuse, strategy=args.strategy)
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.table())
    return 0


def _reuse(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'auto'; got {text!r}")
    return value


def register(sub):
    p = add_verb(sub, "estimate", _estimate,
                 "estimate latency (cycles, ns), II, events/s and DSP/LUT/FF/BRAM of a project or model on "
                 "a board or part, per layer, before any synthesis")
    p.add_argument("source", type=Path, help="an exported project folder, a .keras model or a BDT model file")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--board", default=None,
                       help="a board of the board table (default: the project's, else pynq-z2)")
    where.add_argument("--part", default=None,
                       help="a bare FPGA part, e.g. xcu250-figd2104-2L-e (no budget, so no verdict)")
    p.add_argument("--flavour", choices=("vitis", "vivado"), default=None,
                   help="the HLS tool (default: vivado for a board, vitis for a bare part)")
    p.add_argument("--precision", default=None,
                   help="fixed-point type of a float model file, e.g. 'ap_fixed<16,6>' (projects bring their own)")
    p.add_argument("--reuse", type=_reuse, default=None, metavar="N|auto",
                   help="reuse factor (default: the project's, else 1); 'auto': the fastest that fits the board")
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="dense strategy (default: the project's, else Latency)")
    p.add_argument("--json", action="store_true", help="print one JSON object: totals and per-layer rows")
