"""The long random-model campaign: random models against their compiled C simulation, bit for bit.

Each seed gives one model per family (``tests/fuzz_helpers.py``): a random dense network with a
random precision plan, strategy, reuse factor and target (``nn``), a random HGQ2 model (``hgq``)
and a random BDT (``bdt``). Every model is exported, its C simulation compiled with g++ and run
next to the emulator on inputs aimed at range edges, grid midpoints and thresholds; every output
value is compared. A model the toolkit refuses with a clear FastMLError counts as refused; one whose
compiled C simulation aborts (the reference itself stops, reported as a CsimError) is counted apart.
A worker that dies takes its pool down: the jobs it held run again one by one, so only the job
that kills its worker is recorded as a crash. Prints
models tried/refused, values compared and mismatches, and writes every failing case (seed,
description, error) to a JSON file from which ``--replay`` runs it again.

Run by hand (g++ dominates: 5-10 s a model on a quiet core, 20-30 s on a loaded one)::

    python bench/bench_fuzz.py --seeds 100:200 --workers 1 --out fuzz_failures.json --log fuzz.jsonl
    python bench/bench_fuzz.py --replay fuzz_failures.json      # the failing cases again, kept on disk
    python bench/bench_fuzz.py --summarize fuzz.jsonl            # the counts of a --log file so far
    python bench/bench_fuzz.py --fixed-seeds 0:10                # FixedType vs ap_fixed, one compile a seed
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzz_helpers  # noqa: E402


def _seeds(text: str) -> list:
    if ":" in text:
        lo, hi = text.split(":")
        return list(range(int(lo), int(hi)))
    return [int(s) for s in text.split(",") if s.strip()]


def _one(family: str, seed: int, workdir: str, small: bool, keep: bool) -> dict:
    case = fuzz_helpers.make_case(family, seed, small=small)
    result = fuzz_helpers.run_case(case, Path(workdir), keep=keep)
    if result["status"] in ("mismatch", "crash"):
        result["case"] = case
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0:100", help="a range lo:hi or a comma-separated list (default 0:100)")
    parser.add_argument("--families", default="nn,hgq,bdt", help="comma-separated: nn, hgq, bdt")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1: g++ dominates)")
    parser.add_argument("--small", action="store_true", help="the CI slice's sizes (narrower, fewer trees)")
    parser.add_argument("--out", default="fuzz_failures.json", help="JSON file for the failing cases")
    parser.add_argument("--log", default=None, help="JSON-lines file with every outcome (default: none)")
    parser.add_argument("--replay", default=None, help="run the cases of a failures file again, keeping projects")
    parser.add_argument("--workdir", default=None, help="where projects are written (default: a temporary folder)")
    parser.add_argument("--fixed-seeds", default=None,
                        help="instead of models: FixedType vs g++'s ap_fixed, one compile per seed (e.g. 0:5)")
    parser.add_argument("--summarize", default=None,
                        help="print the counts of a --log file (a campaign still running, or one that was stopped)")
    args = parser.parse_args(argv)
    if args.summarize:
        return summarize(Path(args.summarize), args.out)
    if args.fixed_seeds:
        return fixed_campaign(_seeds(args.fixed_seeds))
    signal.signal(signal.SIGTERM, _interrupt)

    if args.replay:
        failures = json.loads(Path(args.replay).read_text())["failures"]
        jobs = [(f["family"], f["seed"], bool(f.get("small"))) for f in failures]
        keep = True
    else:
        families = [f.strip() for f in args.families.split(",") if f.strip()]
        for f in families:
            if f not in fuzz_helpers.FAMILIES:
                parser.error(f"unknown family {f!r}; known: {', '.join(fuzz_helpers.FAMILIES)}")
        jobs = [(f, s, args.small) for s in _seeds(args.seeds) for f in families]
        keep = False
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fastml-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} models, {args.workers} worker(s), projects in {workdir}", flush=True)

    tally = Tally(len(jobs), args.log)
    try:
        suspects = _run_pool(jobs, args.workers, workdir, keep, tally)
        # A job whose worker died took the whole pool down with it, and the jobs beside it: each runs
        # again alone, so only the one that kills its worker is recorded as a crash.
        for job in suspects:
            _run_pool([job], 1, workdir, keep, tally, last_try=True)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop, and report what finished
        print("Interrupted: the counts below are for the models that finished.", flush=True)
    return tally.summary(args.out)


#: Jobs per process pool: each pool's workers start fresh (Keras and compiled libraries let memory grow
#: over many models). A new pool rather than ``max_tasks_per_child``, which left Python 3.11's pool
#: waiting forever without a worker after its 40th job.
TASKS_PER_POOL = 40


def _run_pool(jobs, workers, workdir, keep, tally, last_try=False) -> list:
    """Run ``jobs`` on a fresh process pool; returns those lost to a dead worker (unless ``last_try``)."""
    lost = []
    for start in range(0, len(jobs), TASKS_PER_POOL):
        pool = ProcessPoolExecutor(max_workers=workers)
        try:
            futures = {pool.submit(_one, f, s, str(workdir), small, keep): (f, s, small)
                       for f, s, small in jobs[start:start + TASKS_PER_POOL]}
            for future in as_completed(futures):
                if isinstance(future.exception(), BrokenProcessPool) and not last_try:
                    lost.append(futures[future])
                else:
                    tally.add(futures[future], future)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return lost


def summarize(log: Path, out) -> int:
    """The summary of the outcomes in a JSON-lines log written with ``--log``."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    tally = Tally(len(lines), None)
    for r in lines:
        tally.add((r["family"], r["seed"], r.get("small", False)), _Done(r), quiet=True)
    return tally.summary(out, elapsed=sum(r.get("seconds", 0.0) for r in lines))


