"""What the steps share, and the project folder that keeps it across re-runs of the cell.

Layout of the project folder (each step writes only its own part)::

    PROJECT/data/result.json        settings, numbers, notes of the last Data run (+ its PNGs); the
                                    settings say which jets (or jet images) to load again
    PROJECT/train/...               the same for Train, Quantize, Export, Deploy
    PROJECT/model.keras             the trained float model (a neural network), or
    PROJECT/bdt_model.json          the trained boosted decision trees (xgboost's JSON, with
                                    bdt_model.bdt.json beside it: fastml_lab.bdt.train's sidecar)
    PROJECT/quantized.keras         the quantized or pruned model (when there is one)
    PROJECT/quantize/plan.json      the precision plan chosen for post-training quantization
    PROJECT/quantize/precision.json the BDT's precision chosen at the Precision step
    PROJECT/hls_project/            the exported HLS project
    PROJECT/bitstreams/NAME/        the overlay package

:meth:`LabState.restore` reads them back: the data (reloaded from its saved settings), the
model (either family), the precision, the project and the package. Only one model file is kept:
training one family removes the other's, so the folder says which family the walk is on.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import traitlets

from .._io import write_json_atomic
from ..exceptions import ConfigError
from ..families import NETWORK, family_names
from ..families.sources import family_of
from ..families.bdt import BoostedDecisionTrees
from ..overlay.manifest import MANIFEST_FILE
from . import DEFAULT_PROJECT_DIR

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
MODEL_FILE = "model.keras"
BDT_MODEL_FILE = "bdt_model.json"
PRECISION_FILE = "precision.json"
QUANTIZED_FILE = "quantized.keras"
PLAN_FILE = "plan.json"
HLS_PROJECT_DIR = "hls_project"
PACKAGES_DIR = "bitstreams"
#: The Data step's ``kind`` of jet images (beside "synthetic", "openml" and "file" for the jet features).
IMAGES = "images"


#: The model families the walk trains (the registry's names): a neural network or boosted decision trees.
FAMILIES = family_names()
#: The boosted decision trees' family name (the network's is :data:`fastml_lab.families.NETWORK`):
#: the steps key the controls and calls of each family by these names.
TREES = BoostedDecisionTrees.name


def model_family(model) -> str:
    """The name of ``model``'s family (:func:`fastml_lab.families.sources.family_of`); a model that no
    family claims is taken for a neural network."""
    try:
        return family_of(model).name
    except ConfigError:
        return NETWORK


def takes_images(model) -> bool:
    """Whether ``model`` is a Keras model whose input is an image (a CNN), not a row of features."""
    inputs = getattr(model, "inputs", None)
    return bool(inputs) and len(inputs[0].shape) > 2


def is_image_data(dataset) -> bool:
    """Whether ``dataset`` holds jet images (:class:`fastml_lab.data.images.JetImageDataset`)."""
    return hasattr(dataset, "image_shape") and hasattr(dataset, "flattened")


def dataset_for(dataset, model):
    """The dataset as ``model`` reads it: jet images become rows of pixels for a network on the
    flattened pixels (Train's ``ds = ds.flattened()``); anything else is returned as it is."""
    if is_image_data(dataset) and getattr(model, "inputs", None) and not takes_images(model):
        return dataset.flattened()
    return dataset


def precision_text(precision) -> str:
    """A BDT precision as one line: a type, or ``part=type`` pairs (as export_bdt reads them)."""
    if isinstance(precision, dict):
        return " ".join(f"{part}={_type_text(t)}" for part, t in precision.items())
    return _type_text(precision)


def _type_text(t) -> str:
    return t.to_hls() if hasattr(t, "to_hls") else str(t)


@dataclass
class StepResult:
    """What a step shows after a run: labelled numbers, figures (PNG files) and notes."""

    numbers: list = field(default_factory=list)  # [(label, text), ...]
    figures: dict = field(default_factory=dict)  # name -> Path of a PNG
    notes: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    saved: str = ""

    def add(self, label: str, text) -> None:
        self.numbers.append((label, str(text)))

    def to_dict(self) -> dict:
        return {"settings": self.settings, "numbers": [list(row) for row in self.numbers],
                "figures": sorted(self.figures), "notes": list(self.notes), "saved": self.saved}


class LabState(traitlets.HasTraits):
    """The objects that flow from step to step; steps observe the traits they need."""

    project_dir = traitlets.Unicode(DEFAULT_PROJECT_DIR, help="folder where the walk keeps its work")
    quick = traitlets.Bool(True, help="quick settings: small data, one or two epochs")
    dataset = traitlets.Any(None, allow_none=True, help="JetDataset (or JetImageDataset) loaded by the Data step")
    model = traitlets.Any(None, allow_none=True, help="trained float Keras model or BDTModel (Train step)")
    family = traitlets.Unicode(NETWORK, help="the trained model's family: a name in FAMILIES (follows model)")
    evaluation = traitlets.Any(None, allow_none=True, help="the float model's Evaluation on the test set")
    quantized = traitlets.Any(None, allow_none=True,
                              help="model the Quantize step made (HGQ2 or pruned; None: export the float model)")
    plan = traitlets.Any(None, allow_none=True, help="PrecisionPlan the Quantize step chose for PTQ")
    precision = traitlets.Any(None, allow_none=True,
                              help="the BDT precision the Precision step chose (a type or part=type text)")
    project = traitlets.Any(None, allow_none=True, help="exported hls.Project (Export step)")
    package = traitlets.Any(None, allow_none=True, help="path of the overlay package (Deploy step)")
    restoring = traitlets.Bool(False, help="True while restore() reads the project folder")
    running = traitlets.Unicode("", help="title of the step whose work is running ('' when none)")

    #: The traits that hold objects a step produces (and that a step can be given).
    OBJECTS = ("dataset", "model", "evaluation", "quantized", "plan", "precision", "project", "package")

    def __init__(self, project_dir=DEFAULT_PROJECT_DIR, quick: bool = True, **objects):
        self._folder_read = threading.Event()  # set while ``restoring`` is False
        self._folder_read.set()
        super().__init__(project_dir=str(project_dir), quick=bool(quick))
        self.give(**objects)

    @traitlets.observe("model")
    def _model_changed(self, change) -> None:
        if change["new"] is not None:
            self.family = model_family(change["new"])

    @traitlets.observe("restoring")
    def _restoring_changed(self, change) -> None:
        (self._folder_read.clear if change["new"] else self._folder_read.set)()

    def wait_restored(self, timeout: float | None = None) -> bool:
        """Block until the project folder is read (``restoring`` is False); False after ``timeout`` s."""
        return self._folder_read.wait(timeout)

    def give(self, **objects) -> None:
        """Set inputs by name (``model=...``); None values are skipped."""
        for name, value in objects.items():
            if name not in self.OBJECTS:
                raise TypeError(f"unknown input {name!r}; known: {', '.join(self.OBJECTS)}")
            if value is not None:
                setattr(self, name, value)

    # ------------------------------------------------------------------ folder
    @property
    def folder(self) -> Path:
        return Path(self.project_dir).expanduser()

    def step_dir(self, step: str) -> Path:
        return self.folder / step

    def save_result(self, step: str, result: StepResult) -> None:
        """Record ``result`` (its PNGs are already in the step's folder) as ``STEP/result.json``."""
        result.saved = datetime.datetime.now().isoformat(timespec="seconds")
        write_json_atomic(self.step_dir(step) / RESULT_FILE, result.to_dict())

    def forget_result(self, step: str) -> None:
        """Remove ``step``'s saved result (when what it described has just been replaced)."""
        (self.step_dir(step) / RESULT_FILE).unlink(missing_ok=True)

    def load_result(self, step: str) -> StepResult | None:
        """The last saved result of ``step``, or None when there is none (or it is unreadable)."""
        folder = self.step_dir(step)
        try:
            data = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        figures = {name: folder / f"{name}.png" for name in data.get("figures", [])}
        return StepResult(numbers=[tuple(row) for row in data.get("numbers", [])],
                          figures={k: p for k, p in figures.items() if p.is_file()},
                          notes=list(data.get("notes", [])), settings=dict(data.get("settings", {})),
                          saved=data.get("saved", ""))

    # ------------------------------------------------------------------ restore
    def restore(self) -> list:
        """Read back what earlier runs left in the project folder; returns notes on what was found.

        Missing pieces are skipped; a piece that cannot be read is reported in the notes.
        """
        from ..bdt.train import load_bdt
        from ..hls import PrecisionPlan
        from ..project import PROJECT_FILE, Project
        from ..train import load_model  # float and HGQ2 models alike

        pieces = [  # (what, trait, the file that says it exists, how to load it from that file)
            ("data", "dataset", self.step_dir("data") / RESULT_FILE, self._load_dataset),
            ("model", "model", self.folder / MODEL_FILE, load_model),
            ("boosted decision trees", "model", self.folder / BDT_MODEL_FILE, load_bdt),
            ("quantized model", "quantized", self.folder / QUANTIZED_FILE, load_model),
            ("precision plan", "plan", self.step_dir("quantize") / PLAN_FILE, PrecisionPlan.load),
            ("BDT precision", "precision", self.step_dir("quantize") / PRECISION_FILE, load_precision),
            ("HLS project", "project", self.folder / HLS_PROJECT_DIR / PROJECT_FILE,
             lambda path: Project.open(path.parent)),
            ("overlay package", "package", self._package_manifest(), lambda path: path.parent),
        ]
        self.restoring = True
        notes = []
        try:
            for what, trait, path, load in pieces:
                if getattr(self, trait) is not None or path is None or not path.is_file():
                    continue
                try:
                    setattr(self, trait, load(path))
                    notes.append(f"restored the {what}")
                except Exception as exc:  # a damaged file must not stop the walk from opening
                    log.debug("restore %s failed", what, exc_info=True)
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    notes.append(f"could not restore the {what}: {first[:300]}")
        finally:
            self.restoring = False
        return notes

    def save_precision(self, precision) -> None:
        """Keep the BDT precision the Precision step chose (``None``: forget it)."""
        path = self.step_dir("quantize") / PRECISION_FILE
        path.unlink(missing_ok=True)
        if precision is not None:
            write_json_atomic(path, {"precision": precision})

    def _load_dataset(self, result_file: Path):
        """The jets (or jet images) again, from the settings the Data step saved."""
        from ..data import load_jets
        from ..data.images import load_jet_images

        settings = json.loads(result_file.read_text(encoding="utf-8"))["settings"]
        if settings.get("kind") == IMAGES:
            return load_jet_images(settings["source"], n_events=settings.get("n_events"),
                                   seed=settings.get("seed", 0))
        return load_jets(settings["source"], n_events=settings.get("n_events"),
                         seed=settings.get("seed", 0), progress=False)

    def _package_manifest(self) -> Path | None:
        saved = self.load_result("deploy")
        if saved is None or "name" not in saved.settings:
            return None
        return self.folder / PACKAGES_DIR / saved.settings["name"] / MANIFEST_FILE


def load_precision(path: Path):
    """The precision :meth:`LabState.save_precision` wrote."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["precision"]
