"""The committed results site: figures/site/index.html plus one page per notebook run, opened offline.

`build_site()` (run by `python -m scripts.report`, the last step of `make figures`) writes, from committed files
only: the scorecard (`lib.publish.readme`, one verdict column per checkpoint, each linked to its run's page),
one page per run of every checkpoint (figures/NN_* and figures/<variant>/NN_*, e.g. figures/cifar10/06_x,
with that run's own verdicts), each run's provenance and key numbers (figures/<run>/numbers.json),
the notebook's introduction (its first markdown cell), and every figure of the run with its caption and
paper counterpart (`lib.notebook.catalog`). Images are referenced as relative files (../<run>/<name>.png), never
inlined; pages hold no timestamp, kernel id or absolute path, so rebuilding an unchanged repository leaves
the files byte-identical. One stylesheet (style.css) serves every page. Pages that no run produces any
more are deleted.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from lib.core.paths import FIGURES, ROOT
from lib.notebook.catalog import NOTEBOOKS
from lib.notebook.numbers import find_numbers
from lib.publish.readme import CHECKPOINT_COLUMNS, NOT_RUN, provenance, scorecard, site_page

SITE = "site"
NOTEBOOK_DIR = ROOT / "notebooks"
RUN_DIR = re.compile(r"^\d\d_[a-z0-9_]+$")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
nav { font-size: 0.9em; margin-bottom: 1em; }
nav a { margin-right: 0.8em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
td.holds { color: #11691b; font-weight: 600; } td.fails { color: #a3261b; font-weight: 600; }
td.na { color: #777; }
figure { margin: 1.2em 0 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #333; margin-top: 0.3em; }
.prov { background: #f7f7f7; padding: 0.5em 0.8em; font-size: 0.9em; }
.intro { font-size: 0.95em; }
code { background: #f3f3f3; padding: 0 2px; }
"""


def find_runs(figures=FIGURES) -> list[str]:
    """Run ids: figures/NN_name and figures/<variant>/NN_name folders holding PNGs or a numbers.json."""
    figures = Path(figures)
    runs = []
    for d in sorted(figures.iterdir()) if figures.is_dir() else []:
        if not d.is_dir() or d.name in (SITE, "rendered"):
            continue
        if RUN_DIR.match(d.name):
            if any(d.glob("*.png")) or (d / "numbers.json").is_file():
                runs.append(d.name)
        else:
            for sub in sorted(d.iterdir()):
                if sub.is_dir() and RUN_DIR.match(sub.name) and (any(sub.glob("*.png"))
                                                                   or (sub / "numbers.json").is_file()):
                    runs.append(f"{d.name}/{sub.name}")
    return sorted(runs, key=lambda r: (r.split("/")[-1], r.count("/"), r))


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _page(title: str, body: str, nav: str) -> str:
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_esc(title)}</title>\n<link rel=\"stylesheet\" href=\"style.css\">\n</head>\n"
            f"<body>\n{nav}\n{body}\n</body>\n</html>\n")


def _intro(stem: str) -> str:
    """The notebook's first markdown cell as HTML (heading dropped; links rebased from notebooks/)."""
    import mistune
    import nbformat
    p = NOTEBOOK_DIR / f"{stem}.ipynb"
    if not p.is_file():
        return ""
    nb = nbformat.read(p, as_version=4)
    md = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    md = "\n".join(line for line in md.splitlines() if not line.lstrip().startswith("#"))
    out = mistune.html(md)
    out = re.sub(r'href="\.\./', 'href="../../', out)
    return f"<div class=\"intro\">{out}</div>"


def _verdict_class(v: str) -> str:
    return {"holds": "holds", "does not hold": "fails"}.get(v, "na")


def _verdict_td(col: dict, link: bool) -> str:
    v = _esc(col["verdict"] + (" (SMOKE run)" if col["smoke"] else ""))
    if link and col["ran"]:
        v = f"<a href=\"{_esc(site_page(col['run']))}\">{v}</a>"
    return f"<td class=\"{_verdict_class(col['verdict'])}\">{v}</td>"


