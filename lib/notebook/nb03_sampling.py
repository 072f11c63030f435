"""Measurements and figures of notebook 03 (self-guided reconstruction): distances to the target, the
cost/accuracy table row of a sampler run, phi error and PSNR against nfe, diversity against distance."""
from __future__ import annotations

import torch

from lib.representation.phi import phi
from lib.sampling import samplers as S
from lib.sampling.quality import summarize


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
    t_norm = torch.linalg.vector_norm(phi(model, targets, S.EVAL_SIGMA, n_noise=10, seed=0), dim=1).mean().item()
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
