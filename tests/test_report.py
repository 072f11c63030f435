"""The README's generated blocks and the results site: current with the committed numbers, tolerant of
missing keys, deterministic; lib.notebook.numbers writes stable JSON; lib.notebook.catalog covers the notebooks'
figures."""
import json
import re
import shutil
from types import SimpleNamespace

import pytest

from lib.core.paths import FIGURES, ROOT
from lib.notebook import catalog, numbers
from lib.publish import readme as report
from lib.publish import site


def _site_pages(figures):
    """The HTML pages of the site under ``figures``."""
    return sorted((figures / site.SITE).glob("*.html"))


def _image_sources(page):
    """The img src attributes of a page."""
    return re.findall(r'<img src="([^"]+)"', page.read_text())


def test_readme_blocks_match_committed_numbers():
    """Fails when figures/*/numbers.json (or the study, or the catalog) changed and `python -m scripts.report`
    was not rerun: the README's numbers must be the generated ones."""
    text = (ROOT / "README.md").read_text()
    for name in report.blocks():
        assert f"<!-- {name}:begin" in text and f"<!-- {name}:end -->" in text, f"README lacks the {name} block"
    assert report.render_readme(text, report.blocks()) == text, \
        "README blocks are stale: run `python -m scripts.report` (make figures does)"


def test_committed_site_is_current():
    if not (FIGURES / "site" / "index.html").is_file():
        pytest.skip("no committed site yet")
    assert site.build_site(FIGURES, check=True) == [], "figures/site is stale: run `python -m scripts.report`"


def test_readme_links_stay_inside_the_repository():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        assert not target.startswith(("/", "..")), f"README link leaves the repository: {target}"
        assert (ROOT / target).exists(), f"README links to a missing file: {target}"
    for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "lib").glob("*.py"),
              *(ROOT / "notebooks").glob("*.ipynb")]:
        t = p.read_text()
        outside = "../" + "shared"  # spelled in two parts so that this check does not match itself
        assert outside not in t and "PAPER.md" not in t and "DESIGN.md" not in t, p.name
        assert not re.search(r"\bissues? #?\d+|(?:^|[\s(])#\d+\b(?![0-9a-fA-F;])", t, re.M), \
            f"{p.name}: an internal issue number"


def _runs(tmp_path, nums: dict, run="01_denoising_sparsity", smoke=False):
    d = tmp_path / run
    d.mkdir(parents=True)
    (d / "numbers.json").write_text(json.dumps({"numbers": nums, "run": {"checkpoint": "x", "smoke": smoke}}))
    return numbers.find_numbers(tmp_path)


def test_scorecard_missing_key_is_not_measured(tmp_path):
    runs = _runs(tmp_path, {"sigma": 0.2, "mid_pr_median_in": 0.5, "mid_pr_median_out": 0.25, "mid_eff_channels_in": 64,
                            "mid_eff_channels_out": 32, "claim_mid_sparsifies": True, "phi_varying_fraction": 0.01,
                            "sigma0_phi_varying_fraction": 0.0, "claim_phi_live": "degenerate"})
    rows = {r["claim"]: r for r in report.scorecard(runs)}
    mid = rows["The middle block sparsifies its input"]
    assert mid["ours"] == "σ = 0.2: median PR 0.50 → 0.25, effective channels 64 → 32" and mid["verdict"] == "holds"
    # a verdict word written by the notebook (here: degenerate) is shown as it is
    assert rows["phi varies across images (liveness; the readout's precondition, ours)"]["verdict"] == "degenerate"
    assert mid["controls"] == report.NOT_MEASURED  # untrained keys missing
    assert rows["The middle block is the most noise-robust block"]["verdict"] == report.NOT_MEASURED
    assert all(r["verdict"] == report.NOT_MEASURED for r in rows.values() if r["run"] != "01_denoising_sparsity")
    md = report.scorecard_markdown(report.scorecard(runs))
    assert md.count("\n") == len(report.CLAIMS) + 1


