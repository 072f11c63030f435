"""The README's generated blocks and the paper-vs-ours scorecard, from the notebooks' numbers.json files.

    python -m scripts.report            # rewrite the README's marked blocks and the results site (make figures)
    python -m scripts.report --check    # exit 1 if the README or the site differ from what the JSON gives

The README holds blocks between marker comments, ``<!-- NAME:begin -->`` ... ``<!-- NAME:end -->``; each is
rewritten from committed files only (never typed by hand):

- ``notebooks``: one line per notebook, what it teaches (`lib.notebook.catalog`);
- ``numbers``: the scorecard, one row per claim of the paper: the paper's number where it has one, ours and
  the controls (untrained network, pixels) on the default checkpoint, and one verdict column per checkpoint
  (`CHECKPOINT_COLUMNS`: tuxphoto from figures/NN_*, CIFAR-10 from figures/cifar10/NN_*), each the verdict
  the notebook wrote on that checkpoint (`CLAIMS`);
- ``study``: the factor study's table and findings from figures/evidence/study.jsonl (`lib.training.study`).
- ``figures-profile``: each notebook's seconds in the last `make figures`, in total and per stage (extraction,
  probes, kmeans, sampling, plotting, other), from figures/profile.json (`lib.publish.runner` writes it).

A claim whose numbers are missing (a notebook that has not written that key yet) shows "not measured"; a
notebook that has not been run on a checkpoint of `CHECKPOINT_COLUMNS` beyond the first shows "not run" there.
"""
from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass
from pathlib import Path

from lib.core.checks import read_json
from lib.core.paths import FIGURES, ROOT
from lib.notebook.catalog import NOTEBOOKS
from lib.notebook.numbers import find_numbers
from lib.publish.runner import PROFILE_FILE, profile_table
from lib.training import study

README = ROOT / "README.md"
NOT_MEASURED = "not measured"
NOT_RUN = "not run"
# The scorecard's verdict columns: (the figures/ subfolder holding that checkpoint's runs, "" = figures/NN_*
# itself; the column's label). Notebooks on CIFAR-10 read the class where tuxphoto has more factors.
CHECKPOINT_COLUMNS = (("", "tuxphoto"), ("cifar10", "CIFAR-10"))
VERDICT_TEXT = {True: "holds", False: "does not hold"}


@dataclass(frozen=True)
class Claim:
    """One row of the scorecard: the paper's claim, the run and key numbers that test it, and its verdict key."""
    claim: str
    run: str                 # figures/<run>/numbers.json
    paper_figure: str
    paper: str               # the paper's statement or number ("" where it gives none)
    ours: str                # a format template over the run's numbers
    controls: str = ""       # idem: untrained network, pixels, chance
    verdict: str = ""        # the key of the notebook's boolean verdict
    optional: str = ""       # appended to ``ours`` where its keys exist (factors only some datasets have)


