"""The software overlay: the package's bit-exact emulator behind the same API as the board."""

from __future__ import annotations

import logging

import numpy as np

from ..exceptions import IntegrityError
from .accelerator import Accelerator

log = logging.getLogger(__name__)

#: Events per emulator call: large enough to vectorise, small enough for a 2 GB machine.
SOFTWARE_CHUNK_EVENTS = 4096


def load_firmware(package):
    """The package's emulator, checked against the manifest's digest and I/O sizes."""
    from ..emulator import Firmware

    firmware = Firmware.load(package.path)
    package.check_firmware_digest(firmware)
    if (firmware.n_inputs, firmware.n_outputs) != (package.n_inputs, package.n_outputs):
        raise IntegrityError(
            f"The emulator of {package.path} has {firmware.n_inputs} inputs and "
            f"{firmware.n_outputs} outputs; the manifest says {package.n_inputs} and "
            f"{package.n_outputs}."
        )
    return firmware


def stream_ip(firmware, words: np.ndarray, word_dtype) -> np.ndarray:
    """What the IP does with a run of input words: each word becomes the input type, results
    are computed bit-exactly and each is written back as one word of ``word_dtype``.

    The words come from events the overlay has already checked, so the emulator runs them
    unchecked (:meth:`~fastml_lab.emulator.Firmware.run_checked`), as the IP takes any word.
    """
    events = np.ascontiguousarray(words, dtype=np.float64).reshape(-1, firmware.n_inputs)
    return np.ascontiguousarray(firmware.run_checked(events), dtype=word_dtype).reshape(-1)


class SoftwareOverlay(Accelerator):
    """Runs anywhere numpy runs; its outputs equal the C simulation's value for value."""

    backend = "software"

    def __init__(self, package, firmware=None):
        super().__init__(package)
        self.firmware = firmware if firmware is not None else load_firmware(package)

    @property
    def max_events_per_transfer(self) -> int:
        return SOFTWARE_CHUNK_EVENTS

    def _transfer(self, words, n_events):
        return stream_ip(self.firmware, words, self.word_dtype)

    def profile(self, X, scale: bool = False, repeats: int = 50) -> dict:
        result = super().profile(X, scale=scale, repeats=repeats)
        result["measured_on"] = "this CPU, running the emulator (not the board)"
        return result
