"""fastml_lab: from a trained model to a fixed-point overlay on a PYNQ-Z2, step by step.

The pipeline runs one way: ``data`` -> ``train`` -> ``quantize`` -> ``hls`` (export, C simulation)
-> ``overlay`` (package, run). ``fixed`` and ``emulator`` (the bit-exact software model of the
firmware) and ``overlay`` import with numpy alone, so they run on the board; everything that needs
TensorFlow or hls4ml imports it only when called.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "bdt", "boards", "cli", "compare", "data", "demo", "emulator", "evaluate", "exceptions", "firmware",
    "fixed", "hls", "inputs", "overlay", "plots", "project", "quantize", "scaler", "serve", "train", "widgets",
}

__all__ = sorted(_SUBMODULES | {"__version__", "lab"})


def lab(**options):
    """The guided walk (Data -> Train -> Quantize -> Export -> Deploy) as notebook widgets.

    Put ``fastml_lab.lab(project_dir=..., quick=True)`` last in a cell to show it; the options
    are those of :func:`fastml_lab.widgets.lab`.
    """
    from .widgets import lab as _lab

    return _lab(**options)


def __getattr__(name: str):
    # Submodules load on first use, so `import fastml_lab` stays light (no numpy, no TensorFlow).
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'fastml_lab' has no attribute {name!r}")


def __dir__():
    return __all__