CLAIMS: list[Claim] = [
    Claim("The blind UNet denoises better than the best Gaussian blur", "01_denoising_sparsity", "section 2",
          "yes (ImageNet 64x64)",
          "{psnr_gain_over_oracle_min_db:.1f} to {psnr_gain_over_oracle_max_db:.1f} dB above the blur oracle, "
          "σ 0.05-0.8",
          "", "claim_denoises"),
    Claim("phi varies across images (liveness; the readout's precondition, ours)", "01_denoising_sparsity",
          "section 4 (phi at a noise level)", "",
          "{phi_varying_fraction:.1%} of phi's energy varies across images at σ = {sigma:g} "
          "(σ = 0: {sigma0_phi_varying_fraction:.1%})",
          "untrained {untrained_phi_varying_fraction:.1%}", "claim_phi_live"),
    Claim("The middle block sparsifies its input", "01_denoising_sparsity", "Fig. 1", "PR mode 0.75 → 0.26",
          "σ = {sigma:g}: median PR {mid_pr_median_in:.2f} → {mid_pr_median_out:.2f}, effective channels "
          "{mid_eff_channels_in:.0f} → {mid_eff_channels_out:.0f}",
          "untrained output: PR {untrained_mid_pr_median_out:.2f}, {untrained_mid_eff_channels_out:.0f} channels",
          "claim_mid_sparsifies"),
    Claim("phi is sparse: few channels carry most of its energy", "01_denoising_sparsity", "section 2",
          "a small subset of channels active per image",
          "90% of the energy in a median of {phi_energy90_channels_median:.0f} of {phi_channels} channels",
          "untrained {untrained_phi_energy90_channels_median:.0f}", "claim_phi_sparse"),
    Claim("The middle block is the most noise-robust block", "01_denoising_sparsity", "section 2",
          "the middle block changes least",
          "least-changed block at σ = {robust_sigma:g}: {robust_least_changed_block} ({robust_change_least:.2f}); "
          "middle block {robust_change_mid:.2f}", "", "claim_mid_most_robust"),
    Claim("Training creates specialized (heavy-tailed) channels next to common (near-Gaussian) ones",
          "02_channel_selectivity", "Figs. 3, 13", "both kinds present",
          "{trained_specialized} specialized, {trained_common} common of {channels} "
          "({trained_specialized_share_of_live:.0%} of live channels specialized)",
          "untrained {untrained_specialized_share_of_live:.0%}, pixels {pixels_specialized_share_of_live:.0%}",
          "claim_specialized"),
    Claim("Specialized channels respond to shared content (class)", "02_channel_selectivity", "Fig. 3",
          "top images share content",
          "class purity of top images {trained_top_class_purity:.2f} (chance {chance_class_purity:.2f})",
          "untrained {untrained_top_class_purity:.2f}, pixels {pixels_top_class_purity:.2f}", "claim_purity",
          "; background {trained_top_background_purity:.2f} (chance {chance_background_purity:.2f})"),
    Claim("Two classes live on their own channels (union of subspaces)", "02_channel_selectivity", "Fig. 5",
          "each class near zero on the other's channel",
          "AUC {pair_auc_trained[0]:.2f} / {pair_auc_trained[1]:.2f}",
          "untrained, same selection {pair_auc_untrained[0]:.2f} / {pair_auc_untrained[1]:.2f}", "claim_subspace"),
    Claim("Self-guided samples keep the target's content and vary in detail", "03_self_guided_reconstruction",
          "Fig. 7", "yes",
          "{kept_factor} of the target kept by {guided_kept_factor_acc:.2f} [{guided_kept_factor_ci_low:.2f}, "
          "{guided_kept_factor_ci_high:.2f}] of {kept_n_targets} x {kept_n_samples} samples ({kept_verdict}); "
          "diversity {diversity_fast:.3f}",
          "unconditional samples {unconditional_kept_factor_acc:.2f} (diversity {diversity_unconditional:.3f}), "
          "second real image {second_real_kept_factor_acc:.2f}", "claim_structure_kept"),
    Claim("Our fast sampler needs 10x fewer network evaluations (ours)", "03_self_guided_reconstruction",
          "algorithm boxes", "reference: about 20k NFE per batch",
          "fast {fast_nfe} NFE, φ error {fast_phi_rel_err:.3f}, PSNR {fast_psnr_to_target_db:.1f} dB",
          "reference ({ref_steps} steps) {reference_nfe} NFE, φ error {reference_phi_rel_err:.3f}, "
          "PSNR {reference_psnr_to_target_db:.1f} dB", "claim_fast_10x_fewer_nfe"),
    Claim("phi distance tracks the conditional-density distance", "04_distances", "Fig. 8", "band slope ratio ≈ 3",
          "Spearman {spearman_trained:.2f} (partial, given pixels {partial_spearman_trained:.2f}), band ratio "
          "{band_ratio_trained:.1f}",
          "pixels {spearman_pixels:.2f} / {band_ratio_pixels:.1f}, untrained {spearman_untrained:.2f} / "
          "{band_ratio_untrained:.1f}", "claim_tracks_density_distance"),
    Claim("phi distance is semantic (same-class pairs closer)", "04_distances", "Fig. 8", "yes",
          "same-class AUC {auc_class_trained:.3f}, 1-NN same class {nn1_same_class_trained:.0%}",
          "untrained {auc_class_untrained:.3f} / {nn1_same_class_untrained:.0%}, pixels {auc_class_pixels:.3f} / "
          "{nn1_same_class_pixels:.0%}", "claim_distance_semantic"),
    Claim("k-means clusters of phi partly align with classes", "05_clustering", "Fig. 6", "partly aligned",
          "class AMI {ami_class_trained:.3f} (standardized {ami_class_trained_standardized:.3f})",
          "class AMI untrained {ami_class_untrained:.3f}, pixels {ami_class_pixels:.3f}", "claim_clusters_semantic",
          ", background AMI {ami_background_trained:.3f}"),
    Claim("Clusters are well separated, classes are not", "05_clustering", "Fig. 6",
          "clusters at ratio 2-4 and above, classes ≈ 1",
          "median ratio: clusters {separation_median_trained_clusters:.2f}, classes "
          "{separation_median_trained_classes:.2f}",
          "clusters: untrained {separation_median_untrained_clusters:.2f}, pixels "
          "{separation_median_pixels_clusters:.2f}", "claim_separation"),
    Claim("A linear probe reads the class from phi better than from the controls", "06_linear_probe",
          "authors' scripts", "",
          "probe {phi_probe_acc:.1%} ± {phi_probe_acc_sd:.1%} (train {phi_probe_train_acc:.1%}), "
          "kNN {phi_knn_acc:.1%}; {probe_train_images} training images, chance {class_chance:.1%}",
          "untrained {untrained_probe_acc:.1%} ± {untrained_probe_acc_sd:.1%} (kNN {untrained_knn_acc:.1%}), pixels "
          "{pixel_probe_acc:.1%} (kNN {pixel_knn_acc:.1%}), PCA pixels {pca_pixel_probe_acc:.1%}",
          "claim_phi_semantic"),
    Claim("phi neighbours share the class more often than pixel neighbours", "07_explorer", "Fig. 8 (neighbours)",
          "", "same-class rate of the nearest neighbours {same_class_rate_phi:.2f}",
          "pixels {same_class_rate_pixels:.2f}, chance {chance:.2f}", "claim_phi_neighbours_semantic"),
]


