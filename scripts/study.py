"""The factor study: train every run of configs/study.json (resumable), then summarize: `make study`.

A thin command over `lib.training.study`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lib.publish.study_plots import save_study_curves
from lib.training.study import OUT, run, RUNS, STUDY, summarize


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["run", "summary"])
    p.add_argument("--only", nargs="*", help="run names (default: all, in the study's order)")
    p.add_argument("--study", default=str(STUDY))
    p.add_argument("--runs-dir", default=str(RUNS))
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--n-final", type=int, default=2000, help="held-out images for the final table")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.command == "run":
        run(a.only, a.study, a.runs_dir, progress=not a.no_progress)
    else:
        res = summarize(a.study, a.runs_dir, a.out, n_final=a.n_final)
        save_study_curves(res, Path(a.out) / "study_curves.png")
        print((Path(a.out) / "study_table.md").read_text())


if __name__ == "__main__":
    main()
