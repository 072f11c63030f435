"""Regenerate the README's generated blocks and the results site (the second half of `make figures`).

A thin command over `lib.publish.readme`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import sys

from lib.core.checks import run_cli
from lib.core.paths import FIGURES
from lib.notebook.numbers import find_numbers
from lib.publish.readme import README, update_readme
from scripts import Parser, existing_dir, existing_file, resolved


def parser() -> Parser:
    """The arguments: the figures folder, the README to write, --check and --no-site."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare only; exit 1 if anything is stale")
    p.add_argument("--figures", type=existing_dir, default=str(FIGURES),
                   help="the figures folder the blocks and the site are made from (default figures/)")
    p.add_argument("--readme", type=existing_file, default=str(README),
                   help="the README to rewrite (the committed one only from the committed figures/)")
    p.add_argument("--no-site", action="store_true")
    return p


def main(argv=None):
    """Rewrite the README's generated blocks and the results site from --figures (--check: only say whether they
    are current, exit 1 if not)."""
    p = parser()
    a = p.parse_args(argv)
    if not find_numbers(a.figures):
        p.error(f"argument --figures: {a.figures} holds no NN_name/numbers.json (a typo? the notebooks write them: "
                f"python -m scripts.notebooks)")
    if not a.check and resolved(a.readme) == resolved(README) and resolved(a.figures) != resolved(FIGURES):
        p.error(f"argument --figures: the committed README is generated from the committed {FIGURES} only; give "
                f"--readme FILE to write another README from {a.figures}, or --check")
    ok = update_readme(a.readme, a.figures, check=a.check)
    print(("README blocks current" if ok else ("README blocks STALE" if a.check else "README blocks rewritten")))
    if not a.no_site:
        from lib.publish.site import build_site
        changed = build_site(a.figures, check=a.check)
        print(f"site: {len(changed)} page(s) {'stale' if a.check else 'rewritten'}" if changed else "site current")
        ok = ok and not changed
    if a.check and not ok:
        sys.exit(1)


if __name__ == "__main__":
    run_cli(main)
