"""The explorer widget in JupyterLab, driven by headless Chromium: `make screenshot`.

A thin command over `lib.publish.screenshot`; its docstring says what the command computes and writes.
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

