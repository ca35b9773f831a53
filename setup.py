"""Build step: put the tutorials and the shipped overlay packages inside the wheel.

They live at the top of the repository (``tutorials/``, ``bitstreams/``). A wheel gets copies at
``fastml_lab/notebooks/tutorials/`` and ``fastml_lab/bitstreams/``, where
:func:`fastml_lab.notebooks.tutorial_dirs` and :func:`fastml_lab.overlay.catalog.shipped_dirs`
look first. Editable installs need no copies: both find the checkout's folders.
Everything else about the package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def shipped_files():
    """``[(source, path inside the package)]`` for the tutorials and the overlay packages."""
    files = [(nb, Path("fastml_lab/notebooks/tutorials") / nb.name)
             for nb in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.ipynb"))]
    bitstreams = ROOT / "bitstreams"
    files += [(bitstreams / "README.md", Path("fastml_lab/bitstreams/README.md"))]
    for package in sorted(p.parent for p in bitstreams.glob("*/manifest.json")):
        files += [(f, Path("fastml_lab/bitstreams") / package.name / f.name)
                  for f in sorted(package.iterdir()) if f.is_file() and not f.name.startswith(".")]
    return files


class BuildWithTutorials(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source, target in shipped_files():
            destination = Path(self.build_lib) / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


setup(cmdclass={"build_py": BuildWithTutorials})
