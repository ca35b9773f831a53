"""The field's headline in numbers: the firmware's latency on an FPGA next to one event on a CPU.

:func:`trigger_headline` estimates a project on the PYNQ-Z2 and on a large trigger FPGA (an Alveo
U250 part at 200 MHz, the class of device a Level-1 trigger uses) and sets them beside single-event
latencies measured here. The FPGA figures are estimates and say so; the CPU figures are measured.
Used by the demo and tutorial 4.
"""

from __future__ import annotations

import time

import numpy as np

from .hardware import estimate

#: A large trigger FPGA: the part and clock the hls4ml tutorial's Alveo U250 flow uses.
TRIGGER_PART = "xcu250-figd2104-2L-e"
TRIGGER_CLOCK_NS = 5.0


def median_latency_s(fn, repeats: int = 50) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def trigger_headline(project, cpu: dict | None = None, board: str = "pynq-z2") -> dict:
    """``{"fpga": [...], "cpu": [...]}`` rows of ``{"where", "latency_ns", "events_per_s", "kind"}``.

    ``cpu`` maps a label to a measured single-event latency in seconds (e.g. the emulator's, Keras's).
    """
    rows = []
    for where, est in ((f"{board} (estimate)", estimate(project, board=board)),
                       ("large trigger FPGA, U250 part at 200 MHz (estimate)",
                        estimate(project, part=TRIGGER_PART, clock_period_ns=TRIGGER_CLOCK_NS))):
        rows.append({"where": where, "latency_ns": round(est.latency_ns, 1),
                     "events_per_s": round(est.events_per_s), "kind": est.kind})
    cpu_rows = [{"where": f"{label} on this CPU, one event (measured)", "latency_ns": round(seconds * 1e9),
                 "events_per_s": round(1.0 / seconds) if seconds > 0 else None, "kind": "measurement"}
                for label, seconds in (cpu or {}).items()]
    return {"fpga": rows, "cpu": cpu_rows}


def headline_table(headline: dict) -> str:
    """The rows of :func:`trigger_headline` as aligned text."""
    rows = headline["fpga"] + headline["cpu"]
    width = max(len(row["where"]) for row in rows)
    lines = []
    for row in rows:
        rate = f"{row['events_per_s']:,} events/s" if row["events_per_s"] else ""
        lines.append(f"  {row['where']:<{width}}  {row['latency_ns']:>12,.0f} ns  {rate}")
    return "\n".join(lines)
