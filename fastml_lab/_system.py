"""What this process may use of the machine: cores and memory. Standard library only (runs on the board)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: A prefix that makes a child process (a compiler, a simulator) end when the process that started it
#: dies, so a killed CLI or kernel leaves none running: util-linux's ``setpriv --pdeathsig``, where
#: it exists (Linux).
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL", "--") if shutil.which("setpriv") else ()


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_memory() -> int:
    """Bytes this process may still allocate: the smaller of the system's available memory and
    what its cgroup (a container's or Binder's limit) leaves; a large number where neither is known."""
    known = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                known.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            known.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(known) if known else 1 << 40


def parts(n_items: int, min_per_part: int) -> int:
    """Into how many parts to cut ``n_items`` for one child process per core: at most one per usable
    core, each of at least ``min_per_part`` items, at least one."""
    return max(1, min(usable_cores(), n_items // min_per_part))
