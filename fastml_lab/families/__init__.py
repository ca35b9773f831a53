"""The model families: one registry, one dispatch.

A family (a neural network through hls4ml, boosted decision trees through conifer, ...) is one
:class:`Family` subclass registered here. It says what it is (its name, title, saved-model files,
how its overlay talks to a board, what a package records of its project) and does what only it can
(train, load, export, profile, study). Everything else (the toolchain, the estimate, the overlay
runtime, the CLI, the walk, the sweeps) asks this module, never compares family names itself:

* :func:`get_family` -- the family of a name (``ConfigError`` listing the valid names);
* :func:`fastml_lab.families.sources.family_of` -- the family of a project (object or folder), a
  saved model file, a model object or a firmware description (a module of its own: it reads
  project records, and the record reads this registry);
* :func:`family_names` -- the registered names, in registration order;
* :func:`register` -- add a family (a new family is one module with one subclass).

The built-in families live in :mod:`fastml_lab.families.nn` and :mod:`fastml_lab.families.bdt`;
they are loaded by name on first use, so this module and the board-safe part import with numpy
alone (a family imports its heavy libraries inside its methods).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..exceptions import ConfigError

#: The neural-network family's name (:mod:`.nn`), also the family of the records and manifests
#: written before families were recorded.
NETWORK = "nn"
LEGACY_FAMILY = NETWORK
#: Modules whose import registers the built-in families.
_BUILTIN = ("fastml_lab.families.nn", "fastml_lab.families.bdt")
#: The interfaces an overlay may use on a board (``fastml_lab.overlay.manifest`` reads them from here).
STREAM, MEMORY_MAPPED = "axi_stream", "s_axilite_m_axi"

_REGISTRY: dict = {}
_loaded = False


class Family:
    """What a model family provides. Subclass it, set the attributes, override what applies.

    Attributes every family sets:

    * ``name``: the short name in records, manifests, sweep spaces and ``--family`` (``"nn"``);
    * ``title``: how a person calls it (``"neural network"``);
    * ``model_suffixes``: file suffixes of its saved models (``(".keras",)``);
    * ``board_interface``: how its overlay talks to a board (:data:`STREAM` or :data:`MEMORY_MAPPED`);
    * ``source_keys``: the project record's keys a package's manifest copies under ``source``;
    * ``bitstream_globs``: ``(bit globs, hwh globs)`` for a Vivado build inside its project folder;
    * ``export_options``: the export options it takes beyond the common ones (precision, backend,
      part, clock, overwrite); others are refused naming the family, with ``options_hint``;
    * ``train_options``: ``{setting: (type, help)}`` that :meth:`train` takes (``fastml-lab train``
      offers each as ``--setting``; a family's own default applies when it is left out);
    * ``sweep_marker``: ``(matplotlib marker, colour)`` of its points on a sweep's plots;
    * ``priced_by_ops``: whether the op registry's cost model prices its firmware description
      (the family then :meth:`describe` s a model), or the family's own :meth:`estimate` does;
    * ``rtl_backends``: ``{backend: what it writes}``, the register-transfer-level generators it
      exports through besides HLS (``fastml-lab export --backend NAME``; :meth:`export_rtl`).
    """

    name: str = ""
    title: str = ""
    model_suffixes: tuple = ()
    board_interface: str = STREAM
    source_keys: tuple = ("name", "backend")
    bitstream_globs: tuple = ((), ())
    export_options: tuple = ()
    options_hint: str = ""
    train_options: dict = {}
    sweep_marker: tuple = ("o", "#1f77b4")
    priced_by_ops: bool = True
    rtl_backends: dict = {}

    # ------------------------------------------------------------------ recognising sources
    def owns_file(self, path: Path) -> bool:
        """Whether ``path`` is a saved model of this family (default: by its suffix)."""
        return Path(path).suffix.lower() in self.model_suffixes

    def owns_model(self, model) -> bool:
        """Whether the object ``model`` is a trained model of this family."""
        return False

    def owns_description(self, description: dict) -> bool:
        """Whether a firmware description was exported from this family."""
        return description.get("family", LEGACY_FAMILY) == self.name

    # ------------------------------------------------------------------ operations
    def _missing(self, what: str):
        return ConfigError(f"The {self.title} family ({self.name!r}) cannot {what}.")

    def train(self, dataset, **settings):
        """A trained model of this family on ``dataset`` (a :class:`fastml_lab.data.JetDataset`)."""
        raise self._missing("train a model")

    def check_train_settings(self, settings: dict) -> None:
        """Refuse bad training settings (ConfigError naming the setting) before any data is read."""

    def save(self, model, path) -> Path:
        """Write ``model`` to ``path`` (atomically); return the path."""
        raise self._missing("save a model")

    def load(self, path):
        """The model saved at ``path``."""
        raise self._missing("load a saved model")

    def preflight(self, path, precision=None) -> None:
        """Refuse, cheaply and before any heavy import, a saved model at ``path`` that :meth:`load`
        cannot read (missing, another suffix, a damaged archive) and a ``precision`` this family
        cannot read. Default: nothing to check."""

    def export(self, model, out, **options):
        """Export ``model`` to the project folder ``out``; return the :class:`~fastml_lab.project.Project`.

        The project's record must carry what the toolchain needs (``family``, the ``csim`` recipe,
        the firmware description beside it): see :mod:`fastml_lab.project`."""
        raise self._missing("export a model")

    def export_rtl(self, model, out, *, backend: str, board=None, part=None, clock_period_ns=None,
                   overwrite: bool = False, **options):
        """Export ``model`` through the RTL generator ``backend`` (one of ``rtl_backends``) to the
        project folder ``out``, for ``board`` (a name of the board table) or a bare ``part``."""
        raise self._missing("export register-transfer-level code")

    def cpu_predictor(self, model) -> tuple:
        """``(label, threads, predict)``: the fastest way this family's own library runs ``model`` on
        a batch on a CPU (``predict(X)``), for baselines set beside an FPGA, and how many threads
        it uses (text)."""
        raise self._missing("run a model on a CPU")

    def evaluate(self, model, dataset) -> dict:
        """``{"accuracy": ...}`` (and more) of ``model`` on ``dataset``'s test part."""
        raise self._missing("evaluate a model")

    def profile(self, model, dataset, **options):
        """Where the values of ``model`` go on ``dataset`` (overflow and vanish counts at a precision)."""
        raise self._missing("profile a model")

    def study(self, model, dataset, **options):
        """A bit-width study of ``model`` on ``dataset``."""
        raise self._missing("run a bit-width study")

    def describe(self, model, precision=None):
        """``(firmware, label)``: the :class:`~fastml_lab.emulator.Firmware` ``model`` becomes at
        ``precision``, without keeping a project, and how to name it in an estimate."""
        raise self._missing("describe a model as firmware")

    def estimate(self, source, board=None, part=None, clock_period_ns=None):
        """A family with its own cost model (``priced_by_ops`` False): the hardware
        :class:`~fastml_lab.estimate.Estimate` of a model or project of this family."""
        raise self._missing("estimate hardware with a cost model of its own")

    def csim_recipe(self, hls_dir: Path) -> dict:
        """The record's ``csim`` entry for a project written before exports recorded it."""
        raise self._missing("compile a C simulation")

    def check_export_options(self, origin, options: dict) -> None:
        """Refuse, naming ``origin``, every option given (not None) that this family does not take."""
        foreign = [key for key, value in options.items() if value is not None and key not in self.export_options]
        if foreign:
            flags = ", ".join("--" + key.replace("_", "-") for key in foreign)
            raise ConfigError(f"{origin} is a {self.title}; {flags} {'does' if len(foreign) == 1 else 'do'} "
                              f"not apply to it. {self.options_hint}".rstrip())

    def __repr__(self) -> str:
        return f"<family {self.name!r}: {self.title}>"


