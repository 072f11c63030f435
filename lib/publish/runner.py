"""Run the numbered notebooks headlessly with papermill: ``python -m scripts.notebooks [--smoke] [--only 01 03]``.

Each notebooks/NN_*.ipynb is executed in a real Jupyter kernel with the given parameters; the executed
copy and a standalone HTML export go to figures/rendered/, figures to figures/NN_*/. Prints each
notebook's time; exits non-zero naming the notebook and the failing cell if any notebook fails.

A -p NAME that is in no selected notebook's ``parameters`` cell is an error listing the valid names.
--smoke runs (the tiny model) write to temporary folders unless --rendered / --figures say otherwise,
and never into the committed figures/ without --force. times.json keeps the entries of notebooks not run.
"""
from __future__ import annotations

import ast
import difflib
import html
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from lib.core.checks import read_json
from lib.core.device import kernel_thread_env
from lib.core.files import atomic_write_json
from lib.core.paths import FIGURES, ROOT
from lib.notebook.catalog import PAPER_FIGURES  # noqa: F401  notebook stem -> the paper figures it reproduces


NOTEBOOKS = ROOT / "notebooks"


def find_notebooks(only=None) -> list[Path]:
    nbs = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        want = [str(o) for o in only]
        sel = [p for p in nbs if any(p.stem.startswith(w) or p.stem == w for w in want)]
        missing = [w for w in want if not any(p.stem.startswith(w) for p in nbs)]
        if missing:
            raise SystemExit(f"--only: no notebook matches {missing}; have {[p.stem for p in nbs]}")
        return sel
    return nbs


def notebook_parameters(nb: Path) -> list[str]:
    """The names assigned in the notebook's cell tagged ``parameters``."""
    import nbformat
    names = []
    for c in nbformat.read(nb, as_version=4).cells:
        if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []):
            for node in ast.parse(c.source).body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def check_parameters(nbs: list[Path], params: dict) -> None:
    """Every -p NAME must be a parameter of at least one of ``nbs``; else ValueError listing the valid ones."""
    valid = sorted({n for nb in nbs for n in notebook_parameters(nb)})
    for k in params:
        if k not in valid:
            close = difflib.get_close_matches(k, valid, n=1)
            raise ValueError(f"-p {k}: not a parameter of {', '.join(nb.stem for nb in nbs)}"
                             + (f" (did you mean {close[0]}?)" if close else "") + f"; valid: {', '.join(valid)}")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def parse_value(s: str):
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return {"True": True, "False": False, "None": None}.get(s, s)


def export_html(ipynb: Path, out: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(ipynb, as_version=4)
    body, _ = HTMLExporter(template_name="classic").from_notebook_node(nb)
    out.write_text(body)


def write_index(rendered: Path, times: dict) -> Path:
    rows = []
    for stem, t in sorted(times.items()):
        link = f"{stem}.html" if (rendered / f"{stem}.html").exists() else f"{stem}.ipynb"
        rows.append(f"<tr><td><a href='{html.escape(link)}'>{html.escape(stem)}</a></td>"
                    f"<td>{html.escape(PAPER_FIGURES.get(stem, ''))}</td><td>{t['seconds']:.0f} s</td>"
                    f"<td>{'ok' if t['ok'] else 'FAILED'}</td></tr>")
    page = ("<!doctype html><meta charset='utf-8'><title>Rendered analyses</title>"
            "<h1>Rendered notebooks</h1><table border=1 cellpadding=4><tr><th>notebook</th>"
            "<th>paper figure</th><th>runtime</th><th>status</th></tr>" + "".join(rows) + "</table>")
    path = rendered / "index.html"
    path.write_text(page)
    return path


def run(only=None, smoke=False, params=None, rendered=None, figures=None, html_export=True,
        kernel="python3", log_output=False, force=False) -> dict:
    import papermill as pm
    nbs = find_notebooks(only)
    params = dict(params or {})
    check_parameters(nbs, params)
    if smoke:
        params["SMOKE"] = True
        rendered = rendered or tempfile.mkdtemp(prefix="lib-smoke-rendered-")
        figures = figures or tempfile.mkdtemp(prefix="lib-smoke-figures-")
        if _inside(figures, FIGURES) and not _inside(figures, FIGURES / "rendered") and not force:
            raise ValueError(f"--figures {figures}: a --smoke run (tiny model) would overwrite the committed "
                             f"figures in {FIGURES}; write them elsewhere or pass --force")
        print(f"smoke run: figures -> {figures}, executed notebooks -> {rendered}", flush=True)
    rendered = Path(rendered or FIGURES / "rendered")
    rendered.mkdir(parents=True, exist_ok=True)
    env_backup = dict(os.environ)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.update(kernel_thread_env())
    if figures:
        os.environ["LIB_FIGURES_DIR"] = str(figures)
    times_path = rendered / "times.json"
    times = {}
    if times_path.is_file():
        try:
            times = read_json(times_path, "notebook times")
        except ValueError as e:
            print(f"warning: {e}; starting a new one", file=sys.stderr)
    failures = []
    try:
        for nb in nbs:
            out = rendered / nb.name
            t0 = time.time()
            ok = True
            try:
                pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name=kernel,
                                    cwd=str(ROOT), progress_bar=False, log_output=log_output)
            except pm.PapermillExecutionError as e:
                ok = False
                failures.append(f"{nb.name}: cell {e.cell_index} (execution count {e.exec_count}) "
                                f"raised {e.ename}: {e.evalue}  [executed copy: {out}]")
            except Exception as e:  # kernel died, notebook unreadable, ...
                ok = False
                failures.append(f"{nb.name}: {type(e).__name__}: {e}")
            dt = time.time() - t0
            times[nb.stem] = {"seconds": round(dt, 1), "ok": ok, "smoke": smoke}
            if html_export and out.exists():
                export_html(out, out.with_suffix(".html"))
            print(f"{'ok    ' if ok else 'FAILED'} {nb.stem:32s} {dt:7.1f} s", flush=True)
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    atomic_write_json(times_path, times)
    if html_export:
        write_index(rendered, times)
    if failures:
        raise RuntimeError("notebook(s) failed:\n  " + "\n  ".join(failures))
    return times
