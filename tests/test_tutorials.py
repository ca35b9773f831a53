"""The tutorials: the numbered notebooks, stored without outputs, generated from their sources,
shaped as lessons (goals, exercises with checks, summary), and executed top to bottom in a
kernel of this Python, offline with the quick sizes: once as here, once as on a PYNQ board (no
TensorFlow or hls4ml, a pynq that sees a device), where only the overlay parts run. The first
is done twice in the same folder, as Restart & Run All does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest

from fastml_lab.tutorial.execute import run_notebook

pytestmark = pytest.mark.tutorials

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
FAKE_BOARD = Path(__file__).resolve().parent / "fake_board"
EXPECTED = ["01_getting_started", "02_quantization", "03_compression", "04_hls", "05_overlays",
            "06_guided_walk", "07_boosted_decision_trees", "08_design_space_exploration",
            "09_from_network_to_gates", "10_acceleration_as_a_service", "11_convolutions"]
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
#: Seconds any one cell may take (quick sizes need far less; a shared machine may be slow).
CELL_TIMEOUT_S = 300


def _ids(paths):
    return [p.stem for p in paths]


def _read(path):
    return nbformat.read(path, as_version=4)


def _text(nb, kind):
    return [cell.source for cell in nb.cells if cell.cell_type == kind]


def test_the_tutorials_are_there_in_order():
    assert _ids(NOTEBOOKS) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_without_outputs_and_with_clean_metadata(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        assert cell.metadata == {}, f"{path.name}: cell {cell.id} has metadata {cell.metadata}"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {cell.id} has an execution count"


def test_the_index_lists_every_notebook_and_the_glossary():
    index = (TUTORIALS / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"`{path.stem}`" in index, path.stem
    assert "(GLOSSARY.md)" in index and (TUTORIALS / "GLOSSARY.md").is_file()


def test_notebooks_are_generated_from_their_sources():
    result = subprocess.run([sys.executable, str(TUTORIALS / "_build.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(p.stem for p in (TUTORIALS / "src").glob("[0-9][0-9]_*.py")) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_each_tutorial_is_a_lesson(path):
    """Goals first, a summary last that names the next notebook, and exercises that are graded: each
    has an answer cell (``= ...``) and a ``checks.check_`` call before the next exercise; at least
    one asks for a prediction before the cell that measures it."""
    nb = _read(path)
    markdown, code = _text(nb, "markdown"), _text(nb, "code")
    assert markdown[0].startswith("# "), "the first cell is the title"
    assert "## Learning goals" in markdown[0]
    assert f'tutorial.start("{path.stem}")' in code[0], "the first code cell starts the tutorial"
    exercises = _exercises(nb)
    assert len(exercises) >= 2, "at least two exercises"
    for title, cells in exercises:
        answer = next((i for i, c in enumerate(cells) if "= ..." in c), None)
        assert answer is not None, f"{title!r} has an answer cell"
        assert any("checks.check_" in c for c in cells[answer:]), f"{title!r} is graded by a check"
    predictions = [(title, cells) for title, cells in exercises if "predict" in title.lower()]
    assert predictions, "at least one exercise asks for a prediction first"
    for title, cells in predictions:
        answer = next(i for i, c in enumerate(cells) if "= ..." in c)
        assert "checks.check_" not in cells[answer] or answer + 1 < len(cells), title
        assert any("checks.check_" in c for c in cells[answer + 1:]), \
            f"{title!r}: the prediction is graded by the cell that measures it, after it is made"
    assert "## Summary" in markdown[-1], "the last cell is the summary"
    assert re.search(r"Next: \*\*tutorial \d+\*\*|last notebook", markdown[-1]), "the summary names what comes next"


def _exercises(nb) -> list:
    """``[(title, [code cells up to the next exercise or the summary])]`` of every "### Exercise N"
    (a prediction may be measured a section later)."""
    found, current = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            title = re.search(r"^### (Exercise \d.*)$", cell.source, re.MULTILINE)
            if title:
                current = (title.group(1), [])
                found.append(current)
            elif "## Summary" in cell.source:
                current = None
        elif current is not None:
            current[1].append(cell.source)
    return found


#: What the first run of a tutorial leaves in its working folder for the second run to find.
LEFT_BY_FIRST_RUN = {"06_guided_walk": "work/06_guided_walk/walk/data/result.json"}


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory):
    """One folder of trained models for every notebook of the session, as one student's work folder
    is: the notebooks that start from tutorial 1's network load the one trained first."""
    from fastml_lab.tutorial import MODEL_CACHE_ENV

    return {MODEL_CACHE_ENV: str(tmp_path_factory.mktemp("tutorial_models"))}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_tutorial_runs_top_to_bottom_twice_in_the_same_folder(path, tmp_path, shared_models):
    """As a student does: run all, then Restart & Run All; the second run, in a fresh kernel,
    finds what the first one wrote (the walk's project folder, projects, packages, the trained
    float model: loaded, not trained again)."""
    for run in ("first", "second"):
        if run == "second" and path.stem in LEFT_BY_FIRST_RUN:
            assert (tmp_path / LEFT_BY_FIRST_RUN[path.stem]).is_file(), "the first run filled the folder"
        result = run_notebook(path, tmp_path, quick=True, offline=True, cell_timeout=CELL_TIMEOUT_S,
                              env=shared_models)
        text = result.outputs_text()
        assert "quick (FASTML_LAB_QUICK=1)" in text, run
        assert "[skipped]" not in text, f"{run} run: everything a tutorial needs is installed here"
        assert "[not answered yet]" in text, f"{run} run: the exercise checks ran"
        for noise in ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard"):
            assert noise not in text, f"{run} run: TensorFlow's start-up line {noise!r} reached the notebook"
        if run == "second" and "lab.train_float_model(" in path.read_text():
            assert "trained earlier" in text, "Restart & Run All loads the float model trained first"
        print(f"{path.stem}, {run} run: {result.seconds:.1f} s, peak {result.peak_bytes / 2**20:.0f} MiB")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_tutorial_runs_on_a_board_without_tensorflow(path, tmp_path):
    env = {"PYTHONPATH": os.pathsep.join([str(FAKE_BOARD), os.environ.get("PYTHONPATH", "")]),
           "BOARD": "Pynq-Z2"}
    # Processes this test session already had (e.g. multiprocessing's resource tracker, started by an
    # earlier test's Dask cluster) are not this notebook's kernel.
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = run_notebook(path, tmp_path, quick=True, offline=True, cell_timeout=CELL_TIMEOUT_S,
                          env=env)
    text = result.outputs_text()
    assert "PYNQ board detected (Pynq-Z2)" in text
    needs_tf = any(c.startswith("%%needs") and "tensorflow" in c.splitlines()[0]
                   for c in _text(_read(path), "code"))
    if needs_tf:
        assert "[skipped] This cell needs TensorFlow" in text
        assert "run this part on a laptop or on Binder" in text
    if path.stem == "05_overlays":
        assert re.search(r"accuracy on [\d,]+ jets: 0\.\d+", text), "the overlay ran on the board"
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert left == [], "the kernel was shut down"