class _Numbers(dict):
    """A run's numbers for str.format: a missing key or a null value raises KeyError."""

    def __getitem__(self, key):
        v = dict.__getitem__(self, key)
        if v is None:
            raise KeyError(key)
        return v


def fill(template: str, numbers: dict | None) -> str:
    """``template`` formatted with ``numbers``; `NOT_MEASURED` if a key is missing, null or of the wrong kind."""
    if not template:
        return ""
    if numbers is None:
        return NOT_MEASURED
    try:
        return string.Formatter().vformat(template, (), _Numbers(numbers))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return NOT_MEASURED


def run_id(variant: str, stem: str) -> str:
    """The run id of notebook ``stem`` on a checkpoint column's ``variant`` ("" -> "06_x", "cifar10" ->
    "cifar10/06_x")."""
    return f"{variant}/{stem}" if variant else stem


def _claim_row(c: Claim, runs: dict, variant: str) -> dict:
    run = run_id(variant, c.run)
    data = runs.get(run)
    nums = (data or {}).get("numbers")
    v = (nums or {}).get(c.verdict) if c.verdict else None
    # a boolean criterion, or the notebook's own word ("degenerate": phi does not vary across images)
    verdict = VERDICT_TEXT[v] if isinstance(v, bool) else (v if isinstance(v, str) and v else NOT_MEASURED)
    ours = fill(c.ours, nums)
    if ours == NOT_MEASURED:
        verdict = NOT_MEASURED
    elif c.optional and fill(c.optional, nums) != NOT_MEASURED:
        ours += fill(c.optional, nums)
    if data is None and variant:
        verdict = NOT_RUN
    return {"claim": c.claim, "paper figure": c.paper_figure, "paper": c.paper or "–", "ours": ours,
            "controls": fill(c.controls, nums) or "–", "verdict": verdict, "run": run,
            "smoke": bool((data or {}).get("run", {}).get("smoke")), "ran": data is not None}


def scorecard(runs: dict, claims=CLAIMS, variant: str = "", columns=CHECKPOINT_COLUMNS) -> list[dict]:
    """One row per claim on the checkpoint whose runs live in figures/<variant>/ ("": figures/NN_* itself):
    claim, paper figure, paper, ours, controls, verdict ("holds", "does not hold", the notebook's own word,
    "not measured"; "not run" where a ``variant``'s notebook has no numbers.json), run, whether that run was a
    SMOKE run, whether it ran; and ``columns``: {label: that claim's row on each checkpoint of ``columns``}.
    ``runs``: `lib.notebook.numbers.find_numbers`."""
    rows = []
    for c in claims:
        row = _claim_row(c, runs, variant)
        row["columns"] = {label: _claim_row(c, runs, v) for v, label in columns}
        rows.append(row)
    return rows


