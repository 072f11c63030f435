"""End to end in a real browser (headless Chromium driven by Playwright, `lib.publish.screenshot`):

- the explorer: JupyterLab serves notebooks/07_explorer.ipynb on the tiny SMOKE checkpoint, the browser runs
  all cells, moves the image slider and checks that the image and phi panels change; the screenshot goes to
  tmp_path only (the committed one comes from `python -m scripts.screenshot` on the default checkpoint);
- the results site: every page of figures/site opens from file:// with every image loaded and no console
  error or page error.

Needs /usr/bin/chromium and the playwright package: `.ci/install-browser.sh` installs both.
"""
import os
import time

import pytest

from lib.core.paths import FIGURES
from lib.publish import screenshot as B

pytestmark = pytest.mark.browser


def _require_browser():
    reason = B.missing()
    if reason:
        if os.environ.get("LIB_REQUIRE_BROWSER") == "1":  # set by .ci/run: CI must run this test
            pytest.fail(f"LIB_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def jupyterlab(tmp_path):
    _require_browser()
    with B.jupyterlab(tmp_path, smoke=True) as server:
        yield server


def test_explorer_in_jupyterlab(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token = jupyterlab
    t0 = time.time()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(B.CHROMIUM), headless=True, args=B.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.set_default_timeout(60_000)
            try:
                shot = B.drive_explorer(page, url, token, tmp_path / "explorer_screenshot.png")
                page.screenshot(path=str(tmp_path / "jupyterlab_page.png"))
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                print(f"browser test failed; screenshot {tmp_path / 'failure.png'}, server log "
                      f"{tmp_path / 'jupyterlab.log'}")
                raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"browser test: {time.time() - t0:.1f} s in the browser; screenshot {shot}")


def test_results_site_pages_load_without_errors():
    """Every page of the committed results site: loads, no broken image, no console error."""
    pages = sorted((FIGURES / "site").glob("*.html"))
    if not pages:
        pytest.skip("figures/site has no pages (run `make figures`)")
    _require_browser()
    from playwright.sync_api import sync_playwright

    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(B.CHROMIUM), headless=True,
                                     args=B.CHROMIUM_ARGS + ["--allow-file-access-from-files"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            for p in pages:
                errors.clear()
                page.goto(p.resolve().as_uri(), wait_until="load")
                broken = page.evaluate(
                    "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                    ".map(i => i.getAttribute('src'))")
                n_img = page.evaluate("() => document.images.length")
                title = page.title()
                if broken:
                    problems.append(f"{p.name}: broken images {broken}")
                if errors:
                    problems.append(f"{p.name}: {errors}")
                if not title:
                    problems.append(f"{p.name}: no title")
                if p.name != "index.html" and n_img == 0:
                    problems.append(f"{p.name}: no figure")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
