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

Where the seconds go: each kernel runs with LIB_PROFILE=<rendered>/profile/<stem>.json, where
`lib.core.profile` writes the seconds of its stages (extraction, probes, kmeans, sampling, plotting, ...);
after each notebook the runner merges ``{stem: {"total", "stages", "other", "ok"}}`` (other = total minus the
stages: imports, set-up, the kernel's start) into <rendered>/profile.json beside times.json, and a run that is
not a smoke run also into <figures>/profile.json (figures/profile.json for `make figures`: committed, the
README's ``figures-profile`` table). The run ends with a table of each notebook's seconds per stage.

``jobs``: up to that many notebooks at once (default 1), each in its own worker process and kernel with
LIB_THREADS = cores // min(jobs, notebooks) unless LIB_THREADS is set; shared outputs (times.json,
profile.json, index.html) are merged under their locks as each notebook finishes, a notebook's line is
printed when it finishes, and failures are reported in notebook order after all have finished.
"""
from __future__ import annotations

import ast
import concurrent.futures as cf
import difflib
import html
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lib.core.checks import parse_bool, read_json
from lib.core.device import kernel_thread_env
from lib.core.files import atomic_write_bytes, merge_json, waiting_lock
from lib.core.paths import FIGURES, ROOT
from lib.core.profile import STAGES
from lib.notebook.catalog import PAPER_FIGURES  # notebook stem -> the paper figures it reproduces

NOTEBOOKS = ROOT / "notebooks"


def find_notebooks(only=None) -> list[Path]:
    """The numbered notebooks, in order; with ``only``, those whose stem starts with one of its entries
    (SystemExit naming any entry that matches none)."""
    nbs = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        want = [str(o) for o in only]
        sel = [p for p in nbs if any(p.stem.startswith(w) or p.stem == w for w in want)]
        missing = [w for w in want if not any(p.stem.startswith(w) for p in nbs)]
        if missing:
            raise SystemExit(f"--only: no notebook matches {missing}; have {[p.stem for p in nbs]}")
        return sel
    return nbs


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
    """A -p value as papermill gets it: JSON if it parses, True/False/None by name, else the text itself."""
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return {"True": True, "False": False, "None": None}.get(s, s)


def export_html(ipynb: Path, out: Path) -> None:
    """Write the executed notebook ``ipynb`` as classic-template HTML to ``out``."""
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(ipynb, as_version=4)
    body, _ = HTMLExporter(template_name="classic").from_notebook_node(nb)
    out.write_text(body)


def write_index(rendered: Path, times: dict) -> Path:
    """<rendered>/index.html: a table of the notebooks in ``times`` (link, paper figure, runtime, status)."""
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
    atomic_write_bytes(path, page.encode())
    return path


# ------------------------------------------------------------------------------------- profile
PROFILE_DIR = "profile"      # <rendered>/profile/<stem>.json: the stage seconds one kernel wrote (LIB_PROFILE)
PROFILE_FILE = "profile.json"
# the stages the tables always show (lib.core.profile's other stages only where a notebook has them)
PROFILE_COLUMNS = ("extraction", "probes", "kmeans", "sampling", "plotting")


def kernel_profile_path(rendered, stem: str) -> Path:
    """Where notebook ``stem``'s kernel writes its stage seconds (the LIB_PROFILE the runner gives it)."""
    return Path(rendered) / PROFILE_DIR / f"{stem}.json"


def profile_entry(total: float, stages: dict, ok: bool = True) -> dict:
    """One notebook's profile record: total seconds, seconds per stage, other (total minus the stages: imports,
    set-up, the kernel's start and shutdown) and whether it ran to the end; seconds rounded to 0.1 s."""
    stages = {k: round(float(v), 1) for k, v in sorted(stages.items())}
    return {"total": round(float(total), 1), "stages": stages,
            "other": round(max(0.0, float(total) - sum(stages.values())), 1), "ok": bool(ok)}


def read_kernel_profile(path) -> dict:
    """{stage: seconds} from a kernel's LIB_PROFILE file; {} when the kernel wrote none (no stage ran) or it
    is unreadable (a profile never fails a run)."""
    try:
        d = read_json(path, "kernel profile")
    except (FileNotFoundError, ValueError):
        return {}
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)} \
        if isinstance(d, dict) else {}


