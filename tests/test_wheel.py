"""The wheel carries the tutorials and the shipped overlay packages, and an installed copy finds
them: ``overlay.load`` runs a shipped package and ``pynq get-notebooks`` delivers the tutorials."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a wheel is built from (copied, so the build never writes into the checkout).
SOURCES = ["fastml_lab", "tutorials", "bitstreams", "pyproject.toml", "setup.py", "MANIFEST.in",
           "README.md"]
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "work", "*.egg-info")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=_SKIP)
        else:
            shutil.copy2(path, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q",
                    "-w", str(tmp / "dist")], check=True, capture_output=True, text=True)
    (path,) = (tmp / "dist").glob("fastml_lab-*.whl")
    return path


def _expected_files():
    tutorials = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.ipynb"))
    packages = sorted(p.parent for p in (ROOT / "bitstreams").glob("*/manifest.json"))
    files = {f"fastml_lab/notebooks/tutorials/{nb.name}": nb for nb in tutorials}
    for pkg in packages:
        files.update({f"fastml_lab/bitstreams/{pkg.name}/{f.name}": f for f in pkg.iterdir() if f.is_file()})
    return tutorials, packages, files


@pytest.mark.slow
def test_wheel_holds_the_tutorials_and_overlays_unchanged(wheel):
    tutorials, packages, expected = _expected_files()
    assert len(tutorials) >= 3 and {p.name for p in packages} >= {"jet_mlp", "jet_mlp_pynq"}
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for inside, source in expected.items():
            assert inside in names, f"{inside} is missing from {wheel.name}"
            assert zf.read(inside) == source.read_bytes(), f"{inside} differs from {source}"
        assert "fastml_lab/tutorial/checks.py" in names
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[pynq.notebooks]\nfastml-lab = fastml_lab.notebooks" in entry_points


@pytest.mark.slow
def test_an_installed_wheel_finds_its_tutorials_and_overlays(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, text=True)
    code = (
        "import fastml_lab, numpy as np\n"
        "from fastml_lab import overlay\n"
        "from fastml_lab.notebooks import deliver_notebooks, tutorial_dirs\n"
        "from fastml_lab.data import make_synthetic_jets\n"
        "print(fastml_lab.__file__)\n"
        "print(tutorial_dirs()[0])\n"
        "print(sorted(str(info.path) for info in overlay.list_overlays()))\n"
        "X, labels = make_synthetic_jets(500, seed=3)\n"
        "with overlay.load('jet_mlp_pynq') as ol:\n"
        "    print(ol.backend, float(np.mean(ol.classify(X, scale=True) == labels)))\n"
        "out = deliver_notebooks(None, None, 'delivered', 'fastml-lab', folder=True)\n"
        "print(sorted(p.name for p in out.iterdir()))\n"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    installed = target / "fastml_lab"
    assert Path(out[0]).parent == installed, "the installed copy is imported, not the checkout"
    assert Path(out[1]) == installed / "notebooks" / "tutorials"
    assert all(path.startswith(str(installed / "bitstreams")) for path in eval(out[2]))
    backend, accuracy = out[3].split()
    assert backend == "software" and float(accuracy) > 0.5
    delivered = eval(out[4])
    tutorials, packages, _ = _expected_files()
    assert delivered == sorted([nb.name for nb in tutorials] + ["bitstreams"])
