"""Drive the explorer notebook in JupyterLab with headless Chromium (Playwright): the browser test and
the committed screenshot share this code.

    python -m scripts.screenshot                      # -> figures/explorer/explorer_screenshot.png, default model
    python -m scripts.screenshot --smoke --out x.png  # the tiny SMOKE checkpoint (what the test uses, into tmp)

Needs /usr/bin/chromium and the playwright package (`.ci/install-browser.sh`; never `playwright install`:
Chromium is driven through executable_path). JupyterLab runs on 127.0.0.1 with a token and its own
settings (autosave off, no news), its figures go to a temporary folder, and the notebook file is restored
if the browser changed it.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from lib.core.paths import FIGURES, ROOT

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = ROOT / "notebooks" / "07_explorer.ipynb"
SCREENSHOT = FIGURES / "explorer" / "explorer_screenshot.png"
CHANGING = ("image", "phi", "channel", "neighbours")  # panels that must change with the image slider
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]


def missing() -> str | None:
    """Why a screenshot cannot be taken here (no Chromium, no playwright), or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (run .ci/install-browser.sh)"
    try:
        import playwright.sync_api  # noqa: F401  (only whether it imports)
    except ImportError:
        return "the playwright package is not installed (run .ci/install-browser.sh)"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(settings: Path):
    """Write JupyterLab settings under ``settings``: no autosave, no news, the default kernel started unasked."""
    for plugin, values in {"docmanager-extension/plugin": {"autosave": False},
                           "apputils-extension/notification": {"fetchNews": "false"},
                           "notebook-extension/tracker": {"autoStartDefaultKernel": True}}.items():
        p = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(values))


def stop(proc: subprocess.Popen, url: str, token: str):
    """Shut JupyterLab and its kernels down: the REST shutdown, then SIGTERM/SIGKILL to the server's process
    group and to the kernels it started (they run in sessions of their own), each by its pid."""
    try:
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


@contextlib.contextmanager
def jupyterlab(tmp_path: Path, smoke: bool = True):
    """A JupyterLab server on 127.0.0.1:<free port> with a token, rooted at the repository; yields
    (base url, token); always shut down, and the notebook restored if the browser saved it. ``smoke``:
    the notebook runs on the tiny checkpoint (LIB_SMOKE=1)."""
    tmp_path = Path(tmp_path)
    token = secrets.token_hex(16)
    port = free_port()
    settings = tmp_path / "lab-settings"
    write_settings(settings)
    env = dict(os.environ, JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"), LIB_FIGURES_DIR=str(tmp_path / "figures"),
               MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"))
    env.pop("LIB_SMOKE", None)
    if smoke:
        env["LIB_SMOKE"] = "1"
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
        stop(proc, url, token)
        log.close()
        if NOTEBOOK.read_bytes() != original:
            NOTEBOOK.write_bytes(original)
        if not had_checkpoints and checkpoints.exists():
            shutil.rmtree(checkpoints, ignore_errors=True)


def drive_explorer(page, url, token, out: Path, timeout_ms: int = 150_000) -> Path:
    """Open the notebook, run all cells, move the image slider, check the panels changed, and save a
    screenshot of the widget to ``out``; returns ``out``."""
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
    widget.wait_for(state="visible", timeout=timeout_ms)
    # the kernel is busy until the last cell has printed; widget messages wait until then
    page.get_by_text("Same-class rate of the").wait_for(timeout=timeout_ms)
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

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    widget.screenshot(path=str(out))
    return out


def screenshot(out=SCREENSHOT, smoke: bool = False) -> Path:
    """Run the explorer in JupyterLab (default checkpoint unless ``smoke``) and save the widget's screenshot."""
    from playwright.sync_api import sync_playwright
    reason = missing()
    if reason:
        raise SystemExit(reason)
    with (tempfile.TemporaryDirectory(prefix="explorer-shot-") as tmp,
          jupyterlab(Path(tmp), smoke=smoke) as (url, token)):
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1500})
                page.set_default_timeout(60_000)
                return drive_explorer(page, url, token, Path(out), timeout_ms=600_000)
            finally:
                browser.close()