def profile_columns(profile: dict) -> list[str]:
    """The stage columns of a profile table: `PROFILE_COLUMNS`, then any other stage a notebook has (in
    `lib.core.profile.STAGES` order, unknown ones last)."""
    seen = {k for e in profile.values() for k in (e.get("stages") or {})}
    extra = sorted(seen - set(PROFILE_COLUMNS), key=lambda k: (STAGES.index(k) if k in STAGES else len(STAGES), k))
    return list(PROFILE_COLUMNS) + extra


def _seconds(v) -> str:
    return "–" if v is None else f"{v:.1f}"


def profile_rows(profile: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-notebook table: notebook, total s, one column per stage, other; a last row
    "all" with the sums when there are several notebooks. A stage a notebook never entered is "–"."""
    cols = profile_columns(profile)
    header = ["notebook", "total s", *cols, "other"]
    rows, sums = [], {}
    for stem, e in sorted(profile.items()):
        st = e.get("stages") or {}
        vals = [e.get("total"), *(st.get(c) for c in cols), e.get("other")]
        for k, v in zip(header[1:], vals):
            if v is not None:
                sums[k] = sums.get(k, 0.0) + v
        rows.append([stem + ("" if e.get("ok", True) else " (FAILED)"), *map(_seconds, vals)])
    if len(rows) > 1:
        rows.append(["all", *(_seconds(sums.get(k)) for k in header[1:])])
    return header, rows


def profile_table(profile: dict, markdown: bool = False) -> str:
    """The per-notebook, per-stage seconds of ``profile`` ({stem: `profile_entry`}) as aligned text, or as a
    Markdown table (the README's ``figures-profile`` block)."""
    header, rows = profile_rows(profile)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
                     for r in [header, *rows])


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
        kernel="python3", log_output=False, force=False, jobs: int = 1) -> dict:
    """Run the selected notebooks (see the module docstring); returns times.json as merged. ``jobs``: how many
    notebooks run at once. RuntimeError naming each failed notebook (and cell) after all have run."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected an integer >= 1, got {jobs!r}")
    nbs = find_notebooks(only)
    params = check_parameters(nbs, dict(params or {}))
    smoke, rendered, figures, temps = plan_outputs(smoke, params, rendered, figures, force)
    try:
        if smoke:
            params["SMOKE"] = True
            print(f"smoke run: figures -> {figures}, executed notebooks -> {rendered}"
                  + (" (temporary, removed afterwards)" if temps else ""), flush=True)
        return _run(nbs, smoke, params, Path(rendered or FIGURES / "rendered"), figures, html_export, kernel,
                    log_output, jobs)
    finally:
        for t in temps:
            shutil.rmtree(t, ignore_errors=True)


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def execute_one(nb: str, out: str, params: dict, kernel: str, log_output: bool, env: dict,
                html_export: bool) -> tuple[float, str | None]:
    """Execute notebook ``nb`` into ``out`` with papermill, its kernel started with ``env`` added to this
    process's environment (restored afterwards), then export its HTML; returns (seconds of the execution,
    None or the failure line naming the notebook and the cell). Runs in the runner's process (jobs=1) or in
    a worker process of its own (jobs > 1)."""
    import papermill as pm
    name = Path(nb).name
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    failure = None
    t0 = time.time()
    try:
        pm.execute_notebook(nb, out, parameters=params, kernel_name=kernel, cwd=str(ROOT), progress_bar=False,
                            log_output=log_output)
    except pm.PapermillExecutionError as e:
        failure = (f"{name}: cell {e.cell_index} (execution count {e.exec_count}) raised {e.ename}: {e.evalue}  "
                   f"[executed copy: {out}]")
    except Exception as e:  # kernel died, notebook unreadable, ...
        failure = f"{name}: {type(e).__name__}: {e}"
    finally:
        dt = time.time() - t0
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if html_export and Path(out).exists():
        try:
            export_html(Path(out), Path(out).with_suffix(".html"))
        except Exception as e:  # an export that fails is reported, never hides the notebook's result
            failure = failure or f"{name}: HTML export failed: {type(e).__name__}: {e}"
    return dt, failure


def _merge(path: Path, update: dict, what: str) -> dict:
    """`merge_json`, starting a new file (with a warning) where the old one is unreadable."""
    try:  # under a lock: another run sharing this folder keeps its entries
        return merge_json(path, update, what)
    except ValueError as e:
        print(f"warning: {e}; starting a new one", file=sys.stderr)
        path.unlink()
        return merge_json(path, update, what)


def _record(rendered: Path, figures, smoke: bool, stem: str, dt: float, ok: bool, html_export: bool) -> dict:
    """After one notebook: merge its time into times.json and its profile into profile.json (and, for a run
    that is not a smoke run, into <figures>/profile.json), each under its lock; rewrite index.html under
    its lock from the merged times. Returns the notebook's profile entry."""
    entry = profile_entry(dt, read_kernel_profile(kernel_profile_path(rendered, stem)), ok)
    _merge(rendered / "times.json", {stem: {"seconds": round(dt, 1), "ok": ok, "smoke": smoke}}, "notebook times")
    _merge(rendered / PROFILE_FILE, {stem: entry}, "notebook profile")
    if not smoke and ok:
        _merge(Path(figures or FIGURES) / PROFILE_FILE, {stem: entry}, "notebook profile")
    if html_export:
        with waiting_lock(rendered / ".index.html.lock"):
            write_index(rendered, read_json(rendered / "times.json", "notebook times"))
    return entry


