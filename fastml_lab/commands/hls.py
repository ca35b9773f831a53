"""Verbs for the HLS step: ``export``, ``csim``, ``emulate``, ``synth``.

``emulate`` imports numpy and the emulator only, never TensorFlow or hls4ml.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..cli import add_verb

log = logging.getLogger("fastml_lab")


def _export(args):
    from ..hls import export

    project = export(args.model, args.out, plan=args.plan,
                     precision=None if args.plan else args.precision, backend=args.backend,
                     reuse_factor=args.reuse, strategy=args.strategy,
                     clock_period_ns=args.clock_period, part=args.part, overwrite=args.force)
    fw = project.firmware()
    print(f"Exported {args.model} -> {project.path} ({project.backend}, {project.meta['part']}, "
          f"{fw.n_inputs} inputs -> {fw.n_outputs} outputs, layers: {', '.join(fw.layer_names)})")


def _csim(args):
    from .._io import load_npy, save_npy_atomic
    from ..hls.csim import run_csim

    y = run_csim(args.project, load_npy(args.input))
    save_npy_atomic(args.output, y)
    print(f"C simulation: {y.shape[0]} events -> {args.output}")


def _emulate(args):
    from .._io import load_npy, save_npy_atomic
    from ..emulator import Firmware

    fw = Firmware.load(args.project)
    y = fw.predict(load_npy(args.input))
    save_npy_atomic(args.output, y)
    print(f"Emulator: {y.shape[0]} events -> {args.output}")


def _synth(args):
    from ..hls.synth import record_report, synthesize

    if args.report is not None:
        report = record_report(args.project, args.report)
        what = f"Recorded {args.report} in {args.project}"
    else:
        report = synthesize(args.project)
        what = f"Synthesized {args.project}"
    res = report["resources"]
    print(f"{what}: latency {report['latency_cycles']} cycles, II {report['ii_cycles']}; "
          f"LUT {res['LUT']}, FF {res['FF']}, DSP {res['DSP']}, BRAM_18K {res['BRAM_18K']}")


def register(sub):
    from ..boards import BOARDS, DEFAULT_BOARD, DEFAULT_PRECISION, PART_BACKEND, export_backends

    default_board = BOARDS[DEFAULT_BOARD]
    p = add_verb(sub, "export", _export, "export a Keras model to an hls4ml project")
    p.add_argument("model", type=Path, help="the model, a .keras file")
    p.add_argument("--out", required=True, type=Path, help="project folder to create")
    p.add_argument("--precision",
                   help=f"one type for inputs, weights and results (default: {DEFAULT_PRECISION}; HGQ2 "
                        "models take theirs from their quantizers)")
    p.add_argument("--plan", type=Path, help="a precision plan (JSON); overrides --precision")
    p.add_argument("--reuse", type=int, default=1, help="reuse factor (default: %(default)s)")
    p.add_argument("--strategy", default="Latency", choices=["Latency", "Resource"])
    p.add_argument("--backend", default=PART_BACKEND, choices=list(export_backends()),
                   help=f"a board ({', '.join(BOARDS)}) or {PART_BACKEND} for a bare --part "
                        "(default: %(default)s)")
    p.add_argument("--clock-period", type=float, default=None,
                   help=f"clock period in ns (default: the board's clock; {default_board.clock_period_ns:g} "
                        f"for {PART_BACKEND})")
    p.add_argument("--part", help=f"FPGA part for the {PART_BACKEND} backend (default: {default_board.part})")
    p.add_argument("--force", action="store_true", help="replace an existing project folder")

    for name, func, what in (("csim", _csim, "run the compiled C simulation of a project"),
                             ("emulate", _emulate, "run the bit-exact numpy emulator of a project")):
        p = add_verb(sub, name, func, what)
        p.add_argument("project", type=Path, help="an exported project folder")
        p.add_argument("--input", required=True, type=Path, help="inputs, a .npy array (n, n_inputs)")
        p.add_argument("--output", required=True, type=Path, help="where to write the outputs (.npy)")

    p = add_verb(sub, "synth", _synth,
                 "run HLS synthesis when Vitis/Vivado HLS is installed, or record a report made elsewhere")
    p.add_argument("project", type=Path, help="an exported project folder")
    p.add_argument("--report", type=Path, default=None, metavar="CSYNTH_XML",
                   help="record this csynth.xml (made on a machine with the tools) instead of running "
                        "one; its part must be the project's")
