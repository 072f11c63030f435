"""Run the numbered notebooks headlessly with papermill (the first half of `make figures`).

A thin command over `lib.publish.runner`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import sys
import time

from lib.core.checks import run_cli
from lib.publish.runner import find_notebooks, parse_value, run
from scripts import Parser, no_duplicates, out_dir, positive_int


def parser() -> Parser:
    """The arguments: which notebooks, SMOKE, papermill parameters, output folders, HTML, --force, jobs, logging."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", help="notebook numbers or stems, e.g. 01 03")
    p.add_argument("--smoke", action="store_true", help="SMOKE=True: tiny model, seconds per notebook")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="notebook parameter, e.g. -p DEVICE cuda -p CHECKPOINT data/checkpoints/paper64")
    p.add_argument("--rendered", type=out_dir, help="where executed notebooks and HTML go (default figures/rendered)")
    p.add_argument("--figures", type=out_dir, help="root folder for figures (default figures/)")
    p.add_argument("--no-html", action="store_true")
    p.add_argument("--log-output", action="store_true", help="stream cell outputs to the terminal")
    p.add_argument("--force", action="store_true",
                   help="let a smoke run, or a run with changed parameters, write into the committed figures/")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="run up to N notebooks at once, each kernel with LIB_THREADS = cores // N unless LIB_THREADS "
                        "is set (default 1)")
    return p


def main(argv=None):
    """Run the chosen notebooks with their parameters and print the total time; exit 1 if one failed."""
    p = parser()
    a = p.parse_args(argv)
    no_duplicates(p, "--only", a.only)
    no_duplicates(p, "-p", [k for k, _ in a.parameter])
    find_notebooks(a.only)
    t0 = time.time()
    try:
        run(a.only, a.smoke, {k: parse_value(v) for k, v in a.parameter}, a.rendered, a.figures,
            not a.no_html, log_output=a.log_output, force=a.force, jobs=a.jobs)
    except RuntimeError as e:
        print(str(e), file=sys.stderr)
        print(f"total {time.time() - t0:.1f} s", file=sys.stderr)
        sys.exit(1)
    print(f"total {time.time() - t0:.1f} s")


if __name__ == "__main__":
    run_cli(main)
