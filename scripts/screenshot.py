"""The explorer widget in JupyterLab, driven by headless Chromium: `make screenshot`.

A thin command over `lib.publish.screenshot`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

from pathlib import Path

from lib.core.checks import run_cli
from lib.publish.screenshot import SCREENSHOT, screenshot
from scripts import Parser, arg_type, inside, out_dir, tracked_outputs


def _png(text: str) -> str:
    if Path(text).suffix.lower() != ".png":
        raise ValueError(f"expected a .png file, got {text!r}")
    out_dir(str(Path(text).parent) or ".")
    if Path(text).is_dir():
        raise ValueError(f"{text}: is a folder")
    out_dir(text) if Path(text).is_symlink() else None
    return text


def parser() -> Parser:
    """The arguments: the output PNG and --smoke."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=arg_type(_png), help=f"the PNG to write (default {SCREENSHOT}; required with --smoke)")
    p.add_argument("--smoke", action="store_true", help="the tiny checkpoint (seconds)")
    return p


def main(argv=None):
    """Take the explorer screenshot and print its path; a smoke one may not overwrite a committed file."""
    p = parser()
    a = p.parse_args(argv)
    out = a.out or str(SCREENSHOT)
    if a.smoke and any(inside(out, t) for t in tracked_outputs()):
        p.error(f"argument --smoke: a smoke screenshot (tiny model) would overwrite the committed {out}; give --out "
                f"elsewhere")
    print(screenshot(out, a.smoke))


if __name__ == "__main__":
    run_cli(main)

