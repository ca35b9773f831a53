"""What the tutorials share: sizes, the machine they run on, skipping cells, checking exercises.

::

    from fastml_lab import tutorial
    lab = tutorial.start("01_getting_started")   # banner: sizes, board, TensorFlow, data
    lab.settings.n_events                        # shrinks with FASTML_LAB_QUICK=1
    lab.work                                     # work/01_getting_started/, for files it writes

    %%needs tensorflow                           # (a cell) skipped with a notice where missing

Modules: ``sizes`` (quick and full sizes), ``environment`` (board, TensorFlow, g++, network),
``magic`` (``%%needs``), ``checks`` (exercise verdicts), ``execute`` (run notebooks, for CI).
Imports numpy alone: the tutorials run on a PYNQ board too.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import magic
from .environment import Environment, detect, has
from .sizes import QUICK_ENV, Settings, quick_mode, settings

__all__ = ["QUICK_ENV", "Environment", "Settings", "Tutorial", "detect", "has", "quick_mode",
           "settings", "start"]

#: Files a tutorial writes go under this folder, relative to where the notebook runs.
WORK_DIR = "work"
#: Trained models the tutorials share, inside the work folder; the variable names another folder.
MODELS_DIR = "_models"
MODEL_CACHE_ENV = "FASTML_LAB_MODEL_CACHE"


def _model_key(spec: str, s: Settings, dataset) -> str:
    """16 hex digits naming a trained model: network, training sizes and the jets themselves."""
    import hashlib

    settings = (spec, s.seed, s.epochs, s.patience, s.learning_rate, s.batch_size, dataset.digest())
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Tutorial:
    """One tutorial's context: its name, sizes, environment and work folder."""

    name: str
    settings: Settings
    environment: Environment
    work: Path

    @property
    def on_board(self) -> bool:
        return self.environment.on_board

    def needs(self, *names: str) -> bool:
        """True if every module or program named is available (for use inside a cell)."""
        return not magic.missing(names)

    def load_jets(self, source="auto"):
        """``data.load_jets(source)`` with this tutorial's number of jets and seed."""
        from ..data import load_jets

        with warnings.catch_warnings():  # the notebook prints the dataset's notice itself
            warnings.filterwarnings("ignore", message="Using synthetic jets", category=UserWarning)
            return load_jets(source, n_events=self.settings.n_events, seed=self.settings.seed)

    def float_model_path(self, dataset, spec: str = "64-32-32") -> Path:
        """Where the course keeps tutorial 1's network trained on ``dataset`` with these sizes."""
        key = _model_key(spec, self.settings, dataset)
        return self.models / f"float_{spec.replace(':', '_')}_{key}.keras"

    def keep_float_model(self, model, dataset, spec: str = "64-32-32") -> Path:
        """Store tutorial 1's trained network where the later tutorials load it from."""
        from ..train import save_model

        path = self.float_model_path(dataset, spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_model(model, path)

    def train_float_model(self, dataset, spec: str = "64-32-32"):
        """Tutorial 1's network on these jets with this tutorial's sizes: the one tutorial 1 trained
        and kept (:meth:`keep_float_model`), else trained here exactly as tutorial 1 trains it and kept.

        The model lives in the shared folder :data:`MODELS_DIR` (``$FASTML_LAB_MODEL_CACHE`` names
        another): every notebook that starts from it sees the same weights, so their numbers agree,
        and Restart & Run All does not train it twice.
        """
        from ..exceptions import DataError
        from ..train import build_model, load_model, train_model

        s = self.settings
        path = self.float_model_path(dataset, spec)
        if path.is_file():
            try:
                model = load_model(path)
            except DataError:  # a damaged file is trained again and replaced
                pass
            else:
                print(f"Loaded the float model {spec} trained earlier (tutorial 1) on these jets with "
                      f"these sizes ({path}).")
                return model
        print(f"No float model {spec} kept for these jets and sizes yet (tutorial 1 keeps it): "
              "training it as tutorial 1 does.")
        model = build_model(spec, seed=s.seed)
        train_model(model, dataset, epochs=s.epochs, patience=s.patience,
                    learning_rate=s.learning_rate, batch_size=s.batch_size, seed=s.seed)
        self.keep_float_model(model, dataset, spec)
        return model

    @property
    def models(self) -> Path:
        """The folder of trained models shared by the tutorials (see :meth:`train_float_model`)."""
        return Path(os.environ.get(MODEL_CACHE_ENV) or self.work.parent / MODELS_DIR)

    def __repr__(self) -> str:
        lines = [f"{self.name}: {self.settings.describe()}", *self.environment.describe(),
                 f"files: {self.work}/"]
        return "\n".join(lines)


def start(name: str, work_dir=WORK_DIR) -> Tutorial:
    """Read the sizes, look at the machine, register ``%%needs``, create the work folder."""
    env = detect()
    work = Path(work_dir) / name
    work.mkdir(parents=True, exist_ok=True)
    magic.register(_ipython(), env.on_board)
    return Tutorial(name=name, settings=settings(), environment=env, work=work)


def _ipython():
    """The running IPython shell, or None (IPython is never imported here just to find out)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None
