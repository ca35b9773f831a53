"""The field's headline in numbers: an FPGA design beside a CPU running the same model as a trigger would.

:func:`trigger_headline` estimates a project on a board (the PYNQ-Z2 by default: the design as
exported, with the board's verdict on whether it fits) and on a large trigger FPGA (an Alveo U250
part at 200 MHz, the class of device a Level-1 trigger uses, a bare part with no budget here), and
sets beside them the CPU rows of :func:`measure_cpu`: batches through the compiled Keras model (or
the trees' own library), the emulator and the generated firmware's C++ compiled by g++, timed per
event. Every row says what it is (estimate, synthesis report or measurement) and what it measures.

Two figures per row: ``latency_ns``, the time until one event's answer (an FPGA's pipeline latency;
on a CPU the whole batch, since an event waits for its batch), and ``ns_per_event``, the time per
event at full throughput (an FPGA's initiation interval; a CPU's batch time over its events).
Beside them, the published run of the tutorial's model on a real PYNQ-Z2
(:mod:`~fastml_lab.estimate.published_run`), each row naming its source. Used by the demo and tutorial 4.
"""

from __future__ import annotations

import time

import numpy as np

from .hardware import estimate

#: A large trigger FPGA: the part and clock the hls4ml tutorial's Alveo U250 flow uses.
TRIGGER_PART = "xcu250-figd2104-2L-e"
TRIGGER_CLOCK_NS = 5.0
#: Events per CPU batch: a trigger farm's CPU answers many events per call.
CPU_BATCH = 10_000


def best_seconds(fn, repeats: int = 3) -> float:
    """The shortest wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(max(1, int(repeats))):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(min(times))


def _cpu_row(key: str, label: str, threads: str, seconds: float, n: int, repeats: int) -> dict:
    return {"key": key, "where": f"CPU: {label}", "what": f"a batch of {n:,} events ({threads}), best of {repeats}",
            "latency_ns": round(seconds * 1e9), "ns_per_event": round(seconds * 1e9 / n, 1),
            "events_per_s": round(n / seconds) if seconds > 0 else None, "kind": "measurement",
            "fits": None, "verdict": None}


def measure_cpu(project, X, model=None, batch: int = CPU_BATCH, repeats: int = 3, csim: bool = True) -> list:
    """CPU rows, each a batch of ``batch`` events (``X`` repeated to that size) timed as a trigger
    farm would run it: ``model`` through its family's fastest batch call (Keras' compiled
    ``predict_on_batch``; a BDT's own library), the emulator, and (``csim``) the generated
    firmware's C++ as the C simulation compiles it (g++, optimised), per event, in one thread; an
    RTL project has no such C++ (its simulation is Verilator's or GHDL's), so no row."""
    from ..families.sources import family_of
    from ..hls.csim import csim_seconds
    from ..project import GXX, open_project

    project = open_project(project)
    firmware = project.firmware()
    X = np.asarray(X, dtype=np.float32)
    Xb = np.resize(X, (batch, X.shape[1])) if len(X) != batch else X
    rows = []
    if model is not None:
        label, threads, predict = family_of(model).cpu_predictor(model)
        rows.append(_cpu_row("cpu_model", label, threads, best_seconds(lambda: predict(Xb), repeats), batch, repeats))
    rows.append(_cpu_row("cpu_emulator", "the emulator (numpy)", "one thread",
                         best_seconds(lambda: firmware.predict(Xb), repeats), batch, repeats))
    # An RTL project's simulation (Verilator, GHDL) is a logic simulation, not code a CPU trigger would run.
    if csim and project.simulator == GXX:
        flags = " ".join(f for f in project.csim_recipe["flags"] if f.startswith("-O"))
        rows.append(_cpu_row("cpu_firmware_cpp", f"the firmware's C++, g++ {flags}", "one thread",
                             csim_seconds(project, Xb, repeats), batch, repeats))
    return rows


def _design(est) -> str:
    parts = [f"reuse {est.reuse_factor}", est.strategy, est.io_type.replace("io_", "io ")]
    return ", ".join(str(p) for p in parts if p)


def trigger_headline(project, cpu: list | None = None, board: str = "pynq-z2") -> dict:
    """``{"fpga": [...], "cpu": [...]}`` rows of ``{"where", "what", "latency_ns", "ns_per_event",
    "events_per_s", "kind", "fits", "verdict", "key"}``; ``cpu``: the rows of :func:`measure_cpu`;
    ``published``: the published board run's rows."""
    rows = []
    for key, where, est in (("fpga_board", board, estimate(project, board=board)),
                            ("fpga_trigger", "trigger FPGA (U250 part)", estimate(project, part=TRIGGER_PART,
                                                             clock_period_ns=TRIGGER_CLOCK_NS))):
        fits = est.fits
        verdict = est.verdict()
        rows.append({"key": key, "where": f"{where}, {est.clock_mhz:g} MHz",
                     "what": f"this design ({_design(est)}): one event through the IP"
                             + (" and its board wrapper (the stream's words)" if est.wrapper is not None
                                else ", no I/O") + "; a new event every II",
                     "latency_ns": round(est.latency_ns, 1),
                     "ns_per_event": round(est.ii_cycles * est.clock_period_ns, 1),
                     "events_per_s": round(est.events_per_s), "kind": est.kind, "fits": fits, "verdict": verdict})
    return {"fpga": rows, "cpu": list(cpu or []), "published": published_rows()}


def published_rows() -> list:
    """The published PYNQ-Z2 run (:mod:`~fastml_lab.estimate.published_run`) as headline rows."""
    from .published_run import FIGURES, SOURCE

    return [{"where": f.where, "what": f"{f.what}; {SOURCE}", "latency_ns": round(f.latency_ns, 1),
             "ns_per_event": round(f.ns_per_event, 1), "events_per_s": round(1e9 / f.ns_per_event),
             "kind": f.kind, "fits": None, "verdict": None, "key": f.key} for f in FIGURES]


def latency_ladder(headline: dict) -> list:
    """The rows of :func:`trigger_headline` a latency comparison may set side by side, fastest per
    event first: the CPU rows, the published board run, and this design's FPGA rows where it fits
    (a design over the board's budget is no figure of that board). Each row keeps its kind."""
    fpga = [row for row in headline["fpga"] if row["fits"] is not False]
    rows = fpga + headline["cpu"] + headline.get("published", [])
    return sorted(rows, key=lambda row: row["ns_per_event"])


def headline_table(headline: dict) -> str:
    """The rows of :func:`trigger_headline` as aligned text, each with what it is and measures."""
    rows = headline["fpga"] + headline["cpu"] + headline.get("published", [])
    width = max(len(row["where"]) for row in rows)
    lines = [f"  {'':<{width}}  {'latency':>13}  {'per event':>11}  {'events/s':>13}",
             f"  {'':<{width}}  {'(one answer)':>13}  {'(throughput)':>11}"]
    for row in rows:
        rate = f"{row['events_per_s']:,}" if row["events_per_s"] else ""
        lines.append(f"  {row['where']:<{width}}  {_ns(row['latency_ns']):>13}  {_ns(row['ns_per_event']):>11}  "
                     f"{rate:>13}")
        lines.append(f"    {row['kind']}: {row['what']}")
        if row.get("verdict"):
            lines.append(f"    {'' if row['fits'] is not False else 'NOTE: '}{row['verdict']}")
    return "\n".join(lines)


def _ns(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:,.1f} ms"
    if value >= 1e3:
        return f"{value / 1e3:,.1f} us"
    return f"{value:,.0f} ns"
