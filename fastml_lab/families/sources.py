"""The one dispatch from a thing to its model family: :func:`family_of`.

It reads project records (:mod:`fastml_lab.project`), which themselves read the family registry, so
it lives beside the registry rather than in it. Numpy-free.
"""

from __future__ import annotations

from pathlib import Path

from ..exceptions import ConfigError
from ..project import PROJECT_FILE, Project
from . import LEGACY_FAMILY, Family, family_names, get_family, registered


def family_of(source) -> Family:
    """The family of ``source``: a project (object or folder), a package or manifest, a saved model
    file, a firmware description or a model object. ConfigError naming it when no family claims it."""
    meta = getattr(source, "meta", None) or getattr(source, "manifest", None)
    if isinstance(meta, dict):
        return get_family(meta.get("family", LEGACY_FAMILY))
    if isinstance(source, (str, Path)):
        return _family_of_path(Path(source))
    description = getattr(source, "description", source)
    if isinstance(description, dict) and "layers" in description:
        for family in registered():
            if family.owns_description(description):
                return family
    for family in registered():
        if family.owns_model(source):
            return family
    raise ConfigError(f"No model family recognises {type(source).__name__} {source!r:.80}; "
                      f"families: {', '.join(family_names())}.")


def _family_of_path(path: Path) -> Family:
    if (path / PROJECT_FILE).is_file():
        return get_family(Project.open(path).family)
    suffixes = sorted({s for family in registered() for s in family.model_suffixes})
    if not path.exists():
        raise ConfigError(f"{path} is neither an exported project (a folder with {PROJECT_FILE}) nor a "
                          f"model file ({', '.join(suffixes)}).")
    for family in registered():
        if family.owns_file(path):
            return family
    raise ConfigError(f"{path} is neither an exported project (a folder with {PROJECT_FILE}) nor a saved "
                      f"model ({', '.join(suffixes)}).")
