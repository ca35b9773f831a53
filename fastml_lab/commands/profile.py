"""Verbs for choosing precisions: ``profile`` (numerical profiling) and ``study`` (bit-width study).

Each writes its folder atomically: the plots as PNG and the numbers as JSON appear together or
not at all.
"""

from __future__ import annotations

from pathlib import Path

from ..cli import add_verb


def _jets(args):
    from ..data import load_jets

    return load_jets(args.data, n_events=args.events)


def _family(path: Path):
    """The family of ``path`` (a project folder or a saved model); a file no family claims goes to the
    network, whose loader names what is wrong with it."""
    from ..exceptions import ConfigError
    from ..families import NETWORK, get_family
    from ..families.sources import family_of

    try:
        return family_of(path)
    except ConfigError:
        return get_family(NETWORK)


def _is_bdt(family) -> bool:
    from ..bdt.ensemble import FAMILY

    return family.name == FAMILY


def _model(family, path: Path):
    """An exported project folder as it is (its own precision), a saved model loaded by its family."""
    from ..project import PROJECT_FILE

    return path if (path / PROJECT_FILE).is_file() else family.load(path)


def _profile(args):
    from .._io import atomic_directory, write_json_atomic
    from ..exceptions import ConfigError
    from ..plots import save_figure
    from ..hls import PrecisionPlan

    family = _family(args.model)
    if _is_bdt(family):
        if args.plan:
            raise ConfigError(f"{args.model} is a BDT: its types are parts of --precision (e.g. "
                              "'input=ap_fixed<16,6> score=ap_fixed<18,8>'), not a --plan.")
        return _profile_bdt(args, family)
    if args.precision:
        raise ConfigError(f"--precision is for BDTs; {args.model} is a neural network: give a --plan.")
    # The files first, TensorFlow last: a bad model file, plan or data file is refused in a second.
    family.preflight(args.model)
    plan = PrecisionPlan.load(args.plan) if args.plan else None
    with atomic_directory(args.out, overwrite=args.force) as tmp:
        jets = _jets(args)
        model = family.load(args.model)
        prof = family.profile(model, jets, plan=plan, sample=args.sample)
        save_figure(prof.plot(), tmp / "profile.png", close=True)
        for name, fig in prof.plot_panels().items():
            save_figure(fig, tmp / f"profile_{name}.png", close=True)
        write_json_atomic(tmp / "profile.json", prof.to_dict())
        if prof.suggested is not None:  # a quantization-aware model takes no plan
            prof.suggested_plan().save(tmp / "suggested_plan.json")
    print(prof.summary())
    print(f"Wrote {args.out}/profile.png (+ profile_weights.png, profile_activations.png), profile.json"
          + (" and suggested_plan.json" if prof.suggested is not None else ""))


def _profile_bdt(args, family):
    """``profile`` of a BDT: a saved model (.json, .ubj) or an exported BDT project folder."""
    from .._io import atomic_directory, write_json_atomic
    from ..plots import save_figure

    model = _model(family, args.model)
    with atomic_directory(args.out, overwrite=args.force) as tmp:
        prof = family.profile(model, _jets(args), precision=args.precision, sample=args.sample)
        prof.model_name = args.model.stem if args.model.suffix else args.model.name
        save_figure(prof.plot(), tmp / "profile.png", close=True)
        write_json_atomic(tmp / "profile.json", prof.to_dict())
        write_json_atomic(tmp / "suggested_precision.json", prof.suggested_precision)
    print(prof.summary())
    print(f"Wrote {args.out}/profile.png, profile.json and suggested_precision.json "
          f"(export with --precision '{prof.suggested_text()}')")


def _study(args):
    from .._io import atomic_directory, write_json_atomic
    from ..plots import save_figure
    from ..quantize.study import check_settings

    check_settings(args.mode, args.bits, args.integer_bits, args.sparsities, args.epochs)
    family = _family(args.model)
    if _is_bdt(family):
        return _study_bdt(args, family)
    family.preflight(args.model)  # the files first, TensorFlow last
    with atomic_directory(args.out, overwrite=args.force) as tmp:
        jets = _jets(args)
        model = family.load(args.model)
        study = family.study(model, jets, bits=args.bits, mode=args.mode,
                                integer_bits=args.integer_bits, sparsities=args.sparsities,
                                epochs=args.epochs)
        write_json_atomic(tmp / "study.json", study.to_dict())
        save_figure(study.plot(), tmp / "study.png", close=True)
    print(study.table())
    print(f"Wrote {args.out}/study.json and study.png ({study.seconds:.1f} s)")


