"""Run the numbered notebooks headlessly with papermill: ``python -m scripts.notebooks [--smoke] [--only 01 03]``.

Each notebooks/NN_*.ipynb is executed in a real Jupyter kernel with the given parameters; the executed
copy and a standalone HTML export go to figures/rendered/, figures to figures/NN_*/. Prints each
notebook's time; exits non-zero naming the notebook and the failing cell if any notebook fails.

A -p NAME that is in no selected notebook's ``parameters`` cell is an error listing the valid names; a value
must fit the type of the parameter's default (``-p N_IMAGES 10.5`` or ``abc`` is an error naming it, never
truncated). Only the full pipeline writes the committed figures/: a smoke run (``--smoke`` or ``-p SMOKE True``)
or a run with changed parameters (other than DEVICE, THREADS) into the default figures/ is refused before any
notebook runs unless --force; a smoke run without --rendered / --figures writes to temporary folders that
are removed afterwards. times.json keeps the entries of notebooks not run, merged under a lock so that two
runs sharing --rendered lose none of each other's.
"""
from __future__ import annotations

import ast
import math
import difflib
import html
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lib.core.checks import parse_bool
from lib.core.device import kernel_thread_env
from lib.core.files import merge_json
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
    return list(parameter_defaults(nb))


def parameter_defaults(nb: Path) -> dict:
    """{name: default value} of the notebook's cell tagged ``parameters`` (None where not a literal)."""
    import nbformat
    out = {}
    for c in nbformat.read(nb, as_version=4).cells:
        if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []):
            for node in ast.parse(c.source).body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                try:
                    value = ast.literal_eval(node.value) if getattr(node, "value", None) is not None else None
                except ValueError:
                    value = None
                for t in targets:
                    if isinstance(t, ast.Name):
                        out.setdefault(t.id, value)
    return out


# parameters that say how a notebook runs, not what it measures: a full run may set them and still write figures/
HOW_PARAMETERS = ("DEVICE", "THREADS")


def check_value(name: str, value, default):
    """``value`` for the parameter ``name`` converted to the type of its ``default``; ValueError naming -p NAME
    when it does not fit (an integer parameter given 10.5 or "abc", a boolean given "maybe", ...)."""
    flag = f"-p {name}"
    if default is None:
        return value
    if isinstance(default, bool):
        return parse_bool(value, flag)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{flag}: expected an integer (default {default}), got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{flag}: expected a finite number (default {default}), got {value!r}")
        return float(value)
    if isinstance(default, str):
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            raise ValueError(f"{flag}: expected a string (default {default!r}), got {value!r}")
        return str(value)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{flag}: expected a non-empty list like {json.dumps(list(default))}, got {value!r}")
        return [check_value(f"{name}[{i}]", v, default[0]) for i, v in enumerate(value)] if default else list(value)
    return value


def check_parameters(nbs: list[Path], params: dict) -> dict:
    """Every -p NAME must be a parameter of at least one of ``nbs`` (else ValueError listing the valid ones) and
    its value must fit the type of that parameter's default; returns the converted values."""
    defaults = {}
    for nb in nbs:
        for k, v in parameter_defaults(nb).items():
            defaults.setdefault(k, v)
    valid = sorted(defaults)
    out = {}
    for k, v in params.items():
        if k not in valid:
            close = difflib.get_close_matches(k, valid, n=1)
            raise ValueError(f"-p {k}: not a parameter of {', '.join(nb.stem for nb in nbs)}"
                             + (f" (did you mean {close[0]}?)" if close else "") + f"; valid: {', '.join(valid)}")
        out[k] = check_value(k, v, defaults[k])
    return out


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


