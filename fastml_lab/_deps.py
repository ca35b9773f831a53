"""Lazy imports of optional heavy dependencies, with an install hint when they are missing."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import tempfile
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


#: Modules whose first import starts TensorFlow (directly or through Keras).
_STARTS_TENSORFLOW = {"tensorflow", "keras", "hgq", "qkeras", "tf_keras"}
#: What TensorFlow's C++ writes to stderr while it starts, whatever TF_CPP_MIN_LOG_LEVEL says
#: (absl logs before its logging is set up): the notice itself, INFO lines (oneDNN,
#: cpu_feature_guard) and cpu_feature_guard's second line.
_STARTUP_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                            r"|I\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]"
                            r"|To enable the following instructions: .* rebuild TensorFlow)")


def program(name: str, needed_for: str, hint: str) -> str:
    """The path of the program ``name`` on PATH; ToolchainNotFoundError saying what needs it
    (``needed_for``) and how to install it (``hint``) otherwise."""
    import shutil

    from .exceptions import ToolchainNotFoundError

    path = shutil.which(name)
    if path is None:
        raise ToolchainNotFoundError(f"{needed_for} needs {name} on PATH. {hint}")
    return path


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise ImportError that says which extra installs it.

    The first import of TensorFlow (or of Keras, HGQ2...) is quiet: its start-up lines do not reach
    the terminal or the notebook (:func:`tensorflow_quietly`); its warnings and errors still do.
    """
    try:
        if module.split(".")[0] in _STARTS_TENSORFLOW and "tensorflow" not in sys.modules:
            with tensorflow_quietly():
                return importlib.import_module(module)
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top, "lab")
        why = f" to {purpose}" if purpose else ""
        raise ImportError(
            f"fastml_lab needs '{top}'{why}, which is not installed. "
            f"Install it with: pip install 'fastml-lab[{extra}]'"
        ) from exc


@contextlib.contextmanager
def tensorflow_quietly():
    """Start TensorFlow inside this block without its start-up lines on stderr.

    TensorFlow's C++ writes them to file descriptor 2 before its log level applies, so the
    descriptor itself is pointed at a file for the block; afterwards every line but the start-up
    notices (:data:`_STARTUP_NOISE`) is written to the real stderr. TF_CPP_MIN_LOG_LEVEL defaults
    to 1 (no INFO lines later on; a value the user set is kept).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    fd = 2  # what the C++ writes to, whatever sys.stderr is in Python
    try:
        saved = os.dup(fd)
    except OSError:  # nothing to redirect
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as caught:
        _flush_stderr()
        os.dup2(caught.fileno(), fd)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, fd)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not _STARTUP_NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                _flush_stderr()


def _flush_stderr():
    with contextlib.suppress(Exception):
        sys.stderr.flush()
