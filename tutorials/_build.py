"""Build the tutorial notebooks from their sources, without outputs.

    python tutorials/_build.py           # writes tutorials/NN_name.ipynb from tutorials/src/NN_name.py
    python tutorials/_build.py --check   # exit 1 if a notebook differs from what its source gives

A source is a Python file in jupytext's "percent" format, read by jupytext itself: ``# %%`` starts
a code cell, ``# %% [markdown]`` a markdown cell whose lines carry a leading ``# ``. Edit the
sources, not the notebooks: the notebooks are generated, stored without outputs, and checked
against their sources by tests/test_tutorials.py. So that a build gives the same bytes every time,
the notebooks keep only a kernelspec and language_info as metadata (not the jupytext section
jupytext adds) and numbered cell ids (not random ones).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def build(source: Path):
    """The notebook for ``source``: clean metadata, numbered cell ids, no outputs."""
    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for index, cell in enumerate(nb.cells, start=1):
        cell.id = f"cell-{index:02d}"
    nbformat.validate(nb)
    return nb


def render(nb) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for source in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        target = HERE / f"{source.stem}.ipynb"
        text = render(build(source))
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        stale.append(target.name)
        if not args.check:
            target.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"Out of date (run python tutorials/_build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    if not args.check:
        print(f"Wrote {len(stale)} notebook(s)." if stale else "All notebooks are up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
