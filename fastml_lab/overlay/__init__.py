"""Run packaged models on a PYNQ-Z2, or bit-exactly in software where there is no board.

::

    from fastml_lab import overlay
    overlay.package("exports/jet_mlp", name="jet_mlp")   # -> ./bitstreams/jet_mlp
    with overlay.load("jet_mlp") as ol:                  # board if present, else software
        y = ol.predict(X)                                # like `fastml-lab csim`: X as given
        y = ol.predict(X_raw, scale=True)                # apply the package's scaler first
        ol.profile(X)                                    # measured, plus the modelled board figures
    overlay.on_board()                                   # True on a PYNQ board (pynq sees a device)

Imports numpy alone (never TensorFlow or hls4ml), so it runs on the board's Python 3.10.
"""

from __future__ import annotations

import logging

from ..exceptions import BoardError, ConfigError
from .accelerator import Accelerator
from .catalog import OverlayInfo, list_overlays, resolve
from .driver import board_unavailable_reason, device_absent_reason, on_board
from .links import fetch_bitstream, write_link
from .package import OverlayPackage
from .packaging import package

log = logging.getLogger(__name__)

BACKENDS = ("auto", "software", "board")

__all__ = [
    "Accelerator", "OverlayInfo", "OverlayPackage", "BACKENDS", "device_absent_reason",
    "fetch_bitstream", "list_overlays", "load", "on_board", "open_package", "package", "resolve",
    "write_link",
]


def open_package(name_or_path, paths=()) -> OverlayPackage:
    """The verified package for a path or a name found by :func:`list_overlays`'s search."""
    return OverlayPackage(resolve(name_or_path, paths))


def load(name_or_path, backend: str = "auto", paths=(), **board_options) -> Accelerator:
    """Open a package and return its overlay.

    ``backend="auto"`` uses the board when pynq is importable, a device is present and the
    package's bitstream is present and verified, else the software overlay; ``"board"`` raises
    BoardError saying why the board cannot run it; ``"software"`` always emulates.
    ``board_options`` go to the board driver: :class:`~fastml_lab.overlay.board.BoardOverlay` (a
    network's AXI stream) or :class:`~fastml_lab.overlay.register_board.RegisterBoardOverlay` (a BDT's
    conifer accelerator).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}.")
    pkg = open_package(name_or_path, paths)
    if backend != "software":
        from .board import open_board

        reason = board_unavailable_reason(pkg)
        if reason is None:
            log.info("Overlay %s runs on the board.", pkg.name)
            return open_board(pkg, **board_options)
        if backend == "board":
            raise BoardError(f"Cannot run {pkg.name!r} on the board: {reason}.")
        log.info("Overlay %s runs in software: %s.", pkg.name, reason)
    from .software import SoftwareOverlay

    return SoftwareOverlay(pkg)
