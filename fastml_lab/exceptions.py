"""Exceptions raised by fastml_lab.

Every error the toolkit raises on purpose derives from :class:`FastMLError`, so a notebook or the
command line can catch one class::

    FastMLError
    ├── ConfigError (ValueError)          a parameter, plan or option is not valid
    ├── DataError (ValueError)            an input file or array is malformed
    ├── UnsupportedError (ValueError)     a layer, option or precision the toolchain cannot handle
    ├── NotReadyError (RuntimeError)      a step was called before its inputs exist
    ├── TrainingError (RuntimeError)      training diverged (the loss became NaN or infinite)
    ├── ToolchainNotFoundError (RuntimeError)   g++, Vitis HLS or Vivado is missing
    ├── CompileError (RuntimeError)       g++ is there but the C simulation did not compile
    ├── CsimError (RuntimeError)          the compiled C simulation stopped (an ap_types assertion, a timeout)
    ├── IntegrityError (ValueError)       a package's files do not match its manifest
    ├── BoardError (RuntimeError)         the PYNQ board or its DMA failed, or is absent
    └── BitExactMismatchError (AssertionError)  two implementations disagree (carries indices)

Messages say what was expected, what was found, and how to fix it.
"""

from __future__ import annotations


class FastMLError(Exception):
    """Base class of every error raised by fastml_lab."""


class ConfigError(FastMLError, ValueError):
    """A parameter, precision plan or option is not valid."""


class DataError(FastMLError, ValueError):
    """An input file or array is malformed (shape, columns, NaN/inf, labels, empty)."""


class UnsupportedError(FastMLError, ValueError):
    """A layer, option or precision that the export or the emulator does not support."""


class NotReadyError(FastMLError, RuntimeError):
    """A step was called before the results it needs exist."""


class TrainingError(FastMLError, RuntimeError):
    """Training diverged: the loss became NaN or infinite, so the weights are no longer usable."""


class ToolchainNotFoundError(FastMLError, RuntimeError):
    """An external tool (g++, Vitis HLS, Vivado) is not on PATH."""


class CompileError(FastMLError, RuntimeError):
    """g++ is there but a project's C++ did not compile (or link, or finish in time)."""


class CsimError(FastMLError, RuntimeError):
    """The compiled C simulation stopped before it finished (an ap_types assertion, a timeout)."""


class IntegrityError(FastMLError, ValueError):
    """Files of an overlay package or project do not match what their manifest records."""


class BoardError(FastMLError, RuntimeError):
    """The PYNQ board, its bitstream or its DMA engine failed, timed out or is absent."""


class BitExactMismatchError(FastMLError, AssertionError):
    """Two implementations that must agree bit for bit do not.

    ``indices`` holds the (row, column) positions that differ.
    """

    def __init__(self, message: str, indices=()):
        super().__init__(message)
        self.indices = indices
