"""``%%needs``: run a notebook cell only where what it needs is installed, else say why not.

::

    %%needs tensorflow hls4ml
    model = build_model("64-32-32")     # skipped with a notice on a PYNQ board (no TensorFlow)

Names are modules (``tensorflow``, ``hls4ml``, ``hgq``, ``matplotlib``...) or programs
(``g++``). The cell runs in the notebook's namespace like any other cell; the value of its last
expression is shown, and errors propagate (so a failing cell still fails).
"""

from __future__ import annotations

import ast

from ..exceptions import ConfigError
from .environment import PROGRAMS, PURPOSES, has

MAGIC_NAME = "needs"


def missing(names) -> list:
    """The names among ``names`` that are not available here."""
    return [name for name in names if not has(name)]


def skip_notice(absent, on_board: bool) -> str:
    """The notice shown in place of a skipped cell."""
    what = [PURPOSES.get(n) or PROGRAMS.get(n) or n for n in absent]
    listed = what[0] if len(what) == 1 else ", ".join(what[:-1]) + " and " + what[-1]
    verb = "is" if len(what) == 1 else "are"
    if on_board:
        where = "The PYNQ board image has no TensorFlow or hls4ml: run this part on a laptop or on Binder."
    elif any(n not in PROGRAMS for n in absent):
        where = "Install the lab tools to run it: pip install 'fastml-lab[lab]'."
    else:
        packages = " ".join(n for n in absent if n in PROGRAMS) or "g++"
        where = f"Install it with the system's package manager (e.g. apt-get install {packages})."
    return f"[skipped] This cell needs {listed}, which {verb} not available here. {where}"


def run_source(shell, cell: str):
    """Execute ``cell`` in ``shell``'s namespace; return the value of a final expression
    (unless it ends with ``;``, which silences it as in any cell)."""
    source = shell.transform_cell(cell)
    tree = ast.parse(source)
    last = None
    quiet = shell.displayhook.semicolon_at_end_of_expression(source)
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not quiet:
        last = ast.Expression(tree.body.pop().value)
    filename = shell.compile.cache(source)
    exec(compile(tree, filename, "exec"), shell.user_ns)
    if last is not None:
        return eval(compile(last, filename, "eval"), shell.user_ns)
    return None


def make_magic(shell, on_board: bool):
    """The ``%%needs`` cell magic bound to ``shell``."""

    def needs(line: str, cell: str):
        names = line.split()
        if not names:
            raise ConfigError("%%needs takes what the cell needs, e.g. '%%needs tensorflow' or "
                              f"'%%needs hls4ml g++'; known: {', '.join([*PURPOSES, *PROGRAMS])}.")
        absent = missing(names)
        if absent:
            print(skip_notice(absent, on_board))
            return None
        return run_source(shell, cell)

    needs.__doc__ = __doc__
    return needs


def register(shell, on_board: bool) -> None:
    """Register ``%%needs`` in an IPython shell (``None``: outside IPython, nothing to do)."""
    if shell is not None:
        shell.register_magic_function(make_magic(shell, on_board), "cell", MAGIC_NAME)
