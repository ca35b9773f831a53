"""Verbs for overlays: ``package``, ``overlays``, ``run``, ``fetch``.

They import ``fastml_lab.overlay`` only (numpy), so they work on a board without TensorFlow or
hls4ml.
"""

from __future__ import annotations

import json
import logging
import sys

from ..cli import add_verb

log = logging.getLogger(__name__)


def _package(args):
    from ..overlay import package

    out = package(args.project, name=args.name, out=args.out, version=args.version,
                  overwrite=args.overwrite)
    print(out)


def _overlays(args):
    from ..overlay import list_overlays

    rows = list_overlays(args.path)
    if not rows:
        print("No overlay packages found; `fastml-lab package PRJ --name NAME` makes one.")
        return
    width = max(len(r.name) for r in rows)
    for r in rows:
        print(f"{r.name:<{width}}  {r.version:<8}  {str(r.board or '-'):<8}  {r.status:<18}  {r.path}")


def _run(args):
    from .._io import save_npy_atomic
    from ..inputs import describe_count, load_events
    from ..overlay import load

    with load(args.overlay, backend=args.backend, paths=args.path) as ol:
        X = load_events(args.input, ol.n_inputs, ol.input_shape)
        log.info("Running %s on %s (%s backend).", ol.name, describe_count(X), ol.backend)
        Y = ol.predict(X, scale=args.scale)
        if args.profile:
            json.dump(ol.profile(X, scale=args.scale), sys.stdout, indent=2)
            sys.stdout.write("\n")
    save_npy_atomic(args.output, Y)


def _fetch(args):
    from ..overlay import fetch_bitstream, resolve
    from ..overlay import manifest as mf

    package = resolve(args.overlay, args.path)
    fetched = fetch_bitstream(package, timeout_s=args.timeout)
    for path in fetched:
        print(f"Fetched {path}")
    missing = mf.check_files(package, mf.read(package))["missing"]
    if missing:
        print(f"{package} still lacks {', '.join(missing)}: no .link file to fetch "
              f"{'it' if len(missing) == 1 else 'them'} from.")
    elif not fetched:
        print(f"Nothing to fetch: {package} has every file its manifest lists.")


def register(sub):
    p = add_verb(sub, "package", _package,
                 "package an exported project as an overlay (emulator data, manifest, bitstream "
                 "if built)")
    p.add_argument("project", help="exported project folder (has project.json)")
    p.add_argument("--name", required=True, help="package name")
    p.add_argument("--out", default=None,
                   help="package folder (default: ./bitstreams/NAME, where `overlays` looks)")
    p.add_argument("--version", default="1.0.0", help="package version (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing package")

    p = add_verb(sub, "overlays", _overlays,
                 "list overlay packages: software only, bitstream present or verified")
    p.add_argument("--path", action="append", default=[], metavar="DIR",
                   help="also search DIR (repeatable); $FASTML_LAB_OVERLAYS, ./bitstreams and "
                        "the shipped packages are always searched")

    p = add_verb(sub, "run", _run,
                 "run an overlay on X.npy, on the board if present, else bit-exactly in software")
    p.add_argument("overlay", metavar="NAME|PATH", help="package name or folder")
    p.add_argument("--input", required=True, help="input events, (n_events, n_inputs) .npy")
    p.add_argument("--output", required=True, help="where to write the outputs (.npy, float64)")
    p.add_argument("--backend", choices=("auto", "software", "board"), default="auto",
                   help="where to run (default: %(default)s)")
    p.add_argument("--scale", action="store_true",
                   help="apply the package's input scaler first (inputs are raw features); "
                        "without it the inputs are sent as given, like `fastml-lab csim`")
    p.add_argument("--profile", action="store_true",
                   help="also print measured and modelled throughput and latency as JSON")
    p.add_argument("--path", action="append", default=[], metavar="DIR",
                   help="also search DIR for the package")

    p = add_verb(sub, "fetch", _fetch,
                 "download a package's missing bitstream from its .link file: https only, size "
                 "and time limited, md5 and sha256 verified before it lands in the package")
    p.add_argument("overlay", metavar="NAME|PATH", help="package name or folder")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds the whole download of each file may take (default: %(default)s); "
                        "certificates are checked against the system's store or $SSL_CERT_FILE")
    p.add_argument("--path", action="append", default=[], metavar="DIR",
                   help="also search DIR for the package")
