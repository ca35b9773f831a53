"""The walk as a standalone web page: a one-cell notebook that Voilà serves on localhost."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .._io import write_text_atomic

NOTEBOOK_NAME = "fastml_lab_walk.ipynb"
DEFAULT_PORT = 8866


def walk_notebook(project_dir, quick: bool = True) -> dict:
    """A notebook (nbformat 4) whose one cell shows the walk on ``project_dir``."""
    source = ["import fastml_lab\n",
              f"fastml_lab.lab(project_dir={str(Path(project_dir).resolve())!r}, quick={bool(quick)!r})"]
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "fastml-lab-walk", "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def write_walk_notebook(project_dir, quick: bool = True, path=None) -> Path:
    """Write :func:`walk_notebook` to ``path`` (default: ``PROJECT/fastml_lab_walk.ipynb``)."""
    path = Path(path) if path is not None else Path(project_dir) / NOTEBOOK_NAME
    write_text_atomic(path, json.dumps(walk_notebook(project_dir, quick), indent=1) + "\n")
    return path


def voila_command(notebook, port: int = DEFAULT_PORT, ip: str = "127.0.0.1") -> list:
    """The command that serves ``notebook`` with Voilà: no browser, exactly this port."""
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={int(port)}",
            f"--Voila.ip={ip}", "--Voila.port_retries=0"]


def voila_environment() -> dict:
    """The server's environment: TensorFlow's C++ start-up messages kept out of the terminal."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env
