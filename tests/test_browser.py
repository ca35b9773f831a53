"""The walk in a real browser: JupyterLab, Notebook 7 (served by the same server) and Voilà on
localhost, driven by Playwright in Debian's Chromium (``/usr/bin/chromium``; ``.ci/run`` installs
it, nothing is downloaded).

Screenshots of every step go to ``test-artifacts/browser/`` in the repository (git-ignored), with
the servers' logs. Servers run in their own sessions and are always shut down, kernels included.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"{CHROMIUM} is missing (Debian package 'chromium'; .ci/run installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
psutil = pytest.importorskip("psutil")

from fastml_lab.widgets.app import write_walk_notebook  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 90
STEP_TIMEOUT_MS = 240_000
#: name, title on the stepper, figures the step must show at least.
STEPS = [("data", "1 · Data", 2), ("train", "2 · Train", 3), ("quantize", "3 · Quantize", 3),
         ("export", "4 · Export", 1), ("deploy", "5 · Deploy", 1)]
#: The same for boosted decision trees: step 3 is Precision (profile, study), Export adds the budget bars.
BDT_STEPS = [("data", "1 · Data", 2), ("train", "2 · Train", 3), ("quantize", "3 · Precision", 2),
             ("export", "4 · Export", 2), ("deploy", "5 · Deploy", 1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own session; :meth:`stop` ends it and every process it started."""

    def __init__(self, cmd, url: str, env: dict, log: Path, cwd: Path):
        self.url, self.log = url, log
        self._log_file = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._tree = []

    def wait_ready(self, probe: str, timeout: float = START_TIMEOUT_S) -> str:
        """Poll ``probe`` until it answers 200; returns the body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(probe, timeout=5) as response:
                    if response.status == 200:
                        return response.read().decode(errors="replace")
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"server not answering {probe} after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-n:]

    def stop(self, graceful=None) -> None:
        try:
            self._tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            self._tree = []
        if graceful is not None and self.proc.poll() is None:
            try:
                graceful()
                self.proc.wait(15)
            except Exception:  # noqa: BLE001 (fall through to signals)
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for child in self._tree:  # kernels run in sessions of their own
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        self._log_file.close()


def server_env(home: Path) -> dict:
    """Jupyter paths of its own (no news pop-up, notebook rendered whole), quiet TensorFlow, offline."""
    settings = home / "lab-settings"
    for name, content in {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
                          "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}
                          }.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(content))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               TF_CPP_MIN_LOG_LEVEL="3", FASTML_LAB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("MPLBACKEND", None)  # the kernel's own (inline) backend, as for a user
    return env


@pytest.fixture(scope="module")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*_failed.png"):  # shots of an earlier failure would mislead
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory, artifacts):
    """JupyterLab on a free port with a random token, serving a folder with the walk notebook."""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "root"
    root.mkdir()
    write_walk_notebook(root / "lab_project", quick=True, path=root / "walk.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    cmd = [str(BIN / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
           "--LabApp.news_url="] + (["--allow-root"] if os.geteuid() == 0 else [])
    server = Server(cmd, f"http://127.0.0.1:{port}", server_env(home), artifacts / "jupyterlab.log", root)
    try:
        server.wait_ready(f"{server.url}/api/status?token={token}")
        server.token, server.root = token, root
        yield server
    finally:
        def shutdown():
            request = urllib.request.Request(f"{server.url}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=10).close()
        server.stop(graceful=shutdown)


def wait_for_step(page, name: str, figures: int) -> None:
    """Wait until the step says Done (failing at once with the panel's error if one shows)."""
    panel = page.locator(f".fastml-lab-step-{name}")
    done = panel.locator(".fastml-lab-outcome-done")
    error = panel.locator(".fastml-lab-error")
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if done.count() and done.first.is_visible():
            break
        if error.is_visible():
            pytest.fail(f"step {name} shows an error: {error.inner_text()}")
        page.wait_for_timeout(500)
    else:
        pytest.fail(f"step {name} did not finish in {STEP_TIMEOUT_MS / 1000:.0f} s; "
                    f"panel says: {panel.inner_text()[:2000]}")
    images = panel.locator("img.fastml-lab-figure")
    images.nth(figures - 1).wait_for(state="visible", timeout=30_000)  # at least this many
    for index in range(images.count()):
        box = images.nth(index).evaluate("img => [img.complete, img.naturalWidth]")
        assert box[0] and box[1] > 100, f"{name}: figure {index} did not render ({box})"
    assert panel.locator(".fastml-lab-numbers").inner_text().strip()
    assert not error.is_visible()


def open_and_run_the_walk(page, server, app_path: str, notebook: str, shot: Path) -> None:
    """Open ``notebook`` under ``app_path`` (``lab/tree``, ``notebooks``), run its one cell once the
    page shows its kernel idle, and wait for the walk to show."""
    page.set_default_timeout(60_000)
    page.goto(f"{server.url}/{app_path}/{notebook}?token={server.token}")
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    page.keyboard.press("Shift+Enter")
    page.locator(".fastml-lab-walk").wait_for(state="visible", timeout=90_000)
    page.screenshot(path=shot)


@contextlib.contextmanager
def shot_on_failure(page, path: Path):
    """Save what the page showed, whole, at ``path`` when the block fails."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(sync_api.Error):  # a page that died cannot be shot
            page.screenshot(path=path, full_page=True)
        raise


def run_steps(page, steps, prefix: str, artifacts: Path, start: int = 1) -> None:
    """Click Run on each of ``steps`` (rows of STEPS), wait for its results, screenshot it
    (numbered from ``start``)."""
    for number, (name, title, figures) in enumerate(steps, start=start):
        page.locator(".fastml-lab-stepper button", has_text=title).click()
        panel = page.locator(f".fastml-lab-step-{name}")
        panel.wait_for(state="visible")
        panel.locator("button.fastml-lab-run").click()
        wait_for_step(page, name, figures)
        panel.screenshot(path=artifacts / f"{prefix}_{number}_{name}.png")


def assert_nothing_spilled(page) -> None:
    """No traceback in the cell's output and nothing on the notebook's stderr."""
    outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
    assert not any("Traceback" in text for text in outputs), "a traceback reached the notebook"
    spilled = page.locator(".jp-Notebook [data-mime-type='application/vnd.jupyter.stderr']")
    assert spilled.count() == 0, f"text reached the notebook's stderr: {spilled.all_inner_texts()}"


def test_walk_runs_from_data_to_the_software_overlay_in_jupyterlab(jupyter_lab, browser, artifacts):
    page = browser.new_page(viewport={"width": 1300, "height": 3600})  # tall: whole panels in shots
    with shot_on_failure(page, artifacts / "lab_failed.png"):
        open_and_run_the_walk(page, jupyter_lab, "lab/tree", "walk.ipynb", artifacts / "lab_0_walk.png")
        run_steps(page, STEPS, "lab", artifacts)
        assert "software overlay" in page.locator(".fastml-lab-step-deploy .fastml-lab-numbers").inner_text()
        export = page.locator(".fastml-lab-step-export")
        page.locator(".fastml-lab-stepper button", has_text="4 · Export").click()
        assert "0 mismatches" in export.locator(".fastml-lab-numbers").inner_text()
        assert_nothing_spilled(page)
    page.screenshot(path=artifacts / "lab_6_end.png", full_page=True)
    assert (jupyter_lab.root / "lab_project" / "bitstreams" / "lab_model" / "manifest.json").is_file()
    page.close()


def test_walk_runs_boosted_decision_trees_to_the_software_overlay_in_jupyterlab(jupyter_lab, browser, artifacts):
    """The model choice at Train: boosted decision trees, then Precision, Export and Deploy; its
    own notebook and project folder, in a JupyterLab workspace of its own (the default one would
    reopen the first test's notebook beside it)."""
    root = jupyter_lab.root
    write_walk_notebook(root / "bdt_project", quick=True, path=root / "bdt_walk.ipynb")
    page = browser.new_page(viewport={"width": 1300, "height": 3600})
    with shot_on_failure(page, artifacts / "bdt_failed.png"):
        open_and_run_the_walk(page, jupyter_lab, "lab/workspaces/bdt/tree", "bdt_walk.ipynb",
                              artifacts / "bdt_0_walk.png")
        run_steps(page, BDT_STEPS[:1], "bdt", artifacts)
        page.locator(".fastml-lab-stepper button", has_text="2 · Train").click()
        page.locator(".fastml-lab-step-train .fastml-lab-family button", has_text="boosted decision trees").click()
        run_steps(page, BDT_STEPS[1:], "bdt", artifacts, start=2)
        assert "software overlay" in page.locator(".fastml-lab-step-deploy .fastml-lab-numbers").inner_text()
        for name, title, text in (("train", "2 · Train", "boosted decision trees"),
                                  ("quantize", "3 · Precision", "suggested precision"),
                                  ("export", "4 · Export", "0 mismatches")):
            page.locator(".fastml-lab-stepper button", has_text=title).click()  # the stack shows one step
            assert text in page.locator(f".fastml-lab-step-{name} .fastml-lab-numbers").inner_text(), name
        assert_nothing_spilled(page)
    assert (root / "bdt_project" / "bdt_model.json").is_file()
    assert (root / "bdt_project" / "bitstreams" / "lab_model" / "manifest.json").is_file()
    page.close()


def test_walk_runs_data_and_train_in_notebook_7(jupyter_lab, browser, artifacts):
    """The same server serves Notebook 7 under /notebooks/; its own notebook and project folder,
    so it does not share a kernel or results with the JupyterLab test."""
    root = jupyter_lab.root
    write_walk_notebook(root / "nb7_project", quick=True, path=root / "nb7_walk.ipynb")
    page = browser.new_page(viewport={"width": 1300, "height": 3600})
    with shot_on_failure(page, artifacts / "nb7_failed.png"):
        open_and_run_the_walk(page, jupyter_lab, "notebooks", "nb7_walk.ipynb", artifacts / "nb7_0_walk.png")
        app = json.loads(page.locator("#jupyter-config-data").text_content())
        assert app["appName"] == "Jupyter Notebook" and app["appVersion"].startswith("7."), app
        run_steps(page, STEPS[:2], "nb7", artifacts)
        assert "test accuracy" in page.locator(".fastml-lab-step-train .fastml-lab-numbers").inner_text()
        assert_nothing_spilled(page)
    assert (root / "nb7_project" / "model.keras").is_file()
    page.close()


def test_fastml_lab_app_serves_the_walk_with_voila(tmp_path, browser, artifacts):
    port = free_port()
    cmd = [sys.executable, "-m", "fastml_lab.cli", "app", f"--port={port}", f"--project-dir={tmp_path / 'lab'}"]
    server = Server(cmd, f"http://127.0.0.1:{port}/", server_env(tmp_path / "home"), artifacts / "voila.log",
                    tmp_path)
    try:
        html = server.wait_ready(server.url)
        assert f"Serving the fastml-lab walk at http://127.0.0.1:{port}/" in server.log_tail()
        assert "application/vnd.jupyter.widget-view+json" in html  # the notebook ran, widgets rendered
        page = browser.new_page(viewport={"width": 1300, "height": 2000})
        page.goto(server.url)
        page.locator(".fastml-lab-stepper").wait_for(state="visible", timeout=90_000)
        panel = page.locator(".fastml-lab-step-data")
        panel.locator("button.fastml-lab-run").click()  # the kernel answers: the page is live
        wait_for_step(page, "data", 2)
        page.screenshot(path=artifacts / "voila_data.png", full_page=True)
        page.close()
    finally:
        server.stop()
    assert (tmp_path / "lab" / "data" / "result.json").is_file()
