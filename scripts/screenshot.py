"""The explorer widget in JupyterLab, driven by headless Chromium: `make screenshot`.

Drive the explorer notebook in JupyterLab with headless Chromium (Playwright): the browser test and
the committed screenshot share this code.

    python -m scripts.screenshot                      # -> figures/explorer/explorer_screenshot.png, default model
    python -m scripts.screenshot --smoke --out x.png  # the tiny SMOKE checkpoint (what the test uses, into tmp)

Needs /usr/bin/chromium and the playwright package (`.ci/install-browser.sh`; never `playwright install`:
Chromium is driven through executable_path). JupyterLab runs on 127.0.0.1 with a token and its own
settings (autosave off, no news), its figures go to a temporary folder, and the notebook file is restored
if the browser changed it.
"""
from __future__ import annotations

import argparse

from lib.publish.screenshot import screenshot, SCREENSHOT


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(SCREENSHOT))
    p.add_argument("--smoke", action="store_true", help="the tiny checkpoint (seconds)")
    a = p.parse_args(argv)
    print(screenshot(a.out, a.smoke))


if __name__ == "__main__":
    main()

