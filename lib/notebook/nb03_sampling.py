"""Measurements and figures of notebook 03 (self-guided reconstruction): distances to the target, the
cost/accuracy row of a sampler run, phi error and PSNR against nfe, diversity, sample quality (KID).

The sample quality (`sample_quality`) is a kernel distance of the samples to held-out images, in pixels and
in the readers' feature space, next to two real halves (the floor) and blurred images (a known-bad set)."""
from __future__ import annotations

import numpy as np
import torch

from lib.core.metrics import gaussian_blur
from lib.measure.kept import features, kept_table
from lib.measure.kernel_distance import kid_test
from lib.measure.readout import ANALYSIS_SIGMA, liveness_note
from lib.notebook.plots import show_images, show_ring
from lib.sampling import samplers as S
from lib.sampling.guidance import channel_count
from lib.sampling.quality import dropped_share, summarize


def rmse_to(samples: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) RMSE between each sample and its target (same shape, or one target broadcast)."""
    return (samples - targets.expand_as(samples)).flatten(1).pow(2).mean(1).sqrt()


def summary_row(model, name: str, r: S.SampleResult, targets: torch.Tensor, n_samples: int,
                tracker_seconds: float, spread: float) -> dict:
    """One row of the cost/accuracy table for a run on ``targets`` (T, C, H, W) x ``n_samples``: nfe, wall
    time per target (minus the tracker's time), phi relative error, the same error on the scale of the
    typical distance between two images' phi (``spread``, `lib.sampling.quality.phi_spread`), PSNR to the
    target, final effective sigma."""
    T = targets.shape[0]
    m = summarize(r, targets, n_samples, digits=False)
    rel = float(r.phi_rel_err.mean())
    t_norm = torch.linalg.vector_norm(S.targets_phi(model, targets, 10), dim=1).mean().item()
    return {"preset": name, "NFE": m["nfe"], "wall s / target": (r.wall_s - tracker_seconds) / T,
            "phi rel err": rel, "phi err / spread": rel * t_norm / spread,
            "PSNR to target": m["psnr"], "final eff. sigma": m["final_sigma"]}


def plot_nfe_curves(curves: dict):
    """curves: {name: Tracker.rows}. phi relative error and PSNR to the target against nfe."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, rows in curves.items():
        axes[0].plot([r["nfe"] for r in rows], [r["phi_rel_err"] for r in rows], "o-", ms=3, label=name)
        axes[1].plot([r["nfe"] for r in rows], [r["psnr"] for r in rows], "o-", ms=3, label=name)
    axes[0].set(xscale="log", yscale="log", xlabel="NFE", ylabel="phi relative error")
    axes[1].set(xscale="log", xlabel="NFE", ylabel="PSNR to target (dB)")
    axes[0].legend()
    return fig


def plot_diversity(points: dict, unconditional: tuple):
    """points: {label: (distance to target (T,), diversity (T,))} per target; unconditional: (distance of
    the unconditional samples to each target (T,), their diversity (scalar)). Scatter with the diagonal."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    for (label, (t, d)), marker in zip(points.items(), "os^v"):
        ax.scatter(t, d, marker=marker, label=label)
    t_unc, d_unc = unconditional
    ax.scatter(t_unc, torch.as_tensor(d_unc).expand_as(t_unc), marker="x", c="gray", label="unconditional")
    lim = max(float(t_unc.max()), float(torch.as_tensor(d_unc).max()),
              *(float(torch.as_tensor(d).max()) for _, d in points.values())) * 1.1
    ax.plot([0, lim], [0, lim], "k:", lw=0.8)
    ax.set(xlim=(0, lim), ylim=(0, lim), xlabel="RMSE sample - target", ylabel="mean pairwise RMSE among samples")
    ax.legend(fontsize=7)
    return fig


def kept_display(rows: list[dict]) -> list[dict]:
    """The kept-factor table (lib.measure.kept.kept_table) as printable rows: match rates with the guided
    samples' 95% interval."""
    return [{"factor": r["factor"], "reader": r["reader"], "n samples": r["n"],
             "guided [95% CI]": f"{r['guided']:.2f} [{r['guided_ci_low']:.2f}, {r['guided_ci_high']:.2f}]",
             "unconditional": f"{r['unconditional']:.2f}", "target itself": f"{r['target']:.2f}",
             "second real image": f"{r['second_real']:.2f}", "majority rate": f"{r['chance']:.2f}"} for r in rows]


def kept_verdict(row: dict, halfway: float = 0.5) -> str:
    """One kept-factor row read as a claim: "holds" when the guided samples' 95% interval lies above the
    unconditional rate and their rate is at least ``halfway`` from unconditional to a second real image of
    the same factor; "partly" when only the first holds; "does not hold" otherwise (NaN rates: "not measured")."""
    g, lo, u, r = row["guided"], row["guided_ci_low"], row["unconditional"], row["second_real"]
    if any(v != v for v in (g, lo, u, r)):
        return "not measured"
    if lo <= u:
        return "does not hold"
    return "holds" if g >= u + halfway * (r - u) else "partly"


SUBSPACES = ("specialized", "common")


def subspace_kept(model, images, kept_idx, split: dict, readers: dict, best: dict, factors: dict, unconditional,
                  n_samples: int, mean, seed: int, **overrides) -> tuple[dict, list[dict]]:
    """Subspace projections as the authors do them: for the "specialized" and the "common" channels of
    ``split`` (lib.measure.channels.split_channels), fast-preset samples of the targets images[kept_idx] with
    the other channels driven to zero (masked="zero"), the kept-factor row of the ``best`` factor and reader
    (lib.measure.kept.kept_table) and the share of the targets' activity the dropped channels keep
    (lib.sampling.quality.dropped_share). Returns ({name: SampleResult}, [row per subspace])."""
    targets, C = images[kept_idx], channel_count(model)
    subs, rows = {}, []
    for name in SUBSPACES:
        mask = torch.zeros(C)
        mask[torch.as_tensor(split[name])] = 1
        subs[name] = S.self_guided(model, targets, n_samples, preset="fast", mean=mean,
                                   generator=torch.Generator().manual_seed(seed), guide=dict(mask=mask), **overrides)
        r = kept_table(model, {best["factor"]: readers[best["factor"]]}, images, factors, kept_idx, subs[name].samples,
                       n_samples, unconditional, seed=seed)
        share = dropped_share(model, subs[name].samples, targets, n_samples, mask)
        rows.append(dict(next(q for q in r if q["reader"] == best["reader"]),
                         subspace=f"only {name} ({len(split[name])})", samples=n_samples, dropped=f"{share:.2f}"))
    return subs, rows


def subspace_display(rows: list[dict]) -> list[dict]:
    """The subspace table as printable rows (`kept_display` plus the subspace and dropped-channel share)."""
    return [{"subspace": q["subspace"], "samples / target": q["samples"],
             **{k: v for k, v in kept_display([q])[0].items() if k not in ("reader", "n samples")},
             "dropped channels": q["dropped"]} for q in rows]


def plot_subspaces(targets, guided, n_guided: int, subs: dict, n_sub: int, split: dict, n_show: int, channels: int):
    """Rows of: target, its samples guided by all channels, by the specialized only, by the common only."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(n_show, 4, figsize=(7.5, 1.6 * n_show + 0.4), squeeze=False,
                             gridspec_kw={"width_ratios": [1, n_guided, n_sub, n_sub]})
    for i in range(n_show):
        show_images(axes[i, 0], targets[i:i + 1], 1, "target" if i == 0 else None)
        show_images(axes[i, 1], guided[i * n_guided:(i + 1) * n_guided], n_guided,
                    f"all {channels}" if i == 0 else None)
        for j, name in enumerate(SUBSPACES):
            s = subs[name].samples[i * n_sub:(i + 1) * n_sub]
            show_images(axes[i, j + 2], s, n_sub, f"{name} ({len(split[name])})" if i == 0 else None)
    return fig


QUALITY_SPACES = ("pixels", "features")


def sample_quality(model, pool, sets: dict, exclude=(), n_real: int = 250, blur: float = 1.0, seed: int = 0,
                   n_resamples: int = 200) -> list[dict]:
    """How far each set of samples is from real images: KID (`lib.measure.kernel_distance.kid_test`) against a
    reference half of the held-out ``pool`` (N, C, H, W), in pixel space and in the readers' feature space
    (phi at the analysis sigma, `lib.measure.kept.features`). ``sets``: {name: SampleResult}. Two references
    measured the same way: the other, disjoint half of the pool ("real halves": the floor a perfect sampler
    reaches) and that half blurred with a Gaussian of std ``blur`` pixels ("blurred": a known-bad sampler).
    The halves hold ``n_real`` images each (fewer if the pool is small), drawn with ``seed`` from the pool
    without the indices ``exclude`` (the guided samples' targets, which samples may copy).

    One row per set and reference: set, n, kid_pixels / kid_features with ci_low, ci_high, null_95 (each
    space's {key: value} under "pixels" and "features"), and outside_01: the share of the set's pixel values
    outside [0, 1] before the sampler's clamp (NaN for real images)."""
    keep = np.setdiff1d(np.arange(len(pool)), np.asarray(exclude, dtype=int))
    half = min(int(n_real), len(keep) // 2)
    if half < 4:
        raise ValueError(f"pool: expected at least 8 images outside `exclude` for two real halves, got {len(keep)}")
    pick = np.random.default_rng(seed).permutation(keep)
    ref, other = pool[torch.as_tensor(pick[:half])].float(), pool[torch.as_tensor(pick[half:2 * half])].float()
    named = {"real halves": other, "blurred": gaussian_blur(other, blur).clamp(0, 1),
             **{k: r.samples.float() for k, r in sets.items()}}
    allx = torch.cat([ref, *named.values()])
    feats = {"pixels": allx.flatten(1).numpy(), "features": features(model, allx, seed=seed)["probe"]}
    ends = np.cumsum([half] + [len(v) for v in named.values()])
    rows = []
    for i, name in enumerate(named):
        row = {"set": name, "n": len(named[name]), "n_reference": half,
               "outside_01": float(sets[name].info.get("outside_01", float("nan"))) if name in sets else float("nan")}
        for space in QUALITY_SPACES:
            f = feats[space]
            row[space] = kid_test(f[ends[i]:ends[i + 1]], f[:half], n_resamples=n_resamples, seed=seed)
        rows.append(row)
    return rows


def quality_display(rows: list[dict]) -> list[dict]:
    """The sample-quality table as printable rows: KID [95% interval] and the permutation null per space."""
    def cell(q):
        return f"{q['kid']:.3g} [{q['ci_low']:.3g}, {q['ci_high']:.3g}]"
    out = []
    for r in rows:
        out.append({"set": r["set"], "n": r["n"],
                    **{f"KID {s} [95% CI]": cell(r[s]) for s in QUALITY_SPACES},
                    **{f"null 95% ({s})": f"{r[s]['null_95']:.3g}" for s in QUALITY_SPACES},
                    "outside [0, 1] before clip": ("–" if r["outside_01"] != r["outside_01"]
                                                   else f"{r['outside_01']:.2%}")})
    return out


def quality_numbers(rows: list[dict]) -> dict:
    """The sample-quality table as notebook 03's key numbers: kid_<space>_<set> (set names with spaces as
    underscores: real_halves), its _ci_low, _ci_high, _null_95, outside_01_<set> for sampled sets, and
    kid_n_reference."""
    out = {"kid_n_reference": rows[0]["n_reference"] if rows else 0}
    for r in rows:
        name = r["set"].replace(" ", "_")
        for s in QUALITY_SPACES:
            out[f"kid_{s}_{name}"] = r[s]["kid"]
            out.update({f"kid_{s}_{name}_{k}": r[s][k] for k in ("ci_low", "ci_high", "null_95")})
        if r["outside_01"] == r["outside_01"]:
            out[f"outside_01_{name}"] = r["outside_01"]
    return out


def quality_note(rows: list[dict]) -> str:
    """One verdict line: each set's KID in both spaces against the real-halves floor and the blurred images,
    and the share of pixels the samplers clamped."""
    R = {r["set"]: r for r in rows}
    parts = []
    for s in QUALITY_SPACES:
        sets = ", ".join(f"{k} {r[s]['kid']:.3g} [{r[s]['ci_low']:.3g}, {r[s]['ci_high']:.3g}]"
                         for k, r in R.items() if k not in ("real halves", "blurred"))
        parts.append(f"in {s}: {sets}; real halves {R['real halves'][s]['kid']:.3g} (the floor), blurred "
                     f"{R['blurred'][s]['kid']:.3g}")
    clip = ", ".join(f"{k} {r['outside_01']:.2%}" for k, r in R.items() if r["outside_01"] == r["outside_01"])
    return "KID to held-out images " + "; ".join(parts) + f". Pixel values outside [0, 1] before clipping: {clip}."


# --------------------------------------------------------------------------------------------- figures 7
def plot_fig7(targets, samples, n_samples: int, titles: list[str], cols: int = 3):
    """Fig. 7: each target (T, C, H, W) in the middle of a ring of its ``n_samples`` samples (target-major rows
    of ``samples``), ``cols`` targets per row, one title per target."""
    import matplotlib.pyplot as plt

    T = targets.shape[0]
    per = samples.reshape(T, n_samples, *targets.shape[1:])
    cols = min(cols, T)
    rows = -(-T // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.7 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < T:
            show_ring(ax, targets[i], per[i], titles[i])
        else:
            ax.set_axis_off()
    return fig


def plot_reference_vs_fast(targets, ref, fast, n_samples: int):
    """Fig. 7's two presets side by side: for each of ref's targets, its samples by the reference preset and by
    the fast one (``ref``, ``fast``: SampleResults on the first targets, ``n_samples`` each, target-major)."""
    import matplotlib.pyplot as plt

    n = ref.samples.shape[0] // n_samples
    ref_s = ref.samples.reshape(n, n_samples, *targets.shape[1:])
    fast_s = fast.samples.reshape(-1, n_samples, *targets.shape[1:])
    fig, axes = plt.subplots(n, 2, figsize=(5.4, 2.8 * n), squeeze=False)
    for i in range(n):
        show_ring(axes[i, 0], targets[i], ref_s[i], f"reference: {ref.nfe} NFE")
        show_ring(axes[i, 1], targets[i], fast_s[i], f"fast: {fast.nfe} NFE")
    return fig


# --------------------------------------------------------------------------------------------- the verdict
CLOSER_MARGIN = 0.9      # "closer to the target": fast samples' mean RMSE below 90% of the unconditional ones'
DIVERSE_FRACTION = 0.25  # "still differ": diversity among a target's samples above 25% of the unconditional's
CHEAPER_FACTOR = 10      # the fast preset's claim: at least 10x fewer network evaluations than the reference


def structure_verdict(dist_fast: float, dist_unconditional: float, div_fast: float, div_unconditional: float,
                      nfe_fast: int, nfe_reference: int, kept: str) -> dict:
    """The paper's claim (samples keep the target's global content and vary in detail) from the measured numbers.

    dist_*: mean RMSE of samples to their target (fast preset) and of unconditional samples to the targets;
    div_*: mean pairwise RMSE among a target's samples and among unconditional samples; kept: `kept_verdict`
    of the kept factor ("holds", "partly", "does not hold"). Returns closer, diverse, cheap (booleans), the
    claim's word ("holds", "partly", "does not hold"), claim_structure_kept (holds and diverse) and
    claim_fast_10x_fewer_nfe."""
    closer = float(dist_fast) < CLOSER_MARGIN * float(dist_unconditional)
    diverse = float(div_fast) > DIVERSE_FRACTION * float(div_unconditional)
    cheap = int(nfe_fast) * CHEAPER_FACTOR <= int(nfe_reference)
    word = kept if diverse and kept in ("holds", "partly") else "does not hold"
    return {"closer": closer, "diverse": diverse, "cheap": cheap, "claim": word,
            "claim_structure_kept": bool(kept == "holds" and diverse), "claim_fast_10x_fewer_nfe": bool(cheap)}


def verdict_markdown(m: dict) -> str:
    """Notebook 03's closing cell from its measurements ``m`` (a dict with the keys the notebook builds: the
    run (checkpoint, images_seen, dataset, sizes), the summary rows (fast, reference), distances and
    diversities, the kept-factor rows, nearest-real, subspaces, quality, liveness and `structure_verdict`)."""
    fr, rr_, best, v = m["fast_row"], m["ref_row"], m["best"], m["verdict"]
    sub_rows, near = m["sub_rows"], m["near"]
    others = "; ".join(f"{q['factor']} ({q['reader']}) {q['guided']:.2f} vs {q['unconditional']:.2f} unconditional, "
                       f"{q['second_real']:.2f} second real: {kept_verdict(q)}"
                       for q in m["kept_rows"] if q is not best)
    lost = sorted({q["factor"] for q in m["kept_rows"]}
                  - {q["factor"] for q in m["kept_rows"] if kept_verdict(q) in ("holds", "partly")})
    kept = m["kept"]
    lead = {"holds": "holds on this model: ", "partly": "holds only partly on this model: "}
    lines = [
        f"Checkpoint `{m['checkpoint']}` ({m['images_seen']} training images seen); {m['n_targets']} held-out "
        f"`{m['dataset']}` targets x {m['n_samples']} samples (fast), {m['n_ref_targets']} x {m['n_samples']} "
        f"(reference).",
        "",
        f"- **Cost**: reference {rr_['NFE']} NFE and {rr_['wall s / target']:.1f} s per target; fast {fr['NFE']} NFE "
        f"({rr_['NFE'] / fr['NFE']:.0f}x fewer) and {fr['wall s / target']:.1f} s per target "
        f"({rr_['wall s / target'] / max(fr['wall s / target'], 1e-9):.0f}x less wall time).",
        f"- **phi match**: relative error reference {rr_['phi rel err']:.4f}, fast {fr['phi rel err']:.4f}; on the "
        f"scale of the typical distance between two images' phi: {rr_['phi err / spread']:.2f} vs "
        f"{fr['phi err / spread']:.2f}.",
        f"- **Image quality**: PSNR to the target {rr_['PSNR to target']:.1f} vs {fr['PSNR to target']:.1f} dB; final "
        f"effective sigma (noise the denoiser still sees) {rr_['final eff. sigma']:.3f} vs "
        f"{fr['final eff. sigma']:.3f}.",
        f"- **Diversity**: mean pairwise RMSE among samples of one target: fast {m['div_fast']:.3f}, reference "
        f"{m['div_ref']:.3f}; unconditional samples {m['div_unc']:.3f}. Distance to the target: fast "
        f"{m['dist_fast']:.3f}, reference {m['dist_ref']:.3f}, unconditional {m['dist_unc']:.3f}.",
        f"- **What the samples keep** ({m['n_kept_targets']} targets x {m['n_kept_samples']} samples): the kept "
        f"factor, {best['factor']} read by {best['reader']}, matches its target for {best['guided']:.2f} "
        f"[{best['guided_ci_low']:.2f}, {best['guided_ci_high']:.2f}] of the self-guided samples, against "
        f"{best['unconditional']:.2f} for unconditional samples ({m['unc_steps']} steps, {m['unc_nfe']} NFE), "
        f"{best['second_real']:.2f} for a second real image with the same {best['factor']} and {best['target']:.2f} "
        f"for the target itself: **{kept}**. Other factors: {others}.",
        f"- **Copies?** The nearest of the {m['n_images']} held-out images is the target itself for "
        f"{near['nearest_is_target']:.0%} of the samples (chance {near['chance']:.1%}; median rank of the target "
        f"{near['target_rank_median']:.0f}).",
        "- **Subspaces** (dropped channels driven to zero): the kept factor matches for "
        + ", ".join(f"{q['subspace']} {q['guided']:.2f} [{q['guided_ci_low']:.2f}, {q['guided_ci_high']:.2f}]"
                    for q in sub_rows)
        + f"; the dropped channels keep {sub_rows[1]['dropped']} (specialized-only) and {sub_rows[2]['dropped']} "
        f"(common-only) of the targets' activity. PSNR to the target {m['sub_psnr']['specialized']:.1f} / "
        f"{m['sub_psnr']['common']:.1f} dB.",
        f"- **Sample quality** ({m['n_guided']} guided, {m['n_unc']} unconditional samples): {m['quality_note']}",
        f"- **Representation**: {liveness_note(m['live_phi'], f'phi at σ={ANALYSIS_SIGMA:g}')}",
        "",
        "**Paper's claim** (samples keep the target's global content and vary in detail): "
        + (lead.get(kept, "does NOT hold on this model: ") if v["diverse"] else "does NOT hold on this model: ")
        + f"the target's {best['factor']} is {dict(holds='kept', partly='partly kept').get(kept, 'not kept')} by the "
        f"samples (other factors not kept: {', '.join(f for f in lost if f != best['factor']) or 'none'}), which "
        f"{'still differ' if v['diverse'] else 'hardly differ'} from each other; in pixels they are "
        f"{'closer' if v['closer'] else 'not closer'} to their target than unconditional samples. The fast preset "
        + ("costs at least 10x fewer network evaluations than the reference." if v["cheap"] else
           f"is not 10x cheaper than this panel's shortened reference ({m['ref_steps']} steps); `make bench` compares "
           "it with the full 100-step reference."),
    ]
    if m.get("smoke"):
        lines.insert(0, "*SMOKE run: tiny model, a handful of samples; the numbers mean nothing.*\n")
    return "\n".join(lines)
