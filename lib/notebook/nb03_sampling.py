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
from lib.notebook.plots import show_images
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
