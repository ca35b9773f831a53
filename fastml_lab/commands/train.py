"""Verb for training a float model of any family: ``train``."""

from __future__ import annotations

from pathlib import Path

from ..cli import add_verb


def _settings(args, family) -> dict:
    """The training settings given on the command line; one the family does not take is refused."""
    from ..exceptions import ConfigError

    given = {name: getattr(args, name) for name in _all_options() if getattr(args, name) is not None}
    foreign = [name for name in given if name not in family.train_options]
    if foreign:
        raise ConfigError(f"--family {family.name} ({family.title}) takes no "
                          f"{', '.join('--' + n.replace('_', '-') for n in foreign)}; its settings: "
                          f"{', '.join('--' + n.replace('_', '-') for n in family.train_options)}.")
    return given


def _train(args):
    from .._io import check_destination
    from ..data import load_jets
    from ..data.images import image_sources, load_jet_images
    from ..exceptions import ConfigError
    from ..families import get_family

    family = get_family(args.family)
    if args.out.suffix.lower() not in family.model_suffixes:
        raise ConfigError(f"--out must name a {' or '.join(family.model_suffixes)} file for a {family.title}; "
                          f"got {str(args.out)!r}.")
    check_destination(args.out)  # refused before any training
    settings = _settings(args, family)
    family.check_train_settings(settings)
    images = image_sources(args.data)
    dataset = (load_jets(args.data, n_events=args.events) if images is None
               else load_jet_images(images, n_events=args.events, seed=args.seed))
    model = family.train(dataset, seed=args.seed, **settings)
    family.save(model, args.out)
    accuracy = family.evaluate(model, dataset).accuracy
    print(f"Trained a {family.title} on {len(dataset.X_train):,} {'jet images' if images else 'jets'} "
          f"({dataset.source}); "
          f"test accuracy {accuracy:.4f} on {len(dataset.X_test):,} jets")
    print(f"Wrote {args.out}")


def _all_options() -> dict:
    from ..families import family_names, get_family

    options = {}
    for name in family_names():
        for option, spec in get_family(name).train_options.items():
            options.setdefault(option, spec)
    return options


def register(sub):
    from ..families import family_names

    p = add_verb(sub, "train", _train, "train a float model (a neural network or a BDT) on the jets")
    p.add_argument("--family", required=True, choices=family_names(), help="the model family")
    p.add_argument("--data", default="auto",
                   help="'synthetic', 'openml', a file or folder path, or 'auto' (default: %(default)s); jet "
                        "images: 'synthetic-images', 'images' (cached real ones, else synthetic) or 'images:PATH'")
    p.add_argument("--events", type=int, default=None, help="use the first N jets (default: all)")
    p.add_argument("--out", required=True, type=Path, help="the model file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    for option, (kind, text) in _all_options().items():
        p.add_argument("--" + option.replace("_", "-"), dest=option, type=kind, default=None, help=text)