def plan_outputs(smoke: bool, params: dict, rendered=None, figures=None, force: bool = False):
    """(smoke, rendered, figures, temporary folders) after the checks that keep the committed figures/ for the
    full pipeline: ``-p SMOKE True`` is a smoke run; a smoke run ignores -p CHECKPOINT (refused); a smoke run, or a
    run with changed parameters on the default figures/, may write there only with ``force``."""
    asked = "--smoke" if smoke else ""
    if "SMOKE" in params:
        if smoke and params["SMOKE"] is False:
            raise ValueError("-p SMOKE False: contradicts --smoke; give one of them")
        asked = asked or ("-p SMOKE True" if params["SMOKE"] else "")
        smoke = smoke or bool(params["SMOKE"])
    if smoke and "CHECKPOINT" in params:
        raise ValueError(f"-p CHECKPOINT: a smoke run uses the tiny checkpoint and would ignore "
                         f"{params['CHECKPOINT']!r}; drop --smoke (or -p SMOKE) to run on that checkpoint")
    committed = figures is None or (_inside(figures, FIGURES) and not _inside(figures, FIGURES / "rendered"))
    changed = sorted(k for k in params if k not in HOW_PARAMETERS and k != "SMOKE")
    temps = []
    if smoke:
        if figures is not None and committed and not force:
            raise ValueError(f"--figures {figures}: a --smoke run (tiny model) would overwrite the committed "
                             f"figures in {FIGURES}" + (f" ({asked} asks for one)" if asked != "--smoke" else "")
                             + "; write them elsewhere or pass --force")
        if rendered is None:
            rendered = tempfile.mkdtemp(prefix="lib-smoke-rendered-")
            temps.append(rendered)
        if figures is None:
            figures = tempfile.mkdtemp(prefix="lib-smoke-figures-")
            temps.append(figures)
    elif figures is None and changed and not force:
        raise ValueError(f"-p {changed[0]}: a run with changed parameters ({', '.join(changed)}) would overwrite the "
                         f"committed figures in {FIGURES} (only the full pipeline writes there); give --figures "
                         f"FOLDER (and --rendered FOLDER), or pass --force")
    return smoke, rendered, figures, temps


def run(only=None, smoke=False, params=None, rendered=None, figures=None, html_export=True,
        kernel="python3", log_output=False, force=False) -> dict:
    import papermill as pm
    nbs = find_notebooks(only)
    params = check_parameters(nbs, dict(params or {}))
    smoke, rendered, figures, temps = plan_outputs(smoke, params, rendered, figures, force)
    try:
        if smoke:
            params["SMOKE"] = True
            print(f"smoke run: figures -> {figures}, executed notebooks -> {rendered}"
                  + (" (temporary, removed afterwards)" if temps else ""), flush=True)
        return _run(pm, nbs, smoke, params, Path(rendered or FIGURES / "rendered"), figures, html_export, kernel,
                    log_output)
    finally:
        for t in temps:
            shutil.rmtree(t, ignore_errors=True)


def _run(pm, nbs, smoke, params, rendered: Path, figures, html_export, kernel, log_output) -> dict:
    rendered.mkdir(parents=True, exist_ok=True)
    env_backup = dict(os.environ)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.update(kernel_thread_env())
    if figures:
        os.environ["LIB_FIGURES_DIR"] = str(figures)
    times_path = rendered / "times.json"
    mine = {}
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
            mine[nb.stem] = {"seconds": round(dt, 1), "ok": ok, "smoke": smoke}
            if html_export and out.exists():
                export_html(out, out.with_suffix(".html"))
            print(f"{'ok    ' if ok else 'FAILED'} {nb.stem:32s} {dt:7.1f} s", flush=True)
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    try:  # under a lock: another run sharing this folder keeps its entries
        times = merge_json(times_path, mine, "notebook times")
    except ValueError as e:
        print(f"warning: {e}; starting a new one", file=sys.stderr)
        times_path.unlink()
        times = merge_json(times_path, mine, "notebook times")
    if html_export:
        write_index(rendered, times)
    if failures:
        raise RuntimeError("notebook(s) failed:\n  " + "\n  ".join(failures))
    return times
