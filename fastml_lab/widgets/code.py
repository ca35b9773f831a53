"""The calls a step makes, which the step both runs and shows as Python ("Show code").

A step describes its work as :class:`Call` objects (the function, its arguments, the variable
that receives the result) built from its settings. ``work`` runs those calls; ``code`` renders
the same calls as a script, so the code a student copies is the code the panel ran. Arguments
that are variables of the script (``ds``, ``model``, ``plan``, ``ds.X_test``) are :class:`Ref`
objects, read from the step's variables when the call runs. What only the panel needs (progress
hooks, a Stop callback, ``progress=False``) is passed to :meth:`Call.run` and not shown.

The snippets chain: Data makes ``ds``, Train ``model``, Quantize ``qmodel`` and/or ``plan`` (for
boosted decision trees, Precision makes ``precision``), Export ``prj``; together they run as a script.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

#: Short names the script imports modules under.
MODULE_ALIASES = {"numpy": "np", "fastml_lab.quantize": "quantize", "fastml_lab.overlay": "overlay"}
#: Longer calls are written one argument per line.
LINE_LENGTH = 100
#: The variables the earlier steps' snippets define.
GIVEN = ("ds", "model", "qmodel", "plan", "precision", "prj")


class Ref:
    """A variable of the script, or an expression over variables (``ds.X_test[:2000]``)."""

    __slots__ = ("expr",)

    def __init__(self, expr: str):
        self.expr = expr

    def __repr__(self) -> str:
        return self.expr

    def __eq__(self, other) -> bool:
        return isinstance(other, Ref) and other.expr == self.expr

    def __hash__(self) -> int:
        return hash(self.expr)

    def value(self, names: dict):
        """The expression evaluated over ``names`` (the step's variables)."""
        from ..exceptions import NotReadyError

        try:
            return eval(self.expr, {"__builtins__": {"len": len}}, names)  # noqa: S307 (our own expressions)
        except NameError as exc:
            raise NotReadyError(f"The step needs {exc.name!r} ({self.expr}), which no earlier step made.") from None


@dataclass(frozen=True)
class Call:
    """``assign = function(*args, **kwargs)``: one call of the toolkit's API.

    ``function`` is a dotted import path (``fastml_lab.hls.export``,
    ``fastml_lab.hls.PrecisionPlan.from_data``) or a variable's method (``prj.firmware``,
    ``ol.predict``). ``show`` lines follow it in the rendered script (printing or plotting its
    result; ``show_imports`` are what they import) and are not run by the panel, which shows the
    result its own way.
    """

    function: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    assign: str | None = None
    show: tuple = ()
    show_imports: tuple = ()

    # ------------------------------------------------------------------ running
    def run(self, names: dict, **hooks):
        """Call it with ``names``' values for its Refs (plus the panel-only ``hooks``); the result
        is also stored in ``names[assign]`` for the calls that follow."""
        args = [_value(a, names) for a in self.args]
        kwargs = {k: _value(v, names) for k, v in self.kwargs.items()}
        result = self.target(names)(*args, **kwargs, **hooks)
        if self.assign:
            names[self.assign] = result
        return result

    def target(self, names: dict):
        """The function itself: a variable's method, or imported."""
        head, _, rest = self.function.partition(".")
        if head in names:
            obj = names[head]
            for attr in rest.split("."):
                obj = getattr(obj, attr)
            return obj
        module, attrs = _split_import(self.function)
        obj = importlib.import_module(module)
        for attr in attrs:
            obj = getattr(obj, attr)
        return obj

    # ------------------------------------------------------------------ rendering
    def import_line(self, names: set) -> str | None:
        if self.function.partition(".")[0] in names:
            return None
        module, attrs = _split_import(self.function)
        if module in MODULE_ALIASES:
            alias = MODULE_ALIASES[module]
            parent, _, last = module.rpartition(".")
            if not parent:
                return f"import {module} as {alias}"
            return f"from {parent} import {last}" + ("" if alias == last else f" as {alias}")
        return f"from {module} import {attrs[0]}"

    def expression(self, names: set) -> str:
        if self.function.partition(".")[0] in names:
            callee = self.function
        else:
            module, attrs = _split_import(self.function)
            callee = ".".join([MODULE_ALIASES[module], *attrs] if module in MODULE_ALIASES else attrs)
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        line = f"{callee}({', '.join(parts)})"
        if len(line) + len(self.assign or "") <= LINE_LENGTH:
            return line
        indent = " " * (len(callee) + 1 + (len(self.assign) + 3 if self.assign else 0))
        return f"{callee}(" + f",\n{indent}".join(parts) + ")"

    def render(self, names: set) -> str:
        line = self.expression(names)
        return "\n".join([f"{self.assign} = {line}" if self.assign else line, *self.show])


def _value(value, names: dict):
    if isinstance(value, Ref):
        return value.value(names)
    if isinstance(value, (list, tuple)) and any(isinstance(v, Ref) for v in value):
        return type(value)(_value(v, names) for v in value)
    return value


def _split_import(path: str) -> tuple:
    """``("fastml_lab.hls", ["PrecisionPlan", "from_data"])``: the longest importable module prefix."""
    parts = path.split(".")
    for n in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:n]))
        except ImportError:
            continue
        if hasattr(module, parts[n]):
            return ".".join(parts[:n]), parts[n:]
    raise ImportError(f"No module found for {path!r}.")


def render(calls, given=GIVEN) -> str:
    """The script of ``calls``: its imports, then each call and its ``show`` lines.

    ``given`` are the variables earlier steps' snippets define; each call's ``assign`` adds one.
    """
    names = set(given)
    imports, lines = [], []
    for call in calls:
        for line in (call.import_line(names), *call.show_imports):
            if line and line not in imports:
                imports.append(line)
        lines.append(call.render(names))
        if call.assign:
            names.add(call.assign)
    return "\n".join([*_merge(imports), "", *lines])


def _merge(imports: list) -> list:
    """``from m import a`` and ``from m import b`` as ``from m import a, b``, sorted."""
    modules: dict = {}
    plain = []
    for line in imports:
        if line.startswith("from ") and " import " in line:
            module, _, name = line[5:].partition(" import ")
            modules.setdefault(module, []).append(name)
        else:
            plain.append(line)
    merged = [f"from {m} import {', '.join(sorted(set(n)))}" for m, n in modules.items()]
    return sorted(plain) + sorted(merged)
