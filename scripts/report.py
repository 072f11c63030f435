"""Regenerate the README's generated blocks and the results site (the second half of `make figures`).

The README's generated blocks and the paper-vs-ours scorecard, from the notebooks' numbers.json files.

    python -m scripts.report            # rewrite the README's marked blocks and the results site (make figures)
    python -m scripts.report --check    # exit 1 if the README or the site differ from what the JSON gives

The README holds blocks between marker comments, ``<!-- NAME:begin -->`` ... ``<!-- NAME:end -->``; each is
rewritten from committed files only (never typed by hand):

- ``notebooks``: one line per notebook, what it teaches (`lib.notebook.catalog`);
- ``numbers``: the scorecard, one row per claim of the paper: the paper's number where it has one, ours,
  the controls (untrained network, pixels), and the verdict the notebook wrote (`CLAIMS`);
- ``study``: the factor study's table and findings from figures/evidence/study.jsonl (`lib.training.study`).

A claim whose numbers are missing (a notebook that has not written that key yet) shows "not measured".
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
