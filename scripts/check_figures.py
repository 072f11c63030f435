"""Compare every regenerated figures/**/numbers.json with the committed one, within tolerances (`make check-figures`).

Run by CI after `make figures`. A thin command over `lib.publish.drift`: key by key within the tolerances of
lib/notebook/tolerances.py (verdicts, counts and the run's provenance exactly; sampled floats within their reported
95% interval or 2 sd, else a default relative + absolute tolerance). Prints one line per notebook/key that moved too
far (old value, new value, tolerance) and exits 1 if there is any, or if a committed numbers.json is missing or
unreadable; a numbers.json that is not committed is only noted. Reads only: it writes nothing.
"""
from __future__ import annotations

import sys

from lib.core.checks import run_cli
from lib.core.paths import FIGURES
from lib.notebook.numbers import numbers_files
from lib.publish.drift import commit_of, committed_files, figure_drift, repository
from scripts import Parser, existing_dir


def parser() -> Parser:
    """The arguments: the regenerated figures folder and the commit to compare with."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("--figures", type=existing_dir, default=str(FIGURES),
                   help="the regenerated figures folder, inside a git work tree (default figures/; its variants "
                        "such as figures/cifar10/ are checked with it)")
    p.add_argument("--against", default="HEAD", metavar="REV",
                   help="the commit holding the numbers to compare with (default HEAD)")
    return p


def main(argv=None):
    """Print the table of every numbers.json key against the commit; exit 1 if any moved too far."""
    p = parser()
    a = p.parse_args(argv)
    try:
        repository(a.figures)
    except ValueError as e:
        p.error(f"argument --figures: {e}")
    try:
        commit = commit_of(a.figures, a.against)
    except ValueError as e:
        p.error(f"argument --against: {e}")
    if not committed_files(a.figures, commit) and not numbers_files(a.figures):
        p.error(f"argument --figures: {a.figures} holds no NN_name/numbers.json, on disk or in {a.against} (a typo? "
                f"the notebooks write them: python -m scripts.notebooks)")
    report = figure_drift(a.figures, a.against)
    print(report.text())
    if not report.ok:
        sys.exit(1)


if __name__ == "__main__":
    run_cli(main)