def test_scorecard_null_and_smoke(tmp_path):
    runs = _runs(tmp_path, {"mid_pr_median_in": None, "mid_pr_median_out": 0.2, "claim_mid_sparsifies": False},
                 smoke=True)
    r = next(r for r in report.scorecard(runs) if r["claim"] == "The middle block sparsifies its input")
    assert r["ours"] == report.NOT_MEASURED and r["verdict"] == report.NOT_MEASURED and r["smoke"]


def test_scorecard_has_a_verdict_column_per_checkpoint(tmp_path):
    """tuxphoto and CIFAR-10 side by side: a CIFAR-10 notebook that ran shows its own verdict (linked to its
    page) even without tuxphoto's background keys; one that did not run reads "not run"."""
    purity = {"trained_top_class_purity": 0.4, "chance_class_purity": 0.1, "untrained_top_class_purity": 0.2,
              "pixels_top_class_purity": 0.15}
    _runs(tmp_path, {**purity, "trained_top_background_purity": 0.9, "chance_background_purity": 0.2,
                     "claim_purity": False}, run="02_channel_selectivity")
    runs = _runs(tmp_path, {**purity, "claim_purity": True}, run="cifar10/02_channel_selectivity")
    rows = {r["claim"]: r for r in report.scorecard(runs)}
    pur = rows["Specialized channels respond to shared content (class)"]
    assert list(pur["columns"]) == ["tuxphoto", "CIFAR-10"]
    tux, cif = pur["columns"]["tuxphoto"], pur["columns"]["CIFAR-10"]
    assert tux["verdict"] == pur["verdict"] == "does not hold" and tux["ours"].endswith("background 0.90 (chance 0.20)")
    assert cif["verdict"] == "holds" and cif["run"] == "cifar10/02_channel_selectivity" and cif["ran"]
    assert cif["ours"] == "class purity of top images 0.40 (chance 0.10)"  # class only: no background part
    probe = rows["A linear probe reads the class from phi better than from the controls"]["columns"]
    assert probe["CIFAR-10"]["verdict"] == report.NOT_RUN and probe["tuxphoto"]["verdict"] == report.NOT_MEASURED
    md = report.scorecard_markdown(report.scorecard(runs))
    assert md.splitlines()[0].endswith("| tuxphoto | CIFAR-10 |") and md.count("\n") == len(report.CLAIMS) + 1
    assert "[**holds**](figures/site/cifar10_02_channel_selectivity.html)" in md
    counts = report.verdict_counts(report.scorecard(runs))
    assert counts.endswith("CIFAR-10: 1 of 16 claims hold, 0 do not hold or are degenerate, 2 not measured, 13 not run")
    # a run page of the CIFAR-10 checkpoint shows that run's verdicts; the index links to it
    site.build_site(tmp_path)
    page = (tmp_path / "site" / "cifar10_02_channel_selectivity.html").read_text()
    assert ("<h2>Verdicts</h2>" in page and "class purity of top images 0.40" in page
            and "Factors on this dataset" in page)
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count('href="cifar10_02_channel_selectivity.html"') >= 2 and "<th>CIFAR-10</th>" in index


def test_committed_scorecard_shows_both_checkpoints():
    """The README's scorecard has the two verdict columns, and every CIFAR-10 notebook that ran has a page."""
    text = (ROOT / "README.md").read_text()
    assert "| tuxphoto | CIFAR-10 |" in text
    for d in sorted((FIGURES / "cifar10").glob("[0-9][0-9]_*")):
        if (d / "numbers.json").is_file():
            assert (FIGURES / "site" / f"cifar10_{d.name}.html").is_file(), d.name
            assert f"figures/site/cifar10_{d.name}.html" in text, d.name


def test_render_readme_replaces_only_blocks():
    text = "a\n<!-- numbers:begin (x) -->\nold\n<!-- numbers:end -->\nb\n"
    out = report.render_readme(text, {"numbers": "new | table"})
    assert out == "a\n<!-- numbers:begin (x) -->\nnew | table\n<!-- numbers:end -->\nb\n"
    assert report.render_readme(out, {"numbers": "new | table"}) == out
    with pytest.raises(ValueError, match="study"):
        report.render_readme(text, {"study": "x"})