def _scorecard_html(rows: list[dict], link: bool, columns: bool = True) -> str:
    """The scorecard table; ``columns``: one verdict column per checkpoint (the index), else the rows' own
    verdict (a run's page); ``link``: claims and verdicts linked to their run's page."""
    labels = list(rows[0]["columns"]) if columns and rows else []
    first = f" ({_esc(labels[0])})" if labels else ""
    verdicts = "".join(f"<th>{_esc(label)}</th>" for label in labels) or "<th>verdict</th>"
    head = (f"<tr><th>claim</th><th>paper</th><th>paper's number</th><th>ours{first}</th><th>controls</th>"
            f"{verdicts}</tr>")
    body = []
    for r in rows:
        claim = _esc(r["claim"])
        if link:
            claim = f"<a href=\"{_esc(site_page(r['run']))}\">{claim}</a>"
        cells = "".join(_verdict_td(c, link and i > 0) for i, c in enumerate(r["columns"].values())) if labels \
            else _verdict_td(r, False)
        body.append(f"<tr><td>{claim}</td><td>{_esc(r['paper figure'])}</td><td>{_esc(r['paper'])}</td>"
                    f"<td>{_esc(r['ours'])}</td><td>{_esc(r['controls'])}</td>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _flat(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for k, v in sorted(d.items()):
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((prefix + k, v))
    return out


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ", ".join(_value(x) for x in v)
    if v is None:
        return "–"
    return str(v)


def _provenance(run: dict) -> str:
    if not run:
        return "<p class=\"prov\">No numbers.json for this run: run <code>make figures</code>.</p>"
    seen = run.get("images_seen")
    seen = f"{seen:,} training images seen" if isinstance(seen, int) else "images seen unknown"
    smoke = " <b>SMOKE run (tiny model; the numbers mean nothing)</b>" if run.get("smoke") else ""
    return (f"<p class=\"prov\">Checkpoint <code>{_esc(run.get('checkpoint'))}</code> "
            f"(<code>{_esc(run.get('checkpoint_path'))}</code>, weights sha256 "
            f"<code>{_esc(run.get('checkpoint_sha256'))}</code>, {seen}); "
            f"dataset <code>{_esc(run.get('dataset'))}</code>, {_esc(run.get('n_images'))} held-out "
            f"images of {_esc(run.get('image_size'))}×{_esc(run.get('image_size'))}, seed {_esc(run.get('seed'))}."
            f"{smoke}</p>")


def _nav(pages: list[tuple[str, str]], current: str) -> str:
    links = ["<a href=\"index.html\">results</a>"]
    for href, label in pages:
        links.append(f"<b>{_esc(label)}</b>" if href == current else f"<a href=\"{_esc(href)}\">{_esc(label)}</a>")
    links.append("<a href=\"../../README.md\">README</a>")
    links.append("<a href=\"../../docs/method.md\">method</a>")
    return "<nav>" + " ".join(links) + "</nav>"


def _label(run: str) -> str:
    stem = run.split("/")[-1]
    return stem[:2] + (f" ({run.split('/')[0]})" if "/" in run else "")


def run_page(run: str, figures: Path, data: dict, numbers: dict, nav: str) -> str:
    """The HTML page of run ``run`` (a notebook, or variant/notebook): provenance, verdicts, key numbers and
    every figure with its caption and paper counterpart."""
    stem = run.split("/")[-1]
    variant = run.split("/")[0] if "/" in run else ""
    nb = NOTEBOOKS.get(stem)
    d = figures / run
    rel = "../" + run
    title = f"{stem}: {nb.title}" if nb else stem
    if "/" in run:
        title += f" — on {run.split('/')[0]}"
    parts = [f"<h1>{_esc(title)}</h1>"]
    if nb:
        parts.append(f"<p><b>Paper:</b> {_esc(nb.paper)}. <b>What it teaches:</b> {_esc(nb.teaches)}. "
                     f"<b>Notebook:</b> <a href=\"../../notebooks/{_esc(stem)}.ipynb\">notebooks/{_esc(stem)}.ipynb</a>"
                     "</p>")
    parts.append(_provenance(data.get("run", {})))
    if variant and nb and nb.factors_note:
        parts.append(f"<p class=\"prov\"><b>Factors on this dataset:</b> {_esc(nb.factors_note)}</p>")
    parts.append(_intro(stem))
    mine = [r for r in scorecard(numbers, variant=variant) if r["run"] == run and r["verdict"] != NOT_RUN]
    if mine:
        parts.append("<h2>Verdicts</h2>" + _scorecard_html(mine, link=False, columns=False))
    nums = data.get("numbers")
    if nums:
        trs = "".join(f"<tr><td><code>{_esc(k)}</code></td><td>{_esc(_value(v))}</td></tr>" for k, v in _flat(nums))
        parts.append(f"<h2>Key numbers</h2><p>From <a href=\"{_esc(rel)}/numbers.json\">numbers.json</a>, written by "
                     f"the notebook.</p><table><tr><th>key</th><th>value</th></tr>{trs}</table>")
    tables = sorted(p.name for p in d.glob("*.csv"))
    if tables:
        parts.append("<p>Tables: " + ", ".join(f"<a href=\"{_esc(rel)}/{_esc(t)}\">{_esc(t)}</a>" for t in tables)
                     + "</p>")
    parts.append("<h2>Figures</h2>")
    pngs = {p.stem: p.name for p in d.glob("*.png")}
    order = ([n for n in (nb.figures if nb else {}) if n in pngs]
             + sorted(n for n in pngs if not nb or n not in nb.figures))
    if stem == "07_explorer" and "/" not in run and (figures / "explorer" / "explorer_screenshot.png").is_file():
        pngs["explorer_screenshot"] = "../explorer/explorer_screenshot.png"
        order.append("explorer_screenshot")
    for n in order:
        entry = nb.figures.get(n) if nb else None
        cap = entry.caption if entry else ("The explorer widget in JupyterLab (headless Chromium)."
                                           if n == "explorer_screenshot" else "(no caption)")
        paper = entry.paper if entry and entry.paper else "ours (no counterpart in the paper)"
        src = pngs[n] if pngs[n].startswith("../") else f"{rel}/{pngs[n]}"
        pdf = f" (<a href=\"{_esc(rel)}/{_esc(n)}.pdf\">PDF</a>)" if (d / f"{n}.pdf").is_file() else ""
        parts.append(f"<figure id=\"{_esc(n)}\"><img src=\"{_esc(src)}\" alt=\"{_esc(n)}\">"
                     f"<figcaption><b>{_esc(n)}</b>{pdf}. {_esc(cap)} <i>Paper:</i> {_esc(paper)}.</figcaption>"
                     "</figure>")
    return _page(title, "\n".join(parts), nav)


def index_page(runs: list[str], figures: Path, numbers: dict, rows: list[dict], nav: str) -> str:
    """The site's index.html: the scorecard, the network, and a table of the runs of each checkpoint."""
    parts = ["<h1>Sparse semantic representations in a blind denoiser: results</h1>",
             "<p>A reproduction of Kadkhodaie, Mallat &amp; Simoncelli (arXiv 2506.01912) on the shipped CPU "
             "checkpoints. Every number and figure on these pages comes from the last <code>make figures</code> "
             "run (the notebooks write their figures and <code>numbers.json</code>; "
             "<code>python -m scripts.report</code> writes these pages). Method and decisions: "
             "<a href=\"../../docs/method.md\">docs/method.md</a>; layout: "
             "<a href=\"../../docs/design.md\">docs/design.md</a>.</p>",
             f"<p class=\"prov\">Checkpoints: {_esc(provenance(numbers)).replace('`', '')}</p>",
             "<h2>Scorecard: the paper's claims on our models</h2>", _scorecard_html(rows, link=True)]
    net = figures / "01_denoising_sparsity" / "fig1_network.png"
    if net.is_file():
        parts.append("<h2>The network</h2><figure><img src=\"../01_denoising_sparsity/fig1_network.png\" "
                     "alt=\"fig1_network\"><figcaption>The default checkpoint's UNet, drawn from its configuration "
                     "(<code>lib.notebook.schematic</code>); phi is read at the middle block B.</figcaption></figure>")
    labels = dict(CHECKPOINT_COLUMNS)
    for variant in sorted({r.split("/")[0] if "/" in r else "" for r in runs}, key=lambda v: (v not in labels, v)):
        trs = []
        for r in runs:
            if (r.split("/")[0] if "/" in r else "") != variant:
                continue
            stem = r.split("/")[-1]
            nb = NOTEBOOKS.get(stem)
            run = numbers.get(r, {}).get("run", {})
            n_fig = len(list((figures / r).glob("*.png")))
            trs.append(f"<tr><td><a href=\"{_esc(site_page(r))}\">{_esc(r)}</a></td>"
                       f"<td>{_esc(nb.paper if nb else '')}</td><td>{_esc(nb.teaches if nb else '')}</td>"
                       f"<td><code>{_esc(run.get('checkpoint', '–'))}</code></td>"
                       f"<td>{n_fig}</td></tr>")
        where = f"figures/{variant}/" if variant else "figures/"
        parts.append(f"<h2>Notebooks: {_esc(labels.get(variant, variant))} ({_esc(where)}NN_*)</h2>"
                     "<table><tr><th>page</th><th>paper</th><th>what it teaches</th>"
                     f"<th>checkpoint</th><th>figures</th></tr>{''.join(trs)}</table>")
    return _page("Results", "\n".join(parts), nav)


def build_site(figures=FIGURES, check: bool = False) -> list[str]:
    """Write figures/site/*.html; with ``check`` only compare. Returns the pages that changed (or would)."""
    figures = Path(figures)
    out = figures / SITE
    runs = find_runs(figures)
    numbers = find_numbers(figures)
    rows = scorecard(numbers)
    pages = [(site_page(r), _label(r)) for r in runs]
    want = {"style.css": STYLE.lstrip(),
            "index.html": index_page(runs, figures, numbers, rows, _nav(pages, "index.html"))}
    for r, (href, _) in zip(runs, pages):
        want[href] = run_page(r, figures, numbers.get(r, {}), numbers, _nav(pages, href))
    changed = []
    for name, text in want.items():
        p = out / name
        if not p.is_file() or p.read_text() != text:
            changed.append(name)
            if not check:
                out.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
    for p in sorted(out.glob("*.html")) if out.is_dir() else []:
        if p.name not in want:
            changed.append(p.name)
            if not check:
                p.unlink()
    return changed
