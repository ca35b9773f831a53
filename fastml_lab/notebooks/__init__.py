"""The tutorials and overlay packages that ``pynq get-notebooks`` delivers on a board.

fastml-lab registers this module under the ``pynq.notebooks`` entry point (name ``fastml-lab``).
``pynq get-notebooks fastml-lab`` calls :func:`deliver_notebooks` defined here (instead of copying
this module's folder), which copies the tutorial notebooks and the shipped overlay packages into
``<path>/fastml-lab/``::

    fastml-lab/
        01_....ipynb ...            the tutorials (with their data files)
        bitstreams/<package>/       every shipped package: manifest, emulator data, .bit/.hwh/.link

It also works without pynq: ``python -c "from fastml_lab.notebooks import deliver_notebooks;
deliver_notebooks(None, None, '.', 'fastml-lab', folder=True)"``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_SKIP = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", ".*")


def tutorial_dirs() -> list:
    """Where the tutorials are: inside the installed package, or the source checkout's tutorials/."""
    candidates = [_HERE / "tutorials", _HERE.parents[1] / "tutorials"]
    return [p for p in candidates if p.is_dir() and any(p.glob("*.ipynb"))]


def overlay_dirs() -> list:
    """The shipped overlay package folders."""
    from ..overlay.catalog import _package_dirs, shipped_dirs

    return [pkg for folder in shipped_dirs() for pkg in _package_dirs(folder)]


def deliver_notebooks(device_name, src_path, dst_path, name, folder=False, *args, **kwargs) -> Path:
    """Copy the tutorials and the shipped overlays to ``dst_path`` (``dst_path/name`` when
    ``folder`` is true); returns the folder written. Same signature as pynq's own function.

    The copy is assembled in a temporary folder and renamed into place; an existing destination
    is left untouched (FileExistsError).
    """
    target = Path(dst_path) / name if folder else Path(dst_path)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} already exists; remove it or deliver elsewhere.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        sources = tutorial_dirs()
        if sources:
            shutil.copytree(sources[0], tmp, ignore=_SKIP, dirs_exist_ok=True)
        else:
            log.warning("No tutorial notebooks found; delivering the overlays only.")
        for pkg in overlay_dirs():
            shutil.copytree(pkg, tmp / "bitstreams" / pkg.name, ignore=_SKIP)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("Delivered fastml-lab notebooks to %s (device: %s).", target, device_name or "any")
    return target
