"""Imports go one way: each module of fastml_lab imports only from its own layer or the layers below.

The layers, bottom to top (the README's "How it is organised" draws them):

0. core: exceptions, files, fixed point, the board table, option ranges, input checks, the scaler;
1. firmware: the op registry, the readers and ops, the emulator;
2. record: the project record and the family registry (``families/__init__``);
3. toolchain: the C simulation, its check, synthesis reports, the cost model, the overlay runtime and
   packaging, the overlay server (``serve``), the RTL simulators and the mapping (``rtl``) -- they read
   the record and never ask which family they serve;
4. families: the model code (data, training, quantization, hls4ml export, BDTs) and the family entries;
5. apps: the command line, the walk, the demo, sweeps and the tutorials' helpers.

The one import that runs upward is :func:`fastml_lab.lab`, the package's lazy door to the walk.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fastml_lab"
LAYERS = {
    0: ("_deps", "_io", "_system", "exceptions", "fixed", "boards", "options", "inputs", "compare", "scaler"),
    1: ("firmware", "emulator"),
    2: ("families.__init__", "families.sources", "project"),
    3: ("hls.csim", "hls.build_cache", "hls.check", "hls.synth", "estimate", "overlay", "serve", "rtl"),
    4: ("data", "train", "evaluate", "plots", "quantize", "hls", "bdt", "families", "rtl.network"),
    5: ("cli", "commands", "widgets", "demo", "sweep", "tutorial", "notebooks", "__init__"),
}
#: The imports allowed to run upward: (importer, imported).
UPWARD = {("__init__", "widgets.__init__")}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def layer_of(module: str) -> int:
    """The layer of the longest prefix of ``module`` named in :data:`LAYERS`."""
    best, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    assert best is not None, f"fastml_lab/{module.replace('.', '/')}.py is in no layer of tests/test_layers.py"
    return best


def _imports(path: Path, module: str):
    """The fastml_lab modules ``path`` imports (lazy imports inside functions included)."""
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    package = module.rsplit(".", 1)[0] if "." in module and not module.endswith("__init__") else (
        module[: -len(".__init__")] if module.endswith(".__init__") else "")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - node.level + 1]
            src = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                for cand in (f"{src}.{alias.name}".strip("."), src):
                    hit = cand if cand in modules else (f"{cand}.__init__" if f"{cand}.__init__" in modules else None)
                    if hit:
                        yield hit
                        break


def test_every_import_runs_down_or_sideways():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        for target in _imports(path, module):
            if layer_of(target) > layer_of(module) and (module, target) not in UPWARD:
                upward.append(f"{module} (layer {layer_of(module)}) -> {target} (layer {layer_of(target)})")
    assert not upward, "imports that run up a layer:\n" + "\n".join(upward)


def test_the_layers_name_modules_that_exist():
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    for prefixes in LAYERS.values():
        for prefix in prefixes:
            assert any(m == prefix or m.startswith(prefix + ".") for m in modules), prefix