def test_write_numbers_is_stable(tmp_path):
    import numpy as np
    ctx = SimpleNamespace(name="01_x", checkpoint=str(ROOT / "data" / "checkpoints" / "tiny16"),
                          meta={"images_seen": 5}, dataset="tuxphoto", images=[0] * 7, size=16, seed=0, smoke=True,
                          fig_dir=tmp_path)
    vals = {"b": np.float32(1 / 3), "a": 123456.789, "n": float("nan"), "flag": np.bool_(True), "arr": np.arange(3),
            "nested": {"z": 2.0, "y": [0.000123456]}}
    p = numbers.write_numbers(ctx, vals)
    first = p.read_text()
    numbers.write_numbers(ctx, dict(reversed(list(vals.items()))))
    assert p.read_text() == first
    d = json.loads(first)
    assert list(d["numbers"]) == sorted(d["numbers"])
    assert d["numbers"]["b"] == 0.3333 and d["numbers"]["a"] == 123500.0 and d["numbers"]["n"] is None
    assert (d["numbers"]["flag"] is True and d["numbers"]["arr"] == [0, 1, 2]
            and d["numbers"]["nested"]["y"] == [0.0001235])
    assert d["run"]["checkpoint_path"] == "data/checkpoints/tiny16" and len(d["run"]["checkpoint_sha256"]) == 12
    assert str(ROOT) not in first
    with pytest.raises(ValueError):
        numbers.write_numbers(ctx, {})


def test_site_is_deterministic_relative_and_prunes(tmp_path):
    """Build a site from a copy of two committed runs twice: same bytes, images referenced as existing
    relative files (no base64), no absolute path; a page whose run disappeared is deleted."""
    src = [d for d in ("01_denoising_sparsity", "06_linear_probe") if (FIGURES / d).is_dir()]
    if not src:
        pytest.skip("no committed figures")
    for d in src:
        shutil.copytree(FIGURES / d, tmp_path / d)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "99_gone.html").write_text("old")
    changed = site.build_site(tmp_path)
    assert "index.html" in changed and "99_gone.html" in changed and not (tmp_path / "site" / "99_gone.html").exists()
    before = {p.name: p.read_bytes() for p in _site_pages(tmp_path)}
    assert site.build_site(tmp_path) == []
    assert before == {p.name: p.read_bytes() for p in _site_pages(tmp_path)}
    for page in _site_pages(tmp_path):
        text = page.read_text()
        assert "data:image" not in text and str(ROOT) not in text and str(tmp_path) not in text
        for s in _image_sources(page):
            assert not s.startswith(("/", "http")), s
            if "explorer_screenshot" not in s:
                assert (page.parent / s).resolve().is_file(), f"{page.name}: broken image {s}"


def test_catalog_covers_committed_figures():
    """Every committed notebook figure has a caption; every catalog entry is a committed figure."""
    for stem, nb in catalog.NOTEBOOKS.items():
        d = FIGURES / stem
        if not d.is_dir():
            continue
        pngs = {p.stem for p in d.glob("*.png")}
        assert pngs - set(nb.figures) == set(), f"{stem}: figures without a caption in lib/notebook/catalog.py"
        assert set(nb.figures) - pngs == set(), \
            f"{stem}: lib/notebook/catalog.py lists figures the notebook did not save"


def test_title_line_names_checkpoint_n_and_sigma():
    from lib.notebook import plots
    ctx = {"notebook": "02_channel_selectivity", "checkpoint": "tux32", "n_images": 1000, "dataset": "tuxphoto",
           "images_seen": 440_000, "namespace": {"SIGMA": 0.1}, "smoke": False}
    line = plots.title_line("fig5_union_of_subspaces", ctx)
    assert line == "checkpoint tux32 (440k images seen) · tuxphoto, N = 1000 held-out · σ = 0.1"
    ctx["namespace"] = {"SIGMA": 0.0}
    assert plots.title_line("fig5_union_of_subspaces", ctx).endswith("σ = 0 (clean images)")
    assert catalog.format_sigma(None).startswith("σ = 50/255")
    assert catalog.format_sigma([0.1, 0.4]) == "σ ∈ {0.1, 0.4}"
    assert plots.title_line("x", {}) == ""
