"""Run tutorial notebooks top to bottom in a fresh kernel of this Python, as CI and the
benchmark do, and measure their time and the peak memory of the processes involved.

    from fastml_lab.tutorial.execute import notebook_paths, run_notebook
    for path in notebook_paths():
        result = run_notebook(path, workdir="out/tutorials", quick=True, offline=True)
        print(result.name, f"{result.seconds:.0f} s", f"{result.peak_bytes / 2**20:.0f} MiB")

The kernel is this interpreter (``sys.executable``), whatever kernelspecs are installed, so a
virtual environment tests itself. Errors raise nbclient's CellExecutionError with the traceback.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._deps import require
from ..exceptions import ConfigError
from .sizes import QUICK_ENV

#: Memory is sampled this often while a notebook runs.
SAMPLE_INTERVAL_S = 0.1
DEFAULT_CELL_TIMEOUT_S = 300


def notebook_paths(folder=None) -> list:
    """The numbered tutorials (``NN_name.ipynb``) in ``folder`` (default: the shipped ones)."""
    if folder is None:
        from ..notebooks import tutorial_dirs

        folders = tutorial_dirs()
        if not folders:
            raise ConfigError("No tutorial notebooks found (neither installed nor in a checkout).")
        folder = folders[0]
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


@dataclass
class RunResult:
    """One executed notebook: its time, memory peaks and the notebook with outputs."""

    path: Path
    seconds: float
    peak_bytes: int          # all processes of the run together (this one, kernel, g++...), PSS
    peak_kernel_bytes: int   # the kernel and its children alone
    notebook: object = field(repr=False)
    cell_seconds: list = field(default_factory=list, repr=False)
    peak_processes: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.path.stem

    def outputs_text(self) -> str:
        """Every stream and text/plain output, joined (for tests to search)."""
        parts = []
        for cell in self.notebook.cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    parts.append(out.get("text", ""))
                elif "data" in out:
                    parts.append(out["data"].get("text/plain", ""))
        return "\n".join(parts)


def kernel_environment(quick: bool, offline: bool, extra=None) -> dict:
    """The kernel's environment: this one, with the quick and offline switches set."""
    env = dict(os.environ)
    env[QUICK_ENV] = "1" if quick else "0"
    if offline:
        env["FASTML_LAB_OFFLINE"] = "1"
    else:
        env.pop("FASTML_LAB_OFFLINE", None)
    env.update(extra or {})
    return env


def _kernel_manager_class(python: str):
    """An async kernel manager class that starts ``python -m ipykernel_launcher``, whatever
    kernelspecs are installed."""
    jupyter_client = require("jupyter_client", "run notebooks")
    import traitlets
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    spec = KernelSpec(argv=[python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                      display_name=f"Python ({python})", language="python")

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return spec

    class ThisPythonKernelManager(jupyter_client.AsyncKernelManager):
        @traitlets.default("kernel_spec_manager")
        def _this_python(self):
            return ThisPython()

    return ThisPythonKernelManager


def run_notebook(path, workdir, *, quick: bool = True, offline: bool = True,
                 cell_timeout: float = DEFAULT_CELL_TIMEOUT_S, env=None,
                 python: str = sys.executable) -> RunResult:
    """Execute the notebook at ``path`` with ``workdir`` as the kernel's working folder.

    ``env`` adds variables to the kernel's environment (after the quick/offline switches).
    """
    nbformat = require("nbformat", "read notebooks")
    nbclient = require("nbclient", "run notebooks")
    path = Path(path)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        # nbclient owns the kernel manager it creates, so it shuts the kernel down at the end.
        nb, kernel_manager_class=_kernel_manager_class(python), kernel_name="python3",
        timeout=cell_timeout, allow_errors=False,
        record_timing=True, resources={"metadata": {"path": str(workdir)}})
    sampler = PeakMemory()
    start = time.perf_counter()
    with sampler:
        client.execute(env=kernel_environment(quick, offline, env))
    seconds = time.perf_counter() - start
    return RunResult(path=path, seconds=seconds, peak_bytes=sampler.peak_total,
                     peak_kernel_bytes=sampler.peak_children, notebook=nb,
                     cell_seconds=_cell_seconds(nb), peak_processes=sampler.peak_processes)


def _cell_seconds(nb) -> list:
    """``[(cell index, seconds)]`` from the timing nbclient records in each cell's metadata."""
    from datetime import datetime

    out = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if begin and end:
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(begin.replace("Z", "+00:00"))).total_seconds()
            out.append((index, seconds))
    return out


def _memory_bytes(process) -> int:
    """A process's proportional set size: its own pages, plus its share of the pages it shares with
    others (a kernel forked to start g++ is not counted twice); its RSS where PSS is not available."""
    try:
        return int(process.memory_full_info().pss)
    except AttributeError:  # no PSS on this platform
        return int(process.memory_info().rss)


class PeakMemory:
    """Samples the memory (PSS, :func:`_memory_bytes`) of this process and all its descendants in a thread.

    ``peak_total`` is the largest sum over the whole tree seen in one sample (with
    ``peak_processes``, what each process held then); ``peak_children`` the largest sum over the
    descendants alone (the kernel and what it starts).
    """

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S):
        self.interval_s = interval_s
        self.peak_total = 0
        self.peak_children = 0
        self.peak_processes = {}  # name (pid) -> bytes, at the moment of peak_total
        self._stop = threading.Event()
        self._thread = None

    def sample(self) -> None:
        psutil = require("psutil", "measure memory")
        me = psutil.Process()
        sizes = {}
        for child in me.children(recursive=True):
            try:
                sizes[f"{child.name()} ({child.pid})"] = _memory_bytes(child)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        children = sum(sizes.values())
        mine = _memory_bytes(me)
        total = children + mine
        self.peak_children = max(self.peak_children, children)
        if total > self.peak_total:
            self.peak_total = total
            self.peak_processes = {"runner": mine, **sizes}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> "PeakMemory":
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