def _md(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _verdict_md(col: dict, link: bool) -> str:
    """A verdict cell: bold where measured, "(SMOKE run)" after a SMOKE run, linked to the run's page."""
    v = col["verdict"]
    if v in (NOT_MEASURED, NOT_RUN):
        return v
    v = f"**{v}**" + (" (SMOKE run)" if col["smoke"] else "")
    return f"[{v}](figures/site/{site_page(col['run'])})" if link else v


def scorecard_markdown(rows: list[dict], link_runs: bool = True) -> str:
    """The scorecard as a Markdown table: the claim (linked to its page), the paper, ours and the controls
    on the first checkpoint column, then one verdict column per checkpoint (later ones linked to their page)."""
    labels = list(rows[0]["columns"]) if rows else [label for _, label in CHECKPOINT_COLUMNS]
    first = labels[0] if labels else ""
    lines = [f"| claim | paper | paper's number | ours ({first}) | controls | " + " | ".join(labels) + " |",
             "|---|---|---|---|---|" + "---|" * len(labels)]
    for r in rows:
        claim = _md(r["claim"])
        if link_runs:
            claim += f" ([{r['run'].split('/')[-1][:2]}](figures/site/{site_page(r['run'])}))"
        cols = [_verdict_md(col, link_runs and i > 0) for i, col in enumerate(r["columns"].values())]
        lines.append(f"| {claim} | {_md(r['paper figure'])} | {_md(r['paper'])} | {_md(r['ours'])} | "
                     f"{_md(r['controls'])} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def site_page(run: str) -> str:
    """The results site's page of a run id ("tuxobj32/01_x" -> "tuxobj32_01_x.html")."""
    return run.replace("/", "_") + ".html"


def provenance(runs: dict) -> str:
    """"checkpoint tux32 (weights sha256 1a2b..., 440,000 images seen), tuxphoto, N = 1000 held-out" for
    each distinct checkpoint among the runs."""
    seen = {}
    for rid, d in runs.items():
        r = d.get("run", {})
        key = (r.get("checkpoint"), r.get("checkpoint_sha256"))
        seen.setdefault(key, []).append((rid, r))
    parts = []
    for (ckpt, sha), items in seen.items():
        r = items[0][1]
        imgs = f", {r['images_seen']:,} images seen" if isinstance(r.get("images_seen"), int) else ""
        ds = sorted({i[1].get("dataset") for i in items if i[1].get("dataset")})
        ns = sorted({i[1].get("n_images") for i in items if i[1].get("n_images")})
        parts.append(f"`{ckpt}` (weights sha256 `{sha}`{imgs}; {', '.join(ds)}; N = "
                     f"{', '.join(str(n) for n in ns)} held-out images)")
    return "; ".join(parts)


def verdict_counts(rows: list[dict]) -> str:
    """Per checkpoint column: how many claims hold, do not hold (or are degenerate), are not measured or not run."""
    parts = []
    for label in (rows[0]["columns"] if rows else {}):
        vs = [r["columns"][label]["verdict"] for r in rows]
        held, idle = vs.count("holds"), vs.count(NOT_MEASURED) + vs.count(NOT_RUN)
        text = f"{label}: {held} of {len(vs)} claims hold, {len(vs) - held - idle} do not hold or are degenerate"
        for word in (NOT_MEASURED, NOT_RUN):
            if vs.count(word):
                text += f", {vs.count(word)} {word}"
        parts.append(text)
    return "; ".join(parts)


def numbers_block(runs: dict) -> str:
    """The ``numbers`` block: the checkpoints' provenance, the scorecard and how to read its verdicts."""
    rows = scorecard(runs)
    lines = [f"Checkpoints: {provenance(runs)}." if runs else "No numbers.json yet: run `make figures`.", "",
             scorecard_markdown(rows), "",
             f"On the shipped models: {verdict_counts(rows)}. The verdict is the notebook's own criterion "
             "(stated in its closing cell); \"ours\" and the controls are the first checkpoint's numbers; each "
             "claim links to its page of the results site, each later checkpoint's verdict to that run's page "
             "(where a criterion reads tuxphoto's background or instance, CIFAR-10 has only its classes to read)."]
    return "\n".join(lines)


def notebooks_block() -> str:
    """The ``notebooks`` block: one line per notebook (link, paper figures, what it teaches)."""
    return "\n".join(f"- [`{stem}`](notebooks/{stem}.ipynb) — {nb.paper} — {nb.teaches}."
                     for stem, nb in NOTEBOOKS.items())


def study_block(path=None) -> str:
    """The ``study`` block: the factor study's final table and findings (default figures/evidence/study.jsonl),
    or a line saying how to make it."""
    path = Path(path or FIGURES / "evidence" / "study.jsonl")
    if not path.is_file():
        return f"`{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}` not found: run `make study`."
    s = study.read_study(path)
    return study.study_table(s["finals"]).rstrip() + "\n\n" + "\n".join(study.study_findings(s["finals"]))


def profile_block(path=None) -> str:
    """The ``figures-profile`` block: a Markdown table of each notebook's seconds (total, per stage, other) from
    a committed profile (default figures/profile.json), or a line saying how to make one."""
    path = Path(path or FIGURES / PROFILE_FILE)
    shown = f"`{path.relative_to(ROOT)}`" if path.is_relative_to(ROOT) else f"`{path.name}`"
    if not path.is_file():
        return (f"{shown} not found: run `make figures` (its notebook runner writes each notebook's seconds per "
                f"stage there).")
    profile = read_json(path, "notebook profile")
    if not isinstance(profile, dict) or not profile:
        return f"{shown} holds no notebook yet: run `make figures`."
    return (profile_table(profile, markdown=True) + "\n\n"
            f"Wall seconds of each notebook in the last `make figures` that ran it (from {shown}; the table is "
            "generated): its total, the seconds spent in each stage of `lib.core.profile` (a stage counts where "
            "its outermost call began, so a phi computed inside a sampler is sampling time; \"–\": the notebook "
            "never entered that stage), and other: imports, set-up, the kernel's start and everything no stage "
            "covers. `python -m scripts.bench --figures` prints the same for the latest run into `figures/rendered/`.")


# The layers of lib/, bottom to top (tests/test_layers.py enforces that imports go down only).
LAYERS = ("core", "data", "model", "representation", "sampling", "measure", "training", "notebook", "publish",
          "tools")


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring, on one line, with its Markdown table pipes escaped."""
    text = " ".join(doc.split("\n\n")[0].split())
    cut = re.search(r"(?<=[a-z0-9)`])\.(\s|$)", text)
    text = text[:cut.start()] if cut else text
    if len(text) > 200:
        text = text[:200].rsplit(" ", 1)[0] + " …"
    return text.replace("|", "\\|")


def modules_block(root=ROOT) -> str:
    """The module map: every sub-package of lib/ (its layer, bottom to top) and module with the first sentence
    of its docstring, then every entry point in scripts/."""
    lib, rows = Path(root) / "lib", ["| module | what it holds |", "|---|---|"]
    for pkg in LAYERS:
        doc = ast.get_docstring(ast.parse((lib / pkg / "__init__.py").read_text())) or ""
        rows.append(f"| **`lib/{pkg}/`** | {first_sentence(doc)} |")
        for m in sorted((lib / pkg).glob("*.py")):
            if m.name != "__init__.py":
                doc = ast.get_docstring(ast.parse(m.read_text())) or ""
                rows.append(f"| `{pkg}/{m.name}` | {first_sentence(doc)} |")
    rows += ["", "| command | what it does |", "|---|---|"]
    for m in sorted((Path(root) / "scripts").glob("*.py")):
        if m.name != "__init__.py":
            doc = ast.get_docstring(ast.parse(m.read_text())) or ""
            rows.append(f"| `python -m scripts.{m.stem}` | {first_sentence(doc)} |")
    return "\n".join(rows)


def blocks(figures=FIGURES) -> dict:
    """{block name: generated markdown} for the README."""
    runs = find_numbers(figures)
    return {"notebooks": notebooks_block(), "numbers": numbers_block(runs), "modules": modules_block(),
            "study": study_block(Path(figures) / "evidence" / "study.jsonl"),
            "figures-profile": profile_block(Path(figures) / PROFILE_FILE)}


def _pattern(name: str):
    return re.compile(rf"(<!-- {name}:begin[^>]*-->\n)(.*?)(<!-- {name}:end -->)", re.S)


def render_readme(text: str, generated: dict) -> str:
    """``text`` with every marked block replaced by ``generated[name]``; a block named in ``generated``
    but absent from the text is an error (so a deleted marker is noticed)."""
    for name, body in generated.items():
        pat = _pattern(name)
        if not pat.search(text):
            raise ValueError(f"README: no <!-- {name}:begin --> ... <!-- {name}:end --> block")
        text = pat.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text, count=1)
    return text


def update_readme(readme=README, figures=FIGURES, check: bool = False) -> bool:
    """Rewrite the README's blocks; with ``check`` only compare. Returns True if the README was current."""
    readme = Path(readme)
    old = readme.read_text()
    new = render_readme(old, blocks(figures))
    if new != old and not check:
        readme.write_text(new)
    return new == old