def _study_bdt(args, family):
    """``study`` of a BDT: accuracy against total bits on the emulator (PTQ only)."""
    from .._io import atomic_directory, write_json_atomic
    from ..exceptions import ConfigError
    from ..plots import save_figure

    if args.mode != "ptq" or args.sparsities:
        raise ConfigError(f"{args.model} is a BDT: its study is PTQ over --bits (no QAT, no --sparsities).")
    model = _model(family, args.model)
    with atomic_directory(args.out, overwrite=args.force) as tmp:
        study = family.study(model, _jets(args), widths=args.bits, integer_bits=args.integer_bits)
        write_json_atomic(tmp / "study.json", study.to_dict())
        save_figure(study.plot(), tmp / "study.png", close=True)
    print(study.table())
    print(f"Wrote {args.out}/study.json and study.png ({study.seconds:.1f} s)")


def _numbers(kind, what: str):
    """An argparse type for a comma-separated list, e.g. ``4,6,8``."""
    import argparse

    def parse(text: str):
        try:
            return tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} separated by commas, e.g. "
                                             f"{'4,6,8' if kind is int else '0.5,0.75'}; got {text!r}") from None

    return parse


def _integer_bits(text: str):
    import argparse

    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number; got {text!r}") from None


def _data_options(p) -> None:
    p.add_argument("--data", required=True,
                   help="'synthetic', 'openml', a file or folder path, or 'auto' (as for `demo`)")
    p.add_argument("--events", type=int, default=None,
                   help="use a random subset of this many jets (default: all)")
    p.add_argument("--out", required=True, type=Path, help="folder to write")
    p.add_argument("--force", action="store_true", help="replace an existing folder")


def register(sub):
    from ..quantize.profile import DEFAULT_SAMPLE
    from ..quantize.study import DEFAULT_BITS, MODES

    p = add_verb(sub, "profile", _profile,
                 "profile a model's weights, biases and layer outputs against a precision plan (a BDT's "
                 "inputs, thresholds, leaves and scores against its precision); write plots, overflow "
                 "and vanish counts and a suggested plan (BDT: precision)")
    p.add_argument("model", type=Path,
                   help="the model: a .keras file, or a BDT (xgboost .json/.ubj, or an exported BDT project folder)")
    p.add_argument("--plan", type=Path, help="a precision plan (JSON); default: ap_fixed<16,6> everywhere")
    p.add_argument("--precision", default=None,
                   help="BDT only: one type, or parts such as 'input=ap_fixed<16,6> score=ap_fixed<6,3>' "
                        "(default: the project's, else ap_fixed<16,6>)")
    p.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                   help="training events to profile (default: %(default)s)")
    _data_options(p)

    p = add_verb(sub, "study", _study,
                 "measure test accuracy against total bits (PTQ on the emulator, or QAT), "
                 "optionally against sparsity; write study.json and study.png")
    p.add_argument("model", type=Path,
                   help="the float model: a .keras file, or a BDT (xgboost .json/.ubj, or an exported BDT project)")
    p.add_argument("--bits", type=_numbers(int, "widths"), default=DEFAULT_BITS,
                   help="total widths (default: %s)" % ",".join(map(str, DEFAULT_BITS)))
    p.add_argument("--mode", choices=MODES, default="ptq",
                   help="ptq: quantize the trained model; qat: train a quantization-aware model per "
                        "width (default: %(default)s)")
    p.add_argument("--integer-bits", type=_integer_bits, default="auto",
                   help="PTQ integer bits: 'auto' (from the data, per quantity) or one number for all "
                        "(default: %(default)s)")
    p.add_argument("--sparsities", type=_numbers(float, "fractions"), default=None,
                   help="also prune to these sparsities, then PTQ, e.g. 0.5,0.75")
    p.add_argument("--epochs", type=int, default=10,
                   help="training epochs per QAT width and per pruned model (default: %(default)s)")
    _data_options(p)
