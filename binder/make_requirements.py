"""Write binder/requirements.txt from the project's constraints.txt: the same pins, in order.

    python binder/make_requirements.py           # rewrite binder/requirements.txt
    python binder/make_requirements.py --check   # exit 1 if it is out of date

Binder (repo2docker) installs requirements.txt, then postBuild installs fastml-lab itself
without dependencies, so the image holds exactly the tested set of versions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE.parent / "constraints.txt"
REQUIREMENTS = HERE / "requirements.txt"
HEADER = """\
# Generated from constraints.txt by binder/make_requirements.py; do not edit.
# Binder installs these pins, then binder/postBuild installs fastml-lab with --no-deps.
"""


def pins(text: str) -> list:
    """The ``name==version`` lines of a constraints file, in order (comments and blanks dropped)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise ValueError(f"{CONSTRAINTS.name}:{number}: expected 'name==version', got {line!r}")
        out.append(f"{name.strip()}=={version.strip()}")
    return out


def render(constraints_text: str) -> str:
    return HEADER + "\n".join(pins(constraints_text)) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    text = render(CONSTRAINTS.read_text(encoding="utf-8"))
    current = REQUIREMENTS.read_text(encoding="utf-8") if REQUIREMENTS.exists() else None
    if args.check:
        if current != text:
            print("binder/requirements.txt is out of date: run python binder/make_requirements.py",
                  file=sys.stderr)
            return 1
        return 0
    if current != text:
        REQUIREMENTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
