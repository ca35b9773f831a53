"""Lazy imports of optional heavy dependencies, with an install hint when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRA_OF = {
    "keras": "lab",
    "tensorflow": "lab",
    "hls4ml": "lab",
    "hgq": "lab",
    "sklearn": "lab",
    "matplotlib": "lab",
    "ipywidgets": "lab",
    "h5py": "lab",
    "pandas": "lab",
    "pyarrow": "lab",
    "tqdm": "lab",
    "pynq": "board",
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise ImportError that says which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top, "lab")
        why = f" to {purpose}" if purpose else ""
        raise ImportError(
            f"fastml_lab needs '{top}'{why}, which is not installed. "
            f"Install it with: pip install 'fastml-lab[{extra}]'"
        ) from exc
