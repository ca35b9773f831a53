"""binder/: the pins agree with constraints.txt, the Python version with the project, and the
scripts repo2docker runs (postBuild, start) are executable, valid bash and do what they say."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def _pins(path: Path) -> dict:
    """``{canonical name: version}`` of the ``name==version`` lines of a requirements file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in out, f"{path.name}: {req.name} is listed twice"
        out[name] = spec.version
    return out


def test_binder_pins_are_the_constraints_exactly():
    binder, constraints = _pins(BINDER / "requirements.txt"), _pins(ROOT / "constraints.txt")
    assert binder == constraints
    for name in ("tensorflow-cpu", "keras", "hls4ml", "hgq2", "ipywidgets", "jupyterlab"):
        assert name in binder, f"{name} is not pinned for Binder"


def test_binder_requirements_are_generated_from_the_constraints():
    result = subprocess.run([sys.executable, str(BINDER / "make_requirements.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (BINDER / "requirements.txt").read_text().startswith("# Generated from constraints.txt")


def test_binder_python_is_the_tested_python():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), runtime
    version = runtime.removeprefix("python-")
    header = re.search(r"Python (3\.\d+)", (ROOT / "constraints.txt").read_text())
    assert header and header.group(1) == version, "runtime.txt and constraints.txt name different Pythons"
    requires = re.search(r'requires-python\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert SpecifierSet(requires.group(1)).contains(version + ".0")


def _git_mode(path: Path) -> str:
    out = subprocess.run(["git", "ls-files", "-s", str(path.relative_to(ROOT))], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return out.split()[0] if out else ""


def test_binder_scripts_are_executable_bash():
    for name in ("postBuild", "start"):
        path = BINDER / name
        assert os.access(path, os.X_OK), f"binder/{name} is not executable"
        mode = _git_mode(path)
        assert mode in ("", "100755"), f"binder/{name} is committed as {mode}, not executable"
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
        subprocess.run(["bash", "-n", str(path)], check=True)


def test_post_build_installs_the_project_without_touching_the_pins():
    commands = [line.strip() for line in (BINDER / "postBuild").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    installs = [c for c in commands if "pip install" in c]
    assert installs == ["python -m pip install --no-deps -e ."]
    assert any("@jupyter-widgets/jupyterlab-manager" in c for c in commands)


def test_start_opens_jupyterlab_on_the_tutorials_and_runs_the_server_command():
    lines = [line for line in (BINDER / "start").read_text().splitlines() if line.strip()]
    assert lines[-1] == 'exec "$@"'
    out = subprocess.run([str(BINDER / "start"), sys.executable, "-c",
                          "import os; print(os.environ['JUPYTER_CONFIG_PATH'])"],
                         capture_output=True, text=True, check=True).stdout
    config_dir = Path(out.strip().split(os.pathsep)[0])
    config = json.loads((config_dir / "jupyter_server_config.json").read_text())
    url = config["ServerApp"]["default_url"]
    assert url == "/lab/tree/tutorials" and (ROOT / url.removeprefix("/lab/tree/")).is_dir()


def test_readme_has_the_binder_badge_and_the_local_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
                     r"\(https://mybinder\.org/v2/gh/[^/\s]+/[^/\s]+/HEAD\?urlpath=lab/tree/tutorials\)",
                     readme)
    assert "make lab" in readme
