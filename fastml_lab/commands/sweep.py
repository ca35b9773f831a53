"""Verb for design-space exploration: ``sweep`` (run a space on Dask) and ``sweep --report`` (its results).

``fastml-lab sweep SPACE --out DIR`` runs on a local Dask cluster sized to the machine (or
``--workers N``), or on a running cluster with ``--scheduler tcp://HOST:PORT`` or
``--scheduler-file F``. Every finished point is in DIR at once; a re-run resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_verb


def _sweep(args):
    from ..exceptions import ConfigError

    if args.report is not None:
        if args.space is not None or args.out is not None:
            raise ConfigError("--report DIR reads a sweep folder; give no SPACE or --out with it.")
        return _report(args.report)
    if args.space is None or args.out is None:
        raise ConfigError("sweep needs a space file and a folder: fastml-lab sweep SPACE --out DIR "
                          "(or fastml-lab sweep --report DIR).")
    return _run(args)


def _run(args):
    from ..sweep.results import PLOT_FILE, report
    from ..sweep.runner import quiet_dask, run_sweep
    from ..sweep.store import TABLE_CSV

    if not args.verbose:  # the scheduler of a local cluster runs in this process and logs every step
        import distributed  # noqa: F401 (its loggers exist once it is imported)

        quiet_dask()
    bar = {}

    def on_start(summary):
        where = "local cluster" if args.scheduler is None and args.scheduler_file is None else (
            args.scheduler or args.scheduler_file)
        print(f"Dask: {summary.workers} workers ({where}); dashboard: {summary.dashboard or 'none'}"
              f"{'' if _has_bokeh() else ' (install bokeh>=3.1 to open it)'}", flush=True)
        print(f"{summary.search} search: {summary.planned} points into {summary.folder}", flush=True)
        from tqdm import tqdm

        bar["bar"] = tqdm(total=summary.planned, unit="point", desc="sweep", dynamic_ncols=True)

    def on_point(record, summary, written):
        bar["bar"].n = summary.ok + summary.errors + summary.skipped
        metrics = record.get("metrics") or {}
        last = (f"{record['label']}: acc {metrics['fixed_accuracy']:.3f}, LUT {metrics['lut']:,}"
                if record["status"] == "ok" else f"{record['label']}: error")
        bar["bar"].set_postfix_str(f"ok {summary.ok}, errors {summary.errors} | {last}", refresh=False)
        bar["bar"].refresh()

    try:
        summary = run_sweep(args.space, args.out, search=args.search, trials=args.trials, workers=args.workers,
                            scheduler=args.scheduler, scheduler_file=args.scheduler_file,
                            retry_errors=args.retry_errors, on_start=on_start, on_point=on_point)
    finally:
        if "bar" in bar:
            bar["bar"].n = bar["bar"].n
            bar["bar"].close()
    print(summary.describe())
    result = report(args.out)
    print(result.summary())
    print(f"table: {Path(args.out) / TABLE_CSV}; plot: {Path(args.out) / PLOT_FILE}")
    return 0 if result.ok else 1


def _report(folder):
    from ..sweep.results import PLOT_FILE, report
    from ..sweep.store import TABLE_CSV

    result = report(folder)
    print(result.summary())
    print(f"table: {Path(folder) / TABLE_CSV}; plot: {Path(folder) / PLOT_FILE}")
    return 0 if result.ok else 1


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def register(sub) -> None:
    p = add_verb(sub, "sweep", _sweep, "explore a design space on Dask (NN and BDT points, Pareto fronts)")
    p.add_argument("space", nargs="?", type=Path, help="the space: a YAML or JSON file")
    p.add_argument("--out", type=Path, help="the sweep folder (a re-run with the same folder resumes)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="re-draw the table, fronts and plots of a finished or partial sweep folder")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask scheduler")
    where.add_argument("--scheduler-file", metavar="F", help="run on the scheduler this file names")
    p.add_argument("--workers", type=int, help="workers of the local cluster (default: sized to the machine)")
    p.add_argument("--search", choices=("grid", "random", "optuna"),
                   help="how to pick points (default: the space's 'search', else grid)")
    p.add_argument("--trials", type=int, help="points of a random or optuna search (default: the space's, else 20)")
    p.add_argument("--retry-errors", action="store_true", help="run again the points that ended in an error")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