def longest_first(stems, profile_path: Path) -> list[str]:
    """``stems`` ordered by the seconds each took in the last full run (``profile_path``, the committed
    profile), longest first, notebooks without a record first of all: with several notebooks at once, the
    long ones (06, 03) then start at once instead of last, and the short ones fill the gaps."""
    try:
        last = read_json(profile_path, "notebook profile") if Path(profile_path).is_file() else {}
    except ValueError:
        last = {}
    secs = {st: float(e.get("total", 0.0)) if isinstance(e, dict) else 0.0 for st, e in last.items()}
    return sorted(stems, key=lambda st: (st in secs, -secs.get(st, 0.0), st))


def _run(nbs, smoke, params, rendered: Path, figures, html_export, kernel, log_output, jobs: int = 1) -> dict:
    rendered.mkdir(parents=True, exist_ok=True)
    env_backup = dict(os.environ)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.update(kernel_thread_env())
    if figures:
        os.environ["LIB_FIGURES_DIR"] = str(figures)
    workers = max(1, min(jobs, len(nbs)))
    per_kernel = {}
    if workers > 1 and not os.environ.get("LIB_THREADS"):
        per_kernel["LIB_THREADS"] = str(max(1, cores() // workers))
    tasks = {}
    for nb in nbs:
        prof = kernel_profile_path(rendered, nb.stem)
        prof.unlink(missing_ok=True)  # a stale file from an earlier run is not this run's profile
        tasks[nb.stem] = (str(nb), str(rendered / nb.name), params, kernel, log_output,
                          {**per_kernel, "LIB_PROFILE": str(prof)}, html_export)
    profile, failures = {}, {}

    def done(stem, dt, failure):
        ok = failure is None
        if failure:
            failures[stem] = failure
        profile[stem] = _record(rendered, figures, smoke, stem, dt, ok, html_export)
        print(f"{'ok    ' if ok else 'FAILED'} {stem:32s} {dt:7.1f} s", flush=True)

    try:
        if workers == 1:
            for stem, task in tasks.items():
                done(stem, *execute_one(*task))
        else:
            print(f"running {len(tasks)} notebooks, {workers} at a time"
                  + (f", LIB_THREADS={per_kernel['LIB_THREADS']} each" if per_kernel else ""), flush=True)
            t0 = {}
            with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {}
                for stem in longest_first(tasks, Path(figures or FIGURES) / PROFILE_FILE):
                    task = tasks[stem]
                    futures[pool.submit(execute_one, *task)] = stem
                    t0[stem] = time.time()
                for f in cf.as_completed(futures):
                    stem = futures[f]
                    try:
                        dt, failure = f.result()
                    except Exception as e:  # the worker process died
                        dt, failure = time.time() - t0[stem], f"{stem}.ipynb: {type(e).__name__}: {e}"
                    done(stem, dt, failure)
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    times = read_json(rendered / "times.json", "notebook times")
    if profile:
        print("\nseconds per notebook and stage (other: imports, set-up, kernel start; "
              f"{rendered / PROFILE_FILE}):\n" + profile_table(profile), flush=True)
    if failures:
        raise RuntimeError("notebook(s) failed:\n  " + "\n  ".join(failures[nb.stem] for nb in nbs
                                                                       if nb.stem in failures))
    return times
