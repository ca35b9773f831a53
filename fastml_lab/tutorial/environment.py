"""What the machine running a tutorial offers: a PYNQ board, TensorFlow, g++, the network.

Board detection is :func:`fastml_lab.overlay.driver.device_absent_reason`, the same test
``overlay.load`` uses; nothing here imports TensorFlow (availability is looked up, not imported).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass

#: What each optional module is and is needed for, as the skip notices say it.
PURPOSES = {
    "tensorflow": "TensorFlow (to train and quantize models)",
    "keras": "Keras (to train and quantize models)",
    "hls4ml": "hls4ml (to export models to HLS C++)",
    "hgq": "HGQ2 (for quantization-aware training)",
    "sklearn": "scikit-learn (to prepare the jet data)",
    "matplotlib": "matplotlib (for plots)",
    "ipywidgets": "ipywidgets (for the widgets)",
    "da4ml": "da4ml (to turn networks into adders and Verilog)",
}
#: Programs a cell may need, looked up on PATH.
PROGRAMS = {"g++": "g++ (to compile the C simulation)",
            "verilator": "Verilator (to simulate the Verilog)",
            "yosys": "yosys (to map the Verilog to FPGA cells)"}
#: The PYNQ image names its board in this variable (e.g. ``Pynq-Z2``).
BOARD_ENV = "BOARD"


def has(name: str) -> bool:
    """True if the module (or, for names in :data:`PROGRAMS`, the program) is available."""
    if name in PROGRAMS:
        return shutil.which(name) is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):  # a module blocked or half-installed
        return False


@dataclass(frozen=True)
class Environment:
    """The facts a tutorial adapts to."""

    on_board: bool
    board_reason: str | None     # why there is no board (None on a board)
    board_name: str | None       # from $BOARD on the PYNQ image
    has_tensorflow: bool
    has_gxx: bool
    offline: bool                # FASTML_LAB_OFFLINE: load_jets("auto") stays off the network

    def describe(self) -> list:
        """Lines for the tutorial banner."""
        if self.on_board:
            board = (f"PYNQ board detected ({self.board_name or 'name unknown'}): overlays with a "
                     "bitstream run on the FPGA")
        else:
            board = "no PYNQ board (overlays run in software, bit-exact)"
        if self.has_tensorflow:
            tf = "TensorFlow available"
        else:
            tf = "no TensorFlow: cells marked %%needs tensorflow are skipped with a notice"
        data = ("offline (FASTML_LAB_OFFLINE): synthetic jets unless the real ones are cached"
                if self.offline else "real jets from OpenML if reachable, else synthetic (it says which)")
        return [board, tf, f"data: {data}"]


def detect() -> Environment:
    """Look at this machine (a few milliseconds; on a board, pynq's device probe)."""
    from ..data.openml import offline
    from ..overlay.driver import device_absent_reason

    reason = device_absent_reason()
    return Environment(
        on_board=reason is None,
        board_reason=reason,
        board_name=os.environ.get(BOARD_ENV) if reason is None else None,
        has_tensorflow=has("tensorflow") and has("keras"),
        has_gxx=has("g++"),
        offline=offline(),
    )