def register(family: Family, replace: bool = False) -> Family:
    """Add ``family`` (an instance) to the registry; returns it. A name taken is refused unless ``replace``."""
    load_builtin()
    if not isinstance(family, Family) or not family.name or not family.title:
        raise ConfigError(f"{family!r} is not a Family with a name and a title.")
    if family.name in _REGISTRY and not replace:
        raise ConfigError(f"A family named {family.name!r} is registered already.")
    if family.board_interface not in (STREAM, MEMORY_MAPPED):
        raise ConfigError(f"Family {family.name!r}: board_interface must be {STREAM!r} or {MEMORY_MAPPED!r}.")
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family added with :func:`register` (for tests and notebooks that add their own)."""
    _REGISTRY.pop(name, None)


def family_names() -> tuple:
    """The registered families' names, built-in ones first."""
    return tuple(f.name for f in registered())


def registered() -> tuple:
    """The registered families, built-in ones first."""
    load_builtin()
    return tuple(_REGISTRY.values())


def rtl_backends() -> dict:
    """``{backend: (family, what it writes)}`` for every RTL generator of a registered family."""
    return {backend: (family, what) for family in registered() for backend, what in family.rtl_backends.items()}


def get_family(name) -> Family:
    """The registered family called ``name`` (a Family is returned as it is)."""
    if isinstance(name, Family):
        return name
    load_builtin()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(f"Unknown model family {name!r}; valid: {', '.join(_REGISTRY)}.") from None


def load_builtin() -> None:
    """Register the built-in families (once)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN:
            importlib.import_module(module)