class _Done:
    def __init__(self, result):
        self._result = result

    def result(self):
        return dict(self._result)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def fixed_campaign(seeds) -> int:
    """FixedType against ap_fixed: per seed, 80 random types x their probe values in one compile."""
    from cpp_oracle import compile_and_run

    total = bad_total = 0
    for seed in seeds:
        types = fuzz_helpers.random_oracle_types(seed, n_extra=24)
        values = fuzz_helpers.oracle_values(types, seed)
        with tempfile.TemporaryDirectory() as tmp:
            output = compile_and_run(fuzz_helpers.oracle_source(types), Path(tmp),
                                     "\n".join(float(v).hex() for v in values))
        bad = fuzz_helpers.compare_with_oracle(types, values, output)
        total += len(types) * len(values)
        bad_total += len(bad)
        print(f"seed {seed}: {len(types)} types x {len(values)} values, {len(bad)} differ"
              + (f", e.g. {bad[:3]}" if bad else ""), flush=True)
    print(f"{len(seeds)} seeds: {total:,} conversions compared with g++'s ap_fixed, {bad_total} differ")
    return 1 if bad_total else 0


class Tally:
    """Counts of the outcomes so far, and the failing cases."""

    def __init__(self, n_jobs: int, log_path):
        self.n_jobs = n_jobs
        self.counts = collections.Counter()
        self.per_family = collections.defaultdict(collections.Counter)
        self.refusals = collections.Counter()
        self.ops = collections.Counter()
        self.failures = []
        self.log = open(log_path, "a") if log_path else None
        self.start = time.perf_counter()

    def add(self, job, future, quiet: bool = False) -> None:
        family, seed, small = job
        try:
            r = future.result()
        except Exception as exc:  # a worker died (e.g. a segfault in a compiled library)
            r = {"family": family, "seed": seed, "status": "crash", "error": type(exc).__name__,
                 "message": str(exc), "values": 0, "mismatches": 0, "description": "worker died"}
        r["small"] = small
        c = self.counts
        c["tried"] += 1
        i = c["tried"]
        c[r["status"]] += 1
        c["values"] += r["values"]
        c["mismatched values"] += r["mismatches"]
        self.per_family[family]["tried"] += 1
        self.per_family[family][r["status"]] += 1
        self.per_family[family]["values"] += r["values"]
        self.ops.update(r.get("ops", []))
        if r["status"] in ("refused", "csim-aborted"):
            self.refusals[f"{r['error']}: {r['message'][:90]}"] += 1
        if r["status"] in ("mismatch", "crash"):
            self.failures.append(r)
        if self.log:
            self.log.write(json.dumps({k: v for k, v in r.items() if k != "case"}) + "\n")
            self.log.flush()
        if quiet:
            return
        print(f"[{i}/{self.n_jobs} {time.perf_counter() - self.start:6.0f}s] {r['status']:8s} "
              f"{r['values']:7d} values {r['mismatches']} mismatches  {r['description'][:110]}"
              + (f"  <- {r.get('error')}: {r.get('message', '')[:160]}" if r["status"] != "ok" else ""),
              flush=True)

    def summary(self, out, elapsed: float | None = None) -> int:
        if self.log:
            self.log.close()
        c = self.counts
        elapsed = time.perf_counter() - self.start if elapsed is None else elapsed
        print(f"\n{c['tried']} models tried in {elapsed / 60:.1f} min: {c['ok']} compared, "
              f"{c['refused']} refused, {c['csim-aborted']} whose C simulation aborted, "
              f"{c['mismatch']} with mismatches, {c['crash']} crashed")
        print(f"{c['values']:,} output values compared, {c['mismatched values']:,} mismatches")
        for family, f in sorted(self.per_family.items()):
            print(f"  {family}: {f['tried']} tried, {f['ok']} compared, {f['refused']} refused, "
                  f"{f['csim-aborted']} C simulation aborted, {f['mismatch']} mismatch, {f['crash']} crash, {f['values']:,} values")
        if self.ops:
            print("  ops exercised (models): " + ", ".join(f"{op} {n}" for op, n in sorted(self.ops.items())))
        if self.refusals:
            print("Refusals (and C simulations that aborted, with their reason):")
            for text, n in self.refusals.most_common():
                print(f"  {n:4d}  {text}")
        Path(out).write_text(json.dumps({"counts": dict(c), "failures": self.failures}, indent=1))
        print(f"{len(self.failures)} failing case(s) written to {out}"
              + (f"; rerun them with --replay {out}" if self.failures else ""))
        return 1 if self.failures else 0


if __name__ == "__main__":
    sys.exit(main())
