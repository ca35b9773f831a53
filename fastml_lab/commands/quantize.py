"""Verb for quantization-aware training: ``quantize`` (uniform widths or HGQ, optionally pruned).

It writes the quantized model atomically and a small JSON summary beside it (same name, ``.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_verb


def _quantize(args):
    from .._io import check_destination, write_json_atomic
    from ..data import load_jets
    from ..evaluate import evaluate
    from ..exceptions import ConfigError
    from ..quantize import bits_argument, quantize
    from ..train import check_model_file, load_model, save_model

    if args.layer_bits and args.hgq is not None:
        raise ConfigError("--layer-bits sets uniform widths per layer; HGQ (--hgq) learns them. Use one.")
    if args.out.suffix != ".keras":
        raise ConfigError(f"--out must name a .keras file; got {str(args.out)!r}.")
    check_destination(args.out)  # a folder there, or a file for a parent, is refused before training
    check_model_file(args.model)  # the files first, TensorFlow last: bad files are refused in a second
    ds = load_jets(args.data, n_events=args.events)
    model = load_model(args.model)
    result = quantize(model, ds, bits=bits_argument(args.bits, args.layer_bits), hgq_beta=args.hgq,
                      prune=args.prune, epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate)
    float_accuracy = evaluate(model, ds).accuracy
    accuracy = evaluate(result.model, ds).accuracy
    save_model(result.model, args.out)
    summary = {"model": str(args.model), "data": ds.source, "n_test": int(len(ds.X_test)),
               "float_accuracy": float_accuracy, "accuracy": accuracy, **result.to_dict()}
    write_json_atomic(args.out.with_suffix(".json"), summary)
    print(f"float accuracy      {float_accuracy:.4f}")
    print(f"{_label(result):<20}{accuracy:.4f} ({100 * (accuracy - float_accuracy):+.2f} points)")
    print("zero weights        " + ", ".join(f"{name} {value:.1%}" for name, value in result.sparsity.items()))
    print(f"EBOPs               {result.ebops:,}")
    print(result.fit.summary())
    print(f"Wrote {args.out} and {args.out.with_suffix('.json')}")


def _label(result) -> str:
    return f"HGQ (beta {result.beta:g})" if result.mode == "hgq" else "QAT accuracy"


def _parsed(parser: str, text: str):
    """``text`` read by ``fastml_lab.quantize.<parser>``; its ConfigError becomes the usage error."""
    from .. import quantize
    from ..exceptions import ConfigError

    try:
        return getattr(quantize, parser)(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bits(text: str):
    return _parsed("parse_bits", text)


def _layer_bits(text: str):
    return _parsed("parse_layer_bits", text)


def register(sub):
    p = add_verb(sub, "quantize", _quantize,
                 "train the quantization-aware (HGQ2) version of a float model, optionally pruned; print "
                 "its accuracy, sparsity, EBOPs and PYNQ-Z2 fit estimate")
    p.add_argument("model", type=Path, help="the float model, a .keras file")
    p.add_argument("--data", required=True,
                   help="'synthetic', 'openml', a file or folder path, or 'auto' (as for `demo`)")
    p.add_argument("--events", type=int, default=None, help="use a random subset of this many jets (default: all)")
    widths = p.add_mutually_exclusive_group()
    widths.add_argument("--bits", type=_bits, default=None,
                        help="uniform widths: N, or W,A (weights, activations), or W,A,I (I: input "
                             "features, default 16); default 6,8")
    p.add_argument("--layer-bits", type=_layer_bits, default=None, metavar="LAYER=W/A,...",
                   help="per-layer widths that override --bits, e.g. 'fc1=8/10, output=8/12'")
    widths.add_argument("--hgq", type=float, default=None, metavar="BETA",
                        help="learn per-weight widths with HGQ's EBOPs penalty of this strength, e.g. 1e-6")
    p.add_argument("--prune", type=float, default=None, metavar="SPARSITY",
                   help="also prune every Dense layer to this fraction of zero weights, e.g. 0.75")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=1024, help="(default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="(default: %(default)s)")
    p.add_argument("--out", required=True, type=Path, help="the quantized model to write, a .keras file")
