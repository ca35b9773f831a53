"""Verbs for the whole pipeline: ``demo``."""

from __future__ import annotations

from ..cli import add_verb


def _demo(args):
    from ..demo import run_demo

    run_demo(out=args.out, quick=args.quick, data=args.data, model=args.model)


def register(sub):
    from ..demo import MODELS

    p = add_verb(sub, "demo", _demo, "run the whole pipeline on jet data and write DIR/report.json")
    p.add_argument("--out", default="demo_out", help="output folder (default: %(default)s)")
    p.add_argument("--model", choices=MODELS, default="both",
                   help="the neural network, the boosted decision tree, or both side by side (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="small data and few epochs (< 3 min on 2 cores)")
    p.add_argument("--data", default="auto",
                   help="'synthetic', 'openml', a file or folder path, or 'auto' (real data when "
                        "cached or reachable, else synthetic; default: %(default)s)")
