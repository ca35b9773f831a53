"""Verbs for the HLS step: ``export``, ``csim``, ``emulate``, ``check``, ``synth``.

``emulate`` imports numpy and the emulator only, never TensorFlow or hls4ml.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..cli import add_verb

log = logging.getLogger("fastml_lab")


def _export(args):
    from ..families import rtl_backends
    from ..families.sources import family_of

    family = family_of(args.model)
    generators = rtl_backends()
    if args.backend in generators:
        _export_rtl(args, family, generators)
        return
    if args.board is not None:
        from ..exceptions import ConfigError

        raise ConfigError(f"--board goes with an RTL backend ({', '.join(generators)}); for HLS the board is "
                          f"the backend itself: --backend {args.board}.")
    options = {"plan": args.plan, "reuse": args.reuse, "strategy": args.strategy, "io": args.io,
               "hls_config": args.hls_config}
    family.check_export_options(args.model, options)
    family.preflight(args.model, args.precision)  # before TensorFlow or conifer start
    project = family.export(args.model, args.out, precision=args.precision, backend=args.backend,
                            clock_period_ns=args.clock_period, part=args.part, overwrite=args.force,
                            **{k: v for k, v in options.items() if v is not None})
    _print_exported(args, project)


def _export_rtl(args, family, generators) -> None:
    from ..exceptions import ConfigError

    owner, _ = generators[args.backend]
    if owner is not family:
        mine = ", ".join(f"--backend {name}" for name in family.rtl_backends) or "no RTL backend"
        raise ConfigError(f"{args.model} is a {family.title}; --backend {args.backend} writes RTL for a "
                          f"{owner.title}. A {family.title} takes {mine} (or an HLS backend).")
    given = {"plan": args.plan, "reuse": args.reuse, "strategy": args.strategy, "io": args.io}
    foreign = [f"--{key}" for key, value in given.items() if value is not None]
    if foreign:
        raise ConfigError(f"{', '.join(foreign)} {'does' if len(foreign) == 1 else 'do'} not apply to "
                          f"--backend {args.backend}: the RTL generator builds one fully parallel pipeline.")
    family.preflight(args.model, args.precision)
    options = {} if args.precision is None else {"precision": args.precision}
    project = family.export_rtl(args.model, args.out, backend=args.backend, board=args.board, part=args.part,
                                clock_period_ns=args.clock_period, overwrite=args.force, **options)
    _print_exported(args, project)


def _print_exported(args, project) -> None:
    fw = project.firmware()
    timing = project.timing
    latency = (f", latency {timing['latency_cycles']} cycles ({timing['source']})"
               if timing.get("latency_cycles") is not None else "")
    print(f"Exported {args.model} -> {project.path} ({project.backend}, {project.part}, "
          f"{fw.n_inputs} inputs -> {fw.n_outputs} outputs, layers: {', '.join(fw.layer_names)}{latency})")


def _project_and_events(args):
    """The project (its record read and checked), its firmware, and the input events checked against it."""
    from ..inputs import load_events
    from ..project import open_project

    project = open_project(args.project)
    firmware = project.firmware()
    return project, firmware, load_events(args.input, firmware.n_inputs, firmware.input_shape)


def _csim(args):
    from .._io import save_npy_atomic
    from ..hls.csim import run_csim

    project, _, X = _project_and_events(args)
    y = run_csim(project, X, header_checks=not args.no_header_checks)
    save_npy_atomic(args.output, y)
    print(f"C simulation: {y.shape[0]} events -> {args.output}")


def _emulate(args):
    from .._io import save_npy_atomic

    _, firmware, X = _project_and_events(args)
    y = firmware.predict(X)
    save_npy_atomic(args.output, y)
    print(f"Emulator: {y.shape[0]} events -> {args.output}")


def _check(args):
    import json

    from ..hls.check import check_project

    project, _, X = _project_and_events(args)
    result = check_project(project, X, n_events=args.events, header_checks=not args.no_header_checks,
                           progress=lambda stage: log.info("%s%s...", stage[0].upper(), stage[1:]))
    if args.json:
        print(json.dumps({"project": str(args.project), **result.to_dict()}, indent=2))
    else:
        print(f"{args.project}: {result.describe()} (simulation {result.csim_seconds:.2f} s, "
              f"emulator {result.emulator_seconds:.3f} s)")
    return 0 if result.bit_exact else 1


def _synth(args):
    from ..exceptions import ConfigError

    if args.tool == "yosys":
        if args.report is not None:
            raise ConfigError("--report records a vendor synthesis report; it does not go with --tool yosys, "
                              "which maps the project's RTL itself.")
        from ..project import open_project
        from ..rtl.yosys import TECHNOLOGY_MAPPING, map_project

        project = open_project(args.project)
        mapping = project.record_mapping(map_project(project, part=args.part))
        res = mapping["resources"]
        extra = "".join(f", {key} {res[key]:,}" for key in ("SRL", "LUTRAM") if key in res)
        print(f"Mapped {args.project} ({mapping['top']}, {mapping['language']}) for {mapping['part']} in "
              f"{mapping['seconds']:.1f} s: LUT {res['LUT']:,}, FF {res['FF']:,}, CARRY4 {res['CARRY4']:,}, "
              f"DSP {res['DSP']}, BRAM_18K {res['BRAM_18K']}{extra} ({TECHNOLOGY_MAPPING}; routing is not "
              f"included). Recorded in {args.project}.")
        return
    if args.part is not None:
        raise ConfigError("--part goes with --tool yosys (the part to map for); the vendor synthesis uses "
                          "the project's own part.")
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


def _header_checks_option(p) -> None:
    p.add_argument("--no-header-checks", action="store_true",
                   help="compile the C simulation without the ap_types headers' asserts, as synthesis "
                        "sees the code (for types whose conversions stop the checked simulation)")


def register(sub):
    from ..boards import BOARDS, DEFAULT_BOARD, DEFAULT_PRECISION, PART_BACKEND, export_backends
    from ..families import family_names, get_family, rtl_backends
    from ..options import STRATEGIES

    default_board = BOARDS[DEFAULT_BOARD]
    p = add_verb(sub, "export", _export,
                 "export a Keras model to an hls4ml project, or a BDT to a conifer project")
    p.add_argument("model", type=Path, help="the saved model: " + ", ".join(
        f"a {family.title} ({' or '.join(family.model_suffixes)})" for family in map(get_family, family_names())))
    p.add_argument("--out", required=True, type=Path, help="project folder to create")
    p.add_argument("--precision",
                   help=f"one type for inputs, weights and results (default: {DEFAULT_PRECISION}; HGQ2 "
                        "models take theirs from their quantizers); for a BDT one type or per part, "
                        "e.g. 'input=ap_fixed<16,6> threshold=ap_fixed<16,6> score=ap_fixed<18,8>'")
    p.add_argument("--plan", type=Path, help="a precision plan (JSON); overrides --precision (neural networks)")
    p.add_argument("--reuse", type=int, default=None, help="reuse factor (neural networks; default: 1)")
    p.add_argument("--hls-config", type=Path, default=None, metavar="FILE",
                   help="hls4ml's own configuration (JSON or YAML, as fastml_lab.hls.hls4ml_config gives it), "
                        "edited per layer; replaces --precision, --plan, --reuse and --strategy (neural networks)")
    p.add_argument("--strategy", default=None, choices=STRATEGIES,
                   help="hls4ml strategy (neural networks; default: Latency)")
    p.add_argument("--io", default=None, choices=("parallel", "stream"),
                   help="hls4ml's I/O style: io_parallel or io_stream (FIFOs between layers, line buffers in "
                        "convolutions; neural networks; default: parallel)")
    generators = rtl_backends()
    p.add_argument("--backend", default=PART_BACKEND, choices=[*export_backends(), *generators],
                   help=f"HLS for a board ({', '.join(BOARDS)}) or {PART_BACKEND} for a bare --part; or "
                        "RTL: " + "; ".join(f"{name} ({what}, {family.title}s)" for name, (family, what)
                                            in generators.items()) + " (default: %(default)s)")
    p.add_argument("--board", choices=list(BOARDS), default=None,
                   help=f"with an RTL backend: the board whose part and clock it targets (default: "
                        f"{DEFAULT_BOARD}, unless --part names a bare part)")
    p.add_argument("--clock-period", "--clock-ns", dest="clock_period", type=float, default=None,
                   help=f"clock period in ns (default: the board's clock; {default_board.clock_period_ns:g} "
                        f"for {PART_BACKEND})")
    p.add_argument("--part", help=f"FPGA part for the {PART_BACKEND} backend (default: {default_board.part})")
    p.add_argument("--force", action="store_true", help="replace an existing project folder")

    for name, func, what in (("csim", _csim, "run the compiled C simulation of a project"),
                             ("emulate", _emulate, "run the bit-exact numpy emulator of a project")):
        p = add_verb(sub, name, func, what)
        p.add_argument("project", type=Path, help="an exported project folder")
        p.add_argument("--input", required=True, type=Path,
                       help="inputs, a .npy array (n, n_inputs), or (n, *input_shape) for images and sequences")
        p.add_argument("--output", required=True, type=Path, help="where to write the outputs (.npy)")
        if name == "csim":
            _header_checks_option(p)

    p = add_verb(sub, "check", _check,
                 "compare a project's C simulation with its emulator, value for value (exit 1 on a mismatch)")
    p.add_argument("project", type=Path, help="an exported project folder")
    p.add_argument("--input", required=True, type=Path,
                   help="inputs, a .npy array (n, n_inputs), or (n, *input_shape) for images and sequences")
    p.add_argument("--events", type=int, default=None, help="check the first N events only (default: all)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    _header_checks_option(p)

    p = add_verb(sub, "synth", _synth,
                 "run HLS synthesis when Vitis/Vivado HLS is installed, or record a report made elsewhere; "
                 "or map the project's RTL to Xilinx 7-series cells with yosys (--tool yosys)")
    p.add_argument("project", type=Path, help="an exported project folder")
    p.add_argument("--tool", choices=("vendor", "yosys"), default="vendor",
                   help="vendor: Vitis/Vivado HLS (or --report); yosys: an open technology mapping of the "
                        "project's RTL (da4ml Verilog, conifer VHDL through GHDL, or the HLS tool's Verilog), "
                        "before place and route (default: %(default)s)")
    p.add_argument("--part", default=None,
                   help="with --tool yosys: the Xilinx 7-series part to map for (default: the project's)")
    p.add_argument("--report", type=Path, default=None, metavar="CSYNTH_XML",
                   help="record this csynth.xml (made on a machine with the tools) instead of running "
                        "one; its part must be the project's")
