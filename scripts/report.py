"""Regenerate the README's generated blocks and the results site (the second half of `make figures`).

A thin command over `lib.publish.readme`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import argparse
import sys

from lib.core.paths import FIGURES
from lib.publish.readme import README, update_readme


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare only; exit 1 if anything is stale")
    p.add_argument("--figures", default=str(FIGURES))
    p.add_argument("--readme", default=str(README))
    p.add_argument("--no-site", action="store_true")
    a = p.parse_args(argv)
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
    main()
