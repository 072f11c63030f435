"""End to end in a real browser: JupyterLab serves notebooks/07_explorer.ipynb, headless Chromium (driven
by Playwright) runs all cells, moves the explorer's image slider, and checks that the image and phi panels
change. Saves a screenshot of the widget to tmp_path (and, only with LIB_UPDATE_SCREENSHOT=1, over the
committed figures/explorer/explorer_screenshot.png: tests never write into tracked folders otherwise).

Needs /usr/bin/chromium and the playwright package: `.ci/install-browser.sh` installs both (never
`playwright install`: the test drives the system Chromium through executable_path). The notebook runs on
the tiny SMOKE checkpoint (LIB_SMOKE=1 in the server's environment); its figures go to tmp_path; JupyterLab
runs with its own settings (autosave off, no news) and the notebook file is restored if it was changed.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lib.paths import FIGURES, ROOT

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = ROOT / "notebooks" / "07_explorer.ipynb"
SCREENSHOT_COPY = FIGURES / "explorer" / "explorer_screenshot.png"
CHANGING = ("image", "phi", "channel", "neighbours")  # panels that must change with the image slider
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]

pytestmark = pytest.mark.browser


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (run .ci/install-browser.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (run .ci/install-browser.sh)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path):
    for plugin, values in {"docmanager-extension/plugin": {"autosave": False},
                           "apputils-extension/notification": {"fetchNews": "false"},
                           "notebook-extension/tracker": {"autoStartDefaultKernel": True}}.items():
        p = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(values))


def _stop(proc: subprocess.Popen, url: str, token: str):
    """Shut JupyterLab and its kernels down: the REST shutdown, then SIGTERM/SIGKILL to the server's process
    group and to the kernels it started (they run in sessions of their own), each by its pid."""
    try:
        import psutil
        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:
        children = []
    try:
        req = urllib.request.Request(f"{url}/api/shutdown", method="POST",
                                     headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(req, timeout=5).close()
        proc.wait(timeout=15)
    except Exception:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    for c in children:
        try:
            if c.is_running():
                c.kill()
        except Exception:
            pass


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1:<free port> with a token, rooted at the repository; yields
    (base url, token); always shut down, and the notebook restored if the browser saved it."""
    reason = _missing()
    if reason:
        if os.environ.get("LIB_REQUIRE_BROWSER") == "1":  # set by .ci/run: CI must run this test
            pytest.fail(f"LIB_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    token = secrets.token_hex(16)
    port = _free_port()
    settings = tmp_path / "lab-settings"
    _write_settings(settings)
    env = dict(os.environ, LIB_SMOKE="1", JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"), LIB_FIGURES_DIR=str(tmp_path / "figures"), MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"))
    original = NOTEBOOK.read_bytes()
    checkpoints = NOTEBOOK.parent / ".ipynb_checkpoints"
    had_checkpoints = checkpoints.exists()
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}: "
                                   f"{(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise TimeoutError("JupyterLab did not answer within 90 s")
            time.sleep(0.5)
        yield url, token
    finally:
        _stop(proc, url, token)
        log.close()
        if NOTEBOOK.read_bytes() != original:
            NOTEBOOK.write_bytes(original)
        if not had_checkpoints and checkpoints.exists():
            shutil.rmtree(checkpoints, ignore_errors=True)


def test_explorer_in_jupyterlab(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token = jupyterlab
    t0 = time.time()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.set_default_timeout(60_000)
            shot = None
            try:
                shot = _drive(page, url, token, tmp_path)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                print(f"browser test failed; screenshot {tmp_path / 'failure.png'}, server log "
                      f"{tmp_path / 'jupyterlab.log'}")
                raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"browser test: {time.time() - t0:.1f} s in the browser; screenshot {shot}")


def _drive(page, url, token, tmp_path) -> Path:
    """Open the notebook, run all cells, move the image slider, check the panels changed, screenshot."""
    page.goto(f"{url}/lab/tree/notebooks/07_explorer.ipynb?token={token}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    select = page.locator(".jp-Dialog button", has_text="Select")  # "Select Kernel", should it still ask
    try:
        select.first.click(timeout=3_000)
    except Exception:
        pass
    # Run > Run All Cells
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    widget = page.locator(".explorer")
    widget.wait_for(state="visible", timeout=150_000)
    # the kernel is busy until the last cell has printed; widget messages wait until then
    page.get_by_text("Same-class rate of the").wait_for(timeout=150_000)
    panels = {p: page.locator(f"img.explorer-{p}") for p in CHANGING}
    panels["image"].scroll_into_view_if_needed()
    src0 = {p: loc.get_attribute("src") for p, loc in panels.items()}
    shot0 = {p: panels[p].screenshot() for p in ("image", "phi")}
    readout = page.locator(".explorer-index .widget-readout")
    label = page.locator(".explorer .widget-html").nth(1)
    assert readout.inner_text().strip() == "0"

    # move the image slider one step with the keyboard (acts on release: one kernel update)
    page.locator(".explorer-index .noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(  # every panel got new PNG bytes (a new blob URL)
        "old => Object.entries(old).every(([p, s]) => document.querySelector('img.explorer-' + p).src !== s)",
        arg=src0, timeout=60_000)
    page.wait_for_timeout(500)  # let the new blobs paint
    assert readout.inner_text().strip() == "1"
    for p in ("image", "phi"):
        assert panels[p].screenshot() != shot0[p], f"the {p} panel did not change"
    assert "(label " in label.inner_text()  # the class name beside the slider (may equal image 0's)

    shot = tmp_path / "explorer_screenshot.png"
    widget.screenshot(path=str(shot))
    if os.environ.get("LIB_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT_COPY)
    page.screenshot(path=str(tmp_path / "jupyterlab_page.png"))
    return shot
