"""Re-create the overlay packages shipped in bitstreams/, reproducibly.

    python bitstreams/make_packages.py [--data synthetic|openml|auto|PATH] [--out bitstreams]
                                       [--only jet_mlp|jet_mlp_pynq|jet_bdt_pynq] [--keep-projects DIR]

Three packages, all for the PYNQ-Z2 at 100 MHz. Two networks (hls4ml VivadoAccelerator, AXI stream):

* ``jet_mlp``: the tutorial model, Dense 16-64-32-32-5, ReLU, softmax, everything ``ap_fixed<16,6>``,
  reuse factor 1. Its software overlay is exact; at reuse 1 it is far too large for the Z2's 220 DSPs.
* ``jet_mlp_pynq``: the same network with 75% of each kernel's weights pruned by magnitude
  (``fastml_lab.quantize.prune``: fine-tuned while the pruned fraction ramps up, pruned weights stay
  zero), 6-bit weights and biases, 16-bit results sized from the data, reuse factor 32 so it fits
  the xc7z020.

And one BDT (conifer's Zynq accelerator: AXI-lite control registers, float32 buffers over m_axi):

* ``jet_bdt_pynq``: xgboost, 8 rounds of depth-3 trees per class (40 trees for the 5 jet classes),
  inputs, thresholds and scores ``ap_fixed<16,6>``, exported with ``backend="pynq-z2"``.

Training, export and packaging need the ``lab`` extra (TensorFlow, hls4ml; xgboost and conifer for
the BDT); the packages then run with numpy alone. Seeds are fixed, so a run on the same data reproduces the same firmware. Adding
a bitstream is a separate step on a machine with Vivado (see bitstreams/README.md).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
log = logging.getLogger("make_packages")

PRUNE_FRACTION = 0.75
VERSION = "1.0.0"
PACKAGES = ("jet_mlp", "jet_mlp_pynq", "jet_bdt_pynq")
#: The shipped BDT: small enough to read, large enough to classify the jets.
BDT_SETTINGS = {"library": "xgboost", "rounds": 8, "depth": 3, "learning_rate": 0.5, "early_stopping": None,
                "validation_split": 0.0, "seed": 0}
BDT_PRECISION = "ap_fixed<16,6>"


def train_classic(dataset, epochs):
    from fastml_lab.train import build_model, train_model

    model = build_model("64-32-32", seed=0, name="jet_mlp")
    train_model(model, dataset, epochs=epochs, patience=3, progress=False, seed=0)
    return model


def export_and_package(model, dataset, name, out_root, work, keep_projects, **export_options):
    from fastml_lab.emulator import Firmware
    from fastml_lab.hls import export
    from fastml_lab.overlay import package

    project_dir = (keep_projects or work) / name
    if project_dir.exists():
        shutil.rmtree(project_dir)
    export(model, project_dir, backend="pynq-z2", scaler=dataset.scaler,
           class_names=list(dataset.class_names), feature_names=list(dataset.feature_names),
           name=name, **export_options)
    firmware = Firmware.load(project_dir)
    accuracy = float(np.mean(np.argmax(firmware.predict(dataset.X_test), axis=1)
                             == dataset.labels_test))
    keras_accuracy = float(np.mean(np.argmax(model.predict(dataset.X_test, verbose=0), axis=1)
                                   == dataset.labels_test))
    log.info("%s: float accuracy %.4f, firmware (emulated) accuracy %.4f on %d test jets.",
             name, keras_accuracy, accuracy, len(dataset.labels_test))
    path = package(project_dir, name=name, out=out_root / name, version=VERSION, overwrite=True)
    size = sum(p.stat().st_size for p in path.iterdir())
    log.info("%s -> %s (%.1f kB)", name, path, size / 1024)
    return path


def bdt_package(dataset, name, out_root, work, keep_projects):
    """Train the seeded BDT on the jets, export it for the PYNQ-Z2 (conifer's accelerator) and package it."""
    from fastml_lab.bdt.export import export_bdt
    from fastml_lab.bdt.train import train_bdt
    from fastml_lab.overlay import package

    model = train_bdt(dataset, **BDT_SETTINGS)
    project_dir = (keep_projects or work) / name
    if project_dir.exists():
        shutil.rmtree(project_dir)
    project = export_bdt(model, project_dir, backend="pynq-z2", precision=BDT_PRECISION, scaler=dataset.scaler,
                         class_names=list(dataset.class_names), feature_names=list(dataset.feature_names),
                         name=name)
    firmware = project.firmware()
    accuracy = float(np.mean(np.argmax(firmware.predict(dataset.X_test), axis=1) == dataset.labels_test))
    float_accuracy = float(np.mean(np.argmax(model.decision_function(dataset.X_test), axis=1)
                                   == dataset.labels_test))
    log.info("%s: %d trees, float accuracy %.4f, firmware (emulated) accuracy %.4f on %d test jets.",
             name, project.meta["n_trees"], float_accuracy, accuracy, len(dataset.labels_test))
    path = package(project, name=name, out=out_root / name, version=VERSION, overwrite=True)
    log.info("%s -> %s (%.1f kB)", name, path, sum(p.stat().st_size for p in path.iterdir()) / 1024)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="synthetic",
                        help="jet source for training (default: %(default)s, offline and fixed)")
    parser.add_argument("--events", type=int, default=100_000, help="jets used (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE, help="where the packages go (default: %(default)s)")
    parser.add_argument("--only", choices=PACKAGES, action="append",
                        help="make only this package (repeatable)")
    parser.add_argument("--keep-projects", type=Path, default=None,
                        help="keep the exported hls4ml projects here (for a Vivado build)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from fastml_lab.boards import DEFAULT_PRECISION
    from fastml_lab.data import load_jets
    from fastml_lab.hls.plan import PrecisionPlan
    from fastml_lab.quantize import prune

    wanted = args.only or list(PACKAGES)
    dataset = load_jets(source=args.data, n_events=args.events, seed=0, progress=False)
    log.info("Data: %s", dataset)
    if args.keep_projects:
        args.keep_projects.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        if "jet_bdt_pynq" in wanted:
            bdt_package(dataset, "jet_bdt_pynq", args.out, work, args.keep_projects)
        if "jet_mlp" not in wanted and "jet_mlp_pynq" not in wanted:
            return 0
        model = train_classic(dataset, args.epochs)
        if "jet_mlp" in wanted:
            export_and_package(model, dataset, "jet_mlp", args.out, work, args.keep_projects,
                               precision=DEFAULT_PRECISION, reuse_factor=1)
        if "jet_mlp_pynq" in wanted:
            pruned = prune(model, dataset, PRUNE_FRACTION, epochs=max(2, args.epochs // 2),
                           progress=False, seed=1)
            log.info("Pruned: zero weights per layer %s.",
                     ", ".join(f"{k} {v:.0%}" for k, v in pruned.sparsity.items()))
            model = pruned.model
            plan = PrecisionPlan.from_data(model, dataset.X_train, width=16, weight_width=6)
            export_and_package(model, dataset, "jet_mlp_pynq", args.out, work, args.keep_projects,
                               plan=plan, reuse_factor=32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
